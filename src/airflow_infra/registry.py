"""The projects registry: the seed's AdminTools resources/projects.csv, read as it is.

Columns Project,Repo,URL (the seed's), plus optional Branch, Path (the folder of the repo that
holds its DAGs) and Config (the project's airflow-infra.toml, relative to the registry file, for
fleet commands). Names are project names (importable Python names); duplicate names or URLs
are refused. A URL may be a repository's web page on GitHub, GitLab or Bitbucket naming a branch
(the seed's own `https://github.com/stlrda/REDB-Workflows/tree/theo/development`): it is read as
the repository and that branch, and an explicit Branch wins. A page git cannot clone (a file, an
issue) is refused when the registry is read.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .dags.gitcmd import Remote, check_transport
from .errors import ConfigError
from .names import check_name

REQUIRED = ("Project", "Repo", "URL")
OPTIONAL = ("Branch", "Path", "Config")

# A repository's page naming a branch (which may hold "/"): GitHub's /tree/, GitLab's /-/tree/,
# Bitbucket's /src/; the repository's URL is what comes before, without a trailing .git.
_PAGES = (
    re.compile(
        r"^(?P<repo>https?://(?:www\.)?github\.com/[^/]+/[^/]+?)(?:\.git)?/tree/(?P<branch>[^?#]+?)/?(?:[?#].*)?$"
    ),
    re.compile(r"^(?P<repo>https?://[^/]+/.+?)(?:\.git)?/-/tree/(?P<branch>[^?#]+?)/?(?:[?#].*)?$"),
    re.compile(
        r"^(?P<repo>https?://(?:www\.)?bitbucket\.org/[^/]+/[^/]+?)(?:\.git)?/src/(?P<branch>[^?#]+?)/?(?:[?#].*)?$"
    ),
)
# Hosts whose repositories are exactly owner/name: a longer path is a page git cannot clone.
_TWO_PARTS = re.compile(r"^https?://(?:www\.)?(?:github\.com|bitbucket\.org)/(?P<path>[^?#]*)")


def source(url: str) -> tuple[str, str]:
    """(what git clones, the branch the URL names or "")."""
    for page in _PAGES:
        found = page.match(url)
        if found:
            return found["repo"], found["branch"]
    return url, ""


def shown(url: str) -> str:
    """url with the credentials it holds as ***: all of an https URL's user part (a token is often the
    user name), an ssh URL's password (its user is a login name). Raw text, whatever its encoding."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return url
    login = userinfo.split(":", 1)[0] + (":***" if ":" in userinfo else "")
    return f"{scheme}://{login if scheme.lower() == 'ssh' else '***'}@{host}{slash}{path}"


def _clonable(url: str) -> bool:
    two = _TWO_PARTS.match(url)
    return two is None or len([p for p in two["path"].removesuffix(".git").split("/") if p]) == 2


@dataclass(frozen=True)
class Entry:
    project: str
    repo: str
    url: str
    branch: str = ""
    path: str = ""
    config: str = ""

    @property
    def clone_url(self) -> str:
        return source(self.url)[0]

    @property
    def ref(self) -> str:
        """The branch to publish: Branch, else the one the URL's page names ("": the default branch)."""
        return self.branch or source(self.url)[1]

    def to_json(self) -> dict:
        """The row, with a password a URL holds shown as ***."""
        return {**asdict(self), "url": shown(self.url), "branch": self.ref, "clone_url": shown(self.clone_url)}


def _check_path(value: str, where: str) -> str:
    if value and (os.path.isabs(value) or any(p in ("", ".", "..") for p in value.rstrip("/").split("/"))):
        raise ConfigError(f"{where}: {value!r} must be a relative folder of the repository, without '.' or '..' parts")
    return value


# A branch git would take as a branch and nothing else: no option (-x), no refspec (a:b), no range (..),
# none of the characters git refuses in a ref name.
_BRANCH = re.compile(r"(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]+(?<![./])(?<!\.lock)")


