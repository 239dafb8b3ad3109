"""Soak: the fault-injection harness (tests/test_fault_harness.py) for longer, over many seeds.

    python bench/soak.py --seeds 20 --examples 30 --steps 40 [--jobs 2] [--strict] [--out bench/soak-out]

Each seed is one pytest session running the same state machine with a bigger budget (the test reads
AIRFLOW_INFRA_SOAK_EXAMPLES / _STEPS / _SEED and writes its counts to AIRFLOW_INFRA_SOAK_REPORT): a session
of its own per seed, so a violation's shrinking and a wedged server never spill into the next seed.
A failing seed's output (Hypothesis's shrunk steps and the shell transcript) is kept under --out.
--strict empties KNOWN_DEFECTS, so known defects fail too. Prints a table: seed, sequences, steps,
commands, kills, pauses, known-defect hits, violations, seconds, and the first violation's line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["seed", "sequences", "steps", "commands", "kills", "pauses", "known", "violations", "seconds"]


def one_seed(seed: int, args: argparse.Namespace) -> dict:
    """One pytest session on the harness; its counts, and what failed (the first assertion's line)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report = Path(f.name)
    env = {
        **os.environ,
        "AIRFLOW_INFRA_SOAK_SEED": str(seed),
        "AIRFLOW_INFRA_SOAK_EXAMPLES": str(args.examples),
        "AIRFLOW_INFRA_SOAK_STEPS": str(args.steps),
        "AIRFLOW_INFRA_SOAK_REPORT": str(report),
    }
    if args.strict:
        env["AIRFLOW_INFRA_SOAK_KNOWN"] = ""
    if args.out:
        env["AIRFLOW_INFRA_SOAK_TRACE"] = str(Path(args.out) / f"seed-{seed}-transcripts")
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / "test_fault_harness.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    try:
        stats = json.loads(report.read_text() or "{}")
    except (OSError, ValueError):
        stats = {}
    report.unlink(missing_ok=True)
    row = {"seed": seed, **{c: stats.get(c, 0) for c in COLUMNS[1:-2]}, "seconds": round(time.monotonic() - started)}
    row["known"] = sum(v for k, v in stats.items() if k.startswith("known:"))
    row["known_by_name"] = {k[6:]: v for k, v in stats.items() if k.startswith("known:")}
    # Hypothesis replays a failure while shrinking: a failed seed is one violation, however often it fired
    row["violations"] = int(proc.returncode != 0)
    # the first assertion's line ("E   AssertionError: ..." or, in an exception group, "| AssertionError: ...")
    found = re.search(r"^[E|\s]+((?:AssertionError|\w+Error|\w+Exception)\b.*)$", proc.stdout, re.M)
    row["first"] = found.group(1)[:110] if found else ("" if proc.returncode == 0 else proc.stdout[-200:].strip())
    if proc.returncode != 0 and args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"seed-{seed}.txt").write_text(proc.stdout + proc.stderr)
    return row


def table(rows: list[dict]) -> str:
    total = {"seed": "total", **{c: sum(r[c] for r in rows) for c in COLUMNS[1:]}}
    widths = {c: max(len(c), *(len(str(r[c])) for r in [*rows, total])) for c in COLUMNS}
    line = lambda r: "  ".join(str(r[c]).rjust(widths[c]) for c in COLUMNS)  # noqa: E731
    out = [
        line({c: c for c in COLUMNS}),
        *(line(r) + ("  " + r["first"] if r["first"] else "") for r in rows),
        line(total),
    ]
    known: dict[str, int] = {}
    for r in rows:
        for k, v in r["known_by_name"].items():
            known[k] = known.get(k, 0) + v
    if known:
        out.append("known defects hit: " + ", ".join(f"{k} x{v}" for k, v in sorted(known.items())))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="how many seeds")
    ap.add_argument("--first", type=int, default=1, help="the first seed")
    ap.add_argument("--examples", type=int, default=20, help="sequences per seed")
    ap.add_argument("--steps", type=int, default=30, help="steps per sequence")
    ap.add_argument("--jobs", type=int, default=1, help="seeds at once (each starts its own servers)")
    ap.add_argument("--strict", action="store_true", help="known defects fail too (KNOWN_DEFECTS emptied)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "soak-out"), help="failing seeds' output, transcripts")
    args = ap.parse_args()
    seeds = range(args.first, args.first + args.seeds)
    rows = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for row in pool.map(lambda s: one_seed(s, args), seeds):
            rows.append(row)
            print(
                f"seed {row['seed']}: {row['sequences']} sequences, {row['steps']} steps, "
                f"{'VIOLATION ' + row['first'] if row['violations'] else 'ok'}",
                file=sys.stderr,
                flush=True,
            )
    print(table(rows))
    return 1 if any(r["violations"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
