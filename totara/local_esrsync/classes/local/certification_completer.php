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

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/totara/program/lib.php');
require_once($CFG->dirroot . '/totara/certification/lib.php');

/**
 * Records one certification completion for one user with the decision rules of Totara's Upload Completion Records
 * (import_certification() in totara/completionimport/lib.php), applied to a single row, and Totara's own
 * certification functions for the arithmetic, the consistency checks and the writes.
 *
 * Stricter than the import on one point, so that a resent call is always safe: a completion time the user already
 * holds for the certification (current or history) is a duplicate and nothing is written.
 */
final class certification_completer {

    const SAVE_TO_HISTORY = 'SAVE_TO_HISTORY';
    const CERTIFY_UNCERTIFIED = 'CERTIFY_UNCERTIFIED';
    const CERTIFY_IF_NEWER = 'CERTIFY_IF_NEWER';

    const CERTIFIED = 'CERTIFIED';
    const ARCHIVED_AND_CERTIFIED = 'ARCHIVED_AND_CERTIFIED';
    const ADDED_TO_HISTORY = 'ADDED_TO_HISTORY';
    const SKIPPED_DUPLICATE = 'SKIPPED_DUPLICATE';

    /** Seconds a call waits for another one writing the same user's certification. */
    const LOCK_TIMEOUT = 60;

    /** @var int the request time: every row written gets it as timemodified */
    private $now;

    /** @var array users and certifications already resolved in this call, by reference */
    private $resolved = [];

    /** @var string[][]|null the columns of certif_completion ('cc') and prog_completion ('pc') */
    private $columns = null;

    /** @var program_assigner */
    private $assigner;

    /** @var \core\lock\lock[] the locks this call holds, by user id (see lock_user() and prepare()) */
    private $locks = [];

    /**
     * @param int $now
     */
    public function __construct(int $now) {
        $this->now = $now;
        $this->assigner = new program_assigner();
    }

    /**
     * One local_esrsync_mark_certification_complete_input. Runs inside the caller's transaction.
     *
     * @param array $input
     * @return array outcome, assignment_created, record (['current'|'history', id]) and current (row id)
     */
    public function mark(array $input): array {
        [$user, $cert, $timecompleted, $timedue, $action] = $this->check($input);
        $this->lock_user((int)$user->id);
        $result = $this->mark_locked($user, $cert, $timecompleted, $timedue, $action);
        if ($result['assignment_created']) {
            $this->assigner->reported((int)$cert->progid, (int)$user->id);
        }
        return $result;
    }

    /**
     * The checks of an input that come before any write.
     *
     * @param array $input
     * @return array user, certification, time completed, time due, action
     */
    private function check(array $input): array {
        $user = $this->resolve('user', $input['user'] ?? null);
        $cert = $this->resolve('certification', $input['certification'] ?? null);
        if (empty($input['completion_date'])) {
            throw new \coding_exception('Required parameter - completion_date not being passed');
        }
        $timecompleted = (int)$input['completion_date'];
        if ($timecompleted > $this->now) {
            throw new esrsync_exception('Completion date can not be in the future.');
        }
        $timedue = (int)($input['due_date'] ?? 0);
        $action = $input['action'] ?? self::CERTIFY_IF_NEWER;
        if (!in_array($action, [self::SAVE_TO_HISTORY, self::CERTIFY_UNCERTIFIED, self::CERTIFY_IF_NEWER], true)) {
            throw new \coding_exception('Unknown import action ' . $action);
        }
        return [$user, $cert, $timecompleted, $timedue, $action];
    }

