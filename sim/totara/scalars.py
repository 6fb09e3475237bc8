"""Totara's custom GraphQL scalars (§5.1, §3.3) with their coercion rules.

Input errors raise ScalarError("Invalid parameter value detected"), the text Totara's param_* scalars use.
"""
from __future__ import annotations

import re
from datetime import date, datetime

from graphql import GraphQLScalarType, ValueNode
from graphql.language import BooleanValueNode, FloatValueNode, IntValueNode, NullValueNode, StringValueNode

from .certmath import TZ
from .users import clean_username, valid_email

INVALID = "Invalid parameter value detected"


class ScalarError(ValueError):
    pass


def _literal(node: ValueNode, parse):
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, IntValueNode):
        return parse(int(node.value))
    if isinstance(node, (StringValueNode, FloatValueNode)):
        return parse(node.value)
    if isinstance(node, BooleanValueNode):
        return parse(node.value)
    raise ScalarError(INVALID)


def _numeric(value) -> int:
    if isinstance(value, bool):
        raise ScalarError(INVALID)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    raise ScalarError(INVALID)


def parse_core_id(value):
    if value is None or value == "":
        return None
    number = _numeric(value)
    if number < 0:
        raise ScalarError(INVALID)
    return number


def serialize_core_id(value):
    if value in (None, "", 0, "0"):
        return None
    return str(value)


def parse_param_email(value):
    if not isinstance(value, str):
        raise ScalarError(INVALID)
    if value == "":
        return None
    if not valid_email(value):
        raise ScalarError(INVALID)
    return value


def parse_param_username(value):
    if not isinstance(value, str):
        raise ScalarError(INVALID)
    if value == "":
        return None
    if clean_username(value) != value:
        raise ScalarError(INVALID)
    return value


def parse_param_integer(value):
    if value is None:
        return None
    return _numeric(value)


def parse_core_date(value):
    """Timestamp (int or numeric string) or a date/time string in the service account's timezone."""
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, bool):
        raise ScalarError(INVALID)
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ScalarError(INVALID)
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = date.fromisoformat(text)
            return int(datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp())
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScalarError(INVALID)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=TZ)
    return int(parsed.timestamp())


def serialize_core_date(value):
    if value in (None, "", 0, "0"):
        return None
    return str(value)


def _passthrough(value):
    return value


SCALARS = {
    "core_id": (serialize_core_id, parse_core_id),
    "param_email": (_passthrough, parse_param_email),
    "param_username": (_passthrough, parse_param_username),
    "param_integer": (_passthrough, parse_param_integer),
    "core_date": (serialize_core_date, parse_core_date),
}


def install(schema) -> None:
    """Attach the coercion functions to the scalars declared in the SDL."""
    for name, (serialize, parse) in SCALARS.items():
        scalar: GraphQLScalarType = schema.type_map[name]
        # graphql-core 3.3 reads the coerce_* names; older code paths the serialize/parse_* ones.
        scalar.serialize = scalar.coerce_output_value = serialize
        scalar.parse_value = scalar.coerce_input_value = parse
        scalar.parse_literal = lambda node, _vars=None, parse=parse: _literal(node, parse)
        scalar.coerce_input_literal = lambda node, *_, parse=parse: _literal(node, parse)


def format_date(ts, fmt: str | None):
    """core_date_format output: TIMESTAMP (string), ISO8601 and a few readable forms, in Europe/London."""
    if ts in (None, 0, "", "0"):
        return None
    if fmt in (None, "TIMESTAMP"):
        return str(ts)
    t = datetime.fromtimestamp(int(ts), TZ)
    patterns = {
        "ISO8601": "%Y-%m-%dT%H:%M:%S%z", "DATE": "%d/%m/%Y", "DATESHORT": "%d/%m/%y", "DATELONG": "%d %B %Y",
        "DATETIME": "%d/%m/%Y, %H:%M", "DATETIMESHORT": "%d/%m/%y, %H:%M", "DATETIMELONG": "%d %B %Y, %H:%M",
        "DATETIMESECONDS": "%d/%m/%Y, %H:%M:%S", "TIME": "%H:%M", "TIMESHORT": "%H:%M",
        "DAYDATETIME": "%A, %d %B %Y, %H:%M",
    }
    # ISO8601 is PHP's DATE_ISO8601 ("Y-m-d\TH:i:sO"): the offset without a colon, "+0100" (seen on a real 17.3 site).
    return t.strftime(patterns.get(fmt, "%Y-%m-%dT%H:%M:%S%z"))
