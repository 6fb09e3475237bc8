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

defined('MOODLE_INTERNAL') || die();

/**
 * Keyset pages of the plugin's list queries: core_pagination_input (cursor and limit; page ignored) in, Totara's
 * cursor format out, as the core lists use them.
 */
final class pages {

    /**
     * The page size and the last row of the previous page (null on the first page).
     *
     * @param array $pagination core_pagination_input
     * @param string[] $columns the sort columns the cursor must hold
     * @return array [limit, columns or null]
     */
    public static function request(array $pagination, array $columns): array {
        $after = null;
        if (!empty($pagination['cursor'])) {
            $cursor = cursor::decode($pagination['cursor']);
            $limit = (int)$cursor->get_limit();
            $after = $cursor->get_columns();
            if (!is_array($after) || array_keys($after) !== $columns) {
                throw new \coding_exception('Order of query does not match given cursor');
            }
        } else {
            $limit = (int)($pagination['limit'] ?? 0);
        }
        if ($limit <= 0) {
            $limit = provider::DEFAULT_PAGE_SIZE;
        }
        return [$limit, $after];
    }

    /**
     * @param int $limit
     * @param array $columns the last row's sort columns
     * @return string
     */
    public static function cursor(int $limit, array $columns): string {
        return cursor::create()->set_limit($limit)->set_columns($columns)->encode();
    }
}
