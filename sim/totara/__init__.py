"""Totara Learn 17 API simulator (never deployed). See README.md in this folder.

Start it with ``python -m sim.totara --port 0 --db PATH`` or, from tests,
``sim.totara.testing.running_simulator(tmp_path, **options)``. The ``local_esrsync_*`` operations are
our extension, not core Totara.
"""