def _check_url(e: Entry, where: str, *, transports: bool) -> None:
    if not e.url:
        raise ConfigError(f"{where}: URL is empty")
    try:  # a port out of range, a ~user that does not exist: this row's error, not every command's
        Remote.parse(e.clone_url)
        if e.clone_url.startswith("~"):
            Path(e.clone_url).expanduser()
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"{where}: URL {shown(e.url)!r} is not a URL git can use ({exc})") from None
    if not _clonable(e.clone_url):
        raise ConfigError(
            f"{where}: URL {shown(e.url)!r} is a web page git cannot clone: give the repository's URL, "
            "or its /tree/<branch> page"
        )
    why = check_transport(e.clone_url) if transports else None
    if why:
        raise ConfigError(f"{where}: URL {shown(e.url)!r}: {why}")


def check_rows(
    entries: list[Entry], source: str, lines: list[int] | None = None, *, transports: bool = True
) -> list[Entry]:
    """Each row's own rules, and no project or URL twice. transports=False leaves a URL git may not use
    to the commands that use it (`dags sync` fails that project alone): a registry an older version
    accepted stays readable."""
    names: set[str] = set()
    urls: set[str] = set()
    for i, e in zip(lines or range(2, len(entries) + 2), entries, strict=True):
        where = f"{source}: line {i}"
        check_name(e.project, source=f"{where}: Project")
        for column, value in (
            ("Repo", e.repo),
            ("URL", e.url),
            ("Branch", e.branch),
            ("Path", e.path),
            ("Config", e.config),
        ):
            if not value.isprintable():
                raise ConfigError(f"{where}: {column} holds a control or line-separating character")
        _check_url(e, where, transports=transports)
        if e.ref and not _BRANCH.fullmatch(e.ref):
            raise ConfigError(
                f"{where}: Branch {e.ref!r} is not a branch name (letters, digits and ._/+-, not "
                "starting with '-', no '..', ':' or spaces)"
            )
        if e.project in names:
            raise ConfigError(f"{where}: project {e.project!r} is listed twice")
        if e.url in urls:
            raise ConfigError(f"{where}: URL {shown(e.url)!r} is listed twice")
        _check_path(e.path, f"{where}: Path")
        names.add(e.project)
        urls.add(e.url)
    return entries


FIELD_LIMIT = 4096  # no URL, path or name is longer; a larger field is a broken file


def _rows(path: Path, text: str) -> tuple[list[tuple[int, list[str], str]], str]:
    """([(line, fields, what is wrong with the row or "")], the header first; what stopped the csv module,
    naming its line, or ""): one row per line, no field huge. No row after such a stop is read."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str], str]] = []
    last = 0
    try:
        for fields in reader:
            start, last = last + 1, reader.line_num
            wrong = ""
            if start != last or any("\n" in f or "\r" in f for f in fields):
                wrong = f"{path}: line {start}: a field holds a line break (one row per line)"
            elif any(len(f) > FIELD_LIMIT for f in fields):
                wrong = f"{path}: line {start}: a field longer than {FIELD_LIMIT} characters"
            rows.append((start, fields, wrong))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):  # the csv module's own limit, far above ours
            return rows, f"{path}: line {reader.line_num}: a field longer than {FIELD_LIMIT} characters"
        return rows, f"{path}: line {reader.line_num}: not CSV ({exc})"
    return rows, ""


def _header_of(path: Path, rows: list[tuple[int, list[str], str]]) -> list[str]:
    if not rows:
        raise ConfigError(f"{path}: empty; the first line names the columns: {','.join(REQUIRED)}")
    if rows[0][2]:
        raise ConfigError(rows[0][2])
    return _header(path, rows[0][1])


def _entry(path: Path, header: list[str], line: int, fields: list[str], wrong: str) -> Entry | None:
    """The row as an Entry (None for a blank one), or a ConfigError naming its line."""
    if wrong:
        raise ConfigError(wrong)
    if not any(f.strip() for f in fields):
        return None
    if len(fields) != len(header):
        raise ConfigError(
            f"{path}: line {line}: {len(fields)} fields, the header names {len(header)} ({','.join(header)})"
        )
    row = dict(zip(header, (f.strip() for f in fields), strict=True))
    return Entry(
        row["Project"], row["Repo"], row["URL"], row.get("Branch", ""), row.get("Path", ""), row.get("Config", "")
    )


def _header(path: Path, fields: list[str]) -> list[str]:
    header = [h.strip() for h in fields]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(REQUIRED + OPTIONAL)})")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise ConfigError(f"{path}: unknown column(s) {', '.join(unknown)} (allowed: {', '.join(REQUIRED + OPTIONAL)})")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise ConfigError(f"{path}: line 1: column(s) {', '.join(twice)} named twice")
    return header


def read(path: str | Path) -> list[Entry]:
    """The registry, strictly: one header naming each column once, one line per row (no line break inside
    a field), as many fields as the header, none huge; errors name the row's line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: registry not found (create it with `airflow-infra projects add`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    rows, stopped = _rows(path, text)
    if stopped:
        raise ConfigError(stopped)
    header = _header_of(path, rows)
    entries, lines = [], []
    for line, fields, wrong in rows[1:]:
        e = _entry(path, header, line, fields, wrong)
        if e is not None:
            entries.append(e)
            lines.append(line)
    return check_rows(entries, str(path), lines, transports=False)


