"""Account creations through cstf.totara.TotaraClient against the simulator with injected latency:
one at a time vs map_concurrent at the client's default concurrency, in the same run.

    .venv/bin/python bench/bench_totara_client.py [--n 2000] [--latency-ms 20]

Prints both rates, their ratio and the 429s seen (must be 0 at Totara's default rate limits).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from cstf.totara import TotaraClient  # noqa: E402
from sim.totara.testing import running_simulator  # noqa: E402


def new_user(prefix: str, n: int) -> dict:
    return {"username": f"{prefix}{n:06d}", "idnumber": f"{prefix.upper()}-{n:06d}", "firstname": "Bench",
            "lastname": f"User{n}", "email": f"{prefix}{n:06d}@example.org", "generate_password": True}


def run(client: TotaraClient, inputs: list[dict], concurrent: bool) -> tuple[float, int]:
    """(seconds, failures)"""
    started = time.perf_counter()
    if concurrent:
        results = client.map_concurrent(client.create_user, inputs)
    else:
        results = []
        for inp in inputs:
            try:
                results.append(client.create_user(inp))
            except Exception as exc:  # noqa: BLE001 - counted, like the applier would record it
                results.append(exc)
    elapsed = time.perf_counter() - started
    return elapsed, sum(isinstance(r, Exception) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="creations per mode (default 2000)")
    parser.add_argument("--latency-ms", type=int, default=20, help="latency injected per GraphQL request")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="requests in flight (the Connection extra max_concurrency; default the client's 4)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, running_simulator(tmp) as sim:  # default (Totara's) rate limits
        sim.control("faults", {"latency_ms": args.latency_ms})
        serial = TotaraClient(sim.url, sim.client_id, sim.client_secret)
        parallel = TotaraClient(sim.url, sim.client_id, sim.client_secret,
                                **({"max_concurrency": args.concurrency} if args.concurrency else {}))
        serial.status(), parallel.status()  # tokens first: not part of the measurement

        t_serial, f_serial = run(serial, [new_user("seq", i) for i in range(args.n)], concurrent=False)
        t_parallel, f_parallel = run(parallel, [new_user("par", i) for i in range(args.n)], concurrent=True)

        rate_serial, rate_parallel = args.n / t_serial, args.n / t_parallel
        too_many = serial.stats["rate_limited"] + parallel.stats["rate_limited"]
        print(f"creations per mode: {args.n}, injected latency: {args.latency_ms} ms, "
              f"concurrency: {parallel.max_concurrency}")
        print(f"one at a time : {rate_serial:8.1f} users/s ({t_serial:.1f} s, {f_serial} failed)")
        print(f"map_concurrent: {rate_parallel:8.1f} users/s ({t_parallel:.1f} s, {f_parallel} failed)")
        print(f"ratio concurrent/serial: {rate_parallel / rate_serial:.2f}x")
        print(f"HTTP 429 seen: {too_many}; retries: {serial.stats['retries'] + parallel.stats['retries']}")
        serial.close(), parallel.close()
        if too_many or f_serial or f_parallel:
            sys.exit(1)


if __name__ == "__main__":
    main()
