"""Reading a Terraform state file (format version 4, Terraform 0.12 to 1.x) made by the seed's
Airflow-Infrastructure module, and the airflow-infra.toml that adopts what it describes.

Only what is needed to adopt is read; the seed's master password (sensitive, in the state file)
is never read at all. The state is read strictly, as it may come from anywhere and what it says goes
into airflow-infra.toml and AWS calls: at most 64 MiB of UTF-8 JSON with no NaN, no key given twice
and no deep nesting, and each field used checked for its type and shape. Anything else is refused
with one line naming the file, the field (a JSON path) and what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .errors import ConfigError
from .names import NAME_RE

# the seed module's resources, by role: (type, name in the module)
SEED = {
    "bucket": ("aws_s3_bucket", "airflow_workbucket"),
    "security_group": ("aws_security_group", "db_security_group"),
    "instance": ("aws_db_instance", "db_database"),
}
PORT = 5432


@dataclass(frozen=True)
class SeedInfrastructure:
    """What the seed module made, as its Terraform state describes it."""

    source: str
    region: str | None  # from the instance's ARN or the bucket; --region when neither says
    bucket: str
    bucket_region: str | None
    security_group_name: str
    security_group_id: str
    instance: dict[str, Any]
    allowed_security_groups: list[str] = field(default_factory=list)
    allowed_cidrs: list[str] = field(default_factory=list)  # on 5432, not /0
    dropped_rules: list[str] = field(default_factory=list)  # what the narrowed group no longer allows
    instance_at: str = ""  # the JSON path of the instance's attributes in the state, for messages

    @property
    def database(self) -> str | None:
        return self.instance.get("db_name") or self.instance.get("name") or None


# -- reading the JSON text: bounded, and refusing what JSON lets through but no state holds -----------

MAX_BYTES = 64 * 2**20  # a state of thousands of resources is a few MiB: more is no state of the seed's
MAX_DEPTH = 64  # Terraform's states nest about a dozen levels
MAX_DIGITS = 64  # no attribute holds a longer number (Python itself refuses past 4300 digits)


def printable(text: str) -> str:
    """text as it goes into a one-line message: quoted and escaped when it holds a control character."""
    return text if text.isprintable() else json.dumps(text)


class _Refused:
    """Where JSON had what no state holds (NaN, Infinity, a huge number): json.loads puts this in its
    place, and the walk over the document reports where it is."""

    def __init__(self, shown: str, why: str) -> None:
        self.shown, self.why = shown, why


class _Duplicated(dict):
    """An object in which a key was given twice: json.loads keeps the last, other readers the first."""

    key = ""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    dup = _Duplicated(obj)
    for key, _ in pairs:
        if key in seen:
            dup.key = key
            break
        seen.add(key)
    return dup


def _integer(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    return (
        int(text)
        if digits <= MAX_DIGITS
        else _Refused(f"a number of {digits} digits", f"a state's numbers have at most {MAX_DIGITS} digits")
    )


def _float(text: str) -> float | _Refused:
    value = float(text)  # 1e999 is inf: refused like Infinity
    return (
        value if math.isfinite(value) else _Refused(text, "JSON has no infinite numbers (Terraform never writes them)")
    )


def _constant(name: str) -> _Refused:
    return _Refused(name, "JSON has no NaN or Infinity (Terraform never writes them)")


def _jpath(at: str, loc: Sequence[int | str]) -> str:
    """A JSON path such as resources[2].instances[0].attributes.identifier; odd keys quoted."""
    path = at
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            path += f".{part}" if path else part
        else:
            path += f"[{json.dumps(part)}]"
    return path or "the top level"


def _shown(value: Any) -> str:
    """A value as a message shows it: JSON, ASCII (no control or invisible character), at most 60 characters."""
    if isinstance(value, _Refused):
        return value.shown
    text = json.dumps(value, ensure_ascii=True, default=lambda v: f"<{type(v).__name__}>")
    return text if len(text) <= 60 else text[:57] + "..."


def _too_deep(src: str, where: str) -> str:
    if len(where) > 80:  # 64 levels of [0]: the start says where
        where = where[: where.rfind("[", 0, 77)] + "..."
    return f"{src}: {where}: nested more than {MAX_DEPTH} levels deep; Terraform's states nest about a dozen"


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"\s*:?|[\[\]{},]')


def _deep_path(text: str) -> str:
    """Where the text first nests more than MAX_DEPTH deep, found by a scan of its tokens: for when the
    decoder itself gave up (RecursionError, at about 1000 levels)."""
    stack: list[int | str] = []  # per open array or object: the index or key being read in it
    for token in _TOKEN.finditer(text):
        tok = token.group()
        if tok in ("[", "{"):
            if len(stack) == MAX_DEPTH:
                return _jpath("", stack)
            stack.append(0 if tok == "[" else "")
        elif tok in ("]", "}"):
            if stack:
                stack.pop()
        elif tok == ",":
            if stack and isinstance(stack[-1], int):
                stack[-1] += 1
        elif tok.endswith(":") and stack:
            try:
                stack[-1] = json.loads(tok[:-1])
            except ValueError:
                stack[-1] = tok[:-1]
    return _jpath("", stack)


def _check_tree(doc: Any, src: str) -> None:
    """One walk over the whole document, without recursion: refuse nesting past MAX_DEPTH, a key given
    twice, NaN, Infinity and huge numbers, naming where they are (even where nothing reads them)."""
    todo: list[tuple[Any, int, Any]] = [(doc, 1, None)]  # (value, depth, (parent's place, key))

    def where(place: Any) -> str:
        loc: list[int | str] = []
        while place is not None:
            place, key = place
            loc.append(key)
        return _jpath("", loc[::-1])

    while todo:
        value, depth, place = todo.pop()
        if isinstance(value, _Refused):
            raise ConfigError(f"{src}: {where(place)}: {value.shown} is not allowed; {value.why}")
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise ConfigError(_too_deep(src, where(place)))
            if isinstance(value, _Duplicated):
                raise ConfigError(
                    f"{src}: {where(place)}: key {_shown(value.key)} given twice; readers differ on "
                    "which one counts (Terraform writes each key once)"
                )
            todo.extend((v, depth + 1, (place, k)) for k, v in value.items())
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise ConfigError(_too_deep(src, where(place)))
            todo.extend((v, depth + 1, (place, i)) for i, v in enumerate(value))


def _read(path: str | Path, src: str) -> bytes:
    """A state file's bytes, a local file or s3://bucket/key where Terraform's S3 backend keeps it; never
    more than MAX_BYTES + 1 of them are read (a "state" may be /dev/zero)."""
    size: int | None = None  # the whole size, when the file or S3 says it
    try:
        if str(path).startswith("s3://"):
            data, size = _read_s3(str(path))
        else:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                size = st.st_size if stat.S_ISREG(st.st_mode) else None
                data = b"" if size is not None and size > MAX_BYTES else f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{src}: not found (`terraform state pull > terraform.tfstate` writes it)") from None
    except OSError as exc:
        raise ConfigError(f"{src}: cannot be read ({exc.strerror or exc})") from None
    if (size if size is not None else len(data)) > MAX_BYTES:
        said = f"{size / 2**20:.1f} MiB" if size is not None else f"more than {MAX_BYTES // 2**20} MiB"
        raise ConfigError(f"{src}: {said}; import-terraform reads state files of at most {MAX_BYTES // 2**20} MiB")
    return data


def _read_s3(url: str) -> tuple[bytes, int | None]:
    from .aws.clients import AwsError, NotFound, aws, aws_client

    bucket, _, key = url[5:].partition("/")
    try:
        with aws(url, "read"):
            obj = aws_client("s3", region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1")).get_object(
                Bucket=bucket, Key=key
            )
            size = obj.get("ContentLength")
            size = size if isinstance(size, int) else None
            if size is not None and size > MAX_BYTES:
                obj["Body"].close()
                return b"", size
            return obj["Body"].read(MAX_BYTES + 1), size
    except NotFound:
        raise FileNotFoundError(url) from None
    except AwsError as exc:  # the file named on the command line: its error
        raise ConfigError(str(exc)) from None


def _parse(data: bytes, src: str) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError(
            f"{src}: not UTF-8 (byte 0x{data[exc.start]:02x} at line {line}, column {column}); "
            "Terraform writes its states in UTF-8"
        ) from None
    try:
        doc = json.loads(
            text, object_pairs_hook=_object, parse_int=_integer, parse_float=_float, parse_constant=_constant
        )
    except RecursionError:  # the C decoder's own bound: it unwound cleanly
        raise ConfigError(_too_deep(src, _deep_path(text))) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{src}: not JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}); is this a Terraform state?"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{src}: not JSON ({printable(str(exc))}); is this a Terraform state?") from None
    _check_tree(doc, src)
    return doc


# -- the state's structure and the attributes used: strict models, one line per refusal --------------


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


def _attributes(state: _State, role: str, src: str, module: str | None) -> tuple[dict[str, Any], str]:
    """The attributes of the seed's resource in role, and their JSON path."""
    rtype, rname = SEED[role]
    found = [
        (i, r)
        for i, r in enumerate(state.resources)
        if r.mode == "managed" and r.type == rtype and (module is None or r.module == module)
    ]
    named = [(i, r) for i, r in found if r.name == rname]
    pick = named or found
    where = f" in {printable(module)}" if module else ""
    if not pick:
        raise ConfigError(f"{src}: resources: no {rtype} resource{where} (the seed module's {rtype}.{rname})")
    if len(pick) > 1:
        mods = ", ".join(sorted(printable(r.module or "(root)") for _, r in pick))  # for_each keys: any text
        raise ConfigError(f"{src}: resources: several {rtype} resources ({mods}): name the module with --module")
    i, resource = pick[0]
    if len(resource.instances) != 1:
        raise ConfigError(
            f"{src}: resources[{i}].instances: {rtype}.{resource.name} has {len(resource.instances)} "
            "instances; import-terraform takes one (no count or for_each)"
        )
    at = f"resources[{i}].instances[0].attributes"
    attributes = resource.instances[0].attributes
    if attributes is None:
        raise ConfigError(f"{src}: {at}: missing; it must be an object of the resource's attributes")
    return attributes, at


