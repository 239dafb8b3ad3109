"""Writing one revision's tree (a commit, or a folder of it) into an empty directory, safely against a
repository crafted to write elsewhere.

No archive is extracted: a tar parser resolves links on the filesystem as it writes, and a crafted tree
(duplicate entries, a link chain longer than PATH_MAX) has steered such parsers outside their target
(CVE-2025-4517). Here git only lists the tree and hands out its blobs; we decide every path:
- each name is checked (no '', '.', '..', '/', NUL) and each path is written once (a duplicate entry,
  or a file where a folder is, is refused);
- a link is resolved against the tree's own listing, as the kernel would resolve it once written (its
  target relative to its folder, '..' after a link leaving from the link's target, at most 40 links):
  a link that is absolute or resolves above the tree is refused, before anything is written, and so is one
  to a folder above itself (Airflow walks DAG folders following links: a loop would stop every project's);
- every write goes through a folder opened with O_NOFOLLOW relative to the one above it, and every file
  is created with O_EXCL|O_NOFOLLOW: no write can follow a link, whatever the tree holds.
Files are 0600 (0700 when executable), folders 0700: the DAG folder is this account's alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from .errors import AirflowInfraError
from .gitcmd import GitError, environment, kill_group, run

MAX_LINKS = 40  # the kernel's own limit on links followed in one path


class TreeRefused(AirflowInfraError):
    pass


def _parts(path: str) -> tuple[str, ...]:
    parts = tuple(path.split("/"))
    for p in parts:
        if p in ("", ".", "..") or "\0" in p:
            raise TreeRefused(f"refused: the tree holds an entry named {path!r}")
    return parts


def resolve(path: tuple[str, ...], links: dict[tuple[str, ...], str]) -> tuple[str, ...] | None:
    """Where path leads inside the tree once links are followed, or None when it leaves the tree."""
    out: list[str] = []
    todo = list(path)
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = links.get(tuple(out))
        if target is not None:
            hops += 1
            if hops > MAX_LINKS or target.startswith("/") or "\0" in target:
                return None
            out.pop()
            todo = target.split("/") + todo
    return tuple(out)


def listing(repo: Path, spec: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """[(mode, blob id, path parts)] of the tree at spec ('<commit>' or '<commit>:<folder>')."""
    if ":" not in spec:
        spec += "^{tree}"
    try:
        kind = run("cat-file", "-t", spec, cwd=repo, what="cat-file")
    except GitError:
        kind = ""
    if kind != "tree":
        commit, _, folder = spec.partition(":")
        raise TreeRefused(
            f"Path {folder!r} is not a folder of the repository at {commit[:12]}"
            if folder
            else f"{commit[:12]} is not a commit"
        )
    out = []
    for line in run("ls-tree", "-r", "-z", "--full-tree", spec, cwd=repo, what="ls-tree").split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "commit":  # a submodule: git archive leaves it empty, and so do we
            continue
        if kind != "blob" or mode not in ("100644", "100755", "120000"):
            raise TreeRefused(f"refused: {path!r} is a {kind} of mode {mode}")
        out.append((mode, oid, _parts(path)))
    return out


def check(entries: list[tuple[str, str, tuple[str, ...]]], targets: dict[str, bytes]) -> None:
    """Refuse duplicates, files under files or links, and links leading out, before anything is written."""
    seen: set[tuple[str, ...]] = set()
    for _, _, parts in entries:
        if parts in seen:
            raise TreeRefused(f"refused: {'/'.join(parts)!r} is in the tree twice")
        seen.add(parts)
    for _, _, parts in entries:
        for i in range(1, len(parts)):
            if parts[:i] in seen:
                raise TreeRefused(
                    f"refused: {'/'.join(parts)!r} lies under {'/'.join(parts[:i])!r}, which is not a folder"
                )
    links = {parts: targets[oid].decode("utf-8", "surrogateescape") for mode, oid, parts in entries if mode == "120000"}
    for parts, target in links.items():
        leads = None if target.startswith("/") else resolve(parts, links)
        if leads is None:
            raise TreeRefused(f"refused: the link {'/'.join(parts)!r} -> {target!r} leads outside the tree")
        if parts[: len(leads)] == leads:  # a folder above the link: a walk that follows links never ends
            raise TreeRefused(f"refused: the link {'/'.join(parts)!r} -> {target!r} leads to a folder above it (a loop)")


class _Blobs:
    """Blobs read through one `git cat-file --batch`, each handed out as it is read (never all in memory)."""

    def __init__(self, repo: Path):
        self.proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=repo,
            env=environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def __enter__(self) -> _Blobs:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)

    def copy(self, oid: str, out: Callable[[bytes], object]) -> None:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(oid.encode() + b"\n")
        stdin.flush()
        header = stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise TreeRefused(f"refused: blob {oid} cannot be read ({b' '.join(header).decode(errors='replace')})")
        left = int(header[2])
        while left:
            chunk = stdout.read(min(left, 1 << 20))
            if not chunk:
                raise TreeRefused(f"refused: blob {oid} ends early")
            out(chunk)
            left -= len(chunk)
        stdout.read(1)  # the newline after each object

    def read(self, oid: str) -> bytes:
        parts: list[bytes] = []
        self.copy(oid, parts.append)
        return b"".join(parts)


def write(repo: Path, spec: str, dest: Path) -> int:
    """Write the tree at spec into dest (an empty folder); the number of entries written."""
    entries = listing(repo, spec)
    with _Blobs(repo) as blobs:
        targets = {oid: blobs.read(oid) for mode, oid, _ in entries if mode == "120000"}
        check(entries, targets)
        dirs: dict[tuple[str, ...], int] = {(): os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)}
        try:
            for mode, oid, parts in entries:
                parent = _folder(dirs, parts[:-1])
                if mode == "120000":
                    os.symlink(targets[oid], parts[-1], dir_fd=parent)
                    continue
                fd = os.open(
                    parts[-1],
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                    0o700 if mode == "100755" else 0o600,
                    dir_fd=parent,
                )
                with os.fdopen(fd, "wb") as f:
                    blobs.copy(oid, f.write)
        except (FileExistsError, NotADirectoryError) as exc:
            raise TreeRefused(f"refused: {exc.strerror} while writing the tree") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a folder that is a link
                raise TreeRefused("refused: the tree writes through a link") from None
            raise
        finally:
            for fd in dirs.values():
                os.close(fd)
    return len(entries)


def _folder(dirs: dict[tuple[str, ...], int], parts: tuple[str, ...]) -> int:
    """The open folder at parts (made 0700 when missing), each level opened without following a link."""
    if parts in dirs:
        return dirs[parts]
    above = _folder(dirs, parts[:-1])
    with contextlib.suppress(FileExistsError):
        os.mkdir(parts[-1], 0o700, dir_fd=above)
    dirs[parts] = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=above)
    return dirs[parts]
