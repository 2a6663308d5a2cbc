"""Problems: plain functions plus sizes (one module per problem).

A single-level problem gives ``f(x, idx)``; a bilevel problem gives
``f(x, y, idx)`` (upper) and ``g(x, y, idx)`` (lower). ``x`` and ``y`` are 1-D
tensors (a model's parameters are flattened; the problem unflattens them with
``torch.func.functional_call``); ``idx`` is a 1-D ``LongTensor`` of sample
indices, or ``None`` for the full objective. Samplers return indices, so a run
is reproducible and the same batch can be reused on purpose.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

Tensor = torch.Tensor

__all__ = ["PROBLEMS", "BilevelProblem", "SingleLevelProblem", "keeping_graphs", "keeps_graphs",
           "make", "memo_key", "sample_indices"]

_KEEPING_GRAPHS = contextvars.ContextVar("bisls_keeping_graphs", default=False)


@contextlib.contextmanager
def keeping_graphs() -> Iterator[None]:
    """Inside this block a problem may memoise what it computes *with a graph* to a leaf
    ``x`` that requires grad, and return it again (the same tensor, graph included) to a
    later call, inside such a block, with the same leaf object and the same batch.

    The callers (:func:`bisls_core.hypergrad.hypergradient` with ``keep_graph=True`` and
    the trial model of condition (14)) retain the graphs they backward through until the
    last such call, so a returned graph is never one that was freed. Outside the block a
    problem recomputes every graph (a tensor with a graph is never shared by accident).
    """
    token = _KEEPING_GRAPHS.set(True)
    try:
        yield
    finally:
        _KEEPING_GRAPHS.reset(token)


def keeps_graphs() -> bool:
    """Whether the caller is inside :func:`keeping_graphs`."""
    return _KEEPING_GRAPHS.get()


def memo_key(t: Tensor | None):
    """What identifies ``t``'s values without reading them (no host synchronisation):
    its memory (address, shape, strides, dtype, device) and its version counter, which
    every in-place write through ``t``, its views or ``t.detach()`` increments. ``None``
    for ``None``; ``False`` (never equal to a key) for a tensor without a version counter
    (an inference tensor) or without storage of its own (a batched tensor inside
    ``torch.func.vmap``, as in the ladders of ``BilevelConfig.ladder``; a memo must not
    keep it). A memo that keeps a reference to the keyed tensor keeps its memory from
    being reused, so an equal key means the same, unmodified values -- except after an
    in-place write through an alias that does not share the version counter (``t.data``,
    a NumPy view), which a memo keyed this way cannot see.
    """
    if t is None:
        return None
    try:
        version, address = t._version, t.data_ptr()
    except RuntimeError:  # an inference tensor (no version counter), a vmap-batched one
        return False
    return (address, t.shape, t.stride(), t.dtype, t.device, version)


def sample_indices(n: int, batch: int | None, gen: torch.Generator, device=None) -> Tensor | None:
    """``batch`` indices drawn uniformly without replacement from ``range(n)``.

    ``batch=None`` or ``batch >= n`` returns ``None`` (the full objective).
    The draw uses ``gen`` (a CPU generator) so it is the same on every device.
    """
    if batch is None or batch >= n:
        return None
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    idx = torch.randperm(n, generator=gen)[:batch]
    return idx if device is None else idx.to(device)


@dataclass(frozen=True)
class SingleLevelProblem:
    """A finite sum ``f(x) = (1/n) sum_i f_i(x)``.

    Attributes
    ----------
    f:
        ``f(x, idx) -> scalar``: mean of the ``f_i`` over ``idx`` (``None``: all ``n``).
    x0:
        starting point (1-D tensor).
    n:
        number of samples ``f_i``.
    batch:
        samples per stochastic gradient (``None``: full batch).
    lower_bound:
        a lower bound ``l_i^*`` valid for every sampled loss (eq. 7).
    x_star, f_star:
        optimum and optimal value when known (``None`` otherwise).
    """

    name: str
    f: Callable[[Tensor, Tensor | None], Tensor]
    x0: Tensor
    n: int
    batch: int | None = 1
    lower_bound: float = 0.0
    x_star: Tensor | None = None
    f_star: float | None = None
    info: dict = field(default_factory=dict)

    def sample(self, gen: torch.Generator) -> Tensor | None:
        return sample_indices(self.n, self.batch, gen, self.x0.device)


@dataclass(frozen=True)
class BilevelProblem:
    """``min_x f(x, y*(x))`` s.t. ``y*(x) = argmin_y g(x, y)`` (eq. 1).

    Attributes
    ----------
    f, g:
        ``(x, y, idx) -> scalar``: upper and lower objectives on the samples
        ``idx`` of their own data (``None``: all of it).
    x0, y0:
        starting points (1-D tensors, same device).
    n_upper, n_lower:
        number of upper / lower samples.
    batch_upper, batch_lower:
        samples per stochastic evaluation (``None``: full batch).
    f_lower_bound, g_lower_bound:
        lower bounds used by the Polyak steps (0 for non-negative losses).
    metrics:
        optional ``(x, y) -> dict[str, float]`` evaluated once per outer
        iteration for the record (e.g. validation loss and accuracy).
    """

    name: str
    f: Callable[[Tensor, Tensor, Tensor | None], Tensor]
    g: Callable[[Tensor, Tensor, Tensor | None], Tensor]
    x0: Tensor
    y0: Tensor
    n_upper: int
    n_lower: int
    batch_upper: int | None = None
    batch_lower: int | None = None
    f_lower_bound: float = 0.0
    g_lower_bound: float = 0.0
    metrics: Callable[[Tensor, Tensor], dict] | None = None
    info: dict = field(default_factory=dict)

    def sample_upper(self, gen: torch.Generator) -> Tensor | None:
        return sample_indices(self.n_upper, self.batch_upper, gen, self.x0.device)

    def sample_lower(self, gen: torch.Generator) -> Tensor | None:
        return sample_indices(self.n_lower, self.batch_lower, gen, self.y0.device)


#: Problem modules by name; each defines ``make(*, device=None, seed=0, **sizes)``.
PROBLEMS: dict[str, str] = {
    "quadratic": "bisls_core.problems.quadratic",
    "logistic": "bisls_core.problems.logistic",
    "quadratic_bilevel": "bisls_core.problems.quadratic_bilevel",
    "hyperrep": "bisls_core.problems.hyperrep",
    "distillation": "bisls_core.problems.distillation",
    "ridge": "bisls_core.problems.ridge",
}


def make(name: str, *, device=None, seed: int = 0, **sizes):
    """Build the named problem: ``make("quadratic", device="cpu", seed=0, ...)``.

    A runner builds its problem from a JSON-able configuration through this
    function, so a configuration (and its cache key) names the problem fully.
    """
    import importlib

    if name not in PROBLEMS:
        valid = ", ".join(repr(p) for p in PROBLEMS)
        raise ValueError(f"unknown problem {name!r}; valid values are: {valid}")
    module = importlib.import_module(PROBLEMS[name])
    return module.make(device=device, seed=seed, **sizes)
