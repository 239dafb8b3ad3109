"""Writing one revision's tree (a commit, or a folder of it) into an empty directory, safely against a
repository crafted to write elsewhere.

No archive is extracted: a tar parser resolves links on the filesystem as it writes, and a crafted tree
(duplicate entries, a link chain longer than PATH_MAX) has steered such parsers outside their target
(CVE-2025-4517). Here git only lists the tree and hands out its blobs; we decide every path:
- each name is checked (no '', '.', '..', '/', NUL) and each path is written once (a duplicate entry,
  or a file where a folder is, is refused);
- a link is resolved against the tree's own listing, as the kernel would resolve it once written (its
  target relative to its folder, '..' after a link leaving from the link's target, at most 40 links):
  a link that is absolute or resolves above the tree is refused, before anything is written;
- a link to a folder is refused (Airflow refuses a DAG folder in which a folder is reached twice: one
  project's link would hide every project's DAGs), and so is a loop;
- every write goes through a folder opened with O_NOFOLLOW relative to the one above it, and every file
  is created with O_EXCL|O_NOFOLLOW: no write can follow a link, whatever the tree holds;
- a tree is bounded (MAX_ENTRIES entries, MAX_BYTES in all: a few kilobytes of repository can name the
  same folder a million times), and so is git's time (a deadline on the listing and on the blobs).
Files are 0600 (0700 when executable), folders 0700: the DAG folder is this account's alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import AirflowInfraError
from .gitcmd import DEADLINE, environment, kill_group

MAX_LINKS = 40  # the kernel's own limit on links followed in one path
MAX_ENTRIES = 100_000  # files and links in one revision: DAG repositories hold hundreds
MAX_BYTES = 2 * 2**30  # their sizes together


class TreeRefused(AirflowInfraError):
    pass


def _parts(path: str) -> tuple[str, ...]:
    parts = tuple(path.split("/"))
    for p in parts:
        if p in ("", ".", "..") or "\0" in p:
            raise TreeRefused(f"refused: the tree holds an entry named {path!r}")
    return parts


def _shown(parts: tuple[str, ...]) -> str:
    return repr("/".join(parts))


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
            if hops > MAX_LINKS or not target or target.startswith("/") or "\0" in target:
                return None
            out.pop()
            todo = target.split("/") + todo
    return tuple(out)


@contextlib.contextmanager
def _deadline(proc: subprocess.Popen, timeout: float, what: str) -> Iterator[None]:
    """Kill proc's group at the deadline; a read cut short by it is said as a timeout."""
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        kill_group(proc)

    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        yield
    except (TreeRefused, OSError, ValueError):
        if expired.is_set():
            raise TreeRefused(f"git {what} gave no answer within {timeout:g} s: stopped") from None
        raise
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill_group(proc)
    if expired.is_set():
        raise TreeRefused(f"git {what} gave no answer within {timeout:g} s: stopped")


