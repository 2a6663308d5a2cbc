"""The parameter-free comparison counts BiSLS's function evaluations (issue 16, item 8)."""

import numpy as np

from bisls_core.sweeps import parameter_free as pf


def _rec(upper, lower, grads, hvps, loss):
    K = len(upper)
    return {"upper_rounds": np.array([upper], float), "lower_rounds": np.array([lower], float),
            "n_grad": np.array([grads], float), "n_hvp": np.array([hvps], float),
            "val_loss": np.array([loss], float), "diverged": np.zeros((1, K), bool),
            "initial_val_loss": np.array([1.0])}


def test_function_evals_count_upper_trials_and_lower_rounds():
    rec = _rec([3, 1, 2], [2.0, 1.0, 1.5], [10, 10, 10], [5, 5, 5], [0.9, 0.8, 0.7])
    # f: one per upper trial; g: lower_rounds per step times T = 4
    np.testing.assert_allclose(pf.function_evals(rec, 4)[0], np.cumsum([3 + 8, 1 + 4, 2 + 6]))
    np.testing.assert_allclose(pf.function_evals(rec, 4, one_step=True)[0],
                               np.cumsum([4 + 8, 2 + 4, 3 + 6]))
    np.testing.assert_allclose(pf.all_calls(rec, 4)[0], np.cumsum([26, 20, 23]))
    # a method without a search has no extra evaluations
    base = _rec([0, 0, 0], [0, 0, 0], [3, 3, 3], [0, 0, 0], [0.9, 0.8, 0.7])
    assert not pf.function_evals(base, 4).any()


def test_the_budget_of_all_calls_reads_earlier_iterations():
    rec = _rec([3, 1, 2], [2.0, 1.0, 1.5], [10, 10, 10], [5, 5, 5], [0.9, 0.8, 0.7])
    assert pf.at_budget(rec, 45)[0] == 0.7  # oracle calls 15, 30, 45
    assert pf.at_budget(rec, 45, pf.all_calls(rec, 4))[0] == 0.9  # all calls 26, 46, 69
    assert pf.at_budget(rec, 46, pf.all_calls(rec, 4))[0] == 0.8
    assert pf.total_calls(rec, pf.all_calls(rec, 4)) == 69
