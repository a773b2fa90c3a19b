"""Errors that the command line reports as one clear line (exit code 2), never a traceback."""


class TavaalError(Exception):
    """A problem with the user's input or files; the message names the problem and the fix."""


class BudgetError(TavaalError, ValueError):
    """A selection was asked for more samples than there are candidates."""


def did_you_mean(kind: str, name: str, valid: list[str]) -> TavaalError:
    """Build the error for an unknown name, listing every valid one."""
    return TavaalError(f"unknown {kind} {name!r}; valid {kind}s are: {', '.join(sorted(valid))}")


def first_line(e: BaseException, limit: int | None = 300) -> str:
    """The first line of an exception's message, at most ``limit`` characters (None: all of it),
    for one-line reports of errors that come from libraries."""
    return (str(e).strip().splitlines() or [""])[0][:limit]
