"""The "state" store: each password encrypted inside the state, the way Pulumi keeps secrets in
self-managed state. AES-GCM (cryptography), a fresh nonce per value, the reference as associated
data (a ciphertext moved to another reference does not decrypt). The key is either derived from a
passphrase by scrypt (hashlib, a fresh salt per value), or, with kms_key_id, a data key kept in the
state wrapped by that AWS KMS key (secret "_data_key"). Nothing needs the key to plan: only where a
value is needed (creating a role, `output --show-secrets`) does its absence give an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config

import base64
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import replace

from ..errors import ConfigError
from . import SecretStore, new_password, usable

PREFIX = "v1:"
KMS_KEY = "_data_key"  # the KMS-wrapped data key, among the state's secrets


class StateSecretStore(SecretStore):
    @classmethod
    def from_config(cls, config: Config, home: Path) -> StateSecretStore:
        s = config.secrets
        return cls(passphrase_env=s.passphrase_env, kms_key_id=s.kms_key_id, region=s.region)

    def __init__(self, *, passphrase_env: str, kms_key_id: str | None = None, region: str = "us-east-1"):
        self._env = passphrase_env
        self._kms_key_id, self._region = kms_key_id, region
        self._data_key: bytes | None = None
        self._values: dict[str, str] = {}
        self._commit: Callable | None = None
        self._lock = threading.Lock()

    def load(self, state) -> None:
        self._values = dict(state.secrets)

    def bind(self, commit: Callable) -> None:
        """commit(change) writes change(state) as the next state: a new value is kept before it is used."""
        self._commit = commit

    def _kms_data_key(self) -> bytes:
        """The state's data key, unwrapped by KMS; made (and kept in the state, wrapped) on first use."""
        if self._data_key is None:
            from ..aws.clients import AwsError, aws, aws_client

            kms = aws_client("kms", region=self._region)
            try:
                with aws("KMS", "data key"):
                    if KMS_KEY in self._values:
                        blob = base64.b64decode(self._values[KMS_KEY])
                        self._data_key = kms.decrypt(CiphertextBlob=blob, KeyId=self._kms_key_id)["Plaintext"]
                    else:
                        made = kms.generate_data_key(KeyId=self._kms_key_id, KeySpec="AES_256")
                        wrapped = base64.b64encode(made["CiphertextBlob"]).decode()
                        self._keep(KMS_KEY, wrapped)
                        self._data_key = made["Plaintext"]
            except (AwsError, ValueError) as exc:  # the config names the key (ValueError: a wrapped key not base64)
                raise ConfigError(
                    f"[secrets] kms_key_id: KMS could not {'unwrap' if KMS_KEY in self._values else 'make'} "
                    f"the state's data key: {getattr(exc, 'code', None) or type(exc).__name__}"
                ) from None
        return self._data_key

    def _keep(self, ref: str, token: str) -> None:
        if self._commit is None:
            raise ConfigError("a secret is needed outside an apply; run `airflow-infra apply`")
        self._commit(lambda s: replace(s, secrets={**s.secrets, ref: token}))
        self._values[ref] = token

    def _key(self, salt: bytes) -> bytes:
        if self._kms_key_id:
            return self._kms_data_key()
        passphrase = os.environ.get(self._env)
        if not passphrase:
            raise ConfigError(
                f"[secrets] passphrase_env: the environment variable {self._env} is not set; it holds "
                "the passphrase that decrypts the secrets kept in the state"
            )
        return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def _encrypt(self, ref: str, value: str) -> str:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(self._key(salt)).encrypt(nonce, value.encode(), ref.encode())
        return PREFIX + base64.b64encode(salt + nonce + sealed).decode()

    def _decrypt(self, ref: str, token: str) -> str | None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            raw = base64.b64decode(token.removeprefix(PREFIX), validate=True)
        except ValueError:
            return None  # mangled: missing, and the next apply sets a new one
        salt, nonce, sealed = raw[:16], raw[16:28], raw[28:]
        if len(sealed) < 16:
            return None
        try:
            return AESGCM(self._key(salt)).decrypt(nonce, sealed, ref.encode()).decode()
        except InvalidTag:
            what = f"the KMS key {self._kms_key_id}" if self._kms_key_id else f"the passphrase in {self._env}"
            raise ConfigError(f"{what} does not decrypt the secrets kept in the state") from None

    def holds(self, ref: str) -> bool:
        return ref in self._values

    def get(self, ref: str) -> str | None:
        token = self._values.get(ref)
        return None if token is None else usable(self._decrypt(ref, token))

    def get_or_create(self, ref: str) -> str:
        with self._lock:
            found = self.get(ref)
            if found is not None:
                return found
            value = new_password()
            self._keep(ref, self._encrypt(ref, value))
            return value

    def put(self, ref: str, value: str) -> None:
        with self._lock:
            self._keep(ref, self._encrypt(ref, value))

    def delete(self, ref: str) -> None:
        with self._lock:
            if ref in self._values and self._commit is not None:
                self._commit(lambda s: replace(s, secrets={k: v for k, v in s.secrets.items() if k != ref}))
            self._values.pop(ref, None)
