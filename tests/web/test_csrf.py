"""CSRF tokens and origin checks of the CSTF forms (cstf.web.csrf)."""
from __future__ import annotations

import pytest

from cstf.web import csrf

S = b"secret"


def test_a_token_is_good_for_its_user_for_a_while_only():
    t = csrf.issue(S, "lena", now=1_000_000)
    csrf.check(S, "lena", t, now=1_000_000 + csrf.MAX_AGE_S - 1)
    for user, token, now, message in (
            ("omar", t, 1_000_001, "not valid for you"),
            ("lena", t, 1_000_000 + csrf.MAX_AGE_S + 1, "expired"),
            ("lena", None, 1_000_001, "no security token"),
            ("lena", "garbage", 1_000_001, "no security token"),
            ("lena", "x." + t.split(".", 1)[1], 1_000_001, "not valid for you"),
            ("lena", "1000001." + t.split(".", 1)[1], 1_000_001, "not valid for you")):
        with pytest.raises(csrf.CsrfError, match=message):
            csrf.check(S, user, token, now=now)
    with pytest.raises(csrf.CsrfError, match="not valid"):
        csrf.check(b"other", "lena", t, now=1_000_001)


def test_requests_from_another_site_are_refused():
    csrf.check_origin("cstf.nhs.test", "https://cstf.nhs.test", None)
    csrf.check_origin("cstf.nhs.test:8080", None, "http://cstf.nhs.test:8080/cstf/mapping-admin/999")
    csrf.check_origin("cstf.nhs.test", None, None)      # neither header: the token decides
    for origin, referer in (("https://evil.test", None), (None, "https://evil.test/x"), ("null", None),
                            ("https://cstf.nhs.test.evil.test", None)):
        with pytest.raises(csrf.CsrfError):
            csrf.check_origin("cstf.nhs.test", origin, referer)


def test_the_secret_comes_from_the_environment_else_airflow_else_is_made_up():
    assert csrf.secret_from({"CSTF_WEB_SECRET_KEY": "a"}, fallback="b") == b"a"
    assert csrf.secret_from({}, fallback="b") == b"b"
    assert len(csrf.secret_from({})) == 32 and csrf.secret_from({}) != csrf.secret_from({})
