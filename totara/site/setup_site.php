<?php
/**
 * This file is part of the ESR-Totara CSTF interface (not of Totara).
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation, either version 3 of the License, or
 * (at your option) any later version.
 *
 * Sets up a development/test Totara 17 site for the interface, idempotently, through Totara's own APIs:
 * External API on (response debug Normal), site timezone Europe/London, the service account `cstf_api`
 * (ordinary user) with the apiuser role and our role `cstf_esrsync`, the API client "CSTF ESR interface",
 * the ESR user profile fields, the CSTF certifications and the `esr-competence` evidence type
 * (all from site_data.json, which mirrors the simulator's fixture).
 *
 * Run from the site's server/ directory (or with TOTARA_SERVER_DIR set):
 *     cd SITE/server && php /path/to/totara/site/setup_site.php
 * The last line of output is a JSON object: base_url, client_id, client_secret, service_user.
 * It holds a secret: callers must not log that line.
 */

define('CLI_SCRIPT', true);

$serverdir = getenv('TOTARA_SERVER_DIR') ?: getcwd();
if (!file_exists($serverdir . '/config.php')) {
    fwrite(STDERR, "setup_site.php: no config.php in {$serverdir}: run it from the site's server/ directory\n");
    exit(2);
}
require($serverdir . '/config.php');

/** @var core_config $CFG */
/** @var moodle_database $DB */

require_once($CFG->libdir . '/clilib.php');
require_once($CFG->libdir . '/accesslib.php');
require_once($CFG->dirroot . '/user/lib.php');
require_once($CFG->dirroot . '/user/profile/lib.php');
require_once($CFG->dirroot . '/user/profile/definelib.php');
require_once($CFG->dirroot . '/course/lib.php');
require_once($CFG->dirroot . '/totara/program/lib.php');
require_once($CFG->dirroot . '/totara/certification/lib.php');

$datafile = getenv('TOTARA_SITE_DATA') ?: __DIR__ . '/site_data.json';
$SITEDATA = json_decode(file_get_contents($datafile), true, 512, JSON_THROW_ON_ERROR);

// Act as the site admin, as the admin pages would.
\core\session\manager::set_user(get_admin());

$CHANGES = [];

function site_change(string $message): void {
    global $CHANGES;
    $CHANGES[] = $message;
    cli_writeln('  changed: ' . $message);
}

function site_warn(string $message): void {
    cli_writeln('  WARNING: ' . $message);
}

/* ---------------------------------------------------------------------------------------------------------
 * Site settings: External API on, response debug Normal, timezone Europe/London (not forced on users).
 */
