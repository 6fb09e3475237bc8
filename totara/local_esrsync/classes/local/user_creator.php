<?php
/**
 * This file is part of the ESR-Totara CSTF interface.
 *
 * This program is free software: you can redistribute it and/or modify
 * it under the terms of the GNU General Public License as published by
 * the Free Software Foundation, either version 3 of the License, or
 * (at your option) any later version.
 *
 * This program is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
 * GNU General Public License for more details.
 *
 * You should have received a copy of the GNU General Public License
 * along with this program.  If not, see <http://www.gnu.org/licenses/>.
 *
 * @package local_esrsync
 */


namespace local_esrsync\local;

use core\entity\user;
use core\orm\query\builder;
use core\webapi\execution_context;
use core\webapi\resolver\mutation\user_create_user;
use core_user\exception\create_user_exception;
use core_user\external\user_field_validator;
use core_user\external\user_helper;
use core_user\external\user_interactor;
use core_user\profile\field\field_helper;

defined('MOODLE_INTERNAL') || die();

/**
 * Creates one account of a batch the way core_user_create_user does, with one difference taken from HR Import:
 * a generated password is left to Totara's cron (user preference create_password, sent by the "send new user
 * passwords" task) instead of being hashed and mailed during the call. Hashing costs about 50 ms an account,
 * ten times everything else a creation does, and a trust's first load creates 100,000.
 *
 * An explicit password goes through core_user_create_user unchanged.
 */
final class user_creator {

    /** @var execution_context */
    private $ec;

    /** @var string[]|null the user fields an input may set (user_field_validator::get_fields()), read once a call */
    private $fields = null;

    /** @var \profile_field_base[]|null one object per custom profile field, loaded once a call */
    private $profile_fields = null;

    /**
     * @param execution_context $ec
     */
    public function __construct(execution_context $ec) {
        $this->ec = $ec;
    }

    /**
     * @param array $input a local_esrsync_create_user_input
     * @return user
     */
    public function create(array $input): user {
        if (empty($input['generate_password']) || !empty($input['tenant'])) {
            return user_create_user::resolve(['input' => $input], $this->ec)['user'];
        }
        // The checks of core's user_create_user resolver (tenants go the core way above).
        if (!(new user_interactor(user::logged_in()->id))->can_create_system_user()) {
            throw new create_user_exception('You do not have capabilities to create a user.');
        }
        if (isset($input['password']) && mb_strlen($input['password']) >= 0) {
            throw new create_user_exception('You cannot set password and generate password at the same time.');
        }
        return $this->create_deferring_password($input);
    }

