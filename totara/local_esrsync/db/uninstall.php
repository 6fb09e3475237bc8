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

require_once(__DIR__ . '/install.php');

/**
 * Drops the read-back indexes the plugin added to Totara's completion tables.
 *
 * @return bool
 */
function xmldb_local_esrsync_uninstall() {
    global $DB;

    $dbman = $DB->get_manager();
    foreach (local_esrsync_completion_indexes() as [$table, $index]) {
        if ($dbman->index_exists($table, $index)) {
            $dbman->drop_index($table, $index);
        }
    }
    return true;
}
