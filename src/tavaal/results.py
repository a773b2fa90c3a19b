"""Result records: writing them (atomically) and reading them back with clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tavaal.atomic import atomic_write_text
from tavaal.errors import TavaalError
from tavaal.paths import read_bytes_capped, read_gzip_capped


def dumps_records(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def write_records(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with one JSON object per line, atomically."""
    atomic_write_text(path, dumps_records(records))


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file (or a .jsonl.gz); a corrupt line is an error naming the file and line,
    never skipped."""
    path = Path(path)
    if not path.exists():
        raise TavaalError(f"no results file at {path}; run `tavaal run` or `tavaal compare` with --out first")
    if path.suffix == ".gz":  # archived results (benchmarks/results/) are kept compressed
        raw = read_gzip_capped(path, "records", "results file")
    else:
        raw = read_bytes_capped(path, "records", "results file")
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        raise TavaalError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); is it a results file?"
        ) from None
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
        except RecursionError:
            raise TavaalError(
                f"{path}: line {n} is nested too deeply to be read; fix or delete that line"
            ) from None
        if not isinstance(rec, dict):
            raise TavaalError(f"{path}: line {n} is not a JSON object; fix or delete that line")
        out.append(rec)
    return out
