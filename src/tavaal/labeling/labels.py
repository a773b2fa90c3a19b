"""Human-in-the-loop labeling: "which images should I label next?" over a folder of images.

The pool is every image under a folder; ``labels.csv`` (columns ``path,label``, paths relative to
the folder) holds the labels given so far. ``query`` trains the task learner (and what the method
needs) on the labeled images and returns the ``budget`` unlabeled images the method picks, with
their scores. The user labels them, appends rows to ``labels.csv``, and asks again.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tavaal.atomic import atomic_write_text
from tavaal.config import RunConfig
from tavaal.errors import TavaalError
from tavaal.learner import ActiveLearner, QueryResult
from tavaal.paths import read_bytes_capped

logger = logging.getLogger("tavaal")


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


def read_labels(path: Path, known: set[str] | None = None, root: Path | None = None) -> dict[str, str]:
    """``path,label`` rows; every problem is reported with its line number. With ``known``, every
    path must be one of them (an image of the pool folder, relative to it); with the pool folder
    ``root`` too, an absolute path of one of its images is taken as that image."""
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
        if known is not None and p not in known and root is not None and os.path.isabs(p):
            rel = os.path.relpath(os.path.realpath(p), os.path.realpath(root))
            p = rel if rel in known else p
        if known is not None and p not in known:
            where = f" {root}" if root is not None else ""
            raise TavaalError(
                f"{path}: line {n} names {p!r}, which is not an image in the pool folder{where} (paths "
                "are relative to the pool folder, e.g. cats/001.jpg)"
            )
        if p in labels and labels[p] != lab:
            raise TavaalError(f"{path}: line {n} labels {p!r} {lab!r} but an earlier line says {labels[p]!r}")
        labels[p] = lab
    return labels


QUERY_BUDGET = 50  # images per query when --budget is not given: one labeling batch (serve's too)


def query(
    pool: Path,
    labels_file: Path,
    method: str,
    budget: int | None,
    cfg: RunConfig,
    progress: bool = False,
) -> tuple[QueryResult, list[Any] | None]:
    """Train on the labeled images and return the ``budget`` unlabeled ones ``method`` picks, and
    the task learner's predicted class of each pick (None on a cold start, which picks at random).
    ``budget`` None: ``QUERY_BUDGET``, or every unlabeled image when fewer are left (said in one line)."""
    learner = ActiveLearner(method, pool=pool, config=cfg, progress=progress)
    labels = read_labels(labels_file, set(learner.ids), pool)
    warn_lonely_classes(labels, labels_file)
    learner.label(list(labels), list(labels.values()))
    learner.set_cycle(len(labels))  # each query of a growing labels file draws its own subset
    left = len(learner.ids) - len(labels)
    if left == 0:
        raise TavaalError(f"every image of {pool} is labeled in {labels_file}: nothing left to query")
    if budget is None:
        budget = min(QUERY_BUDGET, left)
        if budget < QUERY_BUDGET:
            logger.warning("only %d images are unlabeled: the query returns all of them, ranked", left)
    elif budget > left:
        raise TavaalError(
            f"--budget {budget} is more than the {left} unlabeled images of {pool}; give --budget {left} "
            "or less"
        )
    result = learner.query(budget)
    return result, None if result.cold_start else learner.predict(result.ids)


def warn_lonely_classes(labels: dict[str, str], labels_file: Path) -> None:
    """One line per class with a single label while the others have several: a typo ("cta" for
    "cat") would otherwise become a class of its own."""
    counts = Counter(labels.values())
    if len(counts) < 2 or sorted(counts.values())[-1] < 3:
        return
    for name, n in sorted(counts.items()):
        if n == 1:
            close = difflib.get_close_matches(name, [c for c in counts if c != name], n=1, cutoff=0.6)
            hint = f" (a typo of {close[0]!r}?)" if close else " (a typo?)"
            logger.warning(
                "%s: class %r has one label while the others have several%s; fix the row if it is not "
                "a class of its own",
                labels_file,
                name,
                hint,
            )


def write_suggestions(path: Path, result: QueryResult, predicted: list[Any] | None = None) -> None:
    """``rank,path,score,score_name,score_order,predicted,label`` with an empty label column to fill
    in, written atomically. Rank 1 is labeled first whatever the method; ``score_name`` and
    ``score_order`` say what the score is and how it runs with the rank."""
    buf = io.StringIO()
    w = RowWriter(buf, lineterminator="\r\n")
    w.writerow(["rank", "path", "score", "score_name", "score_order", "predicted", "label"])
    name, order = result.score_name or "", result.score_order or ""
    for k, (rank, sid, score) in enumerate(result.rows()):
        guess = "" if predicted is None else predicted[k]
        w.writerow([rank, sid, "" if score is None else f"{score:.6g}", name, order, guess, ""])
    atomic_write_text(path, buf.getvalue())