    /**
     * Before a batch's items: locks all their users and adds, one certification at a time, the assignments they need
     * (program_assigner::ensure_all()), so that each item only records its completion. Items that fail their checks
     * are left out (they are rejected, with the reason, when their turn comes, and assign nobody).
     *
     * A certification that shares a course with another certification of the batch is left to the items: whether an
     * assignment raises Totara's duplicate course exception depends on the order the two are assigned in. Anything
     * that goes wrong here only means that the items assign their users themselves, one at a time, as without it.
     *
     * @param array $items local_esrsync_mark_certification_complete_input items
     */
    public function prepare(array $items): void {
        $users = [];
        $pairs = [];
        foreach ($items as $item) {
            try {
                [$user, $cert] = $this->check($item);
            } catch (\Throwable $e) {
                continue;
            }
            $users[(int)$user->id] = true;
            $pairs[(int)$cert->progid][(int)$user->id] = true;
        }
        try {
            if (!$pairs || !$this->lock_users(array_keys($users))) {
                return;
            }
            $owners = [];
            foreach (array_keys($pairs) as $programid) {
                foreach ($this->assigner->courses($programid) as $courseid) {
                    $owners[$courseid][$programid] = true;
                }
            }
            foreach ($owners as $programs) {
                if (count($programs) > 1) {
                    $pairs = array_diff_key($pairs, $programs);
                }
            }
            foreach ($pairs as $programid => $userids) {
                $this->assigner->ensure_all($programid, array_keys($userids));
            }
        } catch (\Throwable $e) {
            // The items lock and assign their users one at a time.
            $this->release();
        }
    }

    /**
     * Calls writing the same user's certifications are serialised: the second sees what the first wrote. A lock is
     * kept from one item to the next while they name the same user (a batch usually lists a person's completions
     * together: one lock for all of them instead of one for each, about four statements an item) and so also until
     * the item's transaction has committed. A call that needs another user's lock first releases the ones it holds,
     * so that it never waits while holding one; only prepare() takes many, in the order of user ids, which every call
     * follows, so calls never wait for each other in a circle. release(), which the resolvers call after their last
     * commit, releases them all.
     *
     * @param int $userid
     */
    private function lock_user(int $userid): void {
        if (isset($this->locks[$userid])) {
            return;
        }
        $this->release();
        if (!$this->lock_users([$userid])) {
            throw new esrsync_exception('Another request is recording a completion for this user and certification; try again.');
        }
    }

    /**
     * Takes the users' locks in the order of their ids (those not held yet). When one cannot be had, releases all.
     *
     * @param int[] $userids
     * @return bool true when all are held
     */
    private function lock_users(array $userids): bool {
        sort($userids);
        $factory = \core\lock\lock_config::get_lock_factory('local_esrsync');
        foreach ($userids as $userid) {
            if (isset($this->locks[$userid])) {
                continue;
            }
            $lock = $factory->get_lock("certif_user_{$userid}", self::LOCK_TIMEOUT);
            if (!$lock) {
                $this->release();
                return false;
            }
            $this->locks[$userid] = $lock;
        }
        return true;
    }

    /**
     * Releases the locks the call holds, if any. Call it once the items' transactions are over.
     */
    public function release(): void {
        foreach ($this->locks as $lock) {
            $lock->release();
        }
        $this->locks = [];
    }

    /**
     * A reference resolved once per call: a batch names the same people and certifications many times.
     * A reference that does not resolve is not remembered (its item is rejected, with the reason, each time).
     *
     * @param string $kind 'user' or 'certification'
     * @param array|null $ref
     * @return \stdClass
     */
    private function resolve(string $kind, ?array $ref): \stdClass {
        $key = $kind . json_encode($ref);
        if (!isset($this->resolved[$key])) {
            $this->resolved[$key] = reference::$kind($ref);
        }
        return $this->resolved[$key];
    }

