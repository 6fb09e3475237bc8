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


namespace local_esrsync\webapi\resolver\type;

use core\date_format;
use core\webapi\execution_context;
use core\webapi\formatter\field\date_field_formatter;
use core\webapi\type_resolver;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/totara/certification/lib.php');

/**
 * local_esrsync_certification_completion: a row of certif_completion or certif_completion_history as read by
 * \local_esrsync\local\completion_reader.
 */
class certification_completion extends type_resolver {

    /** certif_get_completion_state() values by name. */
    const STATES = [
        CERTIFCOMPLETIONSTATE_INVALID => 'INVALID',
        CERTIFCOMPLETIONSTATE_ASSIGNED => 'ASSIGNED',
        CERTIFCOMPLETIONSTATE_CERTIFIED => 'CERTIFIED',
        CERTIFCOMPLETIONSTATE_WINDOWOPEN => 'WINDOW_OPEN',
        CERTIFCOMPLETIONSTATE_EXPIRED => 'EXPIRED',
    ];

    /** Output field => column of dates. */
    const DATES = [
        'time_completed' => 'timecompleted',
        'time_window_opens' => 'timewindowopens',
        'time_expires' => 'timeexpires',
        'baseline_time_expires' => 'baselinetimeexpires',
        'time_modified' => 'timemodified',
    ];

    /**
     * @param string $field
     * @param \stdClass $row
     * @param array $args
     * @param execution_context $ec
     * @return mixed
     */
    public static function resolve(string $field, $row, array $args, execution_context $ec) {
        global $DB;

        if (isset(self::DATES[$field])) {
            $value = (int)$row->{self::DATES[$field]};
            if ($value === 0) {
                return $field === 'time_modified' ? '0' : null;
            }
            $format = $args['format'] ?? date_format::FORMAT_TIMESTAMP;
            return (new date_field_formatter($format, \context_system::instance()))->format($value);
        }
        switch ($field) {
            case 'id':
                return $row->id;
            case 'is_history':
                return (bool)$row->is_history;
            case 'user_id':
                return $row->userid;
            case 'user_idnumber':
                return $row->user_idnumber;
            case 'username':
                return $row->username;
            case 'user':
                return $DB->get_record('user', ['id' => $row->userid], '*', MUST_EXIST);
            case 'certification_id':
                return $row->prog_id;
            case 'certification_idnumber':
                return $row->prog_idnumber;
            case 'certification_shortname':
                return $row->prog_shortname;
            case 'state':
                return self::STATES[certif_get_completion_state($row)];
            case 'status':
                return (int)$row->status;
            case 'renewal_status':
                return (int)$row->renewalstatus;
            case 'certif_path':
                return (int)$row->certifpath;
            case 'unassigned':
                return (bool)$row->unassigned;
        }
        throw new \coding_exception('Unknown field ' . $field);
    }
}
