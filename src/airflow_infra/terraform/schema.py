"""The fields of a Terraform state the adoption reads, each checked for its type and shape (pydantic),
and the refusal of anything else in one line naming the field's JSON path and what is allowed."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ..errors import ConfigError
from .strictjson import _jpath, _shown, printable


@dataclass(frozen=True)
class _Check:
    """A field's one check, type and shape at once, and what it allows (the refusal says it)."""

    ok: Callable[[Any], bool]
    allowed: str
    kind: str = "not_allowed"
    null_is_empty: bool = False  # a list given as null: Terraform writes null for an unset one

    def __call__(self, value: Any) -> Any:
        if not self.ok(value):
            raise PydanticCustomError(self.kind, "{allowed}", {"allowed": self.allowed})
        return [] if value is None and self.null_is_empty else value


def _text(pattern: str, allowed: str, *, null: bool = False, empty: bool = False) -> PlainValidator:
    """A string that fully matches pattern: re.fullmatch, as re.match with $ lets a trailing newline through."""

    def ok(v: Any) -> bool:
        return (
            (null and v is None)
            or (empty and v == "")
            or (type(v) is str and re.fullmatch(pattern, v, re.ASCII) is not None)
        )  # ASCII: \d is 0-9 only

    besides = ['""'] * empty + ["null"] * null
    return PlainValidator(_Check(ok, allowed + (f", or {' or '.join(besides)}" if besides else "")))


def _int(low: int, high: int, *, null: bool = False) -> PlainValidator:
    def ok(v: Any) -> bool:  # type() is int: true is no number, 4.0 and "4" none either
        return (null and v is None) or (type(v) is int and low <= v <= high)

    return PlainValidator(_Check(ok, f"an integer from {low} to {high}" + (", or null" if null else "")))


def _bool() -> PlainValidator:
    return PlainValidator(_Check(lambda v: v is None or type(v) is bool, "true, false or null"))


def _list(allowed: str, *, null: bool = False) -> BeforeValidator:
    """A JSON array; its items are checked by the item type, each where it is."""
    return BeforeValidator(
        _Check(
            lambda v: type(v) is list or (null and v is None),
            allowed + (", or null" if null else ""),
            null_is_empty=null,
        )
    )


def _cidr(version: int) -> PlainValidator:
    def ok(v: Any) -> bool:
        if type(v) is not str or not re.fullmatch(r"[0-9A-Fa-f.:]+/[0-9]{1,3}", v):
            return False
        try:
            return ipaddress.ip_network(v).version == version
        except ValueError:  # not a network, or host bits set: the config refuses that too
            return False

    return PlainValidator(
        _Check(ok, f"an IPv{version} CIDR such as {'10.0.0.0/16' if version == 4 else '2001:db8::/32'}")
    )


_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"  # Terraform's names: resource types and names
_INDEX = r'\[(?:\d+|"(?:[^"\\\x00-\x1f]|\\.)*")\]'  # count's [0] or for_each's ["key"]
_MODULE = rf"module\.{_IDENT}(?:{_INDEX})?(?:\.module\.{_IDENT}(?:{_INDEX})?)*"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
_PARTITION = r"arn:aws(?:-[a-z]+)*"
_SG_ID = r"sg-[0-9A-Za-z]{1,64}"


class _Strict(BaseModel):
    # strict: 5432 is no string, "5432" no number; extra keys are Terraform's and ours to ignore
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")
    allowed: ClassVar[str] = "an object"

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, data: Any) -> Any:
        if type(data) is not dict:
            raise PydanticCustomError("not_allowed", "{allowed}", {"allowed": cls.allowed})
        for key, info in cls.model_fields.items():
            if info.is_required() and key not in data:
                check = next(m.func for m in info.metadata if isinstance(getattr(m, "func", None), _Check))
                raise PydanticCustomError("absent", "{allowed}", {"key": key, "allowed": check.allowed})
        return data


class _Instance(_Strict):
    allowed = "an object (one instance of the resource)"
    attributes: Annotated[
        dict[str, Any] | None,
        PlainValidator(_Check(lambda v: v is None or type(v) is dict, "an object of the resource's attributes")),
    ] = None


class _Resource(_Strict):
    allowed = "an object (a resource: mode, type, name and instances)"
    mode: Annotated[str, _text("managed|data", '"managed" or "data"')]
    type: Annotated[str, _text(_IDENT, "a Terraform resource type such as aws_db_instance")]
    name: Annotated[str, _text(_IDENT, "a Terraform name such as db_database")]
    module: Annotated[
        str | None, _text(_MODULE, 'a module address such as module.airflow or module.db["a"]', null=True)
    ] = None
    instances: Annotated[list[_Instance], _list("a list of instance objects")]


class _State(_Strict):
    allowed = "an object (a Terraform state)"
    version: Annotated[int, PlainValidator(_Check(lambda v: type(v) is int and v == 4, "4", kind="state_version"))]
    resources: Annotated[list[_Resource], _list("a list of resource objects")]


class _BucketAttributes(_Strict):
    bucket: Annotated[
        str,
        _text(
            r"(?!\d+\.\d+\.\d+\.\d+\Z)(?!.*\.\.)(?=.{3,63}\Z)[a-z0-9][a-z0-9.-]*[a-z0-9]",
            "an S3 bucket name: 3-63 characters of a-z, 0-9, '.' and '-', starting and ending "
            "with a letter or digit, not an IP address",
        ),
    ]
    region: Annotated[str | None, _text(_REGION, "an AWS region such as eu-west-1", null=True, empty=True)] = None


