"""JSON read strictly, for files that may come from anywhere: at most MAX_BYTES of UTF-8, no NaN, no
key given twice, no deep nesting, no number longer than MAX_DIGITS; each refusal one line naming the
file and the JSON path."""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

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
    from ..aws.clients import AwsError, NotFound, aws, aws_client

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
