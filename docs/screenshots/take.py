"""Take the README's screenshots of the auditor pages.

    .venv/bin/python docs/screenshots/take.py [--state work/demo/state.db] [--out docs/screenshots]

Starts a real Airflow API server (its own temporary Airflow home, this repository's
plugins, one simple-auth user) over the given state DB (default: the one `make run`
writes), signs in through Airflow's login page in Debian's headless Chromium, and saves
one PNG per page at a laptop's width.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.web.live import PAGES, chromium_path, sign_in, start_api_server  # noqa: E402

VIEWPORT = {"width": 1366, "height": 800}


def _a_person_and_a_run(state: Path) -> tuple[str | None, str | None]:
    """A person with the longest history and the run with the most planned actions: pages worth showing."""
    engine = create_engine(f"sqlite:///{state}")
    with engine.connect() as conn:
        person = conn.execute(text("SELECT person_id FROM plan_actions WHERE person_id IS NOT NULL "
                                   "GROUP BY person_id ORDER BY COUNT(*) DESC, person_id LIMIT 1")).scalar()
        run = conn.execute(text("SELECT run_id FROM plan_actions GROUP BY run_id "
                                "ORDER BY COUNT(*) DESC, run_id LIMIT 1")).scalar()
    engine.dispose()
    return person, run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", type=Path, default=ROOT / "work" / "demo" / "state.db")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args(argv)
    if not args.state.exists():
        print(f"no state DB at {args.state}: run `make run` first")
        return 2
    browser_path = chromium_path()
    if browser_path is None:
        print("Chromium is not installed: apt-get install -y chromium")
        return 2
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    person, run = _a_person_and_a_run(args.state)
    shots = [(name, path) for name, path, _ in PAGES]
    if run:
        shots.append(("run", f"/runs/{run}"))
    if person:
        shots.append(("person", f"/people/{person}"))
    with tempfile.TemporaryDirectory(prefix="cstf-shots-") as home:
        server = start_api_server(Path(home), f"sqlite:///{args.state.resolve()}")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=browser_path, headless=True)
                page = browser.new_page(viewport=VIEWPORT)
                sign_in(page, server, "/cstf/")
                for name, path in shots:
                    page.goto(server.url + "/cstf" + path)
                    # The top of the page at laptop size: what a reader sees first.
                    page.screenshot(path=str(args.out / f"{name}.png"), full_page=False)
                    print(f"{args.out / (name + '.png')}  <- /cstf{path}")
                page.goto(server.url + "/plugin/cstf")
                page.wait_for_timeout(3000)  # the Airflow UI loads its navigation, then the iframe
                page.screenshot(path=str(args.out / "airflow_nav.png"))
                print(f"{args.out / 'airflow_nav.png'}  <- /plugin/cstf")
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
