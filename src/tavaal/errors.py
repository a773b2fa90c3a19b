"""Errors that the command line reports as one clear line (exit code 2), never a traceback."""

import re


class TavaalError(Exception):
    """A problem with the user's input or files; the message names the problem and the fix."""


class BudgetError(TavaalError, ValueError):
    """A selection was asked for more samples than there are candidates."""


def did_you_mean(kind: str, name: str, valid: list[str]) -> TavaalError:
    """Build the error for an unknown name: the nearest valid one when one is close, then every
    valid one."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return TavaalError(f"unknown {kind} {name!r}; {hint}valid {kind}s are: {', '.join(sorted(valid))}")


# Terminal escape sequences (colours, cursor moves, window titles) and other control characters:
# a library's message (or a file name inside it) must not drive the user's terminal.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
# Advice a library gives that would make the user unsafe: loading pickles, running remote code.
_UNSAFE = re.compile(
    r"weights_only|allow_pickle|trust_remote_code|trusted source|arbitrary code|safe_globals",
    re.IGNORECASE,
)


def clean(text: str) -> str:
    """``text`` without terminal escapes or control characters (newlines kept)."""
    return _ESCAPES.sub("", text)


def safe_sentences(line: str) -> str:
    """``line`` without the sentences that advise something unsafe (e.g. torch.load's "re-run with
    weights_only=False")."""
    parts = re.split(r"(?<=[.!?])\s+", line)
    return " ".join(p for p in parts if not _UNSAFE.search(p)).strip()


def first_line(e: BaseException, limit: int | None = 300) -> str:
    """The first informative line of an exception's message, at most ``limit`` characters (None:
    all of it), for one-line reports of errors that come from libraries: terminal escapes and
    unsafe advice removed."""
    for line in clean(str(e)).splitlines():
        kept = safe_sentences(line.strip())
        if kept:
            return kept[:limit]
    return ""