function setup_settings(array $data): void {
    if (!\totara_core\advanced_feature::is_enabled('api')) {
        \totara_core\advanced_feature::enable('api');
        site_change('External API enabled');
    }
    $normal = \totara_api\response_debug::ERROR_RESPONSE_LEVEL_NORMAL;
    if ((string)get_config('totara_api', 'response_debug') !== (string)$normal) {
        set_config('response_debug', $normal, 'totara_api');
        site_change('totara_api response_debug = Normal');
    }
    if (get_config('core', 'timezone') !== $data['timezone']) {
        set_config('timezone', $data['timezone']);
        site_change('site timezone = ' . $data['timezone']);
    }
    $force = get_config('core', 'forcetimezone');
    if ($force !== false && (string)$force !== '99') {
        set_config('forcetimezone', '99');   // 99 = "Timezone of users" (not forced): the admin setting's default.
        site_change('forcetimezone unset');
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * The service account: an ordinary user (a site admin is refused by the API), manual auth, random password.
 */
function setup_service_user(array $data): stdClass {
    global $CFG, $DB;
    $u = $data['service_user'];
    $user = $DB->get_record('user', ['username' => $u['username'], 'mnethostid' => $CFG->mnet_localhost_id]);
    if (!$user) {
        // Meets any password policy: upper, lower, digit, non-alphanumeric.
        $password = random_string(24) . 'Aa1!';
        $id = user_create_user((object)[
            'username' => $u['username'],
            'auth' => 'manual',
            'password' => $password,
            'firstname' => $u['firstname'],
            'lastname' => $u['lastname'],
            'email' => $u['email'],
            'confirmed' => 1,
            'mnethostid' => $CFG->mnet_localhost_id,
            'timezone' => '99',
            'lang' => $CFG->lang ?? 'en',
        ], true, true);
        site_change("service account {$u['username']} created (id {$id})");
        return $DB->get_record('user', ['id' => $id], '*', MUST_EXIST);
    }
    if ($user->deleted || $user->suspended || $user->auth !== 'manual') {
        $update = (object)['id' => $user->id, 'suspended' => 0, 'auth' => 'manual'];
        if ($user->deleted) {
            throw new coding_exception("service account {$u['username']} is deleted: rebuild the site");
        }
        user_update_user($update, false, true);
        site_change("service account {$u['username']} re-enabled");
        $user = $DB->get_record('user', ['id' => $user->id], '*', MUST_EXIST);
    }
    $admins = array_map('intval', explode(',', (string)$CFG->siteadmins));
    if (in_array((int)$user->id, $admins, true)) {
        throw new coding_exception("service account {$u['username']} is a site admin: the API refuses it");
    }
    return $user;
}

/**
 * Capabilities our plugin defines, read from its db/access.php in the site (none if it has none yet).
 */
function plugin_capabilities(): array {
    global $CFG;
    $file = $CFG->dirroot . '/local/esrsync/db/access.php';
    if (!file_exists($file)) {
        site_warn('local/esrsync/db/access.php not found: no plugin capabilities granted');
        return [];
    }
    $capabilities = [];
    include($file);
    if (get_config('local_esrsync', 'version')) {
        // What upgrade.php does on a version bump: files changed under the same version still count.
        update_capabilities('local_esrsync');
    }
    return array_keys($capabilities);
}

/* ---------------------------------------------------------------------------------------------------------
 * Roles: the install-created apiuser role and our own role cstf_esrsync, both assigned in the system context.
 */
function setup_roles(array $data, stdClass $user): void {
    global $DB;
    $syscontext = context_system::instance();

    $apiroles = $DB->get_records('role', ['archetype' => 'apiuser'], 'id ASC');
    if (!$apiroles) {
        throw new coding_exception('no role with archetype apiuser: is totara_api installed?');
    }
    $apirole = reset($apiroles);

    $r = $data['role'];
    $role = $DB->get_record('role', ['shortname' => $r['shortname']]);
    if (!$role) {
        $roleid = create_role($r['name'], $r['shortname'], $r['description'], '');
        $role = $DB->get_record('role', ['id' => $roleid], '*', MUST_EXIST);
        site_change("role {$r['shortname']} created");
    }
    $levels = array_map('intval', array_values(get_role_contextlevels($role->id)));
    if (!in_array(CONTEXT_SYSTEM, $levels, true)) {
        set_role_contextlevels($role->id, array_unique(array_merge($levels, [CONTEXT_SYSTEM])));
        site_change("role {$r['shortname']} assignable in the system context");
    }

    // Every capability the apiuser role allows, plus our plugin's, plus the extra ones the interface needs.
    $apicaps = $DB->get_fieldset_select('role_capabilities', 'capability',
        'roleid = :roleid AND contextid = :contextid AND permission = :perm',
        ['roleid' => $apirole->id, 'contextid' => $syscontext->id, 'perm' => CAP_ALLOW]);
    $wanted = array_values(array_unique(array_merge($apicaps, plugin_capabilities(), $data['extra_capabilities'])));
    $have = $DB->get_records_menu('role_capabilities', ['roleid' => $role->id, 'contextid' => $syscontext->id],
        '', 'capability, permission');
    $added = [];
    foreach ($wanted as $cap) {
        if (!get_capability_info($cap)) {
            site_warn("capability {$cap} does not exist in this site: skipped");
            continue;
        }
        if (isset($have[$cap]) && (int)$have[$cap] === CAP_ALLOW) {
            continue;
        }
        assign_capability($cap, CAP_ALLOW, $role->id, $syscontext->id, true);
        $added[] = $cap;
    }
    if ($added) {
        $syscontext->mark_dirty();
        site_change(count($added) . " capabilities granted to {$r['shortname']}: " . implode(', ', $added));
    }

    foreach ([$apirole, $role] as $assign) {
        if (!user_has_role_assignment($user->id, $assign->id, $syscontext->id)) {
            role_assign($assign->id, $user->id, $syscontext->id);
            site_change("role {$assign->shortname} assigned to {$user->username} (system)");
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * The API client with its OAuth2 client provider (client credentials).
 */
function setup_client(array $data, stdClass $user): \totara_oauth2\model\client_provider {
    $c = $data['client'];
    $entity = \totara_api\entity\client::repository()->where('name', $c['name'])->order_by('id')->first();
    if ($entity) {
        $client = \totara_api\model\client::load_by_entity($entity);
        if ((int)$client->user_id !== (int)$user->id || !$client->status) {
            $client->update(null, null, true, (int)$user->id);
            site_change("API client \"{$c['name']}\" re-bound to {$user->username} and enabled");
        }
    } else {
        $client = \totara_api\model\client::create($c['name'], (int)$user->id, $c['description'], null, true,
            ['create_client_provider' => true]);
        site_change("API client \"{$c['name']}\" created");
    }
    $provider = $client->get_oauth2_client_providers()->first();
    if (!$provider) {
        throw new coding_exception("API client \"{$c['name']}\" has no OAuth2 client provider");
    }
    return $provider;
}

/* ---------------------------------------------------------------------------------------------------------
 * User profile fields, saved by the same profile_define_* classes the admin form uses.
 */
function setup_profile_fields(array $data): void {
    global $CFG, $DB;
    $categories = $DB->get_records('user_info_category', null, 'sortorder ASC', 'id', 0, 1);
    if ($categories) {
        $categoryid = reset($categories)->id;
    } else {
        // What user/profile/index.php does when there is no category yet.
        $categoryid = $DB->insert_record('user_info_category',
            (object)['name' => get_string('profiledefaultcategory', 'admin'), 'sortorder' => 1]);
        site_change('profile field category created');
    }
    $created = false;
    foreach ($data['profile_fields'] as $f) {
        if ($DB->record_exists('user_info_field', ['shortname' => $f['shortname']])) {
            continue;
        }
        $datatype = $f['datatype'];
        require_once($CFG->dirroot . "/user/profile/field/{$datatype}/define.class.php");
        $class = "profile_define_{$datatype}";
        $field = (object)[
            'id' => 0,
            'shortname' => $f['shortname'],
            'name' => $f['name'],
            'datatype' => $datatype,
            'description' => '',
            'descriptionformat' => FORMAT_HTML,
            'categoryid' => $categoryid,
            'required' => 0,
            'locked' => 0,
            'visible' => PROFILE_VISIBLE_ALL,
            'forceunique' => 0,
            'signup' => 0,
            'defaultdata' => $datatype === 'date' ? '0' : '',
            'defaultdataformat' => FORMAT_MOODLE,
        ];
        foreach (['param1', 'param2', 'param3', 'param4', 'param5'] as $p) {
            if (array_key_exists($p, $f)) {
                $field->$p = is_array($f[$p]) ? implode("\n", $f[$p]) : (string)$f[$p];
            }
        }
        $define = new $class();
        $errors = $define->define_validate($field, []);
        if ($errors) {
            throw new coding_exception("profile field {$f['shortname']}: " . json_encode($errors));
        }
        $define->define_save($field);
        site_change("profile field {$f['shortname']} ({$datatype}) created");
        $created = true;
    }
    if ($created) {
        profile_reorder_fields();
        profile_reorder_categories();
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Certifications: with Totara's program generator, one e-learning course in a course set on both the
 * certification and the recertification path (as a real CSTF certification has), visible and available.
 */
function setup_certifications(array $data): void {
    global $DB;
    $types = ['COMPLETION' => CERTIFRECERT_COMPLETION, 'EXPIRY' => CERTIFRECERT_EXPIRY, 'FIXED' => CERTIFRECERT_FIXED];
    /** @var \totara_program\testing\generator $proggen */
    $proggen = \core\testing\generator::instance()->get_plugin_generator('totara_program');
    $categoryid = (int)$DB->get_field_select('course_categories', 'MIN(id)', 'parent = 0');

    foreach ($data['certifications'] as $c) {
        $prog = $DB->get_record_select('prog', 'idnumber = :idnumber AND certifid IS NOT NULL',
            ['idnumber' => $c['idnumber']]);
        if (!$prog) {
            $program = $proggen->create_certification([
                'fullname' => $c['fullname'],
                'shortname' => $c['shortname'],
                'idnumber' => $c['idnumber'],
                'activeperiod' => $c['activeperiod'],
                'windowperiod' => $c['windowperiod'],
                'recertifydatetype' => $types[$c['recertifydatetype']],
                'category' => $categoryid,
                'visible' => 1,
                'availablefrom' => 0,
                'availableuntil' => 0,
                'summary' => $c['summary'] ?? '',
            ]);
            $prog = $DB->get_record('prog', ['id' => $program->id], '*', MUST_EXIST);
            site_change("certification {$c['idnumber']} created (program id {$prog->id})");

            $courseidnumber = $c['idnumber'] . '-EL';
            $course = $DB->get_record('course', ['idnumber' => $courseidnumber]);
            if (!$course) {
                $course = create_course((object)[
                    'fullname' => $c['fullname'] . ' (e-learning)',
                    'shortname' => $courseidnumber,
                    'idnumber' => $courseidnumber,
                    'category' => $categoryid,
                    'summary' => '',
                    'format' => 'topics',
                    'enablecompletion' => 1,
                    'visible' => 1,
                ]);
            }
            $program = new program($prog->id);
            $proggen->add_courses_and_courseset_to_program($program, [[$course]], CERTIFPATH_CERT);
            $program = new program($prog->id);
            $proggen->add_courses_and_courseset_to_program($program, [[$course]], CERTIFPATH_RECERT);
        }
        // The generator knows no minimum active period: set what the certification's edit form saves.
        $certif = $DB->get_record('certif', ['id' => $prog->certifid], '*', MUST_EXIST);
        $want = [
            'activeperiod' => $c['activeperiod'],
            'windowperiod' => $c['windowperiod'],
            'recertifydatetype' => $types[$c['recertifydatetype']],
        ];
        if (!empty($c['minimumactiveperiod'])) {
            $want['minimumactiveperiod'] = $c['minimumactiveperiod'];
        }
        $update = ['id' => $certif->id];
        foreach ($want as $key => $value) {
            if ((string)$certif->$key !== (string)$value) {
                $update[$key] = $value;
            }
        }
        if (count($update) > 1) {
            $update['timemodified'] = time();
            $DB->update_record('certif', (object)$update);
            \totara_certification\event\certification_updated::create_from_instance(new program($prog->id))->trigger();
            site_change("certification {$c['idnumber']} settings: " . implode(', ', array_diff(array_keys($update), ['id', 'timemodified'])));
        }
        $summary = $c['summary'] ?? '';
        if ((string)$prog->summary !== $summary) {
            $DB->update_record('prog', (object)['id' => $prog->id, 'summary' => $summary, 'timemodified' => time()]);
            site_change("certification {$c['idnumber']} summary set");
        }
        if (!$prog->visible || (int)$prog->available !== AVAILABILITY_TO_STUDENTS) {
            $DB->update_record('prog', (object)['id' => $prog->id, 'visible' => 1, 'availablefrom' => 0,
                'availableuntil' => 0, 'available' => AVAILABILITY_TO_STUDENTS, 'timemodified' => time()]);
            site_change("certification {$c['idnumber']} made visible and available");
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Evidence types (evidence bank) with their custom fields.
 */
function setup_evidence_types(array $data): void {
    global $DB;
    foreach ($data['evidence_types'] as $t) {
        $record = $DB->get_record('totara_evidence_type', ['idnumber' => $t['idnumber']]);
        if ($record) {
            $type = \totara_evidence\models\evidence_type::load_by_id($record->id);
        } else {
            $type = \totara_evidence\models\evidence_type::create($t['name'], $t['idnumber'], $t['description'] ?? '',
                FORMAT_PLAIN, (int)$t['location']);
            site_change("evidence type {$t['idnumber']} created");
        }
        if ((int)$type->status !== (int)$t['status']) {
            $type->update_status((int)$t['status']);
            site_change("evidence type {$t['idnumber']} status = {$t['status']}");
        }
        $sortorder = (int)$DB->get_field('totara_evidence_type_info_field', 'MAX(sortorder)', ['typeid' => $type->id]);
        foreach ($t['fields'] as $f) {
            if ($DB->record_exists('totara_evidence_type_info_field', ['typeid' => $type->id, 'shortname' => $f['shortname']])) {
                continue;
            }
            $params = $f['datatype'] === 'datetime'
                ? ['param1' => '1900', 'param2' => '2050', 'param3' => null]   // start/end year, no time of day.
                : ['param1' => '30', 'param2' => '2048'];                       // the admin form's defaults.
            (new \totara_evidence\entity\evidence_type_field(array_merge([
                'typeid' => $type->id,
                'fullname' => $f['fullname'] ?? $f['shortname'],
                'shortname' => $f['shortname'],
                'datatype' => $f['datatype'],
                'description' => '',
                'sortorder' => ++$sortorder,
                'hidden' => 0,
                'locked' => 0,
                'required' => (int)($f['required'] ?? 0),
                'forceunique' => 0,
                'defaultdata' => '',
            ], $params)))->save();
            site_change("evidence field {$t['idnumber']}.{$f['shortname']} ({$f['datatype']}) created");
        }
    }
}

setup_settings($SITEDATA);
$user = setup_service_user($SITEDATA);
setup_roles($SITEDATA, $user);
$provider = setup_client($SITEDATA, $user);
setup_profile_fields($SITEDATA);
setup_certifications($SITEDATA);
setup_evidence_types($SITEDATA);
if ($CHANGES) {
    // Roles, settings and definitions changed under the caches' feet.
    purge_all_caches();
}
cli_writeln(count($CHANGES) ? count($CHANGES) . ' change(s) made' : 'site already set up: nothing changed');

echo json_encode([
    'base_url' => $CFG->wwwroot,
    'client_id' => $provider->client_id,
    'client_secret' => $provider->client_secret,
    'service_user' => $user->username,
    'changes' => count($CHANGES),
], JSON_UNESCAPED_SLASHES) . "\n";
