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


namespace local_esrsync\webapi\resolver\mutation;

use core\webapi\execution_context;
use core\webapi\middleware\require_authenticated_user;
use core\webapi\mutation_resolver;
use core\webapi\resolver\mutation\user_create_user;
use core_user\exception\create_user_exception;
use core_user\external\user_interactor;
use local_esrsync\local\batch;

/**
 * local_esrsync_create_users: many accounts, each created exactly as core_user_create_user creates one (the core
 * resolver runs per item: same capabilities, validation, messages, user_created events, password rules).
 */
class create_users extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        global $CFG, $DB;

        $items = $args['input']['items'] ?? [];
        batch::check_size($items);
        $results = batch::run($items, function (array $input) use ($ec, $CFG, $DB) {
            // A resent item: the account an earlier attempt created (same username and idnumber) is the answer.
            if (isset($input['idnumber']) && $input['idnumber'] !== '' && !isset($input['tenant'])) {
                if (!(new user_interactor(\core\entity\user::logged_in()->id))->can_create_system_user()) {
                    throw new create_user_exception('You do not have capabilities to create a user.');
                }
                $existing = $DB->get_record('user', ['username' => $input['username'], 'idnumber' => $input['idnumber'],
                    'deleted' => 0, 'mnethostid' => $CFG->mnet_localhost_id]);
                if ($existing) {
                    return ['status' => batch::ALREADY, 'user' => $existing];
                }
            }
            $created = user_create_user::resolve(['input' => $input], $ec);
            return ['status' => batch::DONE, 'user' => $created['user']];
        });
        foreach ($results as &$result) {
            $result += ['user' => null];
        }
        return ['items' => $results];
    }

    /**
     * @return array
     */
    public static function get_middleware(): array {
        return [new require_authenticated_user()];
    }
}
