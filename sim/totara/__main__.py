"""python -m sim.totara --port 0 --db PATH [...]: prints the base URL on one stdout line, serves until killed."""
from __future__ import annotations

import argparse
import json
import sys

from .server import SimServer
from .site import Site

BANNER = ("Totara Learn 17 SIMULATOR (not a real Totara site). local_esrsync is OUR EXTENSION, NOT CORE TOTARA: "
          "{state}.")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim.totara", description="Totara 17 API simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = a free port")
    p.add_argument("--db", default=":memory:", help="SQLite file, or :memory:")
    p.add_argument("--fixture", help="YAML/JSON seed (default: sim/totara/fixtures/default.yaml)")
    p.add_argument("--client-rate-limit", type=int)
    p.add_argument("--site-rate-limit", type=int)
    p.add_argument("--token-lifetime", type=int)
    p.add_argument("--enable-control", action="store_true", help="serve the test-only /_sim/ endpoints")
    p.add_argument("--keep", action="store_true", help="reuse an already seeded --db file instead of re-seeding")
    p.add_argument("--no-esrsync", action="store_true", help="behave like a site without local_esrsync")
    p.add_argument("--settings", help="JSON object of further site settings (see settings.py)")
    return p.parse_args(argv)


def overrides_from(args) -> dict:
    overrides = json.loads(args.settings) if args.settings else {}
    for key in ("client_rate_limit", "site_rate_limit", "token_lifetime"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.no_esrsync:
        overrides["esrsync_enabled"] = False
    return overrides


def main(argv=None) -> None:
    args = parse_args(argv)
    site = Site(args.db, args.fixture, overrides_from(args), keep=args.keep)
    server = SimServer(site, host=args.host, port=args.port, enable_control=args.enable_control)
    state = "installed" if site.settings["esrsync_enabled"] else "switched off"
    print(BANNER.format(state=state), file=sys.stderr, flush=True)
    if args.enable_control:
        print("Test control API enabled under /_sim/", file=sys.stderr, flush=True)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
