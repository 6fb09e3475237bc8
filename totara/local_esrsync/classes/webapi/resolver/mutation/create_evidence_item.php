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
use local_esrsync\local\evidence_writer;

/**
 * local_esrsync_create_evidence_item: an evidence bank item, once per source key.
 */
class create_evidence_item extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        global $DB;

        self::require_capability();
        $transaction = $DB->start_delegated_transaction();
        $result = (new evidence_writer(time()))->create($args['input']);
        $transaction->allow_commit();
        return ['outcome' => $result['outcome'], 'item' => $result['item_id']];
    }

    /**
     * The caller may create evidence (system context; Totara's evidence model checks its own capability too).
     */
    public static function require_capability(): void {
        if (!has_capability('local/esrsync:createevidence', \context_system::instance())) {
            throw new esrsync_exception('You do not have capabilities to create evidence.');
        }
    }

    /**
     * @return array
     */
    public static function get_middleware(): array {
        return [new require_authenticated_user()];
    }
}
