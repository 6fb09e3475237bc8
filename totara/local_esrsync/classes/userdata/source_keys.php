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


namespace local_esrsync\userdata;

use totara_userdata\userdata\export;
use totara_userdata\userdata\item;
use totara_userdata\userdata\target_user;

/**
 * The source keys local_esrsync keeps for the evidence items it created for a user. The evidence items
 * themselves belong to totara_evidence's own user data items.
 */
final class source_keys extends item {

    /**
     * @param int $user_status
     * @return bool
     */
    public static function is_purgeable(int $user_status) {
        return true;
    }

    /**
     * @return bool
     */
    public static function is_exportable() {
        return true;
    }

    /**
     * @return bool
     */
    public static function is_countable() {
        return true;
    }

    /**
     * @param target_user $user
     * @param \context $context
     * @return int
     */
    protected static function purge(target_user $user, \context $context) {
        global $DB;

        $DB->delete_records('local_esrsync_evidence', ['userid' => $user->id]);
        return self::RESULT_STATUS_SUCCESS;
    }

    /**
     * @param target_user $user
     * @param \context $context
     * @return export
     */
    protected static function export(target_user $user, \context $context) {
        global $DB;

        $export = new export();
        foreach ($DB->get_records('local_esrsync_evidence', ['userid' => $user->id], 'id') as $row) {
            $export->data[] = [
                'source_key' => $row->sourcekey,
                'evidence_item_id' => $row->evidenceid,
                'time_created' => $row->timecreated,
            ];
        }
        return $export;
    }

    /**
     * @param target_user $user
     * @param \context $context
     * @return int
     */
    protected static function count(target_user $user, \context $context) {
        global $DB;

        return $DB->count_records('local_esrsync_evidence', ['userid' => $user->id]);
    }
}
