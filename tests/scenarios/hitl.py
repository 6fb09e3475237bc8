"""Answering Airflow's Required Actions from a test: dag.test() keeps a human-in-the-loop task waiting until a
response is recorded from outside, which this does the way Airflow's REST API does it (the same route function,
PATCH .../hitlDetails, with a signed-in user)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Person:
    """What Airflow's auth manager hands the route: a user with an id and a name."""
    id: str
    name: str

    def get_id(self) -> str:
        return self.id

    def get_name(self) -> str:
        return self.name


@dataclass
class Responder:
    """Answers every waiting Required Action of `dag_id` with `option` (and `note`) while running."""
    dag_id: str
    option: str = "Approve"
    note: str = ""
    user: Person = field(default_factory=lambda: Person("42", "Ada Admin"))
    answered: list = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "Responder":
        self._thread = threading.Thread(target=self._run, name="hitl-responder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        while not self._stop.is_set():
            with create_session() as session:
                waiting = session.scalars(select(TaskInstance).where(
                    TaskInstance.dag_id == self.dag_id,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).all()
                for ti in waiting:
                    update_hitl_detail(
                        dag_id=ti.dag_id, dag_run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index,
                        update_hitl_detail_payload=UpdateHITLDetailPayload(
                            chosen_options=[self.option], params_input={"note": self.note}),
                        user=self.user, session=session)
                    self.answered.append((ti.task_id, ti.map_index))
            time.sleep(0.3)
