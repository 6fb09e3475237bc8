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
use totara_evidence\customfield_area\evidence as evidence_area;
use totara_evidence\models\evidence_item;
use totara_evidence\models\evidence_type;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/totara/customfield/fieldlib.php');

/**
 * Creates an evidence bank item once per caller's source key, with Totara's evidence model (which checks the
 * caller may add evidence for the user and fires evidence_item_created).
 */
final class evidence_writer {

    const CREATED = 'CREATED';
    const SKIPPED_DUPLICATE = 'SKIPPED_DUPLICATE';

    /** @var int */
    private $now;

    /**
     * @param int $now
     */
    public function __construct(int $now) {
        $this->now = $now;
    }

    /**
     * One local_esrsync_create_evidence_item_input. Runs inside the caller's transaction.
     *
     * @param array $input
     * @return array outcome, item_id
     */
    public function create(array $input): array {
        global $DB;

        $user = reference::user($input['user'] ?? null);
        $type = reference::evidence_type($input['type'] ?? null);
        $source_key = (string)($input['source_key'] ?? '');
        if (trim($source_key) === '' || \core_text::strlen($source_key) > 255) {
            throw new esrsync_exception('The source key must be 1 to 255 characters.');
        }

        $existing = $DB->get_record('local_esrsync_evidence', ['sourcekey' => $source_key]);
        if ($existing) {
            if ((int)$existing->userid === (int)$user->id && (int)$existing->typeid === $type->get_id()) {
                return ['outcome' => self::SKIPPED_DUPLICATE, 'item_id' => (int)$existing->evidenceid];
            }
            throw new esrsync_exception("Source key already used for a different evidence item: {$source_key}");
        }

        $data = $this->field_data($type, $input['custom_fields'] ?? []);
        $name = isset($input['name']) && trim($input['name']) !== '' ? $input['name'] : null;
        $item = evidence_item::create($type, $user->id, $data, $name, 0);
        $DB->insert_record('local_esrsync_evidence', (object)[
            'sourcekey' => $source_key,
            'userid' => $user->id,
            'typeid' => $type->get_id(),
            'evidenceid' => $item->get_id(),
            'timecreated' => $this->now,
        ]);
        return ['outcome' => self::CREATED, 'item_id' => $item->get_id()];
    }

    /**
     * The type's custom field values in the form Totara's custom field API saves, checked as the spec says:
     * shortnames of the type only, required fields present, menu options exact, checkboxes 0/1, dates YYYY-MM-DD
     * (stored as 00:00 in the server's timezone).
     *
     * @param evidence_type $type
     * @param array $fields list of ['shortname' => ..., 'data' => ...]
     * @return \stdClass|null
     */
    private function field_data(evidence_type $type, array $fields): ?\stdClass {
        global $DB;

        $definitions = [];
        foreach ($DB->get_records(evidence_area::get_base_table() . '_info_field', ['typeid' => $type->get_id()],
                'sortorder') as $definition) {
            $definitions[$definition->shortname] = $definition;
        }
        $data = (object)['typeid' => $type->get_id()];
        $given = [];
        foreach ($fields as $field) {
            $shortname = $field['shortname'];
            if (!isset($definitions[$shortname])) {
                throw new esrsync_exception("The custom field does not exist for this evidence type: {$shortname}");
            }
            $definition = $definitions[$shortname];
            $value = $this->convert($definition, (string)$field['data']);
            $data->{'customfield_' . $shortname} = $value;
            $given[$shortname] = $value;
        }
        foreach ($definitions as $shortname => $definition) {
            if (!empty($definition->required) && (!isset($given[$shortname]) || trim((string)$given[$shortname]) === '')) {
                throw new esrsync_exception("{$shortname}: A value is required.");
            }
        }
        if (!$given) {
            return null;
        }
        // Menus and text areas take their form shape (option key, editor array) from Totara's own sync step.
        foreach ($definitions as $shortname => $definition) {
            if (isset($given[$shortname]) && in_array($definition->datatype, ['menu', 'textarea'], true)) {
                $instance = customfield_get_field_instance($data, $definition, evidence_area::get_base_table(),
                    evidence_area::get_prefix());
                $data = $instance->sync_data_preprocess($data);
            }
        }
        return $data;
    }

    /**
     * @param \stdClass $definition
     * @param string $value
     * @return mixed
     */
    private function convert(\stdClass $definition, string $value) {
        $shortname = $definition->shortname;
        switch ($definition->datatype) {
            case 'menu':
                if (!in_array($value, explode("\n", (string)$definition->param1), true)) {
                    throw new esrsync_exception("{$shortname}: You must pass a valid menu option.");
                }
                return $value;
            case 'checkbox':
                if ($value !== '0' && $value !== '1') {
                    throw new esrsync_exception("{$shortname}: You must pass 0 or 1 for data for checkbox fields.");
                }
                return (int)$value;
            case 'datetime':
                if (!preg_match('/^(\d{4})-(\d{2})-(\d{2})$/', $value, $m) || !checkdate((int)$m[2], (int)$m[3], (int)$m[1])) {
                    throw new esrsync_exception("{$shortname}: Date format should be YYYY-MM-DD.");
                }
                return make_timestamp((int)$m[1], (int)$m[2], (int)$m[3], 0, 0, 0, \core_date::get_server_timezone());
            default:
                return $value;
        }
    }
}
