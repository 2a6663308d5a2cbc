"""The pure step-size rules against hand-computed values, and their input checks."""

import math

import pytest
import torch

from bisls_core import stepsizes as S


def test_polyak_ratio_by_hand():
    # (f - l*) / (c ||g||^2) = (3 - 1) / (2 * 4) = 0.25
    assert S.polyak_ratio(3.0, 4.0, lower_bound=1.0, c=2.0) == pytest.approx(0.25)


def test_polyak_ratio_tensor_stays_on_device_and_matches_float():
    t = S.polyak_ratio(torch.tensor(3.0), torch.tensor(4.0), 1.0, 2.0)
    assert isinstance(t, torch.Tensor) and t.device.type == "cpu"
    assert float(t) == pytest.approx(0.25)


def test_zero_gradient_gives_the_bound_not_an_error():
    assert S.polyak_ratio(1.0, 0.0) == math.inf
    assert S.sps_max(1.0, 0.0, gamma_b=5.0) == 5.0
    t = S.spsb(torch.tensor(1.0), torch.tensor(0.0), gamma_b_k=5.0)
    assert float(t) == 5.0


def test_loss_below_lower_bound_gives_zero_step():
    assert S.polyak_ratio(0.5, 1.0, lower_bound=1.0) == 0.0


def test_sps_max_takes_the_smaller_of_ratio_and_bound():
    assert S.sps_max(2.0, 1.0, gamma_b=10.0, c=1.0) == pytest.approx(2.0)
    assert S.sps_max(2.0, 1.0, gamma_b=0.5, c=1.0) == pytest.approx(0.5)


def test_dec_sps_by_hand():
    # (1/c_k) min{(f - l*)/||g||^2, c_{k-1} gamma_{k-1}} = (1/2) min{4/1, 1*3} = 1.5
    assert S.dec_sps(4.0, 1.0, c_k=2.0, c_prev=1.0, gamma_prev=3.0) == pytest.approx(1.5)
    assert S.dec_sps(1.0, 1.0, c_k=2.0, c_prev=1.0, gamma_prev=3.0) == pytest.approx(0.5)


def test_envelope_step_clips_between_lower_and_upper_envelope():
    assert S.envelope_step(0.01, omega=0.1, gamma_b_k=1.0) == pytest.approx(0.1)
    assert S.envelope_step(0.5, omega=0.1, gamma_b_k=1.0) == pytest.approx(0.5)
    assert S.envelope_step(5.0, omega=0.1, gamma_b_k=1.0) == pytest.approx(1.0)
    assert S.envelope_step(0.01, omega=2.0, gamma_b_k=1.0) == pytest.approx(1.0)


def test_schedules():
    assert S.schedule("constant", 8.0, 3) == 8.0
    assert S.schedule("inv_sqrt", 8.0, 3) == pytest.approx(4.0)
    assert S.schedule("inv", 8.0, 3) == pytest.approx(2.0)


def test_armijo_on_a_quadratic_by_hand():
    # f(x) = x^2 at x = 1: gradient 2, trial f(1 - 2a) = (1 - 2a)^2.
    # Condition (1-2a)^2 <= 1 - c a 4 with c = 0.5: holds iff a <= 0.5.
    res = S.armijo_backtracking(lambda a: (1 - 2 * a) ** 2, 1.0, 4.0, start=4.0, c=0.5, w=0.5)
    assert res.success and res.step == pytest.approx(0.5) and res.rounds == 4


def test_armijo_budget_runs_out_and_reports_failure():
    res = S.armijo_backtracking(lambda a: 10.0, 1.0, 4.0, start=1.0, w=0.5, max_rounds=5)
    assert not res.success and res.rounds == 5 and res.step == pytest.approx(1 / 16)


def test_armijo_nan_trial_fails_the_test():
    assert not S.armijo_holds(float("nan"), 1.0, 0.1, 1.0, 0.5)
    assert S.armijo_holds(0.95, 1.0, 0.1, 1.0, 0.5, delta=0.0)


def test_delta_slack_accepts_a_step_that_would_fail():
    assert not S.armijo_holds(1.0, 1.0, 0.1, 1.0, 0.5)
    assert S.armijo_holds(1.0, 1.0, 0.1, 1.0, 0.5, delta=0.1)


