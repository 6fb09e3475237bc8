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
use totara_program\assignment\individual;

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/totara/program/lib.php');
require_once($CFG->dirroot . '/totara/program/program.class.php');

/**
 * Adds the individual program assignment a user needs before a completion can be recorded, as the completion
 * import does, with Totara's own steps: the prog_assignment row, program::update_exceptions(),
 * program::assign_learners_bulk() (user assignment, program role, course enrolments) and the program_assigned
 * event (whose observer creates the certification completion record).
 *
 * It does what \totara_program\assignment\individual::save() does for one user, with each program loaded once per
 * call instead of twice per user, and without save()'s read of every completion of the program for each new
 * assignment, which a trust's first load (a hundred thousand assignments per certification) cannot afford.
 */
final class program_assigner {

    /** @var \program[] loaded programs by id */
    private $programs = [];

    /**
     * Assigns the user to the program when no assignment (current or future) exists.
     *
     * @param int $programid
     * @param int $userid
     * @return bool true when an assignment was added
     */
    public function ensure(int $programid, int $userid): bool {
        global $DB;

        $sql = "SELECT 1 FROM {prog_user_assignment} WHERE programid = :p1 AND userid = :u1
                 UNION ALL
                SELECT 1 FROM {prog_future_user_assignment} WHERE programid = :p2 AND userid = :u2";
        if ($DB->record_exists_sql($sql, ['p1' => $programid, 'u1' => $userid, 'p2' => $programid, 'u2' => $userid])) {
            return false;
        }
        $program = $this->program($programid);
        if (!individual::can_be_updated($programid) || $program->has_expired()) {
            throw new esrsync_exception('The user could not be assigned to the certification (the service account needs '
                . 'totara/program:configureassignments, and the certification must be available).');
        }

        $assignment = (object)[
            'programid' => $programid,
            'assignmenttype' => individual::ASSIGNTYPE_INDIVIDUAL,
            'assignmenttypeid' => $userid,
            'includechildren' => 0,
            'completionevent' => COMPLETION_EVENT_NONE,
            'completioninstance' => 0,
            'completiontime' => COMPLETION_TIME_NOT_SET,
            'completionoffsetamount' => null,
            'completionoffsetunit' => null,
        ];
        $assignment->id = $DB->insert_record('prog_assignment', $assignment);
        $assignment->timedue = COMPLETION_TIME_NOT_SET;

        $exceptions = $program->update_exceptions($userid, $assignment, COMPLETION_TIME_NOT_SET);
        $program->assign_learners_bulk([$userid => ['timedue' => COMPLETION_TIME_NOT_SET, 'exceptions' => $exceptions]],
            $assignment);
        \totara_program\event\program_assigned::create([
            'objectid' => $programid,
            'context' => \context_program::instance($programid),
            'userid' => $userid,
        ])->trigger();
        return true;
    }

    /**
     * @param int $programid
     * @return \program
     */
    private function program(int $programid): \program {
        if (!isset($this->programs[$programid])) {
            $this->programs[$programid] = new \program($programid);
        }
        return $this->programs[$programid];
    }
}
