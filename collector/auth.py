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

The records and the checks a request goes through live here, below every other layer, so
ingest and the API can use them; the `[auth]` section is read into an AuthConfig by
collector/config/auth.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

ROLES = ("viewer", "admin")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


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
