"""The `[auth]` section of the config file, parsed into AuthConfig: ingest tokens and users.

Every error names the key (`auth.users[1].role: ...`, indexes from 0), or for tokens read
from `ingest_tokens_file` the file (`<path>: ingest_tokens[0].name: ...`); an error names
a token's or user's `name`, never its secret. Plain tokens are kept only as their sha256.
The records and the request checks that read them are in collector/auth.py, below the
config, where ingest and the API can reach them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from breakeven.collector.auth import ROLES, AuthConfig, IngestToken, User, sha256_hex
from breakeven.collector.config import checks
from breakeven.collector.config.checks import SettingsError

# The [auth] section's errors are settings errors like every section's; the name stays for
# the callers that catch it by that name.
AuthConfigError = SettingsError

_MUST_BE_A_TABLE = "must be a table"  # the [auth] section's wording since it was written


def parse_auth(raw: Any, config_path: str | None = None) -> AuthConfig:
    """The [auth] section; errors name the key (`auth.users[1].role: ...`)."""
    table = checks.table(raw, "auth", ("ingest_tokens", "ingest_tokens_file", "users"), not_a_table=_MUST_BE_A_TABLE)
    tokens = [_ingest_token(item, f"auth.ingest_tokens[{i}]") for i, item in enumerate(_tables(table, "ingest_tokens"))]
    if "ingest_tokens_file" in table:
        path = checks.beside_config(str(table["ingest_tokens_file"]), config_path)
        doc = checks.read_toml(path, "auth.ingest_tokens_file", decimals=False)
        extra = checks.table(doc, str(path), ("ingest_tokens",), not_a_table=_MUST_BE_A_TABLE)
        tokens += [
            _ingest_token(item, f"{path}: ingest_tokens[{i}]") for i, item in enumerate(_tables(extra, "ingest_tokens"))
        ]
    users = [_user(item, f"auth.users[{i}]") for i, item in enumerate(_tables(table, "users"))]
    for label, names in (("auth.ingest_tokens", [t.name for t in tokens]), ("auth.users", [u.name for u in users])):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            checks.fail(f"{label}: name {duplicates[0]!r} appears twice")
    hashes = [t.sha256 for t in tokens]
    if len(set(hashes)) != len(hashes):
        checks.fail("auth.ingest_tokens: two entries have the same token")
    return AuthConfig(tuple(tokens), tuple(users))


def _tables(table: Mapping[str, Any], name: str) -> list[Any]:
    # Named auth.<name> even for the tokens file: that file's array stands for auth.ingest_tokens.
    value = table.get(name, [])
    if not isinstance(value, list):
        checks.fail(f"auth.{name}: must be a list of tables ([[auth.{name}]])")
    return value


def _secret_sha256(item: Mapping[str, Any], key: str, plain: str, hashed: str) -> str | None:
    if plain in item and hashed in item:
        checks.fail(f"{key}: give {plain} or {hashed}, not both")
    if hashed in item:
        value = str(item[hashed]).strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            checks.fail(f"{key}.{hashed}: must be 64 hex digits (sha256 of the token)")
        return value
    if plain in item:
        value = str(item[plain])
        if len(value) < 16:
            checks.fail(f"{key}.{plain}: too short; use at least 16 random characters")
        return sha256_hex(value)
    return None


def _ingest_token(item: Any, key: str) -> IngestToken:
    table = checks.table(item, key, ("name", "token", "token_sha256", "services"), not_a_table=_MUST_BE_A_TABLE)
    name = str(table.get("name") or "").strip()
    if not name:
        checks.fail(f"{key}.name: required (it names the sender in logs and counters)")
    digest = _secret_sha256(table, key, "token", "token_sha256")
    if digest is None:
        checks.fail(f"{key}: needs token_sha256 (or token)")
    services = table.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        checks.fail(f"{key}.services: must be a list of service names")
    return IngestToken(name, digest, frozenset(services))


def _user(item: Any, key: str) -> User:
    table = checks.table(
        item, key, ("name", "role", "password_scrypt", "token", "token_sha256"), not_a_table=_MUST_BE_A_TABLE
    )
    name = str(table.get("name") or "").strip()
    if not name or ":" in name:
        checks.fail(f"{key}.name: required, without ':'")
    role = table.get("role", "viewer")
    if role not in ROLES:
        checks.fail(f"{key}.role: must be one of {', '.join(ROLES)}, not {role!r}")
    password = table.get("password_scrypt")
    if password is not None and not str(password).startswith("scrypt$"):
        checks.fail(f"{key}.password_scrypt: not a scrypt hash (make one with: breakeven hash-password)")
    digest = _secret_sha256(table, key, "token", "token_sha256")
    if password is None and digest is None:
        checks.fail(f"{key}: needs password_scrypt or token_sha256")
    return User(name, role, None if password is None else str(password), () if digest is None else (digest,))
