"""Helpers of the fault and bad-input probes (tests/test_probes_*.py): run the command line as a
user would and check what a user must be able to count on: the exit code, one line on stderr, no
traceback, files untouched, nothing run."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """``tavaal ARGV`` in this process: (exit code, stderr)."""
    from tavaal.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    return code, capsys.readouterr().err


def refused(argv: list[str], capsys, needle: str, code: int = 2) -> str:
    """The command fails with ``code`` and one line holding ``needle``, no traceback."""
    got, err = cli(argv, capsys)
    assert got == code, err
    one_line(err)
    assert needle in err, err
    return err


def is_device(path: str) -> bool:
    """Whether ``path`` is a character device: some sandboxes give /dev/null as a plain file."""
    return os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode)


def one_line(err: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip() and ": warning:" not in ln.lower()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "\x1b" not in err


def digest(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root`` (or of the file ``root``)."""
    root = Path(root)
    if root.is_file():
        return {root.name: _sha(root)}
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _sha(path: Path) -> str:
    with open(path, "rb") as f:  # not Path.read_bytes: some probes make that fail on purpose
        return hashlib.sha256(f.read()).hexdigest()


def make_pool(root: Path, n: int = 30, size: int = 12) -> dict[str, str]:
    """``n`` small PNGs of three colours under ``root``: {relative path: colour}."""
    rng = np.random.default_rng(0)
    colors = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    truth = {}
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = list(colors)[i % 3]
        arr = np.clip(np.array(colors[name]) + rng.integers(-30, 30, (size, size, 3)), 0, 255)
        rel = f"img{i:03d}.png"
        Image.fromarray(arr.astype(np.uint8)).save(root / rel)
        truth[rel] = name
    return truth


def write_labels(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in rows))
    return path


def export_task(task_id: int, path: str, choice: str) -> dict:
    """One task as Label Studio's JSON export writes it."""
    result = [{"type": "choices", "value": {"choices": [choice]}, "to_name": "image", "from_name": "choice"}]
    return {
        "id": task_id,
        "data": {"image": f"/data/local-files/?d={path}"},
        "annotations": [{"id": 100 + task_id, "result": result, "was_cancelled": False}],
    }


def write_export(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text(json.dumps([export_task(k, p, c) for k, (p, c) in enumerate(rows, start=1)]))
    return path


QUERY = ["--preset", "digits", "--epochs", "1", "--budget", "3", "--quiet"]


# A results folder small enough for a module fixture: random on moons, 2 cycles (conftest ``results``).
MOONS = ["--preset", "moons", "--cycles", "2", "--initial", "10", "--budget", "5", "--epochs", "2", "--quiet"]