    /**
     * @param \stdClass $user
     * @param \stdClass $cert
     * @param int $timecompleted
     * @param int $timedue
     * @param string $action
     * @return array
     */
    private function mark_locked(\stdClass $user, \stdClass $cert, int $timecompleted, int $timedue,
                                 string $action): array {
        global $DB;

        $created = $this->assigner->ensure((int)$cert->progid, (int)$user->id);
        [$current, $progcompletion, $duplicate] = $this->read($cert, $user, $timecompleted);
        $state = $current ? certif_get_completion_state($current) : null;

        // The same completion time held anywhere: a duplicate, nothing written.
        if ($current && in_array($state, [CERTIFCOMPLETIONSTATE_CERTIFIED, CERTIFCOMPLETIONSTATE_WINDOWOPEN])
                && (int)$current->timecompleted === $timecompleted) {
            return $this->result(self::SKIPPED_DUPLICATE, $created, ['current', (int)$current->id], $cert, $user);
        }
        if ($duplicate) {
            return $this->result(self::SKIPPED_DUPLICATE, $created, ['history', (int)$duplicate], $cert, $user);
        }

        if ($action === self::SAVE_TO_HISTORY) {
            return $this->add_to_history($cert, $user, $timecompleted, $timedue, $created);
        }
        if (!$current || !$progcompletion) {
            // One or both records are missing: recreate them certified, keeping what the old record held.
            $outcome = $current ? self::ARCHIVED_AND_CERTIFIED : self::CERTIFIED;
            return $this->certify($cert, $user, $current ?: null, $progcompletion, 0, $timecompleted, $timedue, $outcome,
                $created);
        }
        if (certif_get_completion_errors($current, $progcompletion)) {
            // Archive whatever the invalid record holds, certify with an expiry computed afresh.
            return $this->certify($cert, $user, $current, $progcompletion, 0, $timecompleted, $timedue,
                self::ARCHIVED_AND_CERTIFIED, $created);
        }
        $baseline = (int)$current->baselinetimeexpires;
        switch ($state) {
            case CERTIFCOMPLETIONSTATE_CERTIFIED:
            case CERTIFCOMPLETIONSTATE_WINDOWOPEN:
                if ($action === self::CERTIFY_UNCERTIFIED || $timecompleted <= (int)$current->timecompleted) {
                    return $this->add_to_history($cert, $user, $timecompleted, $timedue, $created);
                }
                if ($state == CERTIFCOMPLETIONSTATE_CERTIFIED) {
                    return $this->certify($cert, $user, $current, $progcompletion, $baseline, $timecompleted, $timedue,
                        self::ARCHIVED_AND_CERTIFIED, $created);
                }
                // Window open: the current completion was copied to history when the window opened.
                return $this->certify($cert, $user, null, $progcompletion, $baseline, $timecompleted, $timedue,
                    self::CERTIFIED, $created, $current);
            default:
                // Assigned or expired: not certified.
                return $this->certify($cert, $user, null, $progcompletion, $baseline, $timecompleted, $timedue,
                    self::CERTIFIED, $created, $current);
        }
    }

    /**
     * The user's current certification completion record, program completion record and the id of a history record
     * with the same completion time, if any: what three get_record() calls would give, in one statement.
     *
     * @param \stdClass $cert
     * @param \stdClass $user
     * @param int $timecompleted
     * @return array certif_completion row or null, prog_completion row (course set 0) or false, history id or 0
     */
    private function read(\stdClass $cert, \stdClass $user, int $timecompleted): array {
        global $DB;

        if ($this->columns === null) {
            $this->columns = [
                'cc' => array_keys($DB->get_columns('certif_completion')),
                'pc' => array_keys($DB->get_columns('prog_completion')),
            ];
        }
        $select = [];
        foreach ($this->columns as $alias => $columns) {
            foreach ($columns as $column) {
                $select[] = "{$alias}.{$column} AS {$alias}_{$column}";
            }
        }
        $sql = "SELECT 1 AS one, " . implode(', ', $select) . ",
                       (SELECT MIN(h.id)
                          FROM {certif_completion_history} h
                         WHERE h.certifid = :hcertifid AND h.userid = :huserid AND h.timecompleted = :htimecompleted
                       ) AS duplicateid
                  FROM (SELECT 1 AS one) x
             LEFT JOIN {certif_completion} cc ON cc.certifid = :certifid AND cc.userid = :userid
             LEFT JOIN {prog_completion} pc ON pc.programid = :programid AND pc.userid = :puserid AND pc.coursesetid = 0";
        $row = $DB->get_record_sql($sql, ['hcertifid' => $cert->certifid, 'huserid' => $user->id,
            'htimecompleted' => $timecompleted, 'certifid' => $cert->certifid, 'userid' => $user->id,
            'programid' => $cert->progid, 'puserid' => $user->id], MUST_EXIST);
        $records = [];
        foreach ($this->columns as $alias => $columns) {
            $record = null;
            if ($row->{$alias . '_id'} !== null) {
                $record = new \stdClass();
                foreach ($columns as $column) {
                    $record->$column = $row->{$alias . '_' . $column};
                }
            }
            $records[$alias] = $record;
        }
        return [$records['cc'], $records['pc'] ?? false, (int)$row->duplicateid];
    }

