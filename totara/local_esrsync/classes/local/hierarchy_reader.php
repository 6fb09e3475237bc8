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

defined('MOODLE_INTERNAL') || die();

/**
 * Reads positions or organisations in id order with a keyset cursor, shaped as local_esrsync_hierarchy_item
 * (a type without resolver class). Read-only.
 */
final class hierarchy_reader {

    /**
     * One page of local_esrsync_hierarchy_items.
     *
     * @param array $query kind, framework_idnumber, pagination
     * @return array items, total, next_cursor
     */
    public static function page(array $query): array {
        global $DB;

        $table = $query['kind'] === 'POSITION' ? 'pos' : 'org';
        $where = '1 = 1';
        $params = [];
        if (isset($query['framework_idnumber'])) {
            $where = 'f.idnumber = :fwidnumber';
            $params['fwidnumber'] = (string)$query['framework_idnumber'];
        }
        $from = "FROM {{$table}} i JOIN {{$table}_framework} f ON f.id = i.frameworkid";
        $total = $DB->count_records_sql("SELECT COUNT(1) {$from} WHERE {$where}", $params);

        [$limit, $after] = pages::request($query['pagination'] ?? [], ['id']);
        $keyset = '1 = 1';
        if ($after !== null) {
            $keyset = 'i.id > :afterid';
            $params['afterid'] = (int)$after['id'];
        }
        $sql = "SELECT i.id, i.idnumber, i.fullname, i.timemodified, p.idnumber AS parent_idnumber,
                       f.idnumber AS framework_idnumber
                  {$from}
             LEFT JOIN {{$table}} p ON p.id = i.parentid
                 WHERE {$where} AND {$keyset}
              ORDER BY i.id";
        $rows = array_values($DB->get_records_sql($sql, $params, 0, $limit + 1));

        $next_cursor = '';
        if (count($rows) > $limit) {
            $rows = array_slice($rows, 0, $limit);
            $next_cursor = pages::cursor($limit, ['id' => (int)end($rows)->id]);
        }
        $items = [];
        foreach ($rows as $row) {
            $items[] = [
                'id' => $row->id,
                'idnumber' => $row->idnumber,
                'fullname' => $row->fullname,
                'parent_idnumber' => $row->parent_idnumber,
                'framework_idnumber' => $row->framework_idnumber,
                'time_modified' => (int)$row->timemodified,
            ];
        }
        return ['items' => $items, 'total' => $total, 'next_cursor' => $next_cursor];
    }
}
