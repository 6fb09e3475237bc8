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
use totara_job\job_assignment;

defined('MOODLE_INTERNAL') || die();

/**
 * Creates or updates one job assignment of a local_esrsync_upsert_job_assignments call, found by the user and its
 * idnumber, through \totara_job\job_assignment (create(), update(), resort_all()): Totara's events, manager paths
 * and manager role assignments follow. Only the fields that differ are written; nothing differing is ALREADY.
 */
final class job_assignment_writer {

    /** Totara's own text (totara_job_create_job_assignment) for a user that cannot be found or edited. */
    const USER_MESSAGE = 'The user does not exist or you do not have permission to create a job assignment.';

    /** job_assignment.idnumber, pos.idnumber, org.idnumber are char(100). */
    const IDNUMBER_MAX = 100;

    /**
     * @param array $item a local_esrsync_job_assignment_input
     * @return array status (DONE or ALREADY) and id
     */
    public static function upsert(array $item): array {
        global $CFG, $DB;
        require_once($CFG->dirroot . '/totara/job/lib.php');

        $user = self::user($item['user'] ?? null);
        $idnumber = self::idnumber($item['idnumber'] ?? null, 'job assignment');

        // What the item asks for, as job_assignment columns; a field left out is not in $wanted.
        $wanted = [];
        if (array_key_exists('fullname', $item)) {
            $wanted['fullname'] = ($item['fullname'] === '') ? null : $item['fullname'];
        }
        foreach (['start_date' => 'startdate', 'end_date' => 'enddate'] as $key => $column) {
            if (array_key_exists($key, $item)) {
                $wanted[$column] = dates::parse($item[$key], $key);
            }
        }
        foreach (['position_idnumber' => 'position', 'organisation_idnumber' => 'organisation'] as $key => $kind) {
            if (array_key_exists($key, $item)) {
                $value = $item[$key];
                $wanted[$kind . 'id'] = ($value === null || $value === '') ? null : self::hierarchy_id($kind, $value);
            }
        }
        $manager = null;
        if (array_key_exists('manager', $item)) {
            if ($item['manager'] === null) {
                $wanted['managerjaid'] = null;
            } else {
                $manager = self::manager($item['manager']);
                if ((int)$manager->userid === (int)$user->id) {
                    // Totara's own text (totara_job\webapi\resolver\helper).
                    throw new esrsync_exception('The user cannot be assigned as their own manager.');
                }
                $wanted['managerjaid'] = (int)$manager->id;
            }
        }

        $existing = $DB->get_record('job_assignment', ['userid' => $user->id, 'idnumber' => $idnumber]);
        $start = array_key_exists('startdate', $wanted) ? $wanted['startdate'] : ($existing->startdate ?? null);
        $end = array_key_exists('enddate', $wanted) ? $wanted['enddate'] : ($existing->enddate ?? null);
        if (!empty($start) && !empty($end) && $start > $end) {
            throw new esrsync_exception('The start date can not be later than the end date.');
        }

        if (!$existing) {
            if (empty($CFG->totara_job_allowmultiplejobs) && $DB->record_exists('job_assignment', ['userid' => $user->id])) {
                throw new esrsync_exception('This site allows one job assignment per user (Totara setting '
                    . 'totara_job_allowmultiplejobs is off): the user already has one.');
            }
            $data = ['userid' => (int)$user->id, 'idnumber' => $idnumber];
            foreach ($wanted as $column => $value) {
                if ($value !== null) {
                    $data[$column] = $value;
                }
            }
            $created = job_assignment::create($data);
            if (!empty($item['sortorder_first'])) {
                self::put_first((int)$user->id, (int)$created->id);
            }
            return ['status' => batch::DONE, 'id' => $created->id];
        }

        $changes = [];
        foreach ($wanted as $column => $value) {
            if (self::differs($column, $existing->$column, $value)) {
                $changes[$column] = $value;
            }
        }
        if (array_key_exists('managerjaid', $changes) && $manager !== null
                && strpos($manager->managerjapath . '/', '/' . $existing->id . '/') !== false) {
            // job_assignment::calculate_managerjapath() would refuse it with a coding error: say what it is.
            throw new esrsync_exception("manager job assignment {$manager->idnumber} of user {$manager->userid} is "
                . "managed through job assignment {$idnumber}: that would make a management loop");
        }
        if ($changes) {
            job_assignment::get_with_id($existing->id)->update($changes);
        }
        $moved = false;
        if (!empty($item['sortorder_first']) && (int)$existing->sortorder !== 1) {
            $moved = self::put_first((int)$user->id, (int)$existing->id);
        }
        return ['status' => ($changes || $moved) ? batch::DONE : batch::ALREADY, 'id' => $existing->id];
    }

