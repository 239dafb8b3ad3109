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
from urllib.parse import urlsplit

from ..errors import ConfigError

AWS_GLOBAL_BUNDLE = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
LIMIT = 10_000_000  # AWS's global bundle is about 160 KB


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
    if kept.exists():
        try:
            data = kept.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read {kept} ({exc.strerror}); delete it to fetch again") from None
        _check(data, sha256, f"{kept} (kept from {_shown(source)}; delete it to fetch again)")
        return kept
    shown = _shown(source)
    try:
        with urllib.request.urlopen(source, timeout=30) as answer:  # noqa: S310 - https or the user's own URL
            data = answer.read(LIMIT + 1)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{key}: cannot fetch {shown} ({getattr(exc, 'reason', exc)}); "
            "download it and name the file in [aws.rds] ca_bundle"
        ) from None
    if len(data) > LIMIT:
        raise ConfigError(f"{key}: {shown} is larger than {LIMIT // 1_000_000} MB: not a bundle of certificates")
    _check(data, sha256, shown)
    kept.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=kept.parent, prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # public certificates: Airflow's processes, whoever they run as, read them
        os.replace(tmp, kept)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return kept


def _shown(url: str) -> str:
    """The URL without its query and fragment (a presigned one carries a credential there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def bundle_path(source: str | None, home: Path) -> Path:
    """Where the bundle is (or will be kept), without reading or fetching it: what outputs name."""
    source = source or AWS_GLOBAL_BUNDLE
    if "://" not in source:
        return Path(source).expanduser().resolve()
    name = urlsplit(source).path.rsplit("/", 1)[-1][-60:] or "bundle.pem"  # never the query: it may be a credential
    return home / "certs" / f"{hashlib.sha256(_shown(source).encode()).hexdigest()[:12]}-{name}"


def _check(data: bytes, sha256: str | None, where: str) -> None:
    """Pinned content, and certificates OpenSSL (libpq's reader) takes whole: a bundle cut short is refused."""
    import ssl

    digest = hashlib.sha256(data).hexdigest()
    if sha256 and digest != sha256.lower():
        raise ConfigError(f"[aws.rds] ca_bundle_sha256: {where} has SHA-256 {digest}, not the pinned {sha256}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        raise ConfigError(f"[aws.rds] ca_bundle: {where} is not a PEM bundle of certificates") from None
