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


namespace local_esrsync\data_provider;

use core\entity\user;
use core\orm\entity\filter\filter;
use core\orm\entity\filter\filter_factory;
use core\orm\entity\filter\in;

/**
 * Filters of local_esrsync_users on top of core's users data provider: exact idnumbers and usernames (an empty
 * list matches nothing), and users changed since a time.
 */
final class user_filters implements filter_factory {

    /**
     * @param string $key
     * @param mixed $value
     * @param int|null $user_id
     * @return filter|null
     */
    public function create(string $key, $value, ?int $user_id = null): ?filter {
        switch ($key) {
            case 'idnumbers':
                return (new in('idnumber'))->set_value($value)->set_entity_class(user::class);
            case 'usernames':
                return (new in('username'))->set_value($value)->set_entity_class(user::class);
            case 'changed_since':
                return (new changed_since_filter())->set_value((int)$value)->set_entity_class(user::class);
        }
        return null;
    }
}