def listing(repo: Path, spec: str, *, timeout: float = DEADLINE) -> list[tuple[str, str, tuple[str, ...]]]:
    """[(mode, blob id, path parts)] of the tree at spec ('<commit>' or '<commit>:<folder>')."""
    if ":" not in spec:
        spec += "^{tree}"
    proc = subprocess.Popen(
        ["git", "ls-tree", "-r", "-z", "-l", "--full-tree", spec],
        cwd=repo,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    out: list[tuple[str, str, tuple[str, ...]]] = []
    total, rest = 0, b""
    with _deadline(proc, timeout, "ls-tree"):
        while chunk := proc.stdout.read(1 << 16):
            *records, rest = (rest + chunk).split(b"\0")
            for record in records:
                meta, _, raw = record.partition(b"\t")
                mode, kind, oid, size = meta.decode().split()
                path = os.fsdecode(raw)  # a name that is not UTF-8 is written as the bytes it is
                if kind == "commit":  # a submodule: git archive leaves it empty, and so do we
                    continue
                if kind != "blob" or mode not in ("100644", "100755", "120000"):
                    raise TreeRefused(f"refused: {path!r} is a {kind} of mode {mode}")
                total += int(size)
                out.append((mode, oid, _parts(path)))
                if len(out) > MAX_ENTRIES or total > MAX_BYTES:
                    raise TreeRefused(
                        f"refused: the tree holds more than {MAX_ENTRIES:,} files or "
                        f"{MAX_BYTES // 2**30} GiB (a repository of DAGs holds far less)"
                    )
        proc.wait()
    if proc.returncode != 0:  # what spec names is not a tree: no such commit, or Path a file or nothing
        commit, _, folder = spec.partition(":")
        raise TreeRefused(
            f"Path {folder!r} is not a folder of the repository at {commit[:12]}"
            if folder
            else f"{commit[:12]} is not a commit of the repository"
        )
    return out


def check(entries: list[tuple[str, str, tuple[str, ...]]], targets: dict[str, bytes]) -> None:
    """Refuse duplicates, files under files or links, links leading out or to a folder, before anything
    is written."""
    seen: set[tuple[str, ...]] = set()
    for _, _, parts in entries:
        if parts in seen:
            raise TreeRefused(f"refused: {_shown(parts)} is in the tree twice")
        seen.add(parts)
    folders = {parts[:i] for _, _, parts in entries for i in range(1, len(parts))}
    for _, _, parts in entries:
        if parts in folders:
            raise TreeRefused(f"refused: {_shown(parts)} is a file, and a folder of the tree too")
    links = {parts: os.fsdecode(targets[oid]) for mode, oid, parts in entries if mode == "120000"}
    for parts, target in links.items():
        leads = None if target.startswith("/") else resolve(parts, links)
        if leads is None:
            raise TreeRefused(f"refused: the link {_shown(parts)} -> {target!r} leads outside the tree")
        if leads in folders or leads == ():  # Airflow's walk refuses a folder it reaches twice
            raise TreeRefused(
                f"refused: the link {_shown(parts)} -> {target!r} leads to a folder (Airflow "
                "refuses a DAG folder in which a folder is reached twice)"
            )


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

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
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


def write(repo: Path, spec: str, dest: Path, *, timeout: float = DEADLINE) -> int:
    """Write the tree at spec into dest (an empty folder); the number of entries written. git's part is
    bounded by timeout, the listing and the blobs each."""
    entries = listing(repo, spec, timeout=timeout)
    blobs = _Blobs(repo)
    with _deadline(blobs.proc, timeout, "cat-file"):
        try:
            targets = {oid: blobs.read(oid) for mode, oid, _ in entries if mode == "120000"}
            check(entries, targets)
            _write(entries, targets, blobs, dest)
        finally:
            blobs.close()
    return len(entries)


def _write(entries, targets: dict[str, bytes], blobs: _Blobs, dest: Path) -> None:
    dirs = _Folders(dest)
    parts: tuple[str, ...] = ()
    try:
        for mode, oid, parts in entries:
            parent = dirs.open(parts[:-1])
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
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a folder that is a link
            raise TreeRefused(f"refused: {_shown(parts)} would be written through a link") from None
        raise TreeRefused(f"refused: {_shown(parts)}: {exc.strerror}") from None
    finally:
        dirs.close()


class _Folders:
    """The open folders from dest down to the one being written, each opened from the one above without
    following a link (made 0700 when missing). Only that chain is open: a tree of many folders needs no
    more descriptors than it is deep."""

    def __init__(self, dest: Path):
        self.open_: dict[tuple[str, ...], int] = {(): os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)}

    def open(self, parts: tuple[str, ...]) -> int:
        for held in [k for k in self.open_ if k and parts[: len(k)] != k]:
            os.close(self.open_.pop(held))
        return self._get(parts)

    def _get(self, parts: tuple[str, ...]) -> int:
        if parts in self.open_:
            return self.open_[parts]
        above = self._get(parts[:-1])
        with contextlib.suppress(FileExistsError):
            os.mkdir(parts[-1], 0o700, dir_fd=above)
        self.open_[parts] = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=above)
        return self.open_[parts]

    def close(self) -> None:
        for fd in self.open_.values():
            os.close(fd)
        self.open_.clear()
