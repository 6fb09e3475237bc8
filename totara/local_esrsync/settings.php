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


defined('MOODLE_INTERNAL') || die;

if ($hassiteconfig) {
    $settings = new admin_settingpage('local_esrsync', new lang_string('settings', 'local_esrsync'));
    $ADMIN->add('localplugins', $settings);

    $settings->add(new admin_setting_heading('local_esrsync/intro', '',
        new lang_string('settings_intro', 'local_esrsync')));
    $settings->add(new admin_setting_configtext_with_maxlength('local_esrsync/maxbatchsize',
        new lang_string('maxbatchsize', 'local_esrsync'),
        new lang_string('maxbatchsize_desc', 'local_esrsync'),
        \local_esrsync\local\batch::DEFAULT_MAX_SIZE, PARAM_INT, null, 4));
}