@pytest.mark.parametrize(
    "option, expected", [("reset", 10.0), ("keep", 0.3), ("grow", 0.6)]
)
def test_reset_options_of_algorithm_3(option, expected):
    assert S.reset(0.3, 10.0, option, eta=2.0) == pytest.approx(expected)


def test_reset_first_iteration_starts_from_initial():
    assert S.reset(None, 7.0, "grow", eta=2.0) == 7.0


def test_grow_with_eta_one_is_keep():
    assert S.reset(0.3, 10.0, "grow", eta=1.0) == S.reset(0.3, 10.0, "keep")


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: S.sps_max(1.0, 1.0, gamma_b=-1.0), "gamma_b"),
        (lambda: S.polyak_ratio(1.0, 1.0, c=0.0), "c"),
        (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=-1.0), "start"),
        (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=1.0, c=1.5), "c"),
        (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=1.0, w=1.0), "w"),
        (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=1.0, delta=-1), "delta"),
        (lambda: S.reset(1.0, 1.0, "grow", eta=0.5), "eta"),
        (lambda: S.reset(1.0, 1.0, "option4"), "reset option"),
        (lambda: S.schedule("linear", 1.0, 0), "schedule"),
        (lambda: S.dec_sps(1.0, 1.0, c_k=0.0, c_prev=1.0, gamma_prev=1.0), "c_k"),
    ],
)
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'reset', 'keep', 'grow'"):
        S.reset(1.0, 1.0, 3)


# --------------------------------------------------------------------------- the search's guards
def test_search_outcomes():
    ok = S.armijo_backtracking(lambda a: (1 - 2 * a) ** 2, 1.0, 4.0, start=4.0, c=0.5, w=0.5)
    assert ok.outcome == "accepted" and ok.success
    failed = S.armijo_backtracking(lambda a: 10.0, 1.0, 4.0, start=1.0, w=0.5, max_rounds=3)
    assert failed.outcome == "failed" and not failed.success and failed.rounds == 3


@pytest.mark.parametrize("f_old, sq", [(math.nan, 1.0), (1.0, math.inf), (math.inf, 1.0)])
def test_nothing_finite_to_search_on(f_old, sq):
    calls = []
    res = S.armijo_backtracking(lambda a: calls.append(a) or 0.0, f_old, sq, start=2.0)
    assert res.outcome == "nonfinite" and not res.success
    assert (res.step, res.rounds, calls) == (2.0, 0, [])


def test_round_off_guard_skips_a_search_decided_by_rounding():
    """A decrease below the resolution of f: no trial, the start step, success."""
    calls = []
    trial = lambda a: calls.append(a) or math.nextafter(1.0, 2.0)  # noqa: E731  (one ulp up)
    res = S.armijo_backtracking(trial, 1.0, 1e-17, start=1.0, c=0.5, max_rounds=50)
    assert res.outcome == "guard" and res.success and (res.step, res.rounds) == (1.0, 0)
    assert calls == []
    # exactly zero gradient: the same guard
    assert S.armijo_backtracking(trial, 3.0, 0.0, start=5.0).outcome == "guard"
    # the resolution is that of f's dtype: float32 is coarser than a Python float
    f32 = torch.tensor(1.0, dtype=torch.float32)
    assert S.armijo_backtracking(lambda a: 1.0, f32, 1e-9, start=1.0).outcome == "guard"
    res = S.armijo_backtracking(lambda a: 1.0, 1.0, 1e-9, start=1.0)  # a double: it searches,
    assert res.rounds > 0 and res.outcome == "guard"  # and only rounding accepts a flat trial


def test_a_trial_that_raises_propagates_unchanged():
    def trial(a):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        S.armijo_backtracking(trial, 1.0, 1.0, start=1.0)


@pytest.mark.parametrize("call, name", [
    (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=1.0, c=math.inf), "c"),
    (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=1.0, w=math.nan), "w"),
    (lambda: S.armijo_backtracking(lambda a: 0.0, 1.0, 1.0, start=1.0, delta=math.inf), "delta"),
    (lambda: S.sps_max(1.0, 1.0, gamma_b=math.inf), "gamma_b"),
    (lambda: S.reset(1.0, 1.0, "grow", eta=math.inf), "eta"),
    (lambda: S.reset(None, math.inf, "reset"), "initial"),
    (lambda: S.schedule("constant", math.inf, 0), "gamma_b0"),
])
def test_infinite_settings_are_rejected(call, name):
    with pytest.raises(ValueError, match=name):
        call()
