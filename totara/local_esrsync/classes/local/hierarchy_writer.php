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

use local_esrsync\exception\esrsync_exception;
use totara_core\advanced_feature;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/totara/hierarchy/lib.php');

/**
 * Positions or organisations of one framework, created or updated by idnumber through Totara's hierarchy class
 * (add_hierarchy_item, update_hierarchy_item, which moves an item with move_hierarchy_item; their events fire).
 * Nothing is deleted. A missing framework is made the way Totara's framework page makes one.
 */
final class hierarchy_writer {

    /** The API's kinds: Totara's hierarchy prefix, its advanced feature and that feature's "disabled" text. */
    const KINDS = [
        'POSITION' => ['prefix' => 'position', 'feature' => 'positions', 'plural' => 'positions',
            'disabled' => 'Position feature is disabled.'],
        'ORGANISATION' => ['prefix' => 'organisation', 'feature' => 'organisations', 'plural' => 'organisations',
            'disabled' => 'Organisations feature is disabled.'],
    ];

    /** pos.fullname and org.fullname are char(1024), their shortname char(100). */
    const FULLNAME_MAX = 1024;
    const SHORTNAME_MAX = 100;

    /** @var string POSITION or ORGANISATION */
    private $kind;

    /** @var string position or organisation */
    private $prefix;

    /** @var \hierarchy */
    private $hierarchy;

    /** @var \stdClass the framework row */
    private $framework;

    /**
     * @param string $kind POSITION or ORGANISATION
     */
    public function __construct(string $kind) {
        if (!isset(self::KINDS[$kind])) {
            throw new esrsync_exception("Unknown hierarchy kind: {$kind}");
        }
        self::check_feature($kind);
        $this->kind = $kind;
        $this->prefix = self::KINDS[$kind]['prefix'];
        $this->hierarchy = \hierarchy::load_hierarchy($this->prefix);
    }

    /**
     * Refuses the call when the kind's advanced feature is off (Totara's own texts).
     *
     * @param string $kind
     */
    public static function check_feature(string $kind): void {
        if (advanced_feature::is_disabled(self::KINDS[$kind]['feature'])) {
            throw new esrsync_exception(self::KINDS[$kind]['disabled']);
        }
    }

    /**
     * Finds the framework with this idnumber, or makes it (fullname and shortname = the idnumber), as
     * totara/hierarchy/framework/edit.php does: a row after the last framework, visible, and framework_created.
     * Totara has no library function for it.
     *
     * @param string $idnumber
     * @return \stdClass
     */
    public function use_framework(string $idnumber): \stdClass {
        global $DB, $USER;

        if ($idnumber === '') {
            throw new esrsync_exception("The {$this->prefix} framework idnumber must not be empty.");
        }
        if (\core_text::strlen($idnumber) > job_assignment_writer::IDNUMBER_MAX) {
            throw new esrsync_exception("The {$this->prefix} framework idnumber must be at most "
                . job_assignment_writer::IDNUMBER_MAX . " characters: {$idnumber}");
        }
        $table = $this->hierarchy->shortprefix . '_framework';
        $rows = $DB->get_records($table, ['idnumber' => $idnumber], 'id', '*', 0, 2);
        if (count($rows) > 1) {
            throw new esrsync_exception("more than one {$this->prefix} framework has idnumber {$idnumber}");
        }
        if ($rows) {
            return $this->framework = reset($rows);
        }
        if (!has_capability("totara/hierarchy:create{$this->prefix}frameworks", \context_system::instance())) {
            throw new esrsync_exception("You do not have capabilities to create {$this->prefix} frameworks.");
        }
        $transaction = $DB->start_delegated_transaction();
        $now = time();
        $framework = new \stdClass();
        $framework->fullname = $idnumber;
        $framework->shortname = $idnumber;
        $framework->idnumber = $idnumber;
        $framework->description = '';
        $framework->visible = 1;
        $framework->hidecustomfields = 0;
        $framework->timecreated = $now;
        $framework->timemodified = $now;
        $framework->usermodified = $USER->id;
        $framework->sortorder = (int)$DB->get_field($table, 'MAX(sortorder) + 1', []) ?: 1;
        $framework->id = $DB->insert_record($table, $framework);
        $framework = $DB->get_record($table, ['id' => $framework->id], '*', MUST_EXIST);
        $transaction->allow_commit();
        $eventclass = "\\hierarchy_{$this->prefix}\\event\\framework_created";
        $eventclass::create_from_instance($framework)->trigger();
        return $this->framework = $framework;
    }

