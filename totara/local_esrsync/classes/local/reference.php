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

use core\exception\unresolved_record_reference;
use core\reference\user_record_reference;
use local_esrsync\exception\esrsync_exception;

/**
 * Finds the user, certification or evidence type an input names, with the core API's rules and messages.
 */
final class reference {

    /** The core user API's text for any user reference that does not resolve. */
    const USER_NOT_FOUND = 'There was a problem finding a single user record match or you do not have sufficient capabilities.';

    /**
     * A core_user_user_reference: all given fields must match one non-deleted user the caller may see
     * (suspended users included), as core_user_update_user resolves its target.
     *
     * @param array|null $ref
     * @return \stdClass the user record
     */
    public static function user(?array $ref): \stdClass {
        try {
            return (new user_record_reference())->get_record(self::given($ref));
        } catch (unresolved_record_reference $e) {
            throw new esrsync_exception(self::USER_NOT_FOUND);
        } catch (\coding_exception $e) {
            // An empty reference.
            throw new esrsync_exception(self::USER_NOT_FOUND);
        }
    }

    /**
     * A local_esrsync_certification_reference: every given field (trimmed; shortname case-sensitive) must match
     * exactly one program that is a certification.
     *
     * @param array|null $ref
     * @return \stdClass prog.id as progid, prog.idnumber, prog.shortname, prog.fullname and the certif row's
     *                   id as certifid, recertifydatetype, activeperiod, minimumactiveperiod, windowperiod
     */
    public static function certification(?array $ref): \stdClass {
        global $DB;

        $message = 'Certification reference must identify exactly one certification.';
        $given = self::given($ref);
        if (!$given) {
            throw new esrsync_exception($message);
        }
        $where = [];
        $params = [];
        foreach ($given as $column => $value) {
            if (!in_array($column, ['id', 'idnumber', 'shortname'], true)) {
                throw new esrsync_exception($message);
            }
            $where[] = "p.{$column} = :{$column}";
            $params[$column] = $column === 'id' ? (int)$value : trim((string)$value);
        }
        $sql = "SELECT p.id AS progid, p.idnumber, p.shortname, p.fullname, c.id AS certifid, c.recertifydatetype,
                       c.activeperiod, c.minimumactiveperiod, c.windowperiod
                  FROM {prog} p
                  JOIN {certif} c ON c.id = p.certifid
                 WHERE " . implode(' AND ', $where);
        $rows = $DB->get_records_sql($sql, $params, 0, 2);
        if (count($rows) !== 1) {
            throw new esrsync_exception($message);
        }
        return reset($rows);
    }

    /**
     * A local_esrsync_evidence_type_reference naming one active evidence bank type.
     *
     * @param array|null $ref
     * @return \totara_evidence\models\evidence_type
     */
    public static function evidence_type(?array $ref): \totara_evidence\models\evidence_type {
        global $DB;

        $given = self::given($ref);
        $conditions = [];
        foreach ($given as $column => $value) {
            if (!in_array($column, ['id', 'idnumber'], true)) {
                $conditions = [];
                break;
            }
            $conditions[$column] = $column === 'id' ? (int)$value : (string)$value;
        }
        $rows = $conditions ? $DB->get_records('totara_evidence_type', $conditions, 'id', 'id, location, status', 0, 2) : [];
        if (count($rows) !== 1) {
            throw new esrsync_exception('Evidence type reference must identify exactly one evidence type.');
        }
        $row = reset($rows);
        if ((int)$row->status !== \totara_evidence\models\evidence_type::STATUS_ACTIVE
                || (int)$row->location !== \totara_evidence\models\evidence_type::LOCATION_EVIDENCE_BANK) {
            throw new esrsync_exception('The evidence type must be an active evidence bank type.');
        }
        return \totara_evidence\models\evidence_type::load_by_id($row->id);
    }

    /**
     * The reference's fields that were given (not null).
     *
     * @param array|null $ref
     * @return array
     */
    private static function given(?array $ref): array {
        return array_filter($ref ?? [], function ($value) {
            return $value !== null;
        });
    }
}
