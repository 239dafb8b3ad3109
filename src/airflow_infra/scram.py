"""Password verifiers as PostgreSQL stores them (pg_authid.rolpassword): SCRAM-SHA-256 (RFC 5802,
RFC 7677) and the older md5. Made here so that no statement ever carries a password itself, and
checked here so that a superuser admin can tell whether a role's password is the stored one
without logging in as it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


def saslprep(password: str) -> str:
    """RFC 4013 as PostgreSQL applies it to a SCRAM password: a few characters mapped to nothing or
    to a space, NFKC; where the result would hold a prohibited character, the password as it is."""
    import stringprep
    import unicodedata

    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch))
    out = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    if not out or any(test(ch) for ch in out for test in prohibited):
        return password
    return out


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of the (SASLprep'd) password."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest(), hmac.new(salted, b"Server Key", "sha256").digest()


def verifier(password: str, iterations: int = 4096) -> str:
    salt = os.urandom(16)
    stored, server = _keys(saslprep(password), salt, iterations)
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"


def matches(stored: str | None, password: str) -> bool:
    """Whether stored (a rolpassword) is password's SCRAM-SHA-256 verifier; False for anything else:
    none set, or an md5 one (which a server accepting only SCRAM, as ours, never lets log in; apply
    sets a SCRAM one)."""
    if not stored:
        return False
    try:
        method, rest = stored.split("$", 1)
        params, keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        want = _keys(saslprep(password), base64.b64decode(salt), int(iterations))
        return hmac.compare_digest(want[0], base64.b64decode(stored_key)) and hmac.compare_digest(
            want[1], base64.b64decode(server_key)
        )
    except ValueError:
        return False
