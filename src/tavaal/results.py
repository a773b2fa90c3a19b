"""Result records, atomic writes, and reading records back with clear errors."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tavaal.errors import TavaalError

# Fields that measure the machine rather than the method; equal runs differ only in these.
TIMING_FIELDS = ("train_seconds", "select_seconds", "eval_seconds", "wall_seconds", "device")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def dumps_records(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with one JSON object per line, atomically."""
    atomic_write_text(path, dumps_records(records))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a corrupt line is an error naming the file and line, never skipped."""
    path = Path(path)
    if not path.is_file():
        raise TavaalError(f"no results file at {path}; run `tavaal run` or `tavaal compare` with --out first")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TavaalError(
                f"{path}: line {n} is not valid JSON ({e.msg}); fix or delete that line"
            ) from None
        if not isinstance(rec, dict):
            raise TavaalError(f"{path}: line {n} is not a JSON object; fix or delete that line")
        out.append(rec)
    return out


def strip_timing(record: dict[str, Any]) -> dict[str, Any]:
    """The record without machine-dependent fields, for comparing two runs."""
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}
