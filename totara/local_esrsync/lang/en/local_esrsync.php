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

$string['pluginname'] = 'ESR CSTF sync';

$string['esrsync:markcomplete'] = 'Record certification completions through the ESR sync API';
$string['esrsync:createevidence'] = 'Create evidence bank items through the ESR sync API';
$string['esrsync:viewcompletions'] = 'View certification completions through the ESR sync API';

$string['maxbatchsize'] = 'Maximum items per batch call';
$string['maxbatchsize_desc'] = 'The most items one batch mutation accepts (1 to 1000). Larger requests are refused as a whole; each item of an accepted batch gets its own result.';
$string['settings'] = 'ESR CSTF sync';
$string['settings_intro'] = 'This plugin adds operations to Totara\'s External API (Development > API) for the ESR to Totara CSTF interface: users by idnumber, username or change time; certification completions recorded with the Upload Completion Records rules; evidence bank items created once per source key; completions read back; the certifications listed. Give its capabilities to the role of the API client\'s service account.';

$string['userdataitemsource_keys'] = 'ESR sync evidence source keys';
