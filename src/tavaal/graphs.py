"""CUDA-graph replay of whole optimisation steps (forward, backward and optimizer step).

At batch 128 a ResNet-18 step is bound by kernel launches, not arithmetic; replaying a captured
graph removes the launch cost. Inputs are copied into static buffers; shapes must not change, so
callers send only full batches through here and run a partial last batch eagerly.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable

import torch


class GraphedStep:
    """Run ``fn(*inputs)`` eagerly for a few warm-up calls, then capture it once and replay it.

    Warm-up calls are real steps (they train on their inputs). A new ``key`` (e.g. a changed
    learning rate, or the Ranker frozen) drops the graph and captures the step again, because a
    graph bakes in Python-side choices and scalar arguments.
    """

    def __init__(self, warmup: int = 3, rewarm: int = 1):
        self.warmup, self.rewarm = warmup, rewarm
        self.key: Hashable = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: list[Any] = []
        self.out: Any = None
        self.done = 0
        self.captures = 0
        self.pool = None

    def _reset(self, key: Hashable) -> None:
        first = self.key is None
        self.key, self.graph, self.static, self.out = key, None, [], None
        self.done = 0 if first else self.warmup - self.rewarm

    def __call__(self, key: Hashable, fn: Callable[..., Any], *inputs: Any) -> Any:
        if key != self.key:
            self._reset(key)
        if self.graph is None:
            if self.done < self.warmup:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    out = fn(*inputs)
                torch.cuda.current_stream().wait_stream(side)
                self.done += 1
                return out
            self.static = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.out = fn(*self.static)
            self.graph = graph
            self.captures += 1
        for s, x in zip(self.static, inputs):
            if isinstance(s, torch.Tensor):
                s.copy_(x, non_blocking=True)
        self.graph.replay()
        return self.out