    /**
     * Upload Completion Records' "add to history": the expiry is computed as if there were no current record.
     *
     * @return array
     */
    private function add_to_history(\stdClass $cert, \stdClass $user, int $timecompleted, int $timedue,
                                    bool $created): array {
        $times = $this->times($cert, 0, $timecompleted, $timedue);
        $history = (object)[
            'certifid' => $cert->certifid,
            'userid' => $user->id,
            'certifpath' => CERTIFPATH_RECERT,
            'status' => CERTIFSTATUS_COMPLETED,
            'renewalstatus' => CERTIFRENEWALSTATUS_NOTDUE,
            'timecompleted' => $timecompleted,
            'timewindowopens' => $times['timewindowopens'],
            'timeexpires' => $times['timeexpires'],
            'baselinetimeexpires' => $times['baselinetimeexpires'],
            'timemodified' => $this->now,
            'unassigned' => 0,
        ];
        $historyid = $this->write_history($history, 'Completion added to history by local_esrsync (ESR)', false);
        return $this->result(self::ADDED_TO_HISTORY, $created, ['history', $historyid], $cert, $user);
    }

    /**
     * Certifies the user: archives $archive to history first (when given and it holds a completion), then writes the
     * current certification and program completion records through certif_write_completion().
     *
     * @param \stdClass $cert
     * @param \stdClass $user
     * @param \stdClass|null $archive current record to copy to history first
     * @param \stdClass|false $progcompletion the program completion record, if any
     * @param int $baseline baselinetimeexpires the new expiry builds on (0: none)
     * @param int $timecompleted
     * @param int $timedue
     * @param string $outcome
     * @param bool $created
     * @param \stdClass|null $current the current record when it is kept (not archived)
     * @return array
     */
    private function certify(\stdClass $cert, \stdClass $user, ?\stdClass $archive, $progcompletion, int $baseline,
                             int $timecompleted, int $timedue, string $outcome, bool $created,
                             ?\stdClass $current = null): array {
        global $DB;

        $current = $current ?? ($archive ?: null);
        if ($archive && (int)$archive->timecompleted > 0) {
            $history = clone($archive);
            unset($history->id);
            $history->timemodified = $this->now;
            $history->unassigned = 0;
            $this->write_history($history, 'Current completion archived by local_esrsync (ESR)', true);
        }

        $times = $this->times($cert, $baseline, $timecompleted, $timedue);
        $newcert = (object)array_merge([
            'certifid' => $cert->certifid,
            'userid' => $user->id,
            'certifpath' => CERTIFPATH_RECERT,
            'status' => CERTIFSTATUS_COMPLETED,
            'renewalstatus' => CERTIFRENEWALSTATUS_NOTDUE,
            'timecompleted' => $timecompleted,
            'timemodified' => $this->now,
        ], $times);
        $newprog = (object)[
            'programid' => $cert->progid,
            'userid' => $user->id,
            'coursesetid' => 0,
            'status' => STATUS_PROGRAM_COMPLETE,
            'timestarted' => $this->now,
            'timedue' => $times['timeexpires'],
            'timecompleted' => $timecompleted,
        ];
        if ($current && $progcompletion) {
            $newcert->id = $current->id;
            $newprog->id = $progcompletion->id;
        } else {
            // certif_write_completion() inserts only when neither record exists.
            if ($current) {
                $DB->delete_records('certif_completion', ['id' => $current->id]);
            }
            if ($progcompletion) {
                $DB->delete_records('prog_completion', ['id' => $progcompletion->id]);
            }
            $newprog->timecreated = $this->now;
        }
        // certif_write_completion() logs the record it wrote with Totara's own description after this message.
        if (!certif_write_completion($newcert, $newprog, 'User certified by local_esrsync (ESR)')) {
            $errors = certif_get_completion_errors($newcert, $newprog);
            throw new esrsync_exception('Totara refused the completion record: ' . implode(', ', array_keys($errors)));
        }
        // An update keeps the record's id; an insert gives a new one.
        $currentid = !empty($newcert->id) ? (int)$newcert->id : (int)$DB->get_field('certif_completion', 'id',
            ['certifid' => $cert->certifid, 'userid' => $user->id], MUST_EXIST);
        return $this->result($outcome, $created, ['current', $currentid], $cert, $user, $currentid);
    }

