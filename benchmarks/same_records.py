"""Are two results folders' records the same, field for field, timings aside? The check that a
refactor changed no result (issues 22 and 33): run one protocol before and after, then

    python benchmarks/same_records.py runs/before runs/after

prints the records compared and every field that differs (exit 1 if any), and whether the two
config.yaml files name the same experiment hash.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from tavaal.results import read_records

# Fields that measure the run rather than decide it (seconds, the package version).
IGNORED = frozenset({"eval_seconds", "select_seconds", "train_seconds", "selection_seconds", "version"})


def _key(r: dict[str, Any]) -> tuple:
    return (r["method"], r["trial"], r["cycle"])


def differences(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    """Every (method, trial, cycle) present in one folder only, and every field that differs."""
    left, right = {_key(r): r for r in a}, {_key(r): r for r in b}
    out = [f"{k}: only in the first" for k in sorted(left.keys() - right.keys())]
    out += [f"{k}: only in the second" for k in sorted(right.keys() - left.keys())]
    for k in sorted(left.keys() & right.keys()):
        ra, rb = left[k], right[k]
        for f in sorted((ra.keys() | rb.keys()) - IGNORED):
            if f.endswith("_seconds"):
                continue
            va, vb = ra.get(f, "<absent>"), rb.get(f, "<absent>")
            if va != vb:
                out.append(f"{k}: {f} differs ({str(va)[:40]} vs {str(vb)[:40]})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    args = p.parse_args(argv)
    a, b = (read_records(d / "results.jsonl") for d in (args.first, args.second))
    hashes = [
        yaml.safe_load((d / "config.yaml").read_text())["experiment_hash"] for d in (args.first, args.second)
    ]
    diff = differences(a, b)
    for line in diff:
        print(line)
    print(
        f"{len(a)} and {len(b)} records; {len(diff)} differences (timings aside); experiment hash "
        f"{hashes[0]} and {hashes[1]}: {'the same' if hashes[0] == hashes[1] else 'DIFFERENT'}"
    )
    return 1 if diff or hashes[0] != hashes[1] else 0


if __name__ == "__main__":
    sys.exit(main())
