"""One registry style for everything chosen by name: strategies, datasets and task learners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tavaal.errors import did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries (classes or factories), filled by the ``register`` decorator.

    ``kind`` names the thing in errors: an unknown name lists every valid one.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        # bumped by every change, so that what is built from the entries (the config's sections
        # from the strategies') knows when to rebuild: a count would miss one out and one in
        self.generation = 0

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            self.generation += 1
            return entry

        return add

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a plugin unloaded, a test's own entry); unknown names are an error."""
        entry = self.get(name)
        del self._entries[name]
        self.generation += 1
        return entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise did_you_mean(self.kind, name, list(self._entries))
        return self._entries[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
