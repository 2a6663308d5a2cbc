"""The registry of readings of the paper's open choices, the separate constants of
conditions (8) and (14), and BiSLS-Adam's trial direction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bisls_core import bilevel as B
from bisls_core.readings import PRIMARY_READING, READINGS, reading_fields

torch.set_num_threads(1)

SMALL = {"problem": "quadratic_bilevel", "K": 8, "T": 2, "hypergrad": "cg",
         "hypergrad_steps": 3, "alpha": 10.0}


def test_every_reading_makes_a_valid_configuration():
    assert PRIMARY_READING in READINGS and "as-before" in READINGS and "paper-evidence" in READINGS
    for name in READINGS:
        for method in ("BiSLS-SGD", "BiSLS-Adam"):
            B.make_config(method, reading=name)
    with pytest.raises(ValueError, match="known readings are"):
        reading_fields("p=0.1")


def test_as_before_is_the_committed_configuration():
    for method in B.METHODS:
        assert B.make_config(method, reading="as-before") == B.make_config(method)
    cfg = B.make_config("BiSLS-Adam")
    assert (cfg.p14, cfg.c8, cfg.adam_trial) == (0.5, 0.5, "m")


def test_paper_evidence_separates_p_of_14_from_c_bar_of_8():
    cfg = B.make_config("BiSLS-Adam", reading="paper-evidence")
    assert (cfg.p, cfg.p14, cfg.c8, cfg.w, cfg.adam_trial) == (0.5, 0.1, 0.5, 0.9, "h")
    assert B.make_config("BiSLS-SGD", reading="paper-evidence", p_upper=0.2).p14 == 0.2


@pytest.mark.parametrize("field, value, match", [
    ("p_upper", 0.0, "p_upper"), ("p_upper", 1.5, "p_upper"), ("c_bar", -0.1, "c_bar"),
    ("adam_trial", "g", "adam_trial")])
def test_the_new_settings_are_validated(field, value, match):
    with pytest.raises(ValueError, match=match):
        B.make_config("BiSLS-Adam", **{field: value})


def test_the_constants_reach_their_searches():
    """p_upper changes the upper search only, c_bar the lower Armijo search only."""
    base = B.run_config({**SMALL, "method": "BiSLS-SGD"}, seed=0)
    up = B.run_config({**SMALL, "method": "BiSLS-SGD", "p_upper": 0.1}, seed=0)
    low = B.run_config({**SMALL, "method": "BiSLS-SGD", "c_bar": 0.1}, seed=0)
    same = B.run_config({**SMALL, "method": "BiSLS-SGD", "p_upper": 0.5, "c_bar": 0.5}, seed=0)
    for key in base:
        if key != "time":
            np.testing.assert_array_equal(base[key], same[key])
    assert np.array_equal(base["lower_rounds"][:1], up["lower_rounds"][:1])  # first lower loop
    assert not np.array_equal(base["upper_rounds"], up["upper_rounds"])
    assert not np.array_equal(base["lower_rounds"], low["lower_rounds"])


def test_the_adam_trial_moves_along_a_inverse_h():
    cfg = B.make_config("BiSLS-Adam", adam_trial="h")
    direction = B.AdamDirection(cfg, torch.zeros(3, dtype=torch.float64))
    h1, h2 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), torch.tensor(
        [0.5, 1.0, -1.0], dtype=torch.float64)
    direction(0, h1)
    d, sq = direction(1, h2)
    a_mat = torch.sqrt(direction.v / (1 - 0.999 ** 2)) + 1e-8
    torch.testing.assert_close(direction.trial, h2 / a_mat, rtol=0, atol=0)
    assert float(sq) == pytest.approx(float(h2 @ direction.trial))  # the slope (14) asks
    assert not torch.allclose(d, direction.trial)  # the update keeps A^-1 m
    m_cfg = dataclasses.replace(cfg, adam_trial="m")
    assert B.AdamDirection(m_cfg, torch.zeros(3)).trial is None


def test_a_reading_in_a_run_configuration():
    runs = [B.run_config({**SMALL, "method": "BiSLS-Adam", **extra}, seed=1)
            for extra in ({"reading": "paper-evidence"},
                          {"p_upper": 0.1, "adam_trial": "h"})]
    for key in runs[0]:
        if key != "time":
            np.testing.assert_array_equal(runs[0][key], runs[1][key])
