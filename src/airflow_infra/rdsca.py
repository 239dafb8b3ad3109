"""The certificate authorities an RDS instance's certificate is checked against (sslmode=verify-full).

Decided: not shipped with the package. AWS adds authorities to its global bundle over the years (and
instances move to new ones), so a copy frozen into a release would start refusing good instances.
The bundle is fetched once from AWS's trust store into the home and kept; a team that wants it pinned
names its SHA-256 (`[aws.rds] ca_bundle_sha256`), and any other content, fetched or kept, is refused.
`[aws.rds] ca_bundle` names a file (or another URL) instead: an organisation's own mirror, or a
machine without internet.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from .errors import ConfigError

AWS_GLOBAL_BUNDLE = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


def ca_bundle(source: str | None, sha256: str | None, home: Path) -> Path:
    """The PEM file to verify RDS against: `source` itself when it is a file, else the copy kept in the
    home (fetched the first time)."""
    key = "[aws.rds] ca_bundle"
    path = bundle_path(source, home)
    source = source or AWS_GLOBAL_BUNDLE
    if "://" not in source:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
        _check(data, sha256, str(path))
        return path
    kept = path
    if kept.is_file():
        _check(kept.read_bytes(), sha256, f"{kept} (kept from {source}; delete it to fetch again)")
        return kept
    try:
        with urllib.request.urlopen(source, timeout=30) as answer:  # noqa: S310 - https or the user's own URL
            data = answer.read(10_000_000)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot fetch {source} ({getattr(exc, 'reason', exc)}); "
                          "download it and name the file in [aws.rds] ca_bundle") from None
    _check(data, sha256, source)
    kept.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=kept.parent, prefix=".fetch-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, kept)
    return kept


def bundle_path(source: str | None, home: Path) -> Path:
    """Where the bundle is (or will be kept), without reading or fetching it: what outputs name."""
    source = source or AWS_GLOBAL_BUNDLE
    if "://" not in source:
        return Path(source).expanduser().resolve()
    return home / "certs" / f"{hashlib.sha256(source.encode()).hexdigest()[:12]}-{source.rsplit('/', 1)[-1]}"


def _check(data: bytes, sha256: str | None, where: str) -> None:
    from cryptography import x509

    digest = hashlib.sha256(data).hexdigest()
    if sha256 and digest != sha256.lower():
        raise ConfigError(f"[aws.rds] ca_bundle_sha256: {where} has SHA-256 {digest}, not the pinned {sha256}")
    try:
        if not x509.load_pem_x509_certificates(data):
            raise ValueError
    except ValueError:
        raise ConfigError(f"[aws.rds] ca_bundle: {where} is not a PEM bundle of certificates") from None
