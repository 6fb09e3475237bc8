"""Shared helpers of the simulator conformance tests (unique module name: no package here)."""
from __future__ import annotations


class Api:
    """Thin GraphQL caller over a SimHandle that caches one token."""

    def __init__(self, handle):
        self.handle = handle
        self._token = None

    def token(self) -> str:
        if self._token is None:
            self._token = self.handle.token()
        return self._token

    def call(self, query: str, variables: dict | None = None, **extra):
        status, body = self.handle.graphql(query, variables, token=self.token(), **extra)
        if isinstance(body, dict) and "Missing, expired or invalid access token" in str(body.get("errors")):
            self._token = None  # the clock moved past the token's lifetime: renew once, as a client does
            status, body = self.handle.graphql(query, variables, token=self.token(), **extra)
        return status, body

    def ok(self, query: str, variables: dict | None = None) -> dict:
        status, body = self.call(query, variables)
        assert status == 200 and "errors" not in body, body
        return body["data"]

    def error(self, query: str, variables: dict | None = None) -> dict:
        """The first error object of a failing call (HTTP 200)."""
        status, body = self.call(query, variables)
        assert status == 200 and body.get("errors"), body
        return body["errors"][0]

    def debug(self, query: str, variables: dict | None = None) -> str:
        return self.error(query, variables)["debugMessage"]




CREATE = ("mutation ($input: core_user_create_user_input!) { core_user_create_user(input: $input) "
          "{ user { id username idnumber email suspended custom_fields { shortname data data_format data_type } } } }")
UPDATE = ("mutation ($target_user: core_user_user_reference!, $input: core_user_update_user_input!) "
          "{ core_user_update_user(target_user: $target_user, input: $input) "
          "{ user { id username idnumber email suspended firstname custom_fields { shortname data data_type } } } }")
DELETE = ("mutation ($target_user: core_user_user_reference!) { core_user_delete_user(target_user: $target_user) "
          "{ user_id } }")
USERS = ("query ($q: core_user_users_query) { core_user_users(query: $q) "
         "{ items { id username lastname } total next_cursor } }")
MARK = ("mutation ($i: local_esrsync_mark_certification_complete_input!) { local_esrsync_mark_certification_complete"
        "(input: $i) { outcome assignment_created record { id is_history state time_completed time_expires "
        "time_window_opens } current { id state status renewal_status certif_path time_completed time_window_opens "
        "time_expires baseline_time_expires time_modified } } }")
NOT_FOUND = ("There was a problem finding a single user record match or you do not have sufficient "
             "capabilities.")


def new_user(n: int = 1, **extra) -> dict:
    """A valid create input."""
    user = {"username": f"user{n}", "idnumber": f"ID-{n:04d}", "firstname": "Test", "lastname": f"User{n}",
            "email": f"user{n}@example.org", "generate_password": True}
    user.update(extra)
    return user


def seed_users(sim, count: int, **extra) -> list[int]:
    """Insert users straight into the simulator's database (fast set-up)."""
    users = [{"username": f"seed{i:03d}", "idnumber": f"S{i:03d}", "firstname": "Seed", "lastname": f"L{i:03d}",
              **extra} for i in range(count)]
    return sim.control("seed", {"users": users})["users"]


def mark(api, idnumber: str, cert: str, date: str, **extra) -> dict:
    """local_esrsync_mark_certification_complete; returns the result object."""
    inp = {"user": {"idnumber": idnumber}, "certification": {"idnumber": cert}, "completion_date": date, **extra}
    return api.ok(MARK, {"i": inp})["local_esrsync_mark_certification_complete"]


def fixture_variant(tmp_path, change) -> str:
    """The default fixture with one change applied, written to a file; pass to /_sim/reset."""
    import yaml

    from sim.totara.store import DEFAULT_FIXTURE
    fx = yaml.safe_load(DEFAULT_FIXTURE.read_text())
    change(fx)
    path = tmp_path / "fixture-variant.yaml"
    path.write_text(yaml.safe_dump(fx))
    return str(path)


def extra_profile_fields(fx) -> None:
    """Add one profile field of each remaining type (checkbox, textarea, datetime with/without time)."""
    fx["profile_fields"] += [
        {"shortname": "consent", "name": "Consent", "datatype": "checkbox"},
        {"shortname": "notes", "name": "Notes", "datatype": "textarea"},
        {"shortname": "lastcheck", "name": "Last check", "datatype": "datetime", "param1": 2000, "param2": 2050,
         "param3": 1},
        {"shortname": "reviewday", "name": "Review day", "datatype": "datetime", "param1": 2000, "param2": 2050,
         "param3": 0},
        {"shortname": "badge", "name": "Badge", "datatype": "text", "param1": 5, "param2": 5},
    ]
