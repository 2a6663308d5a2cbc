"""No repeated work, bit for bit (issue 24, item 1).

* The trial model of condition (14) (``Line14Trial.model``: phi(0), phi'(0), recorded in
  ``upper_offset``/``upper_slope`` and deciding the early exit) reuses the hypergradient's
  graph: the same records, bit for bit, as the model through alpha with nothing kept.
* The hyper-representation problem's memo of embeddings is keyed by the tensors' memory
  and version counters, never by their values: no ``torch.equal``, no copy of x, and an
  in-place write to x or to the batch is seen.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bisls_core import bilevel as B
from bisls_core import hypergrad, problems
from bisls_core.problems import hyperrep as hr
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)

SMALL = dict(n_train=128, n_val=64, n_test=64, batch_train=32, batch_val=32)


def _records(problem, method, reuse, **fields):
    """The record of a short run with the model reused (``reuse``) or computed through
    alpha from scratch with the hypergradient keeping nothing (the code before issue 24)."""
    cfg = B.make_config(method, K=4, T=2, hypergrad_steps=3, alpha=10.0, beta=1.0,
                        diagnostics=True, early_exit=True, w=0.5, max_rounds=20, eval_every=2,
                        keep_final=True, **fields)
    if reuse:
        return B.run_bilevel(problem, cfg, seed=1)
    original_model, original_hg = B.Line14Trial.model, B.hypergradient
    try:
        B.Line14Trial.model = lambda self, reuse=True: original_model(self, reuse=False)
        B.hypergradient = lambda *a, **kw: original_hg(*a, **{**kw, "keep_graph": False})
        return B.run_bilevel(problem, cfg, seed=1)
    finally:
        B.Line14Trial.model, B.hypergradient = original_model, original_hg


PROBLEMS = {
    "quadratic_bilevel": lambda: make_quadratic_bilevel(dim_x=5, dim_y=6, n=40, batch=8, seed=3),
    "hyperrep": lambda: problems.make("hyperrep", seed=0, **SMALL),
    "distillation": lambda: problems.make("distillation", seed=0, n_real=200, n_val=50),
}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
@pytest.mark.parametrize("reference", B.REFERENCES)
@pytest.mark.parametrize("method, trial", [("BiSLS-SGD", "m"), ("BiSLS-Adam", "m"),
                                           ("BiSLS-Adam", "h")])
def test_the_reused_model_gives_the_same_records_bit_for_bit(name, reference, method, trial):
    new = _records(PROBLEMS[name](), method, True, reference=reference, adam_trial=trial)
    old = _records(PROBLEMS[name](), method, False, reference=reference, adam_trial=trial)
    assert set(new) == set(old)
    for key in old:
        if key != "time":
            assert new[key].tobytes() == old[key].tobytes(), key
    assert np.isfinite(new["upper_slope"]).all()


def test_the_model_reuses_the_hypergradients_forward_passes(monkeypatch):
    """With the graph kept, the model of the paper's reading evaluates no embedding
    (both forward passes at x^k are the hypergradient's); "penultimate" one, the lower
    step's batch psi_{k,T-1}, which the hypergradient did not see."""
    calls = []
    make_embedding = hr._embedding

    def counting_embedding(seed, dev):
        model, embed, x0, y0 = make_embedding(seed, dev)
        return model, lambda x, images: calls.append(len(images)) or embed(x, images), x0, y0

    monkeypatch.setattr(hr, "_embedding", counting_embedding)
    problem = problems.make("hyperrep", seed=0, **SMALL)
    for reference, expected in (("paper", 0), ("penultimate", 1)):
        cfg = B.make_config("BiSLS-SGD", T=2, alpha=10.0, early_exit=True, reference=reference)
        orc = B.Oracles(problem, cfg, torch.Generator().manual_seed(0))
        x, y = problem.x0, problem.y0 + 0.01
        lower, totals = B.FixedLower(cfg, orc), B.LowerTotals()
        for _ in range(cfg.T):
            idx = orc.lower_batch()
            step = lower.step(x, y, *orc.g_and_grad(x, y, idx), idx)
            totals.add(step)
            y = step.y
        est = orc.hypergradient(x, y)
        assert isinstance(est.result.graph, hypergrad.KeptGraph)
        it = B.UpperInput(0, x, y, est.result.h, B._sq(est.result.h), est, 0.1, totals.last)
        calls.clear()
        reused = B.Line14Trial(orc, it, reference == "penultimate").model()
        assert len(calls) == expected and est.result.graph.x is None  # released
        calls.clear()
        fresh = B.Line14Trial(orc, it, reference == "penultimate").model()
        assert len(calls) == 2 and reused == fresh  # through alpha: two forward passes


def test_the_memo_keys_by_memory_and_version_not_values(monkeypatch):
    problem = problems.make("hyperrep", seed=0, **SMALL)
    fresh = problems.make("hyperrep", seed=0, **SMALL)
    monkeypatch.setattr(torch, "equal", lambda *a: pytest.fail("the memo compared values"))
    gen = torch.Generator().manual_seed(3)
    y = torch.randn(problem.y0.shape, generator=gen)
    x = problem.x0.clone()
    idx = torch.arange(4, 36)
    first = problem.g(x, y, idx)
    assert problem.g(x.detach(), y, idx) is not None  # a detached alias: the same memory
    x.add_(0.01)  # an in-place write is seen (version counter), the value is recomputed
    idx[0] = 40
    want = fresh.g(x.clone(), y, idx.clone())
    monkeypatch.undo()
    assert torch.equal(problem.g(x, y, idx), want) and not torch.equal(first, want)


def test_graphs_are_shared_only_inside_keeping_graphs():
    problem = problems.make("hyperrep", seed=0, **SMALL)
    x = problem.x0.clone().requires_grad_(True)
    y, idx = problem.y0 + 0.01, torch.arange(32)
    a, b = problem.f(x, y, idx), problem.f(x, y, idx)
    torch.autograd.grad(a, x)
    torch.autograd.grad(b, x)  # outside: two graphs, each backward once
    with problems.keeping_graphs():
        c = problem.f(x, y, idx)
        d = problem.f(x, y, idx)  # the same embedding, with its graph
    assert c.grad_fn is not d.grad_fn and torch.equal(c, d) and torch.equal(a, c)
    (gc,) = torch.autograd.grad(c, x, retain_graph=True)
    (gd,) = torch.autograd.grad(d, x)
    assert torch.equal(gc, gd)
