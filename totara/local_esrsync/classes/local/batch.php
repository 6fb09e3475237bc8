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


namespace local_esrsync\local;

use local_esrsync\exception\esrsync_exception;

/**
 * Runs the items of a batch call one by one, each in its own database transaction, so that one refused item
 * never undoes or stops the others. Every item gets a result: DONE, ALREADY or REJECTED with the reason.
 */
final class batch {

    /** Items per call unless the site sets local_esrsync/maxbatchsize. */
    const DEFAULT_MAX_SIZE = 500;

    /** No site setting can raise a batch above this. */
    const HARD_MAX_SIZE = 1000;

    const DONE = 'DONE';
    const ALREADY = 'ALREADY';
    const REJECTED = 'REJECTED';

    /**
     * The most items one call accepts.
     *
     * @return int
     */
    public static function max_size(): int {
        $size = (int)get_config('local_esrsync', 'maxbatchsize');
        if ($size < 1) {
            return self::DEFAULT_MAX_SIZE;
        }
        return min($size, self::HARD_MAX_SIZE);
    }

    /**
     * Refuses the whole call when it holds no item or more than the maximum.
     *
     * @param array $items
     */
    public static function check_size(array $items): void {
        $max = self::max_size();
        if (count($items) > $max) {
            throw new esrsync_exception("A maximum of {$max} items can be sent in one call.");
        }
        if (count($items) === 0) {
            throw new esrsync_exception('At least one item must be sent.');
        }
    }

    /**
     * Calls $one for every item inside a delegated transaction of its own.
     *
     * $one returns an array with at least 'status' (DONE or ALREADY); anything it throws rejects that item only
     * (its transaction is rolled back) and the message becomes the item's 'message'.
     *
     * @param array $items
     * @param callable $one function(array $item, int $index): array
     * @return array one result per item, in order, each with 'index', 'status' and 'message'
     */
    public static function run(array $items, callable $one): array {
        global $DB;

        $results = [];
        foreach (array_values($items) as $index => $item) {
            $transaction = null;
            try {
                $transaction = $DB->start_delegated_transaction();
                $result = $one($item, $index);
                $transaction->allow_commit();
                $results[] = array_merge(['message' => null], $result, ['index' => $index]);
            } catch (\Throwable $e) {
                if ($transaction !== null && !$transaction->is_disposed()) {
                    try {
                        $transaction->rollback($e);
                    } catch (\Throwable $rethrown) {
                        // Rollback rethrows the item's own exception: it is recorded below.
                    }
                }
                $results[] = ['index' => $index, 'status' => self::REJECTED, 'message' => self::message_of($e)];
            }
        }
        return $results;
    }

    /**
     * The text the External API would give as debugMessage for this exception.
     *
     * @param \Throwable $e
     * @return string
     */
    public static function message_of(\Throwable $e): string {
        if ($e instanceof \moodle_exception && !empty($e->debuginfo) && $e->getMessage() === '') {
            return (string)$e->debuginfo;
        }
        return $e->getMessage();
    }
}
