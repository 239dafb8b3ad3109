"""What a load returns (light: the public API exports it without loading the loader)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileResult:
    url: str
    rows: int
    bytes: int  # as stored (compressed where it is)
    seconds: float
    skipped: bool = False  # loaded before: the ledger says so


@dataclass(frozen=True)
class LoadResult:
    table: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

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

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "loaded": len(self.loaded),
            "skipped": len(self.skipped),
            "rows": self.rows,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "files": [
                {"url": f.url, "rows": f.rows, "bytes": f.bytes, "seconds": round(f.seconds, 3), "skipped": f.skipped}
                for f in self.files
            ],
        }
