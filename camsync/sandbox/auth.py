"""HTTP authentication for the simulators: the `Authorization` header, Basic pairs, bearer tokens.

Secrets are compared in constant time, the user and the password both, so that a refusal takes as long whichever
part was wrong.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading


def authorization(header: str) -> tuple[str, str]:
    """The scheme (lower-cased) and the credentials of an `Authorization` header; empty strings when absent."""
    scheme, _, credentials = header.partition(" ")
    return scheme.lower(), credentials.strip()


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets are equal, compared in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


def pair_ok(user: str, password: str, *, expected_user: str, expected_password: str) -> bool:
    """Whether a user name and password are the expected ones (both compared, whatever the first gives)."""
    user_ok = same_secret(user, expected_user)
    password_ok = same_secret(password, expected_password)
    return user_ok and password_ok


def basic_pair(credentials: str) -> tuple[str, str] | None:
    """The user name and password inside Basic credentials (`base64(user:password)`), or None if undecodable."""
    try:
        user, _, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def basic_ok(header: str, *, user: str, password: str) -> bool:
    """Whether an `Authorization` header carries Basic credentials for `user` and `password`."""
    scheme, credentials = authorization(header)
    if scheme != "basic":
        return False
    pair = basic_pair(credentials)
    return pair is not None and pair_ok(*pair, expected_user=user, expected_password=password)


def challenge(scheme: str, realm: str) -> dict[str, str]:
    """The `WWW-Authenticate` header of a 401 asking for `scheme` credentials."""
    return {"WWW-Authenticate": f'{scheme} realm="{realm}"'}


class IssuedTokens:
    """Bearer tokens handed out by a login endpoint, valid until `clear()`; a static token may be accepted too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def issue(self) -> str:
        """A new random token, valid from now on."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return token

    def accepts(self, token: str, *, static: str) -> bool:
        """Whether `token` is the static one or one issued here."""
        if same_secret(token, static):
            return True
        with self._lock:
            return token in self._tokens

    def clear(self) -> None:
        """Forget every issued token."""
        with self._lock:
            self._tokens.clear()
