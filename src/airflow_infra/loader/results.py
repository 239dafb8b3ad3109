"""What a load returns (light: the public API exports it without loading the loader)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reject:
    """A row set aside (--max-errors): where in its file, and why."""

    url: str
    row: int  # the file's data rows counted from 1
    line: int | None  # the file's line the row starts on (CSV, JSON lines; None for Parquet)
    column: str | None
    value: str | None
    reason: str
    record: str  # the row as the file has it (Parquet: as CSV)


@dataclass(frozen=True)
class FileResult:
    url: str
    rows: int
    bytes: int  # as stored (compressed where it is)
    seconds: float
    skipped: bool = False  # loaded before: the ledger says so
    rejects: tuple[Reject, ...] = ()  # its rows set aside (--max-errors), as the ledger keeps them

    @property
    def rejected(self) -> int:
        return len(self.rejects)


@dataclass(frozen=True)
class LoadResult:
    table: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    created: bool = False  # --create made the table

    @property
    def loaded(self) -> list[FileResult]:
        return [f for f in self.files if not f.skipped]

    @property
    def skipped(self) -> list[FileResult]:
        return [f for f in self.files if f.skipped]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.loaded)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.loaded)

    @property
    def rejected(self) -> int:
        """Rows set aside (--max-errors) in the files loaded now and those loaded before."""
        return sum(f.rejected for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "created": self.created,
            "loaded": len(self.loaded),
            "skipped": len(self.skipped),
            "rows": self.rows,
            "bytes": self.bytes,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "files": [
                {
                    "url": f.url,
                    "rows": f.rows,
                    "bytes": f.bytes,
                    "seconds": round(f.seconds, 3),
                    "skipped": f.skipped,
                    "rejected": f.rejected,
                }
                for f in self.files
            ],
        }


@dataclass(frozen=True)
class UnloadResult:
    url: str  # where the file is now
    rows: int
    bytes: int  # as written (compressed where it is)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "rows": self.rows, "bytes": self.bytes, "seconds": round(self.seconds, 3)}
