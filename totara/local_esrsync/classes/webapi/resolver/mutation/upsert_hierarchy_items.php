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
use local_esrsync\local\batch;
use local_esrsync\local\hierarchy_writer;

/**
 * local_esrsync_upsert_hierarchy_items: positions or organisations of one framework (made when missing) created or
 * updated by idnumber through Totara's hierarchy functions; nothing deleted; one result per item. Capabilities:
 * totara/hierarchy:create{prefix}frameworks for a missing framework (the call), create{prefix} / update{prefix}
 * per item, in the system context.
 */
class upsert_hierarchy_items extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        $items = $args['items'] ?? [];
        batch::check_size($items);
        $writer = new hierarchy_writer((string)$args['kind']);
        $writer->use_framework((string)($args['framework_idnumber'] ?? ''));
        $results = batch::run($items, function (array $item) use ($writer) {
            return $writer->upsert($item);
        });
        foreach ($results as &$result) {
            $result += ['id' => null];
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