    /**
     * The user of the item, when the caller may edit and view their job assignments (totara_job_create_job_assignment's
     * checks and text).
     *
     * @param array|null $ref
     * @return \stdClass
     */
    private static function user(?array $ref): \stdClass {
        global $DB;

        try {
            $found = reference::user($ref);
        } catch (esrsync_exception $e) {
            throw new esrsync_exception(self::USER_MESSAGE);
        }
        $user = $DB->get_record('user', ['id' => $found->id, 'deleted' => 0]);
        if (!$user || !totara_job_can_edit_job_assignments($user->id) || !totara_job_can_view_job_assignments($user)) {
            throw new esrsync_exception(self::USER_MESSAGE);
        }
        return $user;
    }

    /**
     * @param mixed $value
     * @param string $what
     * @return string
     */
    public static function idnumber($value, string $what): string {
        if ($value === null || $value === '') {
            throw new esrsync_exception("The {$what} idnumber must not be empty.");
        }
        $value = (string)$value;
        if (\core_text::strlen($value) > self::IDNUMBER_MAX) {
            throw new esrsync_exception("The {$what} idnumber must be at most " . self::IDNUMBER_MAX . " characters: {$value}");
        }
        return $value;
    }

    /**
     * The id of the one position or organisation with this idnumber; never created here.
     *
     * @param string $kind position or organisation
     * @param string $idnumber
     * @return int
     */
    private static function hierarchy_id(string $kind, string $idnumber): int {
        global $DB;

        if ($kind === 'position' && advanced_feature::is_disabled('positions')) {
            throw new esrsync_exception('Position feature is disabled.');
        }
        if ($kind === 'organisation' && advanced_feature::is_disabled('organisations')) {
            throw new esrsync_exception('Organisations feature is disabled.');
        }
        $table = $kind === 'position' ? 'pos' : 'org';
        $rows = $DB->get_records($table, ['idnumber' => $idnumber], 'id', 'id', 0, 2);
        if (count($rows) === 0) {
            throw new esrsync_exception("no {$kind} with idnumber {$idnumber}");
        }
        if (count($rows) > 1) {
            throw new esrsync_exception("more than one {$kind} has idnumber {$idnumber}");
        }
        return (int)reset($rows)->id;
    }

    /**
     * The manager's own job assignment: {user_id, ja_idnumber}, of a user who is not deleted.
     *
     * @param array $ref
     * @return \stdClass the job_assignment row
     */
    private static function manager(array $ref): \stdClass {
        global $DB;

        $userid = $ref['user_id'] ?? null;
        $idnumber = (string)($ref['ja_idnumber'] ?? '');
        $row = null;
        if (is_numeric($userid) && $idnumber !== '') {
            $row = $DB->get_record_sql(
                "SELECT ja.*
                   FROM {job_assignment} ja
                   JOIN {user} u ON u.id = ja.userid AND u.deleted = 0
                  WHERE ja.userid = :userid AND ja.idnumber = :idnumber",
                ['userid' => (int)$userid, 'idnumber' => $idnumber]);
        }
        if (!$row) {
            throw new esrsync_exception("manager job assignment {$idnumber} of user {$userid} not found");
        }
        return $row;
    }

    /**
     * Whether a stored column differs from the wanted value (none: null, '' or 0 alike).
     *
     * @param string $column
     * @param mixed $current
     * @param mixed $value
     * @return bool
     */
    private static function differs(string $column, $current, $value): bool {
        if ($column === 'fullname') {
            return (string)($current ?? '') !== (string)($value ?? '');
        }
        return (int)($current ?? 0) !== (int)($value ?? 0);
    }

    /**
     * Makes the job assignment the user's first with job_assignment::resort_all(), the others keeping their order
     * behind it (each one whose place changes is updated by Totara: event, time modified).
     *
     * @param int $userid
     * @param int $id
     * @return bool whether anything moved
     */
    private static function put_first(int $userid, int $id): bool {
        $order = [$id];
        $moved = false;
        $place = 1;
        foreach (job_assignment::get_all($userid) as $ja) {
            if ((int)$ja->id === $id) {
                $moved = $moved || (int)$ja->sortorder !== 1;
                continue;
            }
            $order[] = (int)$ja->id;
        }
        if (!$moved) {
            return false;
        }
        job_assignment::resort_all($userid, $order);
        return true;
    }
}
