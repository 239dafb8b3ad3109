"""Outputs every target shares: the database's connection facts, and Terraform's output shape."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .errors import SecretMissing
from .secretstores import SecretStore
from .state.base import State


def _missing(role: Any) -> SecretMissing:
    return SecretMissing(
        f"the password of role {role.attrs['name']} is missing from the secret store "
        f"({role.attrs['password_ref']}): run `airflow-infra apply` to set a new one"
    )


def _password(secrets: SecretStore, role: Any) -> str:
    """A role's stored password; SecretMissing rather than a None or empty value anyone could
    write over a working Airflow connection."""
    value = secrets.get(role.attrs["password_ref"])
    if not value:
        raise _missing(role)
    return value


def check_passwords(state: State, secrets: SecretStore) -> None:
    """SecretMissing unless the store holds every login role's password (asked without reading it:
    a listing that masks them must not hide that one is gone)."""
    for role in state.resources.values():
        if (
            role.type == "postgres_role"
            and role.attrs.get("password_ref")
            and not secrets.holds(role.attrs["password_ref"])
        ):
            raise _missing(role)


def database_outputs(
    state: State, secrets: SecretStore, *, host: str, port: int | None, reveal: bool = True
) -> dict[str, tuple[Any, bool]]:
    """{name: (value, sensitive)} for the project's database, or {} before it exists. Without reveal,
    sensitive values are None and the secret store is not asked (it may need a passphrase); with
    it, a password missing from the store is SecretMissing."""
    res = state.resources
    if "postgres_database.main" not in res:
        return {}
    db = res["postgres_database.main"].attrs["name"]
    out: dict[str, tuple[Any, bool]] = {
        "postgres_host": (host, False),
        "postgres_port": (port, False),
        "postgres_database": (db, False),
        "schemas": (sorted(r.attrs["name"] for r in res.values() if r.type == "postgres_schema"), False),
    }
    etl = res.get("postgres_role.etl")
    for label in ("etl", "reader"):
        role = res.get(f"postgres_role.{label}")
        if role is not None:
            out[f"{label}_user"] = (role.attrs["name"], False)
            out[f"{label}_password"] = (_password(secrets, role) if reveal else None, True)
            if role.attrs.get("password_secret"):  # e.g. for an IAM policy allowing the workers to read it
                out[f"{label}_password_secret"] = (role.attrs["password_secret"], False)
    if etl is not None:
        uri = None
        if reveal:
            pw = quote(_password(secrets, etl), safe="")
            uri = f"postgresql://{quote(etl.attrs['name'])}:{pw}@{host}:{port}/{quote(db)}"
        out["postgres_uri"] = (uri, True)
    return out


def shaped(out: dict[str, tuple[Any, bool]]) -> dict[str, dict]:
    """Terraform's `output -json` shape: {name: {"value": ..., "sensitive": bool}}, sorted."""
    return {k: {"value": v, "sensitive": s} for k, (v, s) in sorted(out.items())}
