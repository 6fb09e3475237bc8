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
use local_esrsync\local\evidence_writer;

/**
 * local_esrsync_create_evidence_items: many evidence items, one result per item; a resent batch finds its source
 * keys and answers ALREADY.
 */
class create_evidence_items extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        create_evidence_item::require_capability();
        $items = $args['input']['items'] ?? [];
        batch::check_size($items);
        $writer = new evidence_writer(time());
        $results = batch::run($items, function (array $item) use ($writer) {
            $result = $writer->create($item);
            $duplicate = $result['outcome'] === evidence_writer::SKIPPED_DUPLICATE;
            return ['status' => $duplicate ? batch::ALREADY : batch::DONE] + $result;
        });
        foreach ($results as &$result) {
            $result += ['outcome' => null, 'item_id' => null];
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
