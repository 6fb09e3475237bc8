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
 *
 * A batch assigns all the users of a certification who need it at once (ensure_all()): the same rows, role
 * assignments, enrolment reactivations and events as one user at a time, with one statement for each step instead of
 * one per user (see ensure_all()).
 */
final class program_assigner {

    /** @var \program[] loaded programs by id */
    private $programs = [];

    /** @var int[][] the courses of the loaded programs' course sets, by program id */
    private $courses = [];

    /** @var bool[] "programid:userid" of users known to hold an assignment (current or future) in this call */
    private $assigned = [];

    /** @var bool[] "programid:userid" of assignments ensure_all() added that no item has reported yet */
    private $created = [];

    /**
     * Assigns the user to the program when no assignment (current or future) exists.
     *
     * @param int $programid
     * @param int $userid
     * @return bool true when an assignment was added (by this call, or by ensure_all() and not yet reported)
     */
    public function ensure(int $programid, int $userid): bool {
        global $DB;

        $key = $programid . ':' . $userid;
        if (isset($this->created[$key])) {
            return true;
        }
        if (isset($this->assigned[$key])) {
            return false;
        }
        $sql = "SELECT 1 FROM {prog_user_assignment} WHERE programid = :p1 AND userid = :u1
                 UNION ALL
                SELECT 1 FROM {prog_future_user_assignment} WHERE programid = :p2 AND userid = :u2";
        if ($DB->record_exists_sql($sql, ['p1' => $programid, 'u1' => $userid, 'p2' => $programid, 'u2' => $userid])) {
            $this->assigned[$key] = true;
            return false;
        }
        $program = $this->program($programid);
        $this->check_assignable($program);

        $assignment = $this->new_assignment($programid, $userid);
        $assignment->id = $DB->insert_record('prog_assignment', $assignment);
        $assignment->timedue = COMPLETION_TIME_NOT_SET;

        $exceptions = $program->update_exceptions($userid, $assignment, COMPLETION_TIME_NOT_SET);
        $program->assign_learners_bulk([$userid => ['timedue' => COMPLETION_TIME_NOT_SET, 'exceptions' => $exceptions]],
            $assignment);
        $this->assigned_event($programid, $userid);
        // Not remembered: the caller's transaction may still roll it back.
        return true;
    }

    /**
     * An item has reported the assignment ensure_all() added for it: the user's next items see an existing one.
     *
     * @param int $programid
     * @param int $userid
     */
    public function reported(int $programid, int $userid): void {
        $key = $programid . ':' . $userid;
        unset($this->created[$key]);
        $this->assigned[$key] = true;
    }

    /**
     * Assigns to the program, in one transaction, every one of the users who has no assignment (current or future).
     * The caller holds the users' locks. Anything that goes wrong changes nothing: ensure() then assigns each user
     * as before, when its item comes.
     *
     * Each user gets exactly what ensure() would give: an individual prog_assignment row of its own, the duplicate
     * course exception of program::update_exceptions(), and what program::assign_learners_bulk() writes for a
     * certification (prog_user_assignment and its log line, the learner role in the program context, suspended
     * program enrolments reactivated), then the program_assigned event. assign_learners_bulk() takes one
     * prog_assignment for all its users, and an individual assignment is one per user, so its steps are taken here
     * for all the users at once, with Totara's own bulk functions (role_assign_bulk(), the program enrolment
     * plugin's process_program_reassignments()).
     *
     * @param int $programid
     * @param int[] $userids
     * @return int[] the users assigned
     */
    public function ensure_all(int $programid, array $userids): array {
        global $CFG, $DB, $USER;

        $userids = array_values(array_unique(array_map('intval', $userids)));
        $userids = array_filter($userids, function (int $userid) use ($programid): bool {
            $key = $programid . ':' . $userid;
            return !isset($this->assigned[$key]) && !isset($this->created[$key]);
        });
        if (!$userids) {
            return [];
        }
        [$in1, $params1] = $DB->get_in_or_equal($userids, SQL_PARAMS_NAMED, 'ua');
        [$in2, $params2] = $DB->get_in_or_equal($userids, SQL_PARAMS_NAMED, 'fa');
        $sql = "SELECT userid FROM {prog_user_assignment} WHERE programid = :p1 AND userid {$in1}
                 UNION
                SELECT userid FROM {prog_future_user_assignment} WHERE programid = :p2 AND userid {$in2}";
        $existing = $DB->get_fieldset_sql($sql, array_merge($params1, $params2, ['p1' => $programid, 'p2' => $programid]));
        foreach ($existing as $userid) {
            $this->assigned[$programid . ':' . $userid] = true;
        }
        $userids = array_values(array_diff($userids, array_map('intval', $existing)));
        if (!$userids) {
            return [];
        }
        $program = $this->program($programid);
        try {
            $this->check_assignable($program);
        } catch (esrsync_exception $e) {
            // Each item says so.
            return [];
        }

        $transaction = $DB->start_delegated_transaction();
        try {
            $DB->insert_records('prog_assignment', array_map(function (int $userid) use ($programid) {
                return $this->new_assignment($programid, $userid);
            }, $userids));
            // The users are locked: the newest individual assignment of each is the one just added.
            [$in, $params] = $DB->get_in_or_equal($userids, SQL_PARAMS_NAMED, 'u');
            $sql = "SELECT assignmenttypeid, MAX(id) AS id
                      FROM {prog_assignment}
                     WHERE programid = :programid AND assignmenttype = :type AND assignmenttypeid {$in}
                  GROUP BY assignmenttypeid";
            $assignmentids = $DB->get_records_sql_menu($sql,
                array_merge($params, ['programid' => $programid, 'type' => individual::ASSIGNTYPE_INDIVIDUAL]));

            // program::update_exceptions() for a new assignment without a due date raises only the duplicate course
            // exception (a new assignment has no exception to delete): asked for all users at once, raised by Totara
            // for those who have one.
            $duplicates = array_flip($this->users_with_duplicate_course($program, $userids));
            $now = time();
            $userassignments = [];
            $logs = [];
            foreach ($userids as $userid) {
                $assignment = $this->new_assignment($programid, $userid);
                $assignment->id = (int)$assignmentids[$userid];
                $assignment->timedue = COMPLETION_TIME_NOT_SET;
                $exceptions = isset($duplicates[$userid])
                    && $program->update_exceptions($userid, $assignment, COMPLETION_TIME_NOT_SET);
                $userassignments[] = (object)[
                    'programid' => $programid,
                    'userid' => $userid,
                    'assignmentid' => $assignment->id,
                    'timeassigned' => $now,
                    'exceptionstatus' => $exceptions ? PROGRAM_EXCEPTION_RAISED : PROGRAM_EXCEPTION_NONE,
                ];
                $logs[] = (object)[
                    'programid' => $programid,
                    'userid' => $userid,
                    'changeuserid' => $USER->id,
                    'description' => 'User assignment created for program assignment ' . $assignment->id,
                    'timemodified' => $now,
                ];
            }
            // As assign_learners_bulk() writes them (already inside this transaction, so without its nested one).
            $DB->insert_records('prog_user_assignment', $userassignments);
            $DB->insert_records('prog_completion_log', $logs);

            // The rest of program::assign_learners_bulk(), for all the users.
            // The program's learner role (program::$studentroleid).
            role_assign_bulk($CFG->learnerroleid, $userids, $program->get_context()->id);
            $enrol = enrol_get_plugin('totara_program');
            foreach ($this->courses($programid) as $courseid) {
                $instance = $enrol->get_instance_for_course($courseid);
                if ($instance) {
                    $enrol->process_program_reassignments($instance, $userids);
                }
            }
            foreach ($userids as $userid) {
                $this->assigned_event($programid, $userid);
            }
            $transaction->allow_commit();
        } catch (\Throwable $e) {
            try {
                $transaction->rollback($e);
            } catch (\Throwable $rethrown) {
                // The items assign their users one by one instead.
            }
            return [];
        }
        foreach ($userids as $userid) {
            $this->created[$programid . ':' . $userid] = true;
        }
        return $userids;
    }

