"""Password verifiers as PostgreSQL stores them (pg_authid.rolpassword): SCRAM-SHA-256 (RFC 5802,
RFC 7677) and the older md5. Made here so that no statement ever carries a password itself, and
checked here so that a superuser admin can tell whether a role's password is the stored one
without logging in as it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey). The passwords we make are ASCII, which SASLprep leaves as they are."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest(), hmac.new(salted, b"Server Key", "sha256").digest()


def verifier(password: str, iterations: int = 4096) -> str:
    salt = os.urandom(16)
    stored, server = _keys(password, salt, iterations)
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"


def matches(stored: str | None, password: str, user: str) -> bool:
    """Whether stored (a rolpassword) is password's verifier; False for anything else (none set,
    a form this does not know)."""
    if not stored:
        return False
    if stored.startswith("md5"):
        return hmac.compare_digest(stored, "md5" + hashlib.md5((password + user).encode()).hexdigest())
    try:
        method, rest = stored.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        want = _keys(password, base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(want[0], base64.b64decode(stored_key)) and \
            hmac.compare_digest(want[1], base64.b64decode(server_key))
    except ValueError:
        return False
