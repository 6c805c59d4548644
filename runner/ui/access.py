"""Who may reach the web view: the bind address rule and the token check.

The view binds 127.0.0.1 unless told otherwise; any other address needs a token
(refused at start without one). With a token, a request carries it as
``Authorization: Bearer TOKEN``, as a ``token=`` query parameter (the page then
sets a cookie so links keep working), or as that cookie. Pure: no I/O.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from runner.errors import InvalidArgument

TOKEN_ENV = "RUNNER_UI_TOKEN"
COOKIE = "runner_ui_token"
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise InvalidArgument(
            f"serving the web view on {host} lets anyone who can reach it read your runs; "
            f"give a token (--token or the {TOKEN_ENV} environment variable) or bind 127.0.0.1"
        )


def presented_token(headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return query.get("token") or cookies.get(COOKIE)


def token_matches(expected: str | None, presented: str | None) -> bool:
    if not expected:
        return True
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