    /**
     * The courses of the program's course sets (program::assign_learners_bulk()'s query), read once a call.
     *
     * @param int $programid
     * @return int[]
     */
    public function courses(int $programid): array {
        global $DB;

        if (!isset($this->courses[$programid])) {
            $sql = "SELECT DISTINCT courseid
                      FROM {prog_courseset_course} csc
                INNER JOIN {prog_courseset} cs
                        ON csc.coursesetid = cs.id
                       AND cs.programid = :programid";
            $this->courses[$programid] = array_map('intval', $DB->get_fieldset_sql($sql, ['programid' => $programid]));
        }
        return $this->courses[$programid];
    }

    /**
     * program::duplicate_course() for many users: those assigned to another certification with a course of this one.
     *
     * @param \program $program
     * @param int[] $userids
     * @return int[]
     */
    private function users_with_duplicate_course(\program $program, array $userids): array {
        global $DB;

        if (empty($program->certifid)) {
            return [];
        }
        [$in, $params] = $DB->get_in_or_equal($userids, SQL_PARAMS_NAMED, 'u');
        $sql = "SELECT DISTINCT pua.userid
                  FROM {prog} p
                  JOIN {prog_user_assignment} pua ON pua.programid = p.id AND pua.userid {$in}
                  JOIN {prog_courseset} pc ON pc.programid = p.id
                  JOIN {prog_courseset_course} pcc ON pcc.coursesetid = pc.id
                 WHERE p.certifid IS NOT NULL
                   AND p.id <> :programid1
                   AND EXISTS (SELECT thispcc.courseid
                                 FROM {prog_courseset} thispc
                                 JOIN {prog_courseset_course} thispcc ON thispcc.coursesetid = thispc.id
                                WHERE thispcc.courseid = pcc.courseid
                                  AND thispc.programid = :programid2)";
        $params['programid1'] = $program->id;
        $params['programid2'] = $program->id;
        return array_map('intval', $DB->get_fieldset_sql($sql, $params));
    }

    /**
     * @param \program $program
     */
    private function check_assignable(\program $program): void {
        if (!individual::can_be_updated($program->id) || $program->has_expired()) {
            throw new esrsync_exception('The user could not be assigned to the certification (the service account needs '
                . 'totara/program:configureassignments, and the certification must be available).');
        }
    }

    /**
     * @param int $programid
     * @param int $userid
     * @return \stdClass an individual prog_assignment row without a due date
     */
    private function new_assignment(int $programid, int $userid): \stdClass {
        return (object)[
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
    }

    /**
     * The program_assigned event: its observers create the certification completion record and queue Totara's
     * "assigned" notification.
     *
     * @param int $programid
     * @param int $userid
     */
    private function assigned_event(int $programid, int $userid): void {
        \totara_program\event\program_assigned::create([
            'objectid' => $programid,
            'context' => \context_program::instance($programid),
            'userid' => $userid,
        ])->trigger();
    }

    /**
     * @param int $programid
     * @return \program
     */
    public function program(int $programid): \program {
        if (!isset($this->programs[$programid])) {
            $this->programs[$programid] = new \program($programid);
        }
        return $this->programs[$programid];
    }
}
