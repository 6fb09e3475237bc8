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

defined('MOODLE_INTERNAL') || die();

/**
 * Days as the job assignment and hierarchy operations take and give them: "YYYY-MM-DD" is midnight in the site's
 * timezone (Totara's server timezone, Europe/London on an NHS site).
 */
final class dates {

    /**
     * @param mixed $value "YYYY-MM-DD" or null
     * @param string $field the input field, for the message
     * @return int|null the timestamp of its midnight in the site's timezone
     */
    public static function parse($value, string $field): ?int {
        if ($value === null) {
            return null;
        }
        $message = "{$field}: Date format should be YYYY-MM-DD.";
        if (!is_string($value) || !preg_match('/^\d{4}-\d{2}-\d{2}$/', $value)) {
            throw new esrsync_exception($message);
        }
        $date = \DateTime::createFromFormat('!Y-m-d', $value, \core_date::get_server_timezone_object());
        if (!$date || $date->format('Y-m-d') !== $value) {
            throw new esrsync_exception($message);
        }
        return $date->getTimestamp();
    }

    /**
     * @param int|string|null $timestamp
     * @return string|null "YYYY-MM-DD" in the site's timezone; null for none (null or 0)
     */
    public static function format($timestamp): ?string {
        if (empty($timestamp)) {
            return null;
        }
        $date = new \DateTime('@' . (int)$timestamp);
        $date->setTimezone(\core_date::get_server_timezone_object());
        return $date->format('Y-m-d');
    }
}
