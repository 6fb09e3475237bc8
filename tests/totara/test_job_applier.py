"""JobApplier: hierarchy first, then job assignments level by level (managers before their reports), one outcome per
action, held and done actions left alone, a refused item rejected with Totara's reason, a failed call failing only
its own batch. A recording client stands in for Totara (the simulator's operations have their own conformance)."""
from __future__ import annotations

import json
import threading

from cstf.applier import JobApplier, job_levels
from cstf.totara.errors import TotaraTransientError


class Recorder:
    def __init__(self, refuse=(), fail_idnumbers=()):
        self.calls, self.refuse, self.fail = [], set(refuse), set(fail_idnumbers)
        self.lock = threading.Lock()

    def max_batch(self):
        return 2

    def map_concurrent(self, fn, units):
        return [fn(u) for u in units]

    def upsert_hierarchy_items(self, kind, framework, items):
        with self.lock:
            self.calls.append((kind, [i["idnumber"] for i in items]))
        return [{"index": n, "status": "DONE", "id": n + 1} for n, _ in enumerate(items)]

    def upsert_job_assignments(self, items):
        with self.lock:
            self.calls.append(("jobs", [i["idnumber"] for i in items]))
        if self.fail & {i["idnumber"] for i in items}:
            raise TotaraTransientError("timed out", "TRANSIENT")
        return [{"index": n, "status": "REJECTED" if i["idnumber"] in self.refuse else "DONE", "id": n + 10,
                 "message": "no position with idnumber X" if i["idnumber"] in self.refuse else None}
                for n, i in enumerate(items)]


def job(aid, user, idn, manager=None, **kw):
    payload = {"user": {"id": user}, "idnumber": idn, "manager": {"user_id": manager[0], "ja_idnumber": manager[1]}
               if manager else None}
    return {"action_id": aid, "kind": kw.pop("kind", "create_job"), "payload": json.dumps(payload), **kw}


def item(aid, kind, idn):
    return {"action_id": aid, "kind": f"upsert_{kind}", "payload": json.dumps(
        {"kind": kind.upper(), "framework_idnumber": "ESR-999-ORG", "item": {"idnumber": idn}})}


def test_order_levels_outcomes_and_faults():
    plan = [item("o1", "organisation", "500000"), item("o2", "organisation", "500100"), item("p1", "position", "700100"),
            job("j9", "u9", "90"), job("j1", "u1", "10", manager=("u9", "90")), job("j2", "u2", "20", manager=("u1", "10")),
            job("j3", "u3", "30", manager=("u9", "90")), job("jx", "u4", "40", held=True),
            job("jd", "u5", "50"), job("jr", "u6", "60", manager=("u7", "70"))]
    client = Recorder(refuse={"60"})
    recorded = []
    out = JobApplier(client).apply(plan, done={"jd"}, record=recorded.extend)
    assert client.calls == [("ORGANISATION", ["500000", "500100"]), ("POSITION", ["700100"]),
                            ("jobs", ["90", "60"]), ("jobs", ["10", "30"]), ("jobs", ["20"])]
    assert [o.action_id for o in out] == ["o1", "o2", "p1", "j9", "j1", "j2", "j3", "jr"]   # held and done left alone
    rejected = {o.action_id: o.message for o in out if o.status == "rejected"}
    assert rejected == {"jr": "no position with idnumber X"} and len(recorded) == len(out)
    failing = Recorder(fail_idnumbers={"10"})
    out = {o.action_id: o.status for o in JobApplier(failing).apply(plan[3:7], done=set(), record=lambda _b: None)}
    assert out == {"j9": "done", "j1": "failed", "j3": "failed", "j2": "done"}


def test_levels_follow_the_plans_managers():
    levels = job_levels([job("a", "u1", "1"), job("b", "u2", "2", manager=("u1", "1")),
                         job("c", "u3", "3", manager=("u2", "2")), job("d", "u4", "4", manager=("u8", "8"))])
    assert [[a["action_id"] for a in lv] for lv in levels] == [["a", "d"], ["b"], ["c"]]
