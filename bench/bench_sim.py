"""Throughput of the Totara simulator: simple mutations per second for N concurrent clients.

    .venv/bin/python bench/bench_sim.py [--seconds 5] [--clients 1 4 8]

Starts the simulator as a subprocess (faults off, rate limits off), then each client thread sends
requests over its own keep-alive session: the cheapest query (totara_webapi_status, the reference),
core_user_update_user, and local_esrsync_mark_certification_complete. Prints requests/second and the
ratio to the reference in the same run. A script, not a test; the bar is >= 300 mutations/s.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.totara.testing import running_simulator  # noqa: E402

UPDATE = ("mutation ($t: core_user_user_reference!, $i: core_user_update_user_input!) "
          "{ core_user_update_user(target_user: $t, input: $i) { user { id } } }")
STATUS = "query { totara_webapi_status { status } }"
MARK = ("mutation ($i: local_esrsync_mark_certification_complete_input!) "
        "{ local_esrsync_mark_certification_complete(input: $i) { outcome } }")


def run(handle, clients: int, seconds: float, query: str, make_vars) -> tuple[int, int, float]:
    token = handle.token()
    counts, errors = [0] * clients, [0] * clients
    stop = time.monotonic() + seconds

    def worker(n: int) -> None:
        import requests
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        i = 0
        while time.monotonic() < stop:
            resp = session.post(handle.graphql_url, json={"query": query, "variables": make_vars(n, i)},
                                headers=headers, timeout=30)
            if resp.status_code == 200 and "errors" not in resp.json():
                counts[n] += 1
            else:
                errors[n] += 1
            i += 1

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return sum(counts), sum(errors), elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            running_simulator(tmp, client_rate_limit=0, site_rate_limit=0) as handle:
        users = [{"username": f"bench{i}", "idnumber": f"B{i}", "firstname": "Bench", "lastname": str(i)}
                 for i in range(64)]
        handle.control("seed", {"users": users})
        print(f"simulator {handle.url}, {args.seconds:.0f} s per run, faults off, rate limits off")
        for clients in args.clients:
            ref, bad_ref, t_ref = run(handle, clients, args.seconds, STATUS, lambda n, i: {})
            upd, bad_upd, t_upd = run(handle, clients, args.seconds, UPDATE,
                                      lambda n, i: {"t": {"idnumber": f"B{(n * 7 + i) % 64}"},
                                                    "i": {"department": f"Ward {i % 10}"}})
            # mostly SKIPPED_DUPLICATE / ADDED_TO_HISTORY after the first call per (user, date): still a write path
            mrk, bad_mrk, t_mrk = run(handle, clients, args.seconds, MARK, lambda n, i: {"i": {
                "user": {"idnumber": f"B{(n * 7 + i) % 64}"}, "certification": {"idnumber": "CSTF-FIRE-2Y"},
                "completion_date": f"2024-{1 + i % 12:02d}-{1 + n % 28:02d}"}})
            ref_rate = ref / t_ref
            print(f"{clients:2d} clients: status query {ref_rate:6.0f}/s | core_user_update_user {upd / t_upd:6.0f}/s "
                  f"(x{upd / t_upd / ref_rate:.2f}) | mark_certification_complete {mrk / t_mrk:6.0f}/s "
                  f"(x{mrk / t_mrk / ref_rate:.2f}) | errors {bad_ref + bad_upd + bad_mrk}")

if __name__ == "__main__":
    main()
