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

defined('MOODLE_INTERNAL') || die();

global $CFG;
require_once($CFG->dirroot . '/totara/certification/lib.php');

/**
 * Reads the site's certifications (programs with a certification: prog joined to certif on prog.certifid) for
 * local_esrsync_certifications, in program id order. Read-only.
 */
final class certification_reader {

    /** Names of Totara's recertification date types (certif.recertifydatetype, the CERTIFRECERT_* constants). */
    const RECERTIFY_TYPE_NAMES = [
        CERTIFRECERT_UNSET => 'unset',
        CERTIFRECERT_COMPLETION => 'completion',
        CERTIFRECERT_EXPIRY => 'expiry',
        CERTIFRECERT_FIXED => 'fixed',
    ];

    /** Tags that separate words: replaced by a space before the other tags are removed. */
    const BREAKING_TAGS = '~<(?:br|hr|/?(?:p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|blockquote|pre|section))\b[^>]*>~i';

    /**
     * Every certification, shaped as local_esrsync_certification (which has no type resolver, so its fields cost
     * nothing beyond the query: the list needs no paging).
     *
     * @return array[]
     */
    public static function all(): array {
        global $DB;

        $sql = "SELECT p.id, p.certifid, p.idnumber, p.shortname, p.fullname, p.summary, p.visible,
                       c.activeperiod, c.windowperiod, c.recertifydatetype
                  FROM {prog} p
                  JOIN {certif} c ON c.id = p.certifid
              ORDER BY p.id";
        $items = [];
        foreach ($DB->get_records_sql($sql) as $row) {
            $type = (int)$row->recertifydatetype;
            $items[] = [
                'id' => $row->id,
                'certifid' => $row->certifid,
                'idnumber' => (string)$row->idnumber,
                'shortname' => (string)$row->shortname,
                'fullname' => (string)$row->fullname,
                'summary' => self::plain_text($row->summary),
                'visible' => (bool)$row->visible,
                'active_period' => $row->activeperiod,
                'window_period' => $row->windowperiod,
                'recertify_type' => $type,
                'recertify_type_name' => self::RECERTIFY_TYPE_NAMES[$type] ?? 'unknown',
            ];
        }
        return $items;
    }

    /**
     * A summary as plain text: tags that separate words become spaces, other tags are removed, entities decoded,
     * runs of white space made one space, trimmed. Null when nothing is left.
     *
     * @param string|null $html
     * @return string|null
     */
    public static function plain_text(?string $html): ?string {
        if ($html === null || $html === '') {
            return null;
        }
        $text = preg_replace(self::BREAKING_TAGS, ' ', $html) ?? $html;
        $text = html_entity_decode(strip_tags($text), ENT_QUOTES | ENT_HTML5, 'UTF-8');
        $text = trim(preg_replace('~[ \t\n\r\f\x0B\x{00A0}]+~u', ' ', $text) ?? $text);
        return $text === '' ? null : $text;
    }
}