def _region_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[3] else None


def read_seed_state(path: str | Path, *, module: str | None = None) -> SeedInfrastructure:
    """Parse and check the state file; a ConfigError of one line naming the file and the field on anything
    unexpected, before anything else is done."""
    src = printable(str(path))
    state = _validated(_State, _parse(_read(path, src), src), src)
    bucket_attrs, bucket_at = _attributes(state, "bucket", src, module)
    bucket = _validated(_BucketAttributes, bucket_attrs, src, bucket_at)
    sg_attrs, sg_at = _attributes(state, "security_group", src, module)
    sg = _validated(_GroupAttributes, sg_attrs, src, sg_at)
    db_attrs, db_at = _attributes(state, "instance", src, module)
    db = _validated(_InstanceAttributes, db_attrs, src, db_at)
    allowed_sgs, allowed_cidrs, dropped = set(), set(), []
    for rule in sg.ingress:
        ports = (rule.from_port or 0, rule.to_port or 0)
        on_pg = rule.protocol in ("tcp", "6") and ports[0] <= PORT <= ports[1]
        for cidr in [*rule.cidr_blocks, *rule.ipv6_cidr_blocks]:
            if on_pg and not cidr.endswith("/0"):
                allowed_cidrs.add(cidr)
            else:
                dropped.append(f"{rule.protocol} {ports[0]}-{ports[1]} from {cidr}")
        for group in rule.security_groups:
            if on_pg:
                allowed_sgs.add(group)
            else:
                dropped.append(f"{rule.protocol} {ports[0]}-{ports[1]} from {group}")
    return SeedInfrastructure(
        source=str(path),
        region=_region_of(db.arn) or bucket.region or None,
        bucket=bucket.bucket,
        bucket_region=bucket.region or None,
        security_group_name=sg.name,
        security_group_id=sg.id or "",
        instance=db.model_dump(),  # what was checked, and only that: the password never was
        allowed_security_groups=sorted(allowed_sgs),
        allowed_cidrs=sorted(allowed_cidrs),
        dropped_rules=dropped,
        instance_at=db_at,
    )


