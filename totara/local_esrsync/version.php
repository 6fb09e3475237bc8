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

$plugin->version   = 2026120500;       // YYYYMMDDXX.
$plugin->requires  = 2022110800;       // Totara 17.
$plugin->component = 'local_esrsync';
$plugin->maturity  = MATURITY_STABLE;
$plugin->release   = '1.4.0';
