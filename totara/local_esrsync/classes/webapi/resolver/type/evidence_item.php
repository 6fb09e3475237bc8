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


namespace local_esrsync\webapi\resolver\type;

use core\date_format;
use core\webapi\execution_context;
use core\webapi\formatter\field\date_field_formatter;
use core\webapi\type_resolver;

/**
 * local_esrsync_evidence_item: an evidence item made through local_esrsync (the source is its id).
 */
class evidence_item extends type_resolver {

    /**
     * @param string $field
     * @param int $id
     * @param array $args
     * @param execution_context $ec
     * @return mixed
     */
    public static function resolve(string $field, $id, array $args, execution_context $ec) {
        global $DB;

        $item = $DB->get_record_sql(
            "SELECT i.*, t.idnumber AS type_idnumber, s.sourcekey
               FROM {totara_evidence_item} i
               JOIN {totara_evidence_type} t ON t.id = i.typeid
          LEFT JOIN {local_esrsync_evidence} s ON s.evidenceid = i.id
              WHERE i.id = :id", ['id' => (int)$id], MUST_EXIST);
        switch ($field) {
            case 'id':
                return $item->id;
            case 'name':
                return $item->name;
            case 'type_id':
                return $item->typeid;
            case 'type_idnumber':
                return $item->type_idnumber;
            case 'user_id':
                return $item->user_id;
            case 'source_key':
                return (string)$item->sourcekey;
            case 'imported':
                return (bool)$item->imported;
            case 'created_at':
                $format = $args['format'] ?? date_format::FORMAT_TIMESTAMP;
                return (new date_field_formatter($format, \context_system::instance()))->format((int)$item->created_at);
            case 'custom_fields':
                $fields = [];
                $sql = "SELECT f.shortname, f.datatype, d.data
                          FROM {totara_evidence_type_info_data} d
                          JOIN {totara_evidence_type_info_field} f ON f.id = d.fieldid
                         WHERE d.evidenceid = :id
                      ORDER BY f.sortorder, f.id";
                foreach ($DB->get_records_sql($sql, ['id' => $item->id]) as $row) {
                    $fields[] = ['shortname' => $row->shortname, 'data' => $row->data,
                        'data_type' => \core_text::strtoupper($row->datatype)];
                }
                return $fields;
        }
        throw new \coding_exception('Unknown field ' . $field);
    }
}
