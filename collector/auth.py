"""Who may do what: ingest bearer tokens bound to services, dashboard and API users with roles.

Nothing here is on unless the config's `[auth]` section says so; then

- every OTLP export (HTTP `Authorization: Bearer <token>`, gRPC metadata `authorization`)
  needs a known ingest token, else 401 / UNAUTHENTICATED. A token may be bound to
  services: spans whose resource names another `service.name` are refused in the partial
  success (reason `service_not_allowed`), so a service cannot post spend as another team.
- the dashboard and API need a user (HTTP Basic, or a bearer API token): role `viewer`
  reads, role `admin` may also change things (every method but GET and HEAD). /healthz
  and /readyz stay open for probes.

Secrets are kept as hashes: tokens as sha256 (they are long random strings), passwords
as scrypt (`breakeven hash-password`). Comparisons are constant-time; nothing here logs a
token or a password, and errors name the token's or user's `name`, never its secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("viewer", "admin")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AuthConfigError(ValueError):
    """The [auth] section is wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class IngestToken:
    """One sender's token (as its sha256) and the services it may speak for (empty: any)."""

    name: str
    sha256: str
    services: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class User:
    """A dashboard/API user: HTTP Basic with a scrypt password, and/or bearer API tokens."""

    name: str
    role: str
    password_scrypt: str | None = None
    token_sha256s: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The parsed [auth] section."""

    ingest_tokens: tuple[IngestToken, ...] = ()
    users: tuple[User, ...] = ()

    @property
    def ingest_required(self) -> bool:
        return bool(self.ingest_tokens)

    @property
    def login_required(self) -> bool:
        return bool(self.users)


@dataclass(frozen=True, slots=True)
class Sender:
    """Who an accepted export came from."""

    name: str
    services: frozenset[str] = field(default_factory=frozenset)

    def may_send_as(self, service: str | None) -> bool:
        """Whether spans of this service.name are this sender's to send."""
        return not self.services or (service is not None and service in self.services)


ANYONE = Sender("anyone")  # ingest auth is off


