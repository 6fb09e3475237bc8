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
use local_esrsync\exception\esrsync_exception;
use local_esrsync\local\certification_completer;
use local_esrsync\local\completion_reader;

/**
 * local_esrsync_mark_certification_complete: one completion, Upload Completion Records' rules (see
 * certification_completer). Errors are the call's errors.
 */
class mark_certification_complete extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        global $DB;

        self::require_capability();
        $completer = new certification_completer(time());
        try {
            $transaction = $DB->start_delegated_transaction();
            $result = $completer->mark($args['input']);
            $transaction->allow_commit();
        } finally {
            $completer->release();
        }
        return [
            'outcome' => $result['outcome'],
            'assignment_created' => $result['assignment_created'],
            'record' => completion_reader::row($result['record'][0], $result['record'][1]),
            'current' => completion_reader::row('current', $result['current']),
        ];
    }

    /**
     * The caller may record completions (system context).
     */
    public static function require_capability(): void {
        if (!has_capability('local/esrsync:markcomplete', \context_system::instance())) {
            throw new esrsync_exception('You do not have capabilities to mark certification completions.');
        }
    }

    /**
     * @return array
     */
    public static function get_middleware(): array {
        return [new require_authenticated_user()];
    }
}
