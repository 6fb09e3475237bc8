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

use core\pagination\cursor;
use totara_core\data_provider\provider;

/**
 * Reads certification completion rows, current and (optionally) history, in a fixed order (time modified, current
 * before history, id) with a keyset cursor, so a reader that pages through never skips a row. Read-only.
 */
final class completion_reader {

    /**
     * Columns of every row handed to the completion type resolver.
     *
     * @param int $is_history
     * @return string
     */
    private static function columns(int $is_history): string {
        $unassigned = $is_history ? 'r.unassigned' : '0';
        return "r.id, r.certifid, r.userid, r.certifpath, r.status, r.renewalstatus, r.timecompleted,
                r.timewindowopens, r.timeexpires, r.baselinetimeexpires, r.timemodified, {$unassigned} AS unassigned,
                {$is_history} AS is_history, u.idnumber AS user_idnumber, u.username, p.id AS prog_id,
                p.idnumber AS prog_idnumber, p.shortname AS prog_shortname";
    }

    /**
     * One page of local_esrsync_certification_completions.
     *
     * @param array $query the GraphQL query argument
     * @return array items, total, next_cursor
     */
    public static function page(array $query): array {
        global $DB;

        [$where, $params] = self::filters($query);
        $tables = ['current' => 'certif_completion'];
        if (!empty($query['include_history'])) {
            $tables['history'] = 'certif_completion_history';
        }

        $total = 0;
        foreach ($tables as $table) {
            $total += $DB->count_records_sql("SELECT COUNT(1) FROM {{$table}} r WHERE {$where}", $params);
        }

        $pagination = $query['pagination'] ?? [];
        $after = null;
        if (!empty($pagination['cursor'])) {
            $cursor = cursor::decode($pagination['cursor']);
            $limit = (int)$cursor->get_limit();
            $after = $cursor->get_columns();
            if (!is_array($after) || !isset($after['timemodified'], $after['is_history'], $after['id'])) {
                throw new \coding_exception('Order of query does not match given cursor');
            }
        } else {
            $limit = (int)($pagination['limit'] ?? 0);
        }
        if ($limit <= 0) {
            $limit = provider::DEFAULT_PAGE_SIZE;
        }

        // Each table is read in (timemodified, id) order from where the cursor left it, LIMIT rows at most;
        // the two short lists are then merged in (timemodified, is_history, id) order.
        $rows = [];
        foreach ($tables as $kind => $table) {
            $is_history = $kind === 'history' ? 1 : 0;
            [$keyset, $keyset_params] = self::after($after, $is_history);
            $sql = "SELECT " . self::columns($is_history) . "
                      FROM {{$table}} r
                      JOIN {user} u ON u.id = r.userid
                      JOIN {prog} p ON p.certifid = r.certifid
                     WHERE {$where} AND {$keyset}
                  ORDER BY r.timemodified, r.id";
            foreach ($DB->get_recordset_sql($sql, array_merge($params, $keyset_params), 0, $limit + 1) as $row) {
                $row->is_history = (bool)$row->is_history;
                $rows[] = $row;
            }
        }
        usort($rows, function ($a, $b) {
            return [(int)$a->timemodified, (int)$a->is_history, (int)$a->id]
                <=> [(int)$b->timemodified, (int)$b->is_history, (int)$b->id];
        });

        $next_cursor = '';
        if (count($rows) > $limit) {
            $rows = array_slice($rows, 0, $limit);
            $last = end($rows);
            $next_cursor = cursor::create()->set_limit($limit)->set_columns([
                'timemodified' => (int)$last->timemodified,
                'is_history' => (int)$last->is_history,
                'id' => (int)$last->id,
            ])->encode();
        }
        return ['items' => array_values($rows), 'total' => $total, 'next_cursor' => $next_cursor];
    }

    /**
     * One row, shaped as the rows of page(), for a mutation's result.
     *
     * @param string $kind 'current' or 'history'
     * @param int $id
     * @return \stdClass
     */
    public static function row(string $kind, int $id): \stdClass {
        global $DB;

        $table = $kind === 'history' ? 'certif_completion_history' : 'certif_completion';
        $is_history = $kind === 'history' ? 1 : 0;
        $row = $DB->get_record_sql("SELECT " . self::columns($is_history) . "
                                      FROM {{$table}} r
                                      JOIN {user} u ON u.id = r.userid
                                      JOIN {prog} p ON p.certifid = r.certifid
                                     WHERE r.id = :id", ['id' => $id], MUST_EXIST);
        $row->is_history = (bool)$row->is_history;
        return $row;
    }

    /**
     * The query's filters as SQL on the alias r.
     *
     * @param array $query
     * @return array [sql, params]
     */
    private static function filters(array $query): array {
        $where = ['1 = 1'];
        $params = [];
        if (isset($query['changed_since'])) {
            $where[] = 'r.timemodified >= :changedsince';
            $params['changedsince'] = (int)$query['changed_since'];
        }
        if (isset($query['certification'])) {
            $where[] = 'r.certifid = :certifid';
            $params['certifid'] = reference::certification($query['certification'])->certifid;
        }
        if (isset($query['user'])) {
            $where[] = 'r.userid = :userid';
            $params['userid'] = reference::user($query['user'])->id;
        }
        return [implode(' AND ', $where), $params];
    }

    /**
     * Rows of one table that come after the cursor's row in (timemodified, is_history, id) order.
     * Written as "timemodified >= t AND (...)" so the database can start an index range scan at t.
     *
     * @param array|null $after the cursor's last row, or null for the first page
     * @param int $is_history 0 for the current table, 1 for history
     * @return array [sql, params]
     */
    private static function after(?array $after, int $is_history): array {
        if ($after === null) {
            return ['1 = 1', []];
        }
        $t = (int)$after['timemodified'];
        $h = (int)$after['is_history'];
        if ($is_history > $h) {
            // A history row sorts after the cursor's current row of the same time.
            return ['r.timemodified >= :kst1', ['kst1' => $t]];
        }
        if ($is_history < $h) {
            return ['r.timemodified > :kst1', ['kst1' => $t]];
        }
        return ['r.timemodified >= :kst1 AND (r.timemodified > :kst2 OR r.id > :ksid)',
            ['kst1' => $t, 'kst2' => $t, 'ksid' => (int)$after['id']]];
    }
}