# ---------------------------------------------------------------- secrets


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$<salt hex>$<hash hex>`, for `password_scrypt` in the config."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether password matches a hash_password() string (constant-time compare)."""
    try:
        scheme, n, r, p, salt_hex, hash_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), hash_hex)


def _matches(secret: str, sha256s: Sequence[str]) -> bool:
    digest = sha256_hex(secret)
    found = False
    for known in sha256s:  # no early exit: the time does not say which one matched
        found |= hmac.compare_digest(digest, known)
    return found


# ---------------------------------------------------------------- checks


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, if that is what it is."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def ingest_sender(config: AuthConfig, authorization: str | None) -> Sender | None:
    """The sender an ingest request's Authorization value names; None: refuse (401)."""
    if not config.ingest_required:
        return ANYONE
    token = bearer(authorization)
    if token is None:
        return None
    found: Sender | None = None
    for known in config.ingest_tokens:
        if _matches(token, (known.sha256,)) and found is None:
            found = Sender(known.name, known.services)
    return found


def api_user(config: AuthConfig, authorization: str | None) -> User | None:
    """The user an API/dashboard request's Authorization value names; None: refuse (401)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        token = value.strip()
        return next((u for u in config.users if u.token_sha256s and _matches(token, u.token_sha256s)), None)
    if scheme == "basic":
        try:
            name, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user = next((u for u in config.users if u.name == name), None)
        if user is None or user.password_scrypt is None:
            check_password(password, hash_password("timing", b"\0" * 16))  # same work either way
            return None
        return user if check_password(password, user.password_scrypt) else None
    return None


def may(user: User, method: str) -> bool:
    """Whether a user's role allows a request method (viewers read, admins do anything)."""
    return user.role == "admin" or method.upper() in READ_METHODS


# ---------------------------------------------------------------- config


def parse_auth(raw: Any, config_path: str | None = None) -> AuthConfig:
    """The [auth] section; errors name the key (`auth.users[1].role: ...`)."""
    table = _table(raw, "auth", ("ingest_tokens", "ingest_tokens_file", "users"))
    tokens = [_ingest_token(item, f"auth.ingest_tokens[{i}]") for i, item in enumerate(_list(table, "ingest_tokens"))]
    if "ingest_tokens_file" in table:
        path = Path(str(table["ingest_tokens_file"]))
        if not path.is_absolute() and config_path:
            path = Path(config_path).parent / path
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuthConfigError(f"auth.ingest_tokens_file: file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise AuthConfigError(f"auth.ingest_tokens_file: {path} is not valid TOML: {exc}") from None
        extra = _table(doc, str(path), ("ingest_tokens",))
        tokens += [
            _ingest_token(item, f"{path}: ingest_tokens[{i}]") for i, item in enumerate(_list(extra, "ingest_tokens"))
        ]
    users = [_user(item, f"auth.users[{i}]") for i, item in enumerate(_list(table, "users"))]
    for label, names in (("auth.ingest_tokens", [t.name for t in tokens]), ("auth.users", [u.name for u in users])):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AuthConfigError(f"{label}: name {duplicates[0]!r} appears twice")
    hashes = [t.sha256 for t in tokens]
    if len(set(hashes)) != len(hashes):
        raise AuthConfigError("auth.ingest_tokens: two entries have the same token")
    return AuthConfig(tuple(tokens), tuple(users))


def _table(raw: Any, key: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise AuthConfigError(f"{key}: must be a table")
    for name in raw:
        if name not in known:
            raise AuthConfigError(f"{key}.{name}: unknown key (known: {', '.join(known)})")
    return raw


def _list(table: Mapping[str, Any], name: str) -> list[Any]:
    value = table.get(name, [])
    if not isinstance(value, list):
        raise AuthConfigError(f"auth.{name}: must be a list of tables ([[auth.{name}]])")
    return value


def _secret_sha256(item: Mapping[str, Any], key: str, plain: str, hashed: str) -> str | None:
    if plain in item and hashed in item:
        raise AuthConfigError(f"{key}: give {plain} or {hashed}, not both")
    if hashed in item:
        value = str(item[hashed]).strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise AuthConfigError(f"{key}.{hashed}: must be 64 hex digits (sha256 of the token)")
        return value
    if plain in item:
        value = str(item[plain])
        if len(value) < 16:
            raise AuthConfigError(f"{key}.{plain}: too short; use at least 16 random characters")
        return sha256_hex(value)
    return None


def _ingest_token(item: Any, key: str) -> IngestToken:
    table = _table(item, key, ("name", "token", "token_sha256", "services"))
    name = str(table.get("name") or "").strip()
    if not name:
        raise AuthConfigError(f"{key}.name: required (it names the sender in logs and counters)")
    digest = _secret_sha256(table, key, "token", "token_sha256")
    if digest is None:
        raise AuthConfigError(f"{key}: needs token_sha256 (or token)")
    services = table.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        raise AuthConfigError(f"{key}.services: must be a list of service names")
    return IngestToken(name, digest, frozenset(services))


def _user(item: Any, key: str) -> User:
    table = _table(item, key, ("name", "role", "password_scrypt", "token", "token_sha256"))
    name = str(table.get("name") or "").strip()
    if not name or ":" in name:
        raise AuthConfigError(f"{key}.name: required, without ':'")
    role = table.get("role", "viewer")
    if role not in ROLES:
        raise AuthConfigError(f"{key}.role: must be one of {', '.join(ROLES)}, not {role!r}")
    password = table.get("password_scrypt")
    if password is not None and not str(password).startswith("scrypt$"):
        raise AuthConfigError(f"{key}.password_scrypt: not a scrypt hash (make one with: breakeven hash-password)")
    digest = _secret_sha256(table, key, "token", "token_sha256")
    if password is None and digest is None:
        raise AuthConfigError(f"{key}: needs password_scrypt or token_sha256")
    return User(name, role, None if password is None else str(password), () if digest is None else (digest,))
