"""Human-in-the-loop labeling: "which images should I label next?" over a folder of images.

The pool is every image under a folder; ``labels.csv`` (columns ``path,label``, paths relative to
the folder) holds the labels given so far. ``query`` trains the task learner (and what the method
needs) on the labeled images and returns the ``budget`` unlabeled images the method picks, with
their scores. The user labels them, appends rows to ``labels.csv``, and asks again.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tavaal.atomic import atomic_write_text
from tavaal.config import RunConfig
from tavaal.errors import TavaalError
from tavaal.learner import ActiveLearner, QueryResult
from tavaal.paths import read_bytes_capped


class RowWriter:
    """``csv.writer`` that also quotes a field holding CR or LF whatever the line terminator:
    Python's writer quotes only the terminator's own characters, so a file name with a lone CR
    written with ``\\n`` line ends would split its row when read back."""

    def __init__(self, buf: io.StringIO, delimiter: str = ",", lineterminator: str = "\n") -> None:
        self._plain = csv.writer(buf, delimiter=delimiter, lineterminator=lineterminator)
        self._quoted = csv.writer(
            buf, delimiter=delimiter, lineterminator=lineterminator, quoting=csv.QUOTE_ALL
        )

    def writerow(self, row: list[Any]) -> None:
        odd = any(isinstance(c, str) and ("\r" in c or "\n" in c) for c in row)
        (self._quoted if odd else self._plain).writerow(row)

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(list(row))


def read_labels(path: Path, known: set[str] | None = None) -> dict[str, str]:
    """``path,label`` rows; every problem is reported with its line number. With ``known``, every
    path must be one of them (an image of the pool folder)."""
    fix = "give a CSV file; create it with the header 'path,label' and one row per labeled image"
    raw = read_bytes_capped(path, "labels", "labels file", fix)
    try:  # utf-8-sig: spreadsheet programs start the file with a byte-order mark
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TavaalError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as CSV UTF-8"
        ) from None
    first = text.splitlines()[0] if text.strip() else ""
    # Spreadsheets in some locales separate with ';' (or export tabs); line ends may be CRLF.
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows or [c.strip().lower() for c in rows[0]] != ["path", "label"]:
        raise TavaalError(f"{path}: line 1 must be the header 'path,label'")
    labels: dict[str, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise TavaalError(f"{path}: line {n} must be 'path,label' with both filled in, got {row!r}")
        # Spaces around a cell are a spreadsheet's; a pool file whose name has them keeps them.
        p = row[0] if known is not None and row[0] in known else row[0].strip()
        lab = row[1].strip()
        if known is not None and p not in known:
            raise TavaalError(f"{path}: line {n} names {p!r}, which is not an image in the pool folder")
        if p in labels and labels[p] != lab:
            raise TavaalError(f"{path}: line {n} labels {p!r} {lab!r} but an earlier line says {labels[p]!r}")
        labels[p] = lab
    return labels


def query(
    pool: Path, labels_file: Path, method: str, budget: int, cfg: RunConfig, progress: bool = False
) -> tuple[QueryResult, list[Any] | None]:
    """Train on the labeled images and return the ``budget`` unlabeled ones ``method`` picks, and
    the task learner's predicted class of each pick (None on a cold start, which picks at random)."""
    learner = ActiveLearner(method, pool=pool, config=cfg, progress=progress)
    labels = read_labels(labels_file, set(learner.ids))
    learner.label(list(labels), list(labels.values()))
    learner.set_cycle(len(labels))  # each query of a growing labels file draws its own subset
    result = learner.query(budget)
    return result, None if result.cold_start else learner.predict(result.ids)


def write_suggestions(path: Path, result: QueryResult, predicted: list[Any] | None = None) -> None:
    """``rank,path,score,predicted,label`` with an empty label column to fill in, written atomically."""
    buf = io.StringIO()
    w = RowWriter(buf, lineterminator="\r\n")
    w.writerow(["rank", "path", "score", "predicted", "label"])
    for k, (rank, sid, score) in enumerate(result.rows()):
        guess = "" if predicted is None else predicted[k]
        w.writerow([rank, sid, "" if score is None else f"{score:.6g}", guess, ""])
    atomic_write_text(path, buf.getvalue())
