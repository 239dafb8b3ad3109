"""`dags sync`: publish every registered project's DAGs into Airflow's DAG folder, atomically.

Layout under the DAG folder DIR (nothing is ever written outside it):
  DIR/<Project>                                 a symlink, swapped atomically, to a whole revision
  DIR/.airflow-infra/revisions/<Project>/<sha>  the exported revision (its Path subfolder)
  DIR/.airflow-infra/repos/<Project>.git        a bare clone, fetched on later syncs (a remote repository)
  DIR/.airflow-infra/repos/<Project>.seen       the commit last seen (a local repository, read in place)
  DIR/.airflowignore                            keeps Airflow out of .airflow-infra/

A revision is exported beside the published one, checked (with --check), then made visible by
renaming a new symlink over the old: Airflow never sees a half-written tree, a sync killed at any
point leaves every project at a whole revision, and a project whose sync fails keeps its last good
one. The fetch is not forced, so rewritten history is reported rather than published.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .. import children
from ..errors import AirflowInfraError
from ..files import make_private_once, private_files, write_private
from ..flock import exclusive
from ..names import check_name
from ..registry import Entry
from . import gitcmd, gittree

STATE = ".airflow-infra"
IGNORE_LINE = ".airflow-infra/"


@dataclass(frozen=True)
class SyncResult:
    project: str
    old: str | None
    new: str | None
    result: str  # published | unchanged | unpublished | failed
    error: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


class SyncError(AirflowInfraError):
    pass


def _local_repository(url: str) -> Path | None:
    """The directory of a git repository on this machine (a path or a file:// URL), else None."""
    if url.startswith("file://"):
        path = Path(unquote(urlsplit(url).path))
    elif "://" in url or url.startswith("ext::") or (":" in url.split("/", 1)[0]):  # URLs and scp-like host:path
        return None
    else:
        path = Path(url).expanduser()
    return path if (path / "HEAD").is_file() or (path / ".git").exists() else None


def _rev(repo: Path, ref: str) -> str | None:
    try:
        return gitcmd.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo)
    except gitcmd.GitError:
        return None


def _ancestor(repo: Path, old: str, new: str) -> bool:
    try:
        gitcmd.run("merge-base", "--is-ancestor", old, new, cwd=repo, what="merge-base")
        return True
    except gitcmd.GitError:
        return False


