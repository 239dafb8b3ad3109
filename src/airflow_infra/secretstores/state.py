"""The "state" store: each password encrypted inside the state, the way Pulumi keeps secrets in
self-managed state. AES-GCM (cryptography) with a key derived from a passphrase by scrypt
(hashlib), a fresh salt and nonce per value, and the reference as associated data (a ciphertext
moved to another reference does not decrypt). Nothing needs the passphrase to plan: only where a
value is needed (creating a role, `output --show-secrets`) does its absence give an error.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from dataclasses import replace
from typing import Callable

from ..errors import ConfigError

PREFIX = "v1:"


class StateSecretStore:
    def __init__(self, *, passphrase_env: str):
        self._env = passphrase_env
        self._values: dict[str, str] = {}
        self._commit: Callable | None = None
        self._lock = threading.Lock()

    def load(self, state) -> None:
        self._values = dict(state.secrets)

    def bind(self, commit: Callable) -> None:
        """commit(change) writes change(state) as the next state: a new value is kept before it is used."""
        self._commit = commit

    def _key(self, salt: bytes) -> bytes:
        passphrase = os.environ.get(self._env)
        if not passphrase:
            raise ConfigError(f"[secrets] passphrase_env: the environment variable {self._env} is not set; it holds "
                              "the passphrase that decrypts the secrets kept in the state")
        return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def _encrypt(self, ref: str, value: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(self._key(salt)).encrypt(nonce, value.encode(), ref.encode())
        return PREFIX + base64.b64encode(salt + nonce + sealed).decode()

    def _decrypt(self, ref: str, token: str) -> str:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = base64.b64decode(token.removeprefix(PREFIX))
        salt, nonce, sealed = raw[:16], raw[16:28], raw[28:]
        try:
            return AESGCM(self._key(salt)).decrypt(nonce, sealed, ref.encode()).decode()
        except InvalidTag:
            raise ConfigError(f"the passphrase in {self._env} does not decrypt the secrets kept in the state") from None

    def get(self, ref: str) -> str | None:
        token = self._values.get(ref)
        return None if token is None else self._decrypt(ref, token)

    def get_or_create(self, ref: str) -> str:
        with self._lock:
            if ref in self._values:
                return self._decrypt(ref, self._values[ref])
            if self._commit is None:
                raise ConfigError("a secret is needed outside an apply; run `airflow-infra apply`")
            value = secrets.token_urlsafe(32)
            token = self._encrypt(ref, value)
            self._commit(lambda s: replace(s, secrets={**s.secrets, ref: token}))
            self._values[ref] = token
            return value

    def delete(self, ref: str) -> None:
        with self._lock:
            if ref in self._values and self._commit is not None:
                self._commit(lambda s: replace(s, secrets={k: v for k, v in s.secrets.items() if k != ref}))
            self._values.pop(ref, None)