def read_each(path: str | Path) -> tuple[list[Entry], list[str]]:
    """The registry, row by row, for a reader that must go on (the secrets backend): the rows that read,
    and one line per row that does not (a project listed twice loses every row). Rows are split and read
    as read() reads them (_rows, _entry): both readers see the same rows. A file that cannot be read at all,
    that is not CSV, or whose header is wrong, gives no row."""
    path = Path(path)
    try:
        rows, stopped = _rows(path, path.read_text(encoding="utf-8-sig"))
        header = _header_of(path, rows)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        return [], [str(exc) if isinstance(exc, ConfigError) else f"{path}: cannot read: {exc}"]
    entries: list[tuple[int, Entry]] = []
    errors: list[str] = [f"{stopped}; the rows after it are not read"] if stopped else []
    for line, fields, wrong in rows[1:]:
        try:
            e = _entry(path, header, line, fields, wrong)
            if e is not None:
                entries.append((line, check_rows([e], str(path), [line])[0]))
        except ConfigError as exc:
            errors.append(str(exc))
    return _once(path, entries, errors), errors


def _once(path: Path, entries: list[tuple[int, Entry]], errors: list[str]) -> list[Entry]:
    """The entries whose project and URL no other row has; one error per row dropped."""
    for key in ("project", "url"):
        seen = [getattr(e, key) for _, e in entries]
        twice = {v for v in seen if seen.count(v) > 1}
        for i, e in entries:
            if getattr(e, key) in twice:
                errors.append(
                    f"{path}: line {i}: {key} {shown(getattr(e, key))!r} is listed twice: no row of it is read"
                )
        entries = [(i, e) for i, e in entries if getattr(e, key) not in twice]
    return [e for _, e in entries]


def write(path: str | Path, entries: list[Entry]) -> None:
    """Write atomically, with the optional columns only when an entry uses them."""
    path = Path(path)
    check_rows(entries, str(path), transports=False)
    columns = list(REQUIRED) + [c for c in OPTIONAL if any(getattr(e, c.lower()) for e in entries)]
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for e in entries:
            w.writerow([getattr(e, c.lower()) for c in columns])
    os.replace(tmp, path)


def add(path: str | Path, entry: Entry) -> list[Entry]:
    entries = read(path) if Path(path).exists() else []
    write(path, entries + [entry])
    return read(path)


def remove(path: str | Path, project: str) -> list[Entry]:
    entries = read(path)
    kept = [e for e in entries if e.project != project]
    if len(kept) == len(entries):
        raise ConfigError(
            f"{path}: no project {project!r} (projects: {', '.join(e.project for e in entries) or 'none'})"
        )
    write(path, kept)
    return kept


def config_dir(registry: str | Path, entry: Entry) -> Path | None:
    """The project directory of an entry's Config (relative to the registry file), if any."""
    if not entry.config:
        return None
    p = Path(entry.config)
    p = p if p.is_absolute() else Path(registry).resolve().parent / p
    return p.parent if p.name.endswith(".toml") else p