def _published(link: Path) -> str | None:
    """The revision a project's symlink points at, or None."""
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def _check_python(tree: Path) -> None:
    for py in sorted(tree.rglob("*.py")):
        if not py.is_file():  # a folder named x.py, a link to nothing: nothing to compile
            continue
        try:
            compile(py.read_bytes(), str(py), "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise SyncError(f"{py.relative_to(tree)} does not compile: {type(exc).__name__}: {exc}") from None


_DAGBAG = """
import sys
try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow >= 3.1
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
for path, err in sorted(bag.import_errors.items()):
    print(f"{path}: {err.strip().splitlines()[-1]}", file=sys.stderr)
sys.exit(1 if bag.import_errors else 0)
"""


def _check_dagbag(tree: Path) -> None:
    """Load the revision in Airflow's DagBag, in a child process, where Airflow is importable."""
    if importlib.util.find_spec("airflow") is None:
        return
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = children.run(
        [sys.executable, "-c", _DAGBAG, str(tree)],
        what="DagBag import",
        env=env,
        timeout=600,
        error=SyncError,
        check=False,
    )
    if proc.returncode != 0:
        raise SyncError(f"DagBag import errors: {children.last_line(proc.stderr) or 'see airflow logs'}")


def _airflow_version() -> str:
    """The Airflow the check loads DAGs with ("" where there is none): a new one checks again."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apache-airflow")
    except PackageNotFoundError:
        return ""


class DagSync:
    def __init__(
        self, dags_folder: str | Path, *, check: bool = False, recheck: bool = False, timeout: float = gitcmd.DEADLINE
    ):
        self.dir = Path(dags_folder).resolve()
        self.timeout = timeout
        self.state = self.dir / STATE
        self.check = check or recheck
        self.recheck = recheck

    def _checked(self, project: str, sha: str) -> Path:
        """The record of a revision's passed check: the Airflow version it passed with."""
        return self.state / "revisions" / project / f"{sha}.checked"

    def _run_checks(self, tree: Path, project: str, sha: str) -> None:
        _check_python(tree)
        _check_dagbag(tree)
        write_private(self._checked(project, sha), _airflow_version() + "\n")

    def _needs_recheck(self, project: str, sha: str) -> bool:
        """A published revision is checked again when asked, or when the Airflow it passed with changed."""
        if not self.check:
            return False
        record = self._checked(project, sha)
        return self.recheck or not record.is_file() or record.read_text().strip() != _airflow_version()

    def _prepare(self) -> None:
        for d in (self.dir, self.state / "repos", self.state / "revisions"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        make_private_once(self.state)
        ignore = self.dir / ".airflowignore"
        lines = ignore.read_text().splitlines() if ignore.exists() else []
        if IGNORE_LINE not in lines:
            write_private(ignore, "\n".join([*lines, IGNORE_LINE]) + "\n")

    def _fetch(self, e: Entry) -> tuple[str, Path]:
        """The commit of the project's branch, and the repository to export it from: a local
        repository is read in place (no copy to make), any other is mirrored by a bare clone."""
        ref = f"refs/heads/{e.ref}" if e.ref else "HEAD"  # a bare clone's HEAD is the default branch
        why = gitcmd.check_transport(e.clone_url)
        if why:
            raise SyncError(f"URL: {why}")
        local = _local_repository(e.clone_url)
        if local is not None:
            sha = gitcmd.run("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=local, timeout=self.timeout)
            self._check_fast_forward(e.project, sha, local)
            return sha, local
        remote = gitcmd.Remote.parse(e.clone_url)
        repo = self.state / "repos" / f"{e.project}.git"
        if not (repo / "HEAD").exists():
            tmp = repo.with_name(f".{repo.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            gitcmd.run("clone", "--bare", "--quiet", "--", remote.url, str(tmp), remote=remote, timeout=self.timeout)
            os.replace(tmp, repo)  # freshly cloned: nothing to fetch
            return gitcmd.run("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=repo), repo
        # the registry's URL, without credentials (a mirror made by an older version may hold them)
        gitcmd.run("remote", "set-url", "origin", remote.url, cwd=repo)
        branch = e.ref or gitcmd.run("symbolic-ref", "--short", "HEAD", cwd=repo)
        gitcmd.run(
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
            f"refs/heads/{branch}",
            cwd=repo,
            remote=remote,
            timeout=self.timeout,
            what="fetch",
        )
        new = gitcmd.run("rev-parse", "--verify", "FETCH_HEAD^{commit}", cwd=repo)
        last = _rev(repo, f"refs/heads/{branch}")
        if last and last != new and not _ancestor(repo, last, new):  # the mirror is never forced
            raise SyncError(
                f"the branch's history was rewritten ({last[:12]} is not an ancestor of {new[:12]}): not published"
            )
        gitcmd.run("update-ref", f"refs/heads/{branch}", new, cwd=repo)
        return new, repo

    def _check_fast_forward(self, project: str, sha: str, repo: Path) -> None:
        """What the mirror's check does, for a repository read in place: the commit last seen must be
        an ancestor of the new one, or the history was rewritten and nothing is published."""
        seen = self.state / "repos" / f"{project}.seen"
        last = seen.read_text().strip() if seen.exists() else None
        if last and last != sha and not _ancestor(repo, last, sha):
            raise SyncError(
                f"the branch's history was rewritten ({last[:12]} is not an ancestor of {sha[:12]}): not published"
            )
        if last != sha:
            write_private(seen, sha + "\n")

    def _export(self, e: Entry, sha: str, repo: Path) -> Path:
        """The revision's tree (its Path subfolder) beside the published one; links out are refused."""
        revisions = self.state / "revisions" / e.project
        final = revisions / sha
        if final.is_dir():
            return final
        tmp = revisions / f".{sha}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, mode=0o700)
        spec = f"{sha}:{e.path}" if e.path else sha
        try:
            gittree.write(repo, spec, tmp, timeout=self.timeout)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            if self.check:
                self._run_checks(tmp, e.project, sha)
        except SyncError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, final)
        return final

    def _publish(self, e: Entry, tree: Path) -> None:
        link = self.dir / e.project
        if link.exists() and not link.is_symlink():
            raise SyncError(f"{link} exists and was not published by airflow-infra: move it away first")
        tmp_link = self.dir / f".{e.project}.{os.getpid()}.link"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(tree.relative_to(self.dir))
        os.replace(tmp_link, link)  # the atomic swap

    def _prune(self, project: str, keep: set[str]) -> None:
        """Drop old revisions and leftovers of killed syncs; the previous revision stays one round,
        for a parse of it that may still be running."""
        revisions = self.state / "revisions" / project
        if not revisions.is_dir():
            return
        for d in revisions.iterdir():
            if d.name.removesuffix(".checked") not in keep:
                if d.is_dir() and not d.is_symlink():
                    shutil.rmtree(d, ignore_errors=True)
                else:
                    d.unlink(missing_ok=True)

    def sync_one(self, e: Entry) -> SyncResult:
        start = time.monotonic()
        try:
            check_name(e.project, source="Project")  # before any path is made of it
        except AirflowInfraError as exc:
            return SyncResult(e.project, None, None, "failed", str(exc))
        old = _published(self.dir / e.project)
        try:
            sha, repo = self._fetch(e)
            if sha == old:
                if self._needs_recheck(e.project, sha):  # published, but checked with another Airflow or not at all
                    try:
                        self._run_checks(self.state / "revisions" / e.project / sha, e.project, sha)
                    except SyncError as exc:
                        raise SyncError(f"the published revision {sha[:12]} fails the check now: {exc}") from None
                self._prune(e.project, {sha})
                return SyncResult(e.project, old, sha, "unchanged", seconds=time.monotonic() - start)
            self._publish(e, self._export(e, sha, repo))
            self._prune(e.project, {sha} | ({old} if old else set()))
            return SyncResult(e.project, old, sha, "published", seconds=time.monotonic() - start)
        except (SyncError, AirflowInfraError) as exc:
            return SyncResult(e.project, old, old, "failed", str(exc), time.monotonic() - start)
        except Exception as exc:  # one project's trouble, whatever it is, never stops another's
            return SyncResult(e.project, old, old, "failed", f"{type(exc).__name__}: {exc}", time.monotonic() - start)

    def unpublish_others(self, keep: set[str]) -> list[SyncResult]:
        out = []
        for link in sorted(self.dir.iterdir()):
            if link.is_symlink() and link.name not in keep and os.readlink(link).startswith(f"{STATE}/revisions/"):
                old = _published(link)
                link.unlink()
                shutil.rmtree(self.state / "revisions" / link.name, ignore_errors=True)
                shutil.rmtree(self.state / "repos" / f"{link.name}.git", ignore_errors=True)
                (self.state / "repos" / f"{link.name}.seen").unlink(missing_ok=True)
                out.append(SyncResult(link.name, old, None, "unpublished"))
        return out

    def run(self, entries: list[Entry], *, jobs: int = 4) -> list[SyncResult]:
        with private_files():
            return self._run(entries, jobs)

    def _run(self, entries: list[Entry], jobs: int) -> list[SyncResult]:
        self._prepare()
        with exclusive(self.state / "sync.lock"):  # one sync at a time per DAG folder
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                results = list(pool.map(self.sync_one, entries))
            results += self.unpublish_others({e.project for e in entries})
        return sorted(results, key=lambda r: r.project)


IMPORTER = '''"""import_dags: publishes every registered project's DAGs into this folder (airflow-infra dags sync).
Written by `airflow-infra dags install-importer`; edit that command's options rather than this file."""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

REGISTRY = {registry!r}
DAGS_FOLDER = {dags_folder!r}
JOBS = {jobs!r}
CHECK = {check!r}

with DAG(
    dag_id="import_dags",
    schedule={schedule!r},
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["airflow-infra"],
):

    @task(task_id="sync")
    def sync() -> list[dict]:
        from airflow_infra.dags.sync import DagSync
        from airflow_infra.registry import read

        results = DagSync(DAGS_FOLDER, check=CHECK).run(read(REGISTRY), jobs=JOBS)
        failed = [r for r in results if r.result == "failed"]
        if failed:
            raise RuntimeError("; ".join(f"{{r.project}}: {{r.error}}" for r in failed))
        return [r.to_json() for r in results]

    sync()
'''


def install_importer(
    dags_folder: str | Path, *, registry: str | Path, schedule: str = "*/5 * * * *", jobs: int = 4, check: bool = True
) -> Path:
    folder = Path(dags_folder).resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "import_dags.py"
    text = IMPORTER.format(
        registry=str(Path(registry).resolve()), dags_folder=str(folder), schedule=schedule, jobs=jobs, check=check
    )
    write_private(path, text)
    return path
