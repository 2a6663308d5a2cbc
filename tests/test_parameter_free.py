"""Parameter-free baselines from their own packages: the bilevel rule "external" and
the single-level runner's Prodigy / schedule-free / DoG methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bisls_core import single_level
from bisls_core.bilevel import make_config, run_bilevel
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)

pytest.importorskip("prodigyopt")
pytest.importorskip("schedulefree")
pytest.importorskip("dog")

EXTERNAL = ["Prodigy", "Schedule-free SGD", "Schedule-free AdamW", "DoG"]


@pytest.fixture(scope="module")
def sto():
    return make_quadratic_bilevel(dim_x=4, dim_y=4, n=40, batch=8)


@pytest.mark.parametrize("method, kwargs", [
    ("Prodigy", {}),
    ("Schedule-free SGD", {}),
    ("Schedule-free AdamW", dict(upper_kwargs={"lr": 0.1}, lower_kwargs={"lr": 0.1})),
    ("DoG", {}),
])
def test_external_rules_decrease_F(sto, method, kwargs):
    rec = run_bilevel(sto, make_config(method, K=200, T=4, **kwargs), seed=1)
    assert not rec["diverged"].any()
    assert rec["F_gap"][-1] < 0.1 * float(rec["initial_F_gap"])
    assert np.all(rec["alpha"] > 0) and np.all(rec["beta"] > 0)  # the steps they expose
    assert np.all(rec["n_grad"] == 4 + 2) and np.all(rec["upper_rounds"] == 0)


def test_external_at_one_level_only(sto):
    cfg = make_config("BiSLS-SGD", K=20, T=3, lower="external", lower_optimizer="dog")
    rec = run_bilevel(sto, cfg, seed=0)
    assert not rec["diverged"].any() and np.all(rec["beta"] > 0)
    cfg = make_config("SGD", K=20, T=3, beta=0.3, upper="external", upper_optimizer="prodigy",
                      warm_start=False)
    assert not run_bilevel(sto, cfg, seed=0)["diverged"].any()


def test_schedule_free_metrics_at_the_averaged_point(sto):
    """x_final is the eval-mode (averaged) point, and reading it does not move the run."""
    cfg = make_config("Schedule-free SGD", K=15, T=2, keep_final=True, eval_every=1)
    a = run_bilevel(sto, cfg, seed=2)
    b = run_bilevel(sto, make_config("Schedule-free SGD", K=15, T=2, keep_final=True,
                                     eval_every=100), seed=2)
    np.testing.assert_array_equal(a["upper_loss"], b["upper_loss"])  # evaluations change nothing
    F = sto.info["F"]
    assert float(F(torch.as_tensor(a["x_final"]))) == pytest.approx(a["F"][-1], rel=1e-6)


@pytest.mark.parametrize("fields, error, match", [
    (dict(upper_optimizer="adam"), ValueError, "upper_optimizer"),
    (dict(lower_optimizer=None), ValueError, "lower_optimizer"),
    (dict(upper_kwargs={"no_such_option": 1}), TypeError, "upper_kwargs"),
    (dict(lower_kwargs={"lr": -1.0}), ValueError, "lower_kwargs"),
    (dict(upper_kwargs=[1, 2]), TypeError, "upper_kwargs"),
    (dict(direction="adam"), ValueError, "direction"),
])
def test_bad_external_fields(fields, error, match):
    with pytest.raises(error, match=match):
        make_config("Prodigy", **fields)


def test_optimizer_fields_need_the_external_rule():
    with pytest.raises(ValueError, match="upper_optimizer"):
        make_config("SGD", upper_optimizer="dog")
    with pytest.raises(ValueError, match="lower_optimizer"):
        make_config("BiSLS-SGD", lower_kwargs={"lr": 1.0})


@pytest.mark.parametrize("method", EXTERNAL)
def test_single_level_runner(method):
    kw = {"optimizer_kwargs": {"lr": 0.1}} if method.startswith("Schedule") else {}
    cfg = {"problem": "quadratic", "method": method, "K": 300, "eval_every": 100, **kw}
    a = single_level.run_single_level(cfg, seed=0, device="cpu")
    b = single_level.run_single_level(cfg, seed=0, device="cpu")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["diverged"] == -1 and a["loss"][-1] < 0.1 * a["loss"][0]
    assert np.all(a["step"] > 0) and np.all(np.isnan(a["bound"]))


def test_single_level_runner_rejects_own_options():
    with pytest.raises(ValueError, match="optimizer_kwargs"):
        single_level.run_single_level({"problem": "quadratic", "method": "DoG", "K": 2,
                                "gamma_b0": 1.0}, seed=0)
    with pytest.raises(ValueError, match="optimizer_kwargs"):
        single_level.run_single_level({"problem": "quadratic", "method": "SPSB", "K": 2,
                                "optimizer_kwargs": {}}, seed=0)
