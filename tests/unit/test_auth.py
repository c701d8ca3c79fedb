"""Ingest tokens, users and roles: parsing, checking, and errors that name the key."""

from __future__ import annotations

import base64

import pytest

from breakeven.collector.auth import (
    ANYONE,
    AuthConfig,
    api_user,
    bearer,
    check_password,
    hash_password,
    ingest_sender,
    may,
    sha256_hex,
)
from breakeven.collector.config.auth import AuthConfigError, parse_auth

TOKEN = "tok-checkout-0123456789abcdef"
CONFIG = parse_auth(
    {
        "ingest_tokens": [
            {"name": "checkout", "token_sha256": sha256_hex(TOKEN), "services": ["checkout-api"]},
            {"name": "gateway", "token": "tok-gateway-0123456789abcdef"},
        ],
        "users": [
            {"name": "finance", "role": "viewer", "password_scrypt": hash_password("s3cret!")},
            {"name": "ops", "role": "admin", "token_sha256": sha256_hex("api-token-ops-0123456789")},
        ],
    }
)


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "sender", "services"),
    [
        (f"Bearer {TOKEN}", "checkout", {"checkout-api"}),
        (f"bearer   {TOKEN}  ", "checkout", {"checkout-api"}),
        ("Bearer tok-gateway-0123456789abcdef", "gateway", set()),
        ("Bearer wrong-token-0123456789abcdef", None, None),
        (f"Basic {TOKEN}", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_ingest_tokens(authorization: str | None, sender: str | None, services: set[str] | None) -> None:
    found = ingest_sender(CONFIG, authorization)
    assert (found.name, set(found.services)) == (sender, services) if sender else found is None


def test_ingest_is_open_without_tokens_and_a_bound_sender_speaks_for_its_services_only() -> None:
    assert ingest_sender(AuthConfig(), None) is ANYONE
    assert ANYONE.may_send_as("anything")
    checkout = ingest_sender(CONFIG, f"Bearer {TOKEN}")
    assert checkout is not None
    assert (checkout.may_send_as("checkout-api"), checkout.may_send_as("billing"), checkout.may_send_as(None)) == (
        True,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("authorization", "user", "get", "post"),
    [
        (_basic("finance", "s3cret!"), "finance", True, False),
        (_basic("finance", "wrong"), None, None, None),
        (_basic("nobody", "s3cret!"), None, None, None),
        ("Bearer api-token-ops-0123456789", "ops", True, True),
        ("Bearer api-token-ops-wrong", None, None, None),
        ("Basic !!!not-base64", None, None, None),
        (None, None, None, None),
    ],
)
def test_users_and_roles(authorization: str | None, user: str | None, get: bool | None, post: bool | None) -> None:
    found = api_user(CONFIG, authorization)
    if user is None:
        assert found is None
    else:
        assert found is not None
        assert found.name == user
        assert (may(found, "GET"), may(found, "POST")) == (get, post)


def test_password_hashes_are_salted_and_checked() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second
    assert first.startswith("scrypt$")
    assert check_password("pw", first)
    assert check_password("pw", second)
    assert not check_password("px", first)
    assert not check_password("pw", "md5$abc")
    assert not check_password("pw", "garbage")


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"users": [{"name": "x", "role": "root", "password_scrypt": "scrypt$1"}]}, "auth.users[0].role"),
        ({"users": [{"name": "x", "password_scrypt": "plain"}]}, "auth.users[0].password_scrypt"),
        ({"users": [{"name": "x"}]}, "auth.users[0]: needs password_scrypt or token_sha256"),
        ({"ingest_tokens": [{"name": "a", "token": "short"}]}, "auth.ingest_tokens[0].token: too short"),
        ({"ingest_tokens": [{"name": "a", "token_sha256": "xyz"}]}, "auth.ingest_tokens[0].token_sha256"),
        ({"ingest_tokens": [{"token_sha256": "a" * 64}]}, "auth.ingest_tokens[0].name"),
        ({"ingest_tokens": [{"name": "a", "token_sha256": "a" * 64, "services": "svc"}]}, "services"),
        (
            {"ingest_tokens": [{"name": "a", "token_sha256": "a" * 64}, {"name": "a", "token_sha256": "b" * 64}]},
            "twice",
        ),
        (
            {"ingest_tokens": [{"name": "a", "token_sha256": "a" * 64}, {"name": "b", "token_sha256": "a" * 64}]},
            "same token",
        ),
        ({"ingest_tokens_file": "/nonexistent/tokens.toml"}, "auth.ingest_tokens_file: file not found"),
        ({"tokens": []}, "auth.tokens: unknown key"),
    ],
)
def test_bad_auth_config_names_the_key(raw: dict, named: str) -> None:
    with pytest.raises(AuthConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_auth(raw)


def test_ingest_tokens_from_a_file_next_to_the_config(tmp_path) -> None:
    (tmp_path / "tokens.toml").write_text(f'[[ingest_tokens]]\nname = "svc"\ntoken_sha256 = "{sha256_hex(TOKEN)}"\n')
    config = parse_auth({"ingest_tokens_file": "tokens.toml"}, str(tmp_path / "breakeven.toml"))
    assert [t.name for t in config.ingest_tokens] == ["svc"]


def test_bearer_parsing() -> None:
    assert (bearer("Bearer abc"), bearer("Basic abc"), bearer("Bearer "), bearer(None)) == ("abc", None, None, None)
