"""The simulators' shared HTTP authentication: the header, Basic pairs, constant-time checks, issued tokens."""

from __future__ import annotations

import base64

import pytest

from camsync.sandbox import auth


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic abc", ("basic", "abc")),
        ("BEARER  tok ", ("bearer", "tok")),
        ("Bearer", ("bearer", "")),
        ("", ("", "")),
    ],
)
def test_the_header_splits_into_a_lower_cased_scheme_and_stripped_credentials(
    header: str, expected: tuple[str, str]
) -> None:
    assert auth.authorization(header) == expected


def test_basic_accepts_only_the_right_pair() -> None:
    assert auth.basic_ok(basic("u", "p"), user="u", password="p")
    assert auth.basic_ok(basic("u", "p:with:colons"), user="u", password="p:with:colons")
    assert auth.basic_ok("basic " + basic("u", "p").split()[1], user="u", password="p")  # the scheme in any case
    assert not auth.basic_ok(basic("u", "wrong"), user="u", password="p")
    assert not auth.basic_ok(basic("other", "p"), user="u", password="p")
    assert not auth.basic_ok("Bearer " + basic("u", "p").split()[1], user="u", password="p")
    assert not auth.basic_ok("", user="u", password="p")


@pytest.mark.parametrize("credentials", ["not base64!", "////", base64.b64encode(b"\xff\xfe:x").decode()])
def test_undecodable_basic_credentials_are_refused_not_raised(credentials: str) -> None:
    assert auth.basic_pair(credentials) is None
    assert not auth.basic_ok(f"Basic {credentials}", user="u", password="p")


def test_a_pair_without_a_colon_is_a_user_with_an_empty_password() -> None:
    assert auth.basic_pair(base64.b64encode(b"alone").decode()) == ("alone", "")
    assert auth.basic_ok("Basic " + base64.b64encode(b"alone").decode(), user="alone", password="")


def test_pair_ok_needs_both_parts() -> None:
    assert auth.pair_ok("u", "p", expected_user="u", expected_password="p")
    assert not auth.pair_ok("u", "x", expected_user="u", expected_password="p")
    assert not auth.pair_ok("x", "p", expected_user="u", expected_password="p")
    assert auth.same_secret("тайна", "тайна") and not auth.same_secret("тайна", "тайн")


def test_the_challenge_names_scheme_and_realm() -> None:
    assert auth.challenge("Basic", "api") == {"WWW-Authenticate": 'Basic realm="api"'}


def test_issued_tokens_are_accepted_until_cleared_and_the_static_one_always() -> None:
    tokens = auth.IssuedTokens()
    first, second = tokens.issue(), tokens.issue()
    assert first != second and len(first) >= 24
    assert tokens.accepts(first, static="static") and tokens.accepts(second, static="static")
    assert tokens.accepts("static", static="static")
    assert not tokens.accepts("guess", static="static")
    tokens.clear()
    assert not tokens.accepts(first, static="static")
    assert tokens.accepts("static", static="static")
