"""Result records: writing them (atomically) and reading them back with clear errors."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tavaal.atomic import atomic_write_text
from tavaal.errors import TavaalError


def dumps_records(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with one JSON object per line, atomically."""
    atomic_write_text(path, dumps_records(records))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file (or a .jsonl.gz); a corrupt line is an error naming the file and line,
    never skipped."""
    path = Path(path)
    if not path.is_file():
        raise TavaalError(f"no results file at {path}; run `tavaal run` or `tavaal compare` with --out first")
    if path.suffix == ".gz":  # archived results (benchmarks/results/) are kept compressed
        text = gzip.decompress(path.read_bytes()).decode()
    else:
        text = path.read_text()
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
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
