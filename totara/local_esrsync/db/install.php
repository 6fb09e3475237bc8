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


defined('MOODLE_INTERNAL') || die();

/**
 * Indexes local_esrsync_certification_completions reads by: time modified, then id, on the current and history
 * completion tables. Without them every page of a full read-back scans the whole table.
 *
 * @return array xmldb_table => xmldb_index
 */
function local_esrsync_completion_indexes(): array {
    $indexes = [];
    foreach (['certif_completion', 'certif_completion_history'] as $table) {
        $indexes[] = [new xmldb_table($table), new xmldb_index('esrsynctimemod', XMLDB_INDEX_NOTUNIQUE, ['timemodified', 'id'])];
    }
    return $indexes;
}

/**
 * Adds the read-back indexes.
 *
 * @return bool
 */
function xmldb_local_esrsync_install() {
    global $DB;

    $dbman = $DB->get_manager();
    foreach (local_esrsync_completion_indexes() as [$table, $index]) {
        if (!$dbman->index_exists($table, $index)) {
            $dbman->add_index($table, $index);
        }
    }
    return true;
}
