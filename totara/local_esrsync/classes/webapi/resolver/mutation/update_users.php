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

use core\exception\unresolved_record_reference;
use core\reference\user_record_reference;
use core\webapi\execution_context;
use core\webapi\middleware\require_authenticated_user;
use core\webapi\mutation_resolver;
use core\webapi\resolver\mutation\user_update_user;
use core_user\exception\update_user_exception;
use core_user\external\user_interactor;
use local_esrsync\exception\esrsync_exception;
use local_esrsync\local\batch;
use local_esrsync\local\reference;

/**
 * local_esrsync_update_users: many account updates, each made exactly as core_user_update_user makes one (the core
 * resolver runs per item: same reference rules, capabilities, validation, messages and events, suspension by
 * Totara's own suspend routine).
 */
class update_users extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        $items = $args['input']['items'] ?? [];
        batch::check_size($items);
        $results = batch::run($items, function (array $item) use ($ec) {
            $input = self::as_core_input($item['input']);
            if (array_keys($input) === ['suspended']) {
                // Suspending a suspended account (or the reverse) changes nothing: a resent batch is safe.
                $target = self::target($item['target_user']);
                $interactor = new user_interactor(\core\entity\user::logged_in()->id, $target->id);
                if (!$interactor->can_update_user() || !$interactor->has_user_update_capability()
                        || !$interactor->has_user_managelogin_capability()) {
                    throw new update_user_exception('You do not have capabilities to suspend a user.');
                }
                if ((bool)$target->suspended === (bool)$input['suspended']) {
                    return ['status' => batch::ALREADY, 'user' => $target];
                }
            }
            $updated = user_update_user::resolve(['target_user' => $item['target_user'], 'input' => $input], $ec);
            return ['status' => batch::DONE, 'user' => $updated['user']];
        });
        foreach ($results as &$result) {
            $result += ['user' => null];
            $result['user_id'] = $result['user'] ? $result['user']->id : null;
        }
        return ['items' => $results];
    }

    /**
     * The user a reference names, with the core update's rules and message.
     *
     * @param array $ref
     * @return \stdClass
     */
    private static function target(array $ref): \stdClass {
        try {
            return (new user_record_reference())->get_record($ref);
        } catch (unresolved_record_reference $e) {
            throw new esrsync_exception(reference::USER_NOT_FOUND);
        }
    }

    /**
     * The input as core_user_update_user_input's scalars would have made it: "" means not given for username and
     * email (param_username, param_email), and a new username must be what Totara's username cleaner keeps.
     *
     * @param array $input
     * @return array
     */
    private static function as_core_input(array $input): array {
        foreach (['username', 'email'] as $key) {
            if (array_key_exists($key, $input) && ($input[$key] === '' || $input[$key] === null)) {
                unset($input[$key]);
            }
        }
        if (isset($input['username']) && clean_param($input['username'], PARAM_USERNAME) !== $input['username']) {
            if (\core_text::strtolower($input['username']) !== $input['username']) {
                throw new esrsync_exception('The username must be in lower case');
            }
            throw new esrsync_exception('The given username contains invalid characters');
        }
        return $input;
    }

    /**
     * @return array
     */
    public static function get_middleware(): array {
        return [new require_authenticated_user()];
    }
}