    /**
     * user_helper::create_user() without setnew_password_and_mail(): the same validation, defaults, user_created
     * event and custom fields; the password is flagged for cron as HR Import flags it.
     *
     * @param array $params
     * @return user
     */
    private function create_deferring_password(array $params): user {
        global $CFG;
        require_once($CFG->dirroot . '/user/lib.php');

        try {
            user_field_validator::validate_input($params);
            $params = user_helper::restructure_custom_field_inputs($params);
        } catch (\moodle_exception $e) {
            throw new create_user_exception($e->getMessage());
        }

        $user = new \stdClass();
        $user->confirmed = 1;
        $user->tenant_id = null;
        $user->timecreated = time();
        $user->timeupdated = time();
        if ($this->fields === null) {
            $this->fields = user_field_validator::get_fields();
        }
        foreach ($this->fields as $field) {
            if (isset($params[$field])) {
                $user->$field = $params[$field];
            }
        }
        if (!isset($user->city) && !empty($CFG->defaultcity)) {
            $user->city = $CFG->defaultcity;
        }
        $user->descriptionformat = isset($user->descriptionformat)
            ? \core\format::get_moodle_format($user->descriptionformat) : FORMAT_HTML;
        if (isset($user->description)) {
            $user->description = format_text($user->description, $user->descriptionformat);
        }
        if (isset($user->country)) {
            $user->country = \core_text::strtoupper($user->country);
        } else if (!empty($CFG->country)) {
            $user->country = $CFG->country;
        }
        if (isset($CFG->forcetimezone) && $CFG->forcetimezone != 99) {
            $user->timezone = $CFG->forcetimezone;
        } else if (isset($user->timezone)) {
            $user->timezone = \core_date::normalise_timezone($user->timezone);
        } else {
            $user->timezone = $CFG->timezone;
        }
        if (isset($user->lang)) {
            $user->lang = \core_text::strtolower($user->lang);
        } else if (!empty($CFG->lang)) {
            $user->lang = $CFG->lang;
        }
        if (isset($user->theme)) {
            $user->theme = empty($CFG->allowuserthemes) ? '' : \core_text::strtolower($user->theme);
        }
        $user->auth = isset($user->auth) ? \core_text::strtolower($user->auth) : 'manual';
        if (isset($user->calendartype)) {
            $user->calendartype = \core_text::strtolower($user->calendartype);
        } else {
            $user->calendartype = !empty($CFG->calendartype) ? $CFG->calendartype : 'gregorian';
        }
        $user->suspended = (int)($user->suspended ?? 0);
        $user->emailstop = (int)($user->emailstop ?? false);

        $user_id = builder::get_db()->transaction(function () use ($user) {
            $user->id = user_create_user($user, true, true);
            $this->save_custom_fields_data($user);
            return $user->id;
        });

        if (get_auth_plugin($user->auth)->can_change_password()) {
            set_user_preference('create_password', 1, $user_id);
            if (!empty($params['force_password_change'])) {
                set_user_preference('auth_forcepasswordchange', 1, $user_id);
            }
        }
        return new user($user_id);
    }

    /**
     * user_helper::save_custom_fields_data() for a user created in this call: the same profile_validation() checks,
     * external-to-internal conversion and profile_save_data() writes, through the same profile field classes, but
     * with each field's definition loaded once a call instead of three times a user (profile_validation(),
     * restructure_custom_fields_for_save() and profile_save_data() each construct every field, and a field's
     * constructor reads its definition and the user's data: about 45 queries an account on a site with seven
     * fields). The account is new, so it has no data yet: each field starts from its default, as load_data() gives.
     *
     * @param \stdClass $user
     */
    private function save_custom_fields_data(\stdClass $user): void {
        global $CFG, $DB;

        if ($this->profile_fields === null) {
            require_once($CFG->dirroot . '/user/profile/lib.php');
            $this->profile_fields = [];
            foreach ($DB->get_records('user_info_field') as $field) {
                require_once($CFG->dirroot . '/user/profile/field/' . $field->datatype . '/field.class.php');
                $class = 'profile_field_' . $field->datatype;
                $this->profile_fields[] = new $class($field->id, 0);
            }
        }
        foreach ($this->profile_fields as $form_field) {
            $form_field->set_userid($user->id);
            $form_field->data = $form_field->field->defaultdata;
            $form_field->dataformat = FORMAT_HTML;
        }

        // profile_validation().
        $errors = [];
        foreach ($this->profile_fields as $form_field) {
            $errors += $form_field->edit_validate_field($user, []);
        }
        if (!empty($errors)) {
            $message = "Custom field errors: \n";
            foreach ($errors as $field => $error) {
                $shortname = substr($field, 14);
                $message .= "{$shortname}: $error\n";
            }
            throw new \moodle_exception($message);
        }

        // user_helper::restructure_custom_fields_for_save().
        foreach ($this->profile_fields as $form_field) {
            $key = field_helper::format_custom_field_short_name($form_field->field->shortname);
            if (isset($user->{$key}) && method_exists($form_field, 'convert_external_data')) {
                $user->{$key} = $form_field->convert_external_data($user->{$key});
            }
        }

        // profile_save_data().
        foreach ($this->profile_fields as $form_field) {
            $form_field->edit_save_data($user);
        }
    }
}