    /**
     * Writes a history row with certif_write_completion_history(), replacing a row with the same completion and
     * expiry times (the table is unique on them) as the import does.
     *
     * @param \stdClass $history
     * @param string $message
     * @param bool $asis true to keep a copy of a record even when it does not pass Totara's checks
     * @return int the history row's id
     */
    private function write_history(\stdClass $history, string $message, bool $asis): int {
        global $DB;

        $keys = ['certifid' => $history->certifid, 'userid' => $history->userid,
            'timecompleted' => $history->timecompleted, 'timeexpires' => $history->timeexpires];
        $existing = $DB->get_field('certif_completion_history', 'id', $keys);
        if ($existing) {
            $history->id = $existing;
        }
        $ignore = false;
        if ($asis) {
            $errors = certif_get_completion_errors($history, null);
            $ignore = $errors ? certif_get_completion_error_problemkey($errors) : 'noproblems';
        }
        if (!certif_write_completion_history($history, $message, $ignore)) {
            $errors = certif_get_completion_errors($history, null);
            throw new esrsync_exception('Totara refused the completion history record: ' . implode(', ', array_keys($errors)));
        }
        return (int)$DB->get_field('certif_completion_history', 'id', $keys, MUST_EXIST);
    }

    /**
     * Window and expiry as Totara computes them (get_certiftimebase, get_timeexpires, get_timewindowopens).
     *
     * @param \stdClass $cert
     * @param int $baseline
     * @param int $timecompleted
     * @param int $timedue
     * @return array timeexpires, baselinetimeexpires, timewindowopens
     */
    private function times(\stdClass $cert, int $baseline, int $timecompleted, int $timedue): array {
        $base = get_certiftimebase($cert->recertifydatetype, $baseline, $timecompleted, $timedue,
            $cert->activeperiod, $cert->minimumactiveperiod, $cert->windowperiod);
        $expires = get_timeexpires($base, $cert->activeperiod);
        return [
            'timeexpires' => $expires,
            'baselinetimeexpires' => $expires,
            'timewindowopens' => get_timewindowopens($expires, $cert->windowperiod),
        ];
    }

    /**
     * @return array
     */
    private function result(string $outcome, bool $created, array $record, \stdClass $cert, \stdClass $user,
                            int $currentid = 0): array {
        global $DB;

        if (!$currentid) {
            $currentid = (int)$DB->get_field('certif_completion', 'id',
                ['certifid' => $cert->certifid, 'userid' => $user->id], MUST_EXIST);
        }
        return [
            'outcome' => $outcome,
            'assignment_created' => $created,
            'record' => $record,
            'current' => $currentid,
        ];
    }
}
