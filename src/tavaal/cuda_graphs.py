"""CUDA-graph replay of whole optimisation steps (forward, backward and optimizer step).

At batch 128 a ResNet-18 step is bound by kernel launches, not arithmetic; replaying a captured
graph removes the launch cost. Inputs are copied into static buffers, so each distinct input
shape gets its own graph (a cycle has at most two: full batches and the constant-size last one).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class _Entry:
    warm: int = 0
    graph: torch.cuda.CUDAGraph | None = None
    static: list[Any] = field(default_factory=list)
    out: Any = None


class GraphedStep:
    """Run ``fn(*inputs)`` eagerly for a few warm-up calls, then capture it once and replay it.

    Warm-up calls are real steps (they train on their inputs). A new ``mode`` (e.g. a changed
    learning rate, or the Ranker frozen) drops every graph and captures again, because a graph
    bakes in Python-side choices and scalar arguments.
    """

    def __init__(self, warmup: int = 3, rewarm: int = 1):
        self.warmup, self.rewarm = warmup, rewarm
        self.mode: Hashable = None
        self.entries: dict[Hashable, _Entry] = {}
        self.captures = 0

    def __call__(self, mode: Hashable, fn: Callable[..., Any], *inputs: Any) -> Any:
        if mode != self.mode:
            self.mode, self.entries = mode, {}
        shape = tuple(tuple(x.shape) if isinstance(x, torch.Tensor) else None for x in inputs)
        e = self.entries.get(shape)
        if e is None:
            e = self.entries[shape] = _Entry(warm=0 if self.captures == 0 else self.warmup - self.rewarm)
        if e.graph is None:
            if e.warm < self.warmup:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    out = fn(*inputs)
                torch.cuda.current_stream().wait_stream(side)
                e.warm += 1
                return out
            e.static = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                e.out = fn(*e.static)
            e.graph = graph
            self.captures += 1
        for s, x in zip(e.static, inputs):
            if isinstance(s, torch.Tensor):
                s.copy_(x, non_blocking=True)
        e.graph.replay()
        return e.out
