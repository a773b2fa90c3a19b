"""Atomic file writes (a kill leaves the old file or the new one, never half of either, and the
file keeps its permissions) and the one lock helper: for files that several processes may rewrite,
for a results folder and for serve's state folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tavaal.errors import TavaalError


class DiskFull(TavaalError):
    """The disk (or a quota, or the file-size limit) ran out during a write; exit code 1 (not 2:
    no input was wrong)."""

    exit_code = 1


# The errors of a disk that cannot take more: space, inodes (both ENOSPC), quota, file size.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_error(e: OSError, path: str | Path) -> TavaalError | None:
    """The one-line error for a write to ``path`` that failed with ``e``, or None when ``e`` is
    not the disk's or the permissions' fault (a bug: let it surface)."""
    if e.errno in DISK_ERRNOS:
        return DiskFull(
            f"{os.strerror(e.errno).lower()} while writing {path}; nothing was lost (the file is as it "
            "was): free some space and rerun the command to resume"
        )
    if e.errno == errno.EROFS:
        return DiskFull(f"{path} is on a read-only file system; write somewhere else")
    if e.errno in (errno.EACCES, errno.EPERM):
        return TavaalError(f"permission denied writing {path}; make it writable or write somewhere else")
    return None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``. A symlink
    is written through: its target is replaced, the link kept. The file keeps its mode and owner."""
    path = Path(path)
    if path.is_symlink():  # update what the link points to, not the link
        path = Path(os.path.realpath(path))
    if os.path.lexists(path) and not path.is_file():
        # A rename would put a regular file in its place: as root, /dev/null itself.
        raise TavaalError(f"{path} is not a regular file (a device, a pipe or a folder); give a file name")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        # mkstemp makes the file 0600: give it the old file's mode, or a new file's usual one.
        old = path.stat() if path.exists() else None
        if old is not None:
            mode = stat.S_IMODE(old.st_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):  # only root may give a file away
                os.chown(tmp, old.st_uid, old.st_gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        clear = disk_error(e, path) if isinstance(e, OSError) else None
        if clear is not None:
            raise clear from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def held_lock(lock_path: str | Path, busy: Callable[[str], TavaalError] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (released on exit, and by the OS on a kill). With
    ``busy`` None a second process waits for it; otherwise it is refused at once with
    ``busy(pid of the holder)``, and the holder's pid is written into the lock file for that."""
    with open(lock_path, "a+") as f:
        if busy is None:
            fcntl.flock(f, fcntl.LOCK_EX)
        else:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                raise busy(f.read().strip() or "unknown") from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def file_lock(path: str | Path) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive lock on ``path`` (through ``.<name>.lock`` beside it) for a read-modify-write:
    a second process waits until the first has written, so neither update is lost."""
    path = Path(path)
    return held_lock(path.parent / f".{path.name}.lock")
