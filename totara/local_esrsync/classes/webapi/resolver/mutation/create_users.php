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
use core_user\exception\create_user_exception;
use core_user\external\user_interactor;
use local_esrsync\local\batch;
use local_esrsync\local\user_creator;

/**
 * local_esrsync_create_users: many accounts, each created as core_user_create_user creates one (same capabilities,
 * validation, messages, user_created events), a generated password being left to cron as HR Import does (see
 * user_creator).
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
        $creator = new user_creator($ec);
        $results = batch::run($items, function (array $input) use ($creator, $CFG, $DB) {
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
            return ['status' => batch::DONE, 'user' => $creator->create($input)];
        });
        foreach ($results as &$result) {
            $result += ['user' => null];
            $result['user_id'] = $result['user'] ? $result['user']->id : null;
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
