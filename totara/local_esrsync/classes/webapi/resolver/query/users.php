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


namespace local_esrsync\webapi\resolver\query;

use core\data_providers\users as users_provider;
use core\entity\user;
use core\pagination\cursor;
use core\webapi\execution_context;
use core\webapi\middleware\require_authenticated_user;
use core\webapi\query_resolver;
use core_user\exception\user_users_exception;
use core_user\external\user_interactor;
use local_esrsync\data_provider\user_filters;
use local_esrsync\exception\esrsync_exception;
use totara_core\data_provider\provider;

/**
 * local_esrsync_users: core_user_users (same population, visibility, sort, paging and messages) with filters by
 * idnumber, username and change time.
 */
class users extends query_resolver {

    /** Most values one filter list may hold. */
    const MAX_VALUES = 200;

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        $query = $args['query'] ?? [];
        $sort = $query['sort'] ?? [];
        if (!empty($sort) && count($sort) > 1) {
            throw new user_users_exception('Sorting by more than one column is not currently supported.');
        }
        if (!empty($sort) && empty($sort[0]['column'])) {
            throw new user_users_exception("Required parameter 'column' not being passed.");
        }
        $sort = reset($sort);

        $filters = [];
        foreach (['idnumbers', 'usernames'] as $key) {
            if (!isset($query[$key])) {
                continue;
            }
            if (count($query[$key]) > self::MAX_VALUES) {
                throw new esrsync_exception('A maximum of ' . self::MAX_VALUES . " {$key} can be provided.");
            }
            $filters[$key] = array_values($query[$key]);
        }
        if (isset($query['changed_since'])) {
            $filters['changed_since'] = (int)$query['changed_since'];
        }

        $current_user_id = user::logged_in()->id;
        if (!(new user_interactor($current_user_id))->can_view()) {
            throw new user_users_exception('You do not have capabilities to view users.');
        }

        $enc_cursor = $query['pagination']['cursor'] ?? null;
        return users_provider::create_active_users_provider($current_user_id, new user_filters(), false, false, false)
            ->set_filters($filters)
            ->set_page_size($query['pagination']['limit'] ?? provider::DEFAULT_PAGE_SIZE)
            ->set_order($sort['column'] ?? '', $sort['direction'] ?? 'ASC')
            ->fetch_paginated($enc_cursor ? cursor::decode($enc_cursor) : null);
    }

    /**
     * @return array
     */
    public static function get_middleware(): array {
        return [new require_authenticated_user()];
    }
}
