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
use local_esrsync\local\certification_completer;
use local_esrsync\local\completion_reader;

/**
 * local_esrsync_mark_certifications_complete: many completions, in the order given, one result per item; a refused
 * item changes nothing and does not stop the others. Resending a batch is safe (duplicates come back ALREADY).
 */
class mark_certifications_complete extends mutation_resolver {

    /**
     * @param array $args
     * @param execution_context $ec
     * @return array
     */
    public static function resolve(array $args, execution_context $ec) {
        mark_certification_complete::require_capability();
        $items = $args['input']['items'] ?? [];
        batch::check_size($items);
        $completer = new certification_completer(time());
        try {
            $completer->prepare($items);
            $results = batch::run($items, function (array $item) use ($completer) {
                $result = $completer->mark($item);
                $duplicate = $result['outcome'] === certification_completer::SKIPPED_DUPLICATE;
                return [
                    'status' => $duplicate ? batch::ALREADY : batch::DONE,
                    'outcome' => $result['outcome'],
                    'assignment_created' => $result['assignment_created'],
                    'current_id' => $result['current'],
                ];
            });
        } finally {
            $completer->release();
        }
        // The current rows are read only when the caller asked for them.
        $info = $ec->get_resolve_info();
        $selection = $info ? $info->getFieldSelection(2) : [];
        $want_current = !empty($selection['items']['current']);
        foreach ($results as &$result) {
            $result += ['outcome' => null, 'assignment_created' => false, 'current' => null];
            if ($want_current && !empty($result['current_id'])) {
                $result['current'] = completion_reader::row('current', $result['current_id']);
            }
            unset($result['current_id']);
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
