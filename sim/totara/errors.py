"""Exceptions raised by resolvers and the request pipeline, and Totara's HTML-escaping quirk (§3.7)."""
from __future__ import annotations


def esc(text: str) -> str:
    """PHP htmlspecialchars as applied to free-text moodle_exception messages."""
    return (str(text).replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#039;")
            .replace("<", "&lt;").replace(">", "&gt;"))


class ApiError(Exception):
    """A business/validation error in a resolver: category internal, text in debugMessage."""

    def __init__(self, message: str, escape: bool = False):
        super().__init__(esc(message) if escape else message)
        self.message = self.args[0]


class RequestError(Exception):
    """A request or authentication failure: category internal, no locations/path, site error level."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


NOT_FOUND = ("There was a problem finding a single user record match or you do not have sufficient "
             "capabilities.")
CODING = "Coding error detected, it must be fixed by a programmer: "
