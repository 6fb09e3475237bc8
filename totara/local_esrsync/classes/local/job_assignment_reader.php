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

/**
 * Reads job assignments (of users not deleted) in (time modified, id) order with a keyset cursor, shaped as
 * local_esrsync_job_assignment (a type without resolver class: its fields cost nothing). Read-only.
 */
final class job_assignment_reader {

    /** The most user idnumbers one query may name. */
    const MAX_USER_IDNUMBERS = 200;

    /**
     * One page of local_esrsync_job_assignments.
     *
     * @param array $query
     * @return array items, total, next_cursor
     */
    public static function page(array $query): array {
        global $DB;

        $where = ['u.deleted = 0'];
        $params = [];
        if (isset($query['changed_since'])) {
            $where[] = 'ja.timemodified >= :changedsince';
            $params['changedsince'] = (int)$query['changed_since'];
        }
        if (array_key_exists('user_idnumbers', $query) && $query['user_idnumbers'] !== null) {
            $idnumbers = array_values(array_unique(array_map('strval', $query['user_idnumbers'])));
            if (count($idnumbers) > self::MAX_USER_IDNUMBERS) {
                throw new esrsync_exception('A maximum of ' . self::MAX_USER_IDNUMBERS . ' user idnumbers can be provided.');
            }
            if (!$idnumbers) {
                $where[] = '1 = 0';  // An empty list matches nothing, never everyone.
            } else {
                [$in, $inparams] = $DB->get_in_or_equal($idnumbers, SQL_PARAMS_NAMED, 'uidn');
                $where[] = "u.idnumber {$in}";
                $params += $inparams;
            }
        }
        $where = implode(' AND ', $where);
        $from = "FROM {job_assignment} ja JOIN {user} u ON u.id = ja.userid";
        $total = $DB->count_records_sql("SELECT COUNT(1) {$from} WHERE {$where}", $params);

        [$limit, $after] = pages::request($query['pagination'] ?? [], ['timemodified', 'id']);
        $keyset = '1 = 1';
        if ($after !== null) {
            $keyset = 'ja.timemodified >= :kst1 AND (ja.timemodified > :kst2 OR ja.id > :ksid)';
            $params += ['kst1' => (int)$after['timemodified'], 'kst2' => (int)$after['timemodified'],
                'ksid' => (int)$after['id']];
        }
        $sql = "SELECT ja.id, ja.idnumber, ja.userid, u.idnumber AS user_idnumber, ja.fullname, ja.startdate,
                       ja.enddate, p.idnumber AS position_idnumber, o.idnumber AS organisation_idnumber,
                       m.userid AS manager_user_id, m.idnumber AS manager_ja_idnumber, ja.sortorder, ja.timemodified
                  {$from}
             LEFT JOIN {pos} p ON p.id = ja.positionid
             LEFT JOIN {org} o ON o.id = ja.organisationid
             LEFT JOIN {job_assignment} m ON m.id = ja.managerjaid
                 WHERE {$where} AND {$keyset}
              ORDER BY ja.timemodified, ja.id";
        $rows = array_values($DB->get_records_sql($sql, $params, 0, $limit + 1));

        $next_cursor = '';
        if (count($rows) > $limit) {
            $rows = array_slice($rows, 0, $limit);
            $last = end($rows);
            $next_cursor = pages::cursor($limit, ['timemodified' => (int)$last->timemodified, 'id' => (int)$last->id]);
        }
        return ['items' => array_map([self::class, 'item'], $rows), 'total' => $total, 'next_cursor' => $next_cursor];
    }

    /**
     * @param \stdClass $row
     * @return array
     */
    private static function item(\stdClass $row): array {
        return [
            'id' => $row->id,
            'idnumber' => (string)$row->idnumber,
            'user_id' => $row->userid,
            'user_idnumber' => $row->user_idnumber,
            'fullname' => ($row->fullname === null || $row->fullname === '') ? null : $row->fullname,
            'start_date' => dates::format($row->startdate),
            'end_date' => dates::format($row->enddate),
            'position_idnumber' => $row->position_idnumber,
            'organisation_idnumber' => $row->organisation_idnumber,
            'manager_user_id' => $row->manager_user_id,
            'manager_ja_idnumber' => $row->manager_ja_idnumber,
            'sortorder' => (int)$row->sortorder,
            'time_modified' => (int)$row->timemodified,
        ];
    }
}