    /**
     * Creates or updates one item of the framework.
     *
     * @param array $item a local_esrsync_hierarchy_item_input
     * @return array status (DONE or ALREADY) and id
     */
    public function upsert(array $item): array {
        global $DB, $USER;

        $name = $this->prefix;
        $plural = self::KINDS[$this->kind]['plural'];
        $table = $this->hierarchy->shortprefix;
        $idnumber = job_assignment_writer::idnumber($item['idnumber'] ?? null, $name);
        $fullname = (string)($item['fullname'] ?? '');
        if (trim($fullname) === '') {
            throw new esrsync_exception("The {$name} fullname must not be empty.");
        }
        if (\core_text::strlen($fullname) > self::FULLNAME_MAX) {
            throw new esrsync_exception("The {$name} fullname must be at most " . self::FULLNAME_MAX . " characters.");
        }
        if (isset($item['shortname']) && \core_text::strlen((string)$item['shortname']) > self::SHORTNAME_MAX) {
            throw new esrsync_exception("The {$name} shortname must be at most " . self::SHORTNAME_MAX
                . " characters: {$item['shortname']}");
        }
        // Idnumbers are unique across every framework of the kind (totara_idnumber_exists() in Totara's item form).
        $found = $DB->get_records($table, ['idnumber' => $idnumber], 'id', '*', 0, 2);
        if (count($found) > 1) {
            throw new esrsync_exception("more than one {$name} has idnumber {$idnumber}");
        }
        $existing = $found ? reset($found) : null;
        if ($existing && (int)$existing->frameworkid !== (int)$this->framework->id) {
            $other = $DB->get_field($table . '_framework', 'idnumber', ['id' => $existing->frameworkid]);
            throw new esrsync_exception("{$name} {$idnumber} belongs to framework "
                . ($other !== false && $other !== null ? $other : $existing->frameworkid));
        }
        $action = $existing ? 'update' : 'create';
        if (!has_capability("totara/hierarchy:{$action}{$name}", \context_system::instance())) {
            throw new esrsync_exception("You do not have capabilities to {$action} {$plural}.");
        }

        $parent = null;
        $parentidnumber = $item['parent_idnumber'] ?? null;
        if ($parentidnumber !== null && $parentidnumber !== '') {
            $parent = $DB->get_record($table, ['idnumber' => $parentidnumber, 'frameworkid' => $this->framework->id]);
            if (!$parent) {
                throw new esrsync_exception("no {$name} with idnumber {$parentidnumber} in framework "
                    . $this->framework->idnumber);
            }
            if ($existing && ((int)$parent->id === (int)$existing->id
                    || strpos($parent->path . '/', $existing->path . '/') === 0)) {
                throw new esrsync_exception("{$name} {$parentidnumber} is {$idnumber} or below it: an item cannot be "
                    . "moved under itself");
            }
        }

        if (!$existing) {
            $new = new \stdClass();
            $new->fullname = $fullname;
            $new->shortname = $item['shortname'] ?? null;
            $new->idnumber = $idnumber;
            $new->description = $item['description'] ?? null;
            $new->visible = 1;
            $new->typeid = 0;
            $new->usermodified = $USER->id;
            $created = $this->hierarchy->add_hierarchy_item($new, $parent ? $parent->id : 0, $this->framework->id,
                true, true, false);
            if (!$created) {
                throw new esrsync_exception("The {$name} {$idnumber} could not be added.");
            }
            return ['status' => batch::DONE, 'id' => $created->id];
        }

        $changes = [];
        if ((string)$existing->fullname !== $fullname) {
            $changes['fullname'] = $fullname;
        }
        foreach (['shortname', 'description'] as $key) {
            if (array_key_exists($key, $item) && (string)($existing->$key ?? '') !== (string)($item[$key] ?? '')) {
                $changes[$key] = $item[$key];
            }
        }
        $parentid = (int)$existing->parentid;
        if (array_key_exists('parent_idnumber', $item)) {
            $parentid = $parent ? (int)$parent->id : 0;
        }
        if (!$changes && $parentid === (int)$existing->parentid) {
            return ['status' => batch::ALREADY, 'id' => $existing->id];
        }
        $update = (object)$changes;
        $update->parentid = $parentid;
        $update->frameworkid = $existing->frameworkid;
        $updated = $this->hierarchy->update_hierarchy_item($existing->id, $update, true, true, false);
        if (!$updated || (int)$updated->parentid !== $parentid) {
            throw new esrsync_exception("The {$name} {$idnumber} could not be updated.");
        }
        return ['status' => batch::DONE, 'id' => $existing->id];
    }
}
