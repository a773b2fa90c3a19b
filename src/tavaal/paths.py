"""Paths as the OS will resolve them: outputs checked against every input before anything is
created, files that must be regular files, files read whole under a size cap.

One lost labels file costs a practitioner days of annotation, so every command that writes
compares each output with each input after resolving both the way the OS will (symlinks followed,
``..`` applied after the folders a write creates), refuses an output inside the pool folder, and
refuses a file it may not write (by its permission bits too: root's override is not taken as the
user's consent) before any work starts.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tavaal.errors import TavaalError, first_line

MiB = 1 << 20
# Caps on the files tavaal reads whole (a file over its cap is an error that says so, not an
# out-of-memory kill): a Label Studio export of 100,000 tasks is about 100 MB.
CAPS = {
    "config": 10 * MiB,  # a YAML file of config fields
    "labels": 512 * MiB,  # a labels CSV
    "export": 2048 * MiB,  # a Label Studio JSON export
    "records": 2048 * MiB,  # results.jsonl(.gz), decompressed
    "state": 1024 * MiB,  # a job's state.json, a saved learner's learner.json, serve's state files
}


def real(path: str | Path) -> Path:
    """``path`` resolved as the OS will: absolute, symlinks followed, and ``a/../b`` as ``b`` even
    when ``a`` does not exist yet (a write creates it first, then ``..`` leaves it)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or below it (both resolved)."""
    return a == b or b in a.parents


def check_output(
    path: str | Path,
    flag: str,
    files: Mapping[str, str | Path | None] | None = None,
    folders: Mapping[str, str | Path | None] | None = None,
    *,
    folder: bool = False,
) -> Path:
    """Refuse, before any work, an output (``flag`` names it) that would replace an input file,
    land inside (or, for a folder, hold) an input folder, is not a regular file (a device, a
    folder), or cannot be written. ``files`` and ``folders``: {what: path} of the command's
    inputs (None: not given). Returns the resolved output."""
    target = real(path)
    shown = f"{flag} {path}"
    for what, p in (files or {}).items():
        if p is not None and real(p) == target:
            raise TavaalError(
                f"{shown} is your {what} ({p}); writing there would replace it. Give another path"
            )
    for what, p in (folders or {}).items():
        if p is None:
            continue
        src = real(p)
        if _inside(target, src):
            raise TavaalError(
                f"{shown} is inside the {what} {p}; tavaal never writes into your data. Give a path "
                "outside it"
            )
        if folder and _inside(src, target):
            raise TavaalError(f"{shown} holds the {what} {p}; give a folder outside it")
    if folder:
        check_folder_writable(Path(path), shown)
    else:
        check_file_writable(Path(path), shown)
    return target


def _has_write_bit(st: os.stat_result) -> bool:
    return bool(st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def may_write(path: Path) -> bool:
    """Whether the user may write ``path`` (an existing file or folder): the OS's answer, and for
    root also a write bit on it (a file made read-only was made so on purpose)."""
    if not os.access(path, os.W_OK):
        return False
    return os.geteuid() != 0 or _has_write_bit(path.stat())


def _existing_ancestor(path: Path) -> Path:
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p):
        p = p.parent
    return p


def check_file_writable(path: Path, shown: str, fix: str | None = None) -> None:
    """An output file: a regular file the user may write, or a new file in a folder they may
    write (created with its parents). ``fix`` replaces the advice given when it is a folder."""
    target = real(path)
    if target.exists():
        if target.is_dir():
            example = Path(path) / "next.csv"
            raise TavaalError(f"{shown} is a folder; {fix or f'give a file name, e.g. {example}'}")
        if not target.is_file():
            raise TavaalError(f"{shown} is not a regular file (a device or a pipe); give a file name")
        if not may_write(target):
            raise TavaalError(f"{shown} is read-only; make it writable (chmod u+w) or give another file")
    _check_parent(target.parent, shown)


def check_folder_writable(path: Path, shown: str) -> None:
    """An output folder: a folder the user may write, or a new one whose parents they may write."""
    target = real(path)
    if target.exists() and not target.is_dir():
        raise TavaalError(f"{shown} is a file, not a folder; give a folder")
    if target.is_dir():
        if not may_write(target):
            raise TavaalError(f"{shown} is read-only; make it writable or give another folder")
        return
    _check_parent(target.parent, shown)


def _check_parent(parent: Path, shown: str) -> None:
    anc = _existing_ancestor(parent)
    if not anc.is_dir():
        raise TavaalError(f"{shown}: {anc} is a file, not a folder")
    if not may_write(anc):
        raise TavaalError(f"{shown}: cannot write in the folder {anc} (permission denied or read-only)")


def regular_file(path: str | Path, what: str, fix: str) -> Path:
    """``path`` as an existing regular file, or one clear error: missing, a folder, a device."""
    p = Path(path)
    if p.is_dir():
        raise TavaalError(f"{what} {p} is a folder; {fix}")
    if not p.exists():
        raise TavaalError(f"{what} {p} does not exist; {fix}")
    if not p.is_file():
        raise TavaalError(f"{what} {p} is not a regular file (a device or a pipe); {fix}")
    if not os.access(p, os.R_OK):
        raise TavaalError(f"{what} {p} cannot be read (permission denied); make it readable")
    return p


def read_bytes_capped(
    path: str | Path, kind: str, what: str, fix: str = "give the file it should be"
) -> bytes:
    """A regular file read whole, refused with one line when it is larger than ``CAPS[kind]``."""
    p = regular_file(path, what, fix)
    cap = CAPS[kind]
    size = p.stat().st_size
    if size > cap:
        raise TavaalError(
            f"{what} {p} is {size / MiB:.0f} MiB, over tavaal's limit of {cap // MiB} MiB for such a "
            "file; is it the right file? (split it, or keep it below the limit)"
        )
    return p.read_bytes()


def _decode(raw: bytes, p: Path, what: str, fix: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TavaalError(f"{what} {p} is not UTF-8 text ({e.reason} at byte {e.start}); {fix}") from None


def read_json(path: str | Path, kind: str, what: str, fix: str) -> Any:
    """A JSON file read whole (under ``CAPS[kind]``); not JSON, or nested too deeply for Python's
    parser, is one line that names the file and ``fix``."""
    p = Path(path)
    text = _decode(read_bytes_capped(p, kind, what, fix), p, what, fix)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TavaalError(f"{what} {p} is not valid JSON ({e.msg} at line {e.lineno}); {fix}") from None
    except RecursionError:
        raise TavaalError(f"{what} {p} is nested too deeply to be read; {fix}") from None


def read_yaml(path: str | Path, kind: str, what: str, fix: str) -> Any:
    """A YAML file read whole (safe_load: data only, no Python objects), like ``read_json``."""
    import yaml

    p = Path(path)
    text = _decode(read_bytes_capped(p, kind, what, fix), p, what, fix)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = first_line(e)
        raise TavaalError(f"{what} {p} is not valid YAML ({first}); {fix}") from None
    except RecursionError:
        raise TavaalError(f"{what} {p} is nested too deeply to be read; {fix}") from None


def read_gzip_capped(path: str | Path, kind: str, what: str) -> bytes:
    """A gzip file decompressed whole, refused once it passes ``CAPS[kind]`` (a small file can
    hold gigabytes)."""
    import gzip
    import zlib

    p = regular_file(path, what, "give the file it should be")
    cap = CAPS[kind]
    try:
        with gzip.open(p, "rb") as f:
            data = f.read(cap + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise TavaalError(f"{what} {p} is not a readable gzip file ({first_line(e)})") from None
    if len(data) > cap:
        raise TavaalError(f"{what} {p} holds more than tavaal's limit of {cap // MiB} MiB once decompressed")
    return data