def _toml(value: Any) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists of strings: JSON is valid TOML here


def render_adoption_config(
    seed: SeedInfrastructure,
    *,
    name: str | None,
    environment: str,
    allow_security_groups: list[str],
    allow_cidrs: list[str],
    connect_through: str | None,
    region: str | None,
) -> tuple[str, str]:
    """(project name, airflow-infra.toml text) that describes what exists, hardened where that
    changes nothing that must be replaced: the first plan then holds only hardening changes."""
    db, src = seed.instance, printable(seed.source)
    if name is None and not seed.database:
        raise ConfigError(f"--name: {src} names no database on the instance: pass the project's name")
    source = "--name" if name else f"the instance's database {seed.database!r}"
    name = name or seed.database or ""
    if not re.fullmatch(NAME_RE, name):
        raise ConfigError(f"{source}: {name!r} is not a valid project name (must match {NAME_RE}); pass --name")
    major = str(db.get("engine_version") or "").split(".")[0]
    if not re.fullmatch(r"\d{2}", major):
        raise ConfigError(
            f"{src}: {_jpath(seed.instance_at, ['engine_version'])}: {_shown(db.get('engine_version'))}: "
            "airflow-infra manages PostgreSQL 10 and later; upgrade the instance first"
        )
    if not db.get("instance_class"):  # the reader lets it be absent (nothing else needs it); the config cannot
        raise ConfigError(
            f"{src}: {_jpath(seed.instance_at, ['instance_class'])}: missing; it must be an instance "
            "class such as db.t4g.micro"
        )
    region = region or seed.region
    if not region:
        raise ConfigError(f"--region: {src} says no region (the instance's ARN, the bucket): pass --region")
    groups = sorted(set(seed.allowed_security_groups) | set(allow_security_groups))
    cidrs = sorted(set(seed.allowed_cidrs) | set(allow_cidrs))
    lines = [
        # the file's name escaped: a newline in it would end the comment and start TOML of its own
        f"# written by `airflow-infra import-terraform {printable(Path(seed.source).name)}`: it describes what the seed's",
        "# Terraform made, hardened where nothing has to be replaced; review it, then `airflow-infra plan`.",
        "[project]",
        f"name = {_toml(name)}",
        f"environment = {_toml(environment)}",
        "",
        "[target]",
        'kind = "aws"',
        f"region = {_toml(region)}",
        "",
        "[database]",
    ]
    if seed.database and seed.database != name:
        lines.append(f"name = {_toml(seed.database)}")
    lines += [
        "schemas = []            # the seed's tables are in public; add schemas here as you need them",
        "",
        "[bucket]",
        f"name = {_toml(seed.bucket)}",
    ]
    if seed.bucket_region and seed.bucket_region != region:
        lines.append(f"region = {_toml(seed.bucket_region)}")
    lines += [
        "",
        "[airflow]               # the connection ids the seed's projects used",
        f"postgres_conn_id = {_toml(name + '_postgres')}",
        f"bucket_conn_id = {_toml(name + '-workbucket')}",
        "",
        "[aws.rds]",
        f"identifier = {_toml(db['identifier'])}",
        f"db_subnet_group = {_toml(db['db_subnet_group_name'])}   # the existing one, not managed here",
        f"security_group_name = {_toml(seed.security_group_name)}",
        f"instance_class = {_toml(db.get('instance_class'))}",
        f"engine_major = {_toml(major)}",
        f"allocated_storage = {_toml(db.get('allocated_storage') or 20)}",
        f"max_allocated_storage = {_toml(db.get('max_allocated_storage') or 0)}",
        f"backup_retention_days = {_toml(max(1, db.get('backup_retention_period') or 7))}",
        f"multi_az = {_toml(bool(db.get('multi_az')))}",
        # as the instance has it: Performance Insights depends on its class and engine version
        f"performance_insights = {_toml(bool(db.get('performance_insights_enabled')))}",
        "deletion_protection = true",
        "publicly_accessible = false",
        "# storage_encrypted = true (the default): an unencrypted instance is encrypted only by",
        "# `airflow-infra apply --encrypt-storage` (a snapshot-copy-restore; stop writers first)",
    ]
    if db.get("kms_key_id"):
        lines.append(f"kms_key_id = {_toml(db['kms_key_id'])}")
    lines += [f"allowed_security_groups = {_toml(groups)}   # the Airflow workers", f"allowed_cidrs = {_toml(cidrs)}"]
    if connect_through:
        lines.append(f"connect_through = {_toml(connect_through)}")
    return name, "\n".join(lines) + "\n"