class _Rule(_Strict):
    allowed = "an object (an ingress rule: protocol, from_port, to_port, cidr_blocks, ...)"
    protocol: Annotated[str | None, _text(r"-1|[a-z0-9]{1,16}", 'a protocol such as "tcp", "6" or "-1"', null=True)] = (
        None
    )
    from_port: Annotated[int | None, _int(-1, 65535, null=True)] = None
    to_port: Annotated[int | None, _int(-1, 65535, null=True)] = None
    cidr_blocks: Annotated[list[Annotated[str, _cidr(4)]], _list("a list of IPv4 CIDRs", null=True)] = Field(
        default_factory=list
    )
    ipv6_cidr_blocks: Annotated[list[Annotated[str, _cidr(6)]], _list("a list of IPv6 CIDRs", null=True)] = Field(
        default_factory=list
    )
    security_groups: Annotated[
        list[Annotated[str, _text(rf"(?:\d{{12}}/)?{_SG_ID}", "a security group id such as sg-0123456789abcdef0")]],
        _list("a list of security group ids", null=True),
    ] = Field(default_factory=list)


class _GroupAttributes(_Strict):
    name: Annotated[
        str,
        _text(
            r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}",
            "a security group name: 1-255 letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*",
        ),
    ]
    id: Annotated[
        str | None, _text(_SG_ID, "a security group id such as sg-0123456789abcdef0", null=True, empty=True)
    ] = None
    ingress: Annotated[list[_Rule], _list("a list of ingress rule objects", null=True)] = Field(default_factory=list)


_DB_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"


class _InstanceAttributes(_Strict):
    # the master password is not among them: it is never read
    identifier: Annotated[
        str,
        _text(
            r"(?=.{1,63}\Z)[A-Za-z](?:-?[A-Za-z0-9])*",
            "an RDS instance identifier: 1-63 "
            "letters, digits and single hyphens, starting with a letter, not ending with a hyphen",
        ),
    ]
    engine: Annotated[str, _text("postgres", '"postgres" (airflow-infra manages PostgreSQL)')]
    engine_version: Annotated[
        str | None, _text(r"\d{1,3}(?:\.\d{1,5}){0,3}(?:-[a-z0-9.]{1,40})?", "a version such as 16.3", null=True)
    ] = None
    arn: Annotated[
        str | None,
        _text(
            rf"{_PARTITION}:rds:{_REGION}:\d{{12}}:db:[A-Za-z][A-Za-z0-9-]{{0,62}}",
            "an RDS instance ARN such as arn:aws:rds:eu-west-1:123456789012:db:airflow-db",
            null=True,
            empty=True,
        ),
    ] = None
    db_name: Annotated[
        str | None,
        _text(_DB_NAME, "a database name (a letter or _, then letters, digits and _)", null=True, empty=True),
    ] = None
    name: Annotated[
        str | None,
        _text(_DB_NAME, "a database name (a letter or _, then letters, digits and _)", null=True, empty=True),
    ] = None  # db_name before AWS provider 5
    username: Annotated[
        str | None,
        _text(
            r"[A-Za-z][A-Za-z0-9_]{0,62}", "a user name (a letter, then letters, digits and _)", null=True, empty=True
        ),
    ] = None
    db_subnet_group_name: Annotated[
        str,
        _text(
            r"[A-Za-z0-9][A-Za-z0-9._ -]{0,254}",
            "a DB subnet group name: 1-255 letters, digits, spaces, '.', '_' and '-'",
        ),
    ]
    instance_class: Annotated[
        str | None, _text(r"db\.[a-z0-9]+\.[a-z0-9]+", "an instance class such as db.t4g.micro", null=True)
    ] = None
    allocated_storage: Annotated[int | None, _int(20, 65536, null=True)] = None
    max_allocated_storage: Annotated[int | None, _int(0, 65536, null=True)] = None
    backup_retention_period: Annotated[int | None, _int(0, 35, null=True)] = None
    multi_az: Annotated[bool | None, _bool()] = None
    performance_insights_enabled: Annotated[bool | None, _bool()] = None
    kms_key_id: Annotated[
        str | None,
        _text(
            rf"{_PARTITION}:kms:{_REGION}:\d{{12}}:(?:key|alias)/[A-Za-z0-9/_-]{{1,256}}",
            "a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/...",
            null=True,
            empty=True,
        ),
    ] = None
    port: Annotated[int | None, _int(1150, 65535, null=True)] = None


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], data: Any, src: str, at: str = "") -> _M:
    """model from data, or a ConfigError of one line: the file, the field's JSON path, what it is and may be."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        ctx = err.get("ctx") or {}
        if err["type"] == "absent":
            raise ConfigError(
                f"{src}: {_jpath(at, [*err['loc'], ctx['key']])}: missing; it must be {ctx['allowed']}"
            ) from None
        where, shown = _jpath(at, err["loc"]), _shown(err["input"])
        if err["type"] == "state_version":
            raise ConfigError(
                f"{src}: {where}: state format version {shown}; import-terraform reads version 4 (Terraform "
                "0.12 and later: `terraform state pull` with a current Terraform writes it)"
            ) from None
        allowed = (
            ctx["allowed"] if err["type"] == "not_allowed" else printable(err["msg"])
        )  # pydantic's own: not expected
        raise ConfigError(f"{src}: {where}: {shown} is not allowed; it must be {allowed}") from None
