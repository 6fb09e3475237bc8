"""The user lifecycle step's own rules: what of a Totara snapshot may be stored."""
from __future__ import annotations

import pyarrow as pa

from cstf.config import Settings, TrustSettings
from cstf.inbound import InboundJob
from cstf.lifecycle import dob_digest, protect_snapshot


def job(tmp_path, **users) -> InboundJob:
    trust = TrustSettings.model_validate({"vpd": "999", "users": users} if users else {"vpd": "999"})
    return InboundJob(Settings.from_env({"CSTF_WORKDIR": str(tmp_path)}), trust, db=None)


SNAP = pa.table({"id": ["1"], "cf_esr_person_id": ["9000001"], "cf_esr_date_of_birth": ["632404800"]})


def test_dates_of_birth_are_not_stored_unless_shared(tmp_path):
    out = protect_snapshot(SNAP, job(tmp_path))
    assert out.column_names == ["id", "cf_esr_person_id"]


def test_shared_dates_of_birth_are_stored_as_keyed_digests(tmp_path):
    j = job(tmp_path, share_date_of_birth=True, owned_custom_fields={"esr_date_of_birth": "date_of_birth"})
    out = protect_snapshot(SNAP, j)
    value = out["cf_esr_date_of_birth"][0].as_py()
    assert value.startswith("hmac:") and "1990" not in value and "632404800" not in value
    key = (tmp_path / "staging" / ".digest_key").read_bytes()
    assert value == dob_digest("632404800", key)
    assert (tmp_path / "staging" / ".digest_key").stat().st_mode & 0o077 == 0  # readable by its owner only
