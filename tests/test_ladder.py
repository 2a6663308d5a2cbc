"""BiSLS's upper search in ladders (``BilevelConfig.ladder``, issue 24 item 3): the
candidate steps evaluated several at a time by ``torch.func.vmap`` are tested in the
sequential order, so a run accepts the same steps and records the same rounds, outcomes
and failures as the sequential search; only the candidates evaluated (``n_fun``,
``n_grad``) grow by those after the accepted one.

The runs are compared exactly, iterates included: they depend on the trial's values only
through which step is accepted. The trial values themselves are not always the sequential
ones bit for bit, because batched products sum in another order: they are compared to
round-off on their own (float64 quadratic: rtol 1e-12, one unit in the last place seen;
float32 hyper-representation, where vmap turns the convolutions into one grouped
convolution: rtol 1e-6, three units in the last place, 2.8e-7 relative, seen). A trial within that
round-off of condition (14)'s boundary could be decided the other way; none of these runs
has one.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from bisls_core import bilevel as B
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel
from bisls_core.sweeps import hyperrep

torch.set_num_threads(1)

#: The keys that count evaluated candidates (they grow with the ladder) or time.
COUNTS = ("n_fun", "n_grad", "time")


@pytest.fixture(scope="module")
def quad():
    return make_quadratic_bilevel(dim_x=3, dim_y=4, n=30, batch=6, seed=2)


def _run(problem, method, ladder, **fields):
    return B.run_bilevel(problem, B.make_config(method, ladder=ladder, keep_final=True,
                                                **fields), seed=1)


def _assert_same_run(seq, lad):
    assert seq.keys() == lad.keys()
    for key in seq:
        if key not in COUNTS:
            assert np.array_equal(seq[key], lad[key], equal_nan=True), key


def _extra_candidates(rounds, size, budget):
    """Candidates a ladder search evaluates beyond the sequential one's ``rounds``: whole
    ladders, the last cut at the budget."""
    return sum(min(math.ceil(r / size) * size, budget) - r for r in rounds.astype(int))


# --------------------------------------------------------------------------- the quadratic problem
QUAD = dict(K=25, T=3, alpha=100.0, beta=0.3, w=0.5, max_rounds=30)


@pytest.mark.parametrize("ladder", [4, 16])
@pytest.mark.parametrize("method, fields", [
    ("BiSLS-SGD", dict(lower="fixed")),
    ("BiSLS-SGD", dict(lower="sps", reference="penultimate", early_exit=True)),
    ("BiSLS-Adam", dict(lower="armijo", reference="one_step", on_failure="reset")),
])
def test_a_ladder_run_equals_the_sequential_one_on_the_quadratic(quad, ladder, method, fields):
    seq = _run(quad, method, 0, **QUAD, **fields)
    lad = _run(quad, method, ladder, **QUAD, **fields)
    _assert_same_run(seq, lad)  # alpha, upper_rounds, upper_failures, x_final, ... exactly
    outcomes = np.bincount(seq["upper_outcome"].astype(int), minlength=4)
    assert outcomes[0] > 0 and outcomes[2] > 0  # accepted and failed searches both seen
    assert seq["upper_rounds"].max() > 4  # searches that need more than one ladder of 4
    extra = _extra_candidates(seq["upper_rounds"], ladder, QUAD["max_rounds"])
    assert lad["n_fun"].sum() - seq["n_fun"].sum() == extra
    assert lad["n_grad"].sum() - seq["n_grad"].sum() == extra


def test_ladders_are_the_searchs_steps_cut_at_the_budget(quad):
    """A search that never passes: ladders of 4, 4 and the 2 rounds left of a budget of 10,
    at the very steps the sequential search tries."""

    class Never:
        def __init__(self):
            self.batches = []

        def batch(self, steps):
            self.batches.append(list(steps))
            return [math.inf] * len(steps)

        def __call__(self, step):
            return math.inf

    never = Never()
    ladder = B.LadderTrial(4, 0.5).begin(never, 10)
    res = B.armijo_backtracking(ladder, 1.0, 1.0, 3.0, c=0.5, w=0.5, max_rounds=10)
    steps = [3.0 * 0.5 ** i for i in range(10)]
    assert res.outcome == "failed" and res.rounds == 10 and ladder.evaluated == 10
    assert never.batches == [steps[:4], steps[4:8], steps[8:]]


def test_the_batched_trial_matches_the_sequential_one_to_round_off_on_the_quadratic(quad):
    _, trial = _trial(quad)
    steps = [10.0 * 0.5 ** i for i in range(12)]
    np.testing.assert_allclose(trial.batch(steps), [float(trial(a)) for a in steps],
                               rtol=1e-12)


def _trial(problem, method="BiSLS-SGD"):
    """A :class:`Line14Trial` at the start of a run (one lower step, one hypergradient)."""
    cfg = B.make_config(method, K=1, T=1, lower="fixed", beta=0.1, hypergrad_steps=2)
    orc = B.Oracles(problem, cfg, torch.Generator().manual_seed(0))
    x, y0 = problem.x0, problem.y0
    _, grad = orc.g_and_grad(x, y0, orc.lower_batch())
    est = orc.hypergradient(x, y0 - 0.1 * grad)
    h = est.result.h
    it = B.UpperInput(0, x, y0 - 0.1 * grad, h, B._sq(h), est, 0.1)
    return it, B.Line14Trial(orc, it, penultimate=False)


# --------------------------------------------------------------------------- hyper-representation
SMALL = dict(n_train=64, n_val=32, n_test=32, batch_train=16, batch_val=16)
HYP = dict(K=1, T=2, alpha=10.0, beta=100.0, w=0.5, max_rounds=20, hypergrad_steps=2,
           early_exit=True)


@pytest.mark.parametrize("method", ["BiSLS-SGD", "BiSLS-Adam"])
def test_one_hyperrep_iteration_in_ladders_equals_the_sequential_one(method):
    seq = _run(hyperrep.make(seed=0, **SMALL), method, 0, **HYP)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # vmap traces it: no loop fallback
        lad = _run(hyperrep.make(seed=0, **SMALL), method, 4, **HYP)
    _assert_same_run(seq, lad)  # the iterates exactly: the same step is accepted
    assert seq["upper_rounds"][0] > 4 and seq["upper_outcome"][0] == 0  # two ladders, accepted
    extra = _extra_candidates(seq["upper_rounds"], 4, HYP["max_rounds"])
    assert lad["n_fun"].sum() - seq["n_fun"].sum() == extra


def test_the_batched_hyperrep_trial_matches_to_float32_round_off():
    _, trial = _trial(hyperrep.make(seed=0, **SMALL))
    steps = [10.0 * 0.5 ** i for i in range(12)]
    batched = np.array(trial.batch(steps))
    sequential = np.array([float(trial(a)) for a in steps])
    finite = np.isfinite(sequential)
    assert finite.sum() >= 6 and np.array_equal(np.isfinite(batched), finite)
    np.testing.assert_allclose(batched[finite], sequential[finite], rtol=1e-6)


# --------------------------------------------------------------------------- fallback, validation
def test_a_function_vmap_cannot_trace_falls_back_to_a_loop(quad):
    def g(x, y, idx=None):
        value = quad.g(x, y, idx)
        return value if float(value.detach()) >= 0 else -value  # control flow on a value

    traced = dataclasses.replace(quad, g=g)
    seq = _run(traced, "BiSLS-SGD", 0, **QUAD)
    with pytest.warns(RuntimeWarning, match="ladder: torch.func.vmap cannot") as seen:
        lad = _run(traced, "BiSLS-SGD", 4, **QUAD)
    assert len([w for w in seen if "ladder" in str(w.message)]) == 1  # once per run
    _assert_same_run(seq, lad)


@pytest.mark.parametrize("bad", [-1, 1.5, math.inf])
def test_a_bad_ladder_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="ladder must be an integer >= 0"):
        B.BilevelConfig(ladder=bad)


def test_ladder_values_stored_as_int_and_default_sequential():
    assert B.BilevelConfig().ladder == 0
    cfg = B.BilevelConfig(ladder=8.0)
    assert cfg.ladder == 8 and isinstance(cfg.ladder, int)
    assert B.BiSLSUpper(B.BilevelConfig(ladder=1), None).ladder is None  # 1: sequential
    with pytest.raises(TypeError, match="ladder"):
        B.BilevelConfig(ladder=True)
