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


def test_make_config_reads_the_primary_reading_and_as_before_the_dataclass():
    for method in B.METHODS:
        assert B.make_config(method) == B.make_config(method, reading=PRIMARY_READING)
    cfg = B.make_config("BiSLS-Adam", reading="as-before")
    assert (cfg.p14, cfg.c8, cfg.adam_trial, cfg.reference) == (0.5, 0.5, "m", "paper")


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
    sgd = {**SMALL, "method": "BiSLS-SGD", "reading": "as-before"}
    base = B.run_config(sgd, seed=0)
    up = B.run_config({**sgd, "p_upper": 0.1}, seed=0)
    low = B.run_config({**sgd, "c_bar": 0.1}, seed=0)
    same = B.run_config({**sgd, "p_upper": 0.5, "c_bar": 0.5}, seed=0)
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


# --------------------------------------------------------------------------- cache keys
def _key(config):
    from bisls_core import cache

    return cache.cache_key(B.run_config, config, 0)


def test_the_key_names_a_runs_constants_not_its_reading():
    """An as-before configuration keeps the key it had before readings existed; a reading
    given by name and the same fields given by hand share a key; a field a method does not
    use never splits its runs (SGD's adam_trial, a fixed-step method's p_upper)."""
    base = {**SMALL, "method": "BiSLS-Adam"}
    legacy = B.key_config({**base, "reading": "as-before"})
    assert legacy == base and _key({**base, "reading": "as-before"}) == _key(
        {**base, "reading": "as-before", "p_upper": 0.5, "adam_trial": "m"})
    assert _key({**base, "reading": "paper-evidence"}) == _key(
        {**base, "reading": "as-before", "p_upper": 0.1, "adam_trial": "h"})
    assert _key({**base, "reading": "paper-evidence"}) != _key({**base, "reading": "as-before"})
    sgd = {**SMALL, "method": "BiSLS-SGD"}
    assert _key({**sgd, "reading": "adam-trial-h"}) == _key({**sgd, "reading": "as-before"})
    assert _key({**sgd, "reading": "paper-evidence"}) == _key({**sgd, "reading": "p14=0.1"})
    fixed = {**SMALL, "method": "SGD"}
    for name in READINGS:
        assert _key({**fixed, "reading": name}) == _key({**fixed, "reading": "as-before"})
    assert _key({**sgd, "reading": "c8=0.1"}) != _key({**sgd, "reading": "as-before"})


def test_a_configuration_without_a_reading_is_keyed_under_the_primary_one():
    base = {**SMALL, "method": "BiSLS-Adam"}
    assert _key(base) == _key({**base, "reading": PRIMARY_READING})


def test_a_configuration_runs_what_its_key_names():
    """run_config applies the reading named in the configuration (same numbers as its fields
    given by hand)."""
    named = B.run_config({**SMALL, "method": "BiSLS-Adam", "K": 3, "reading": "paper-evidence"},
                         seed=0)
    by_hand = B.run_config({**SMALL, "method": "BiSLS-Adam", "K": 3, "reading": "as-before",
                            "p_upper": 0.1, "adam_trial": "h"}, seed=0)
    for key in named:
        if key != "time":
            np.testing.assert_array_equal(named[key], by_hand[key])


# --------------------------------------------------------------------------- the page's reading
def test_a_page_under_another_reading_writes_its_claims_beside_the_books(monkeypatch):
    from bisls_core import scales
    from bisls_core.records import claims_path

    other = next(n for n in READINGS if n != PRIMARY_READING)
    try:
        assert scales.use_reading(None) == PRIMARY_READING and scales.primary_reading_in_use()
        book = claims_path("cpu", "fig07_bisls_vs_tuned")
        assert book.parent.name == "claims"
        scales.use_reading(other)
        assert not scales.primary_reading_in_use()
        assert claims_path("cpu", "fig07_bisls_vs_tuned") == (
            book.parent / "readings" / other / "fig07_bisls_vs_tuned.json")
        with pytest.raises(ValueError, match="known readings are"):
            scales.use_reading("p=0.1")
    finally:
        scales.use_reading(None)


def test_the_rule_scores_decades_and_breaks_ties_towards_as_before():
    from bisls_core.readings import PAPER_ROUNDS, PAPER_W, rule_score
    from bisls_core.sweeps.open_choices import METHODS, choose

    exact = {m: n * np.log10(1 / PAPER_W) for m, n in PAPER_ROUNDS.items()}
    assert rule_score(exact) == pytest.approx(0.0, abs=1e-12)
    assert rule_score({m: 2 * v for m, v in exact.items()}) == pytest.approx(2 * np.log(2))
    cost = {("as-before", m): {"decades": exact[m] / 2} for m in METHODS}
    cost |= {("p14=0.1", m): {"decades": exact[m] * 1.01} for m in METHODS}
    cost |= {("c8=0.1", m): {"decades": exact[m] * 0.99} for m in METHODS}
    chosen, score = choose(cost, ("as-before", "p14=0.1", "c8=0.1"))
    assert chosen == "p14=0.1" and score["as-before"] > score["p14=0.1"]  # tie: fewer fields, then score
    cost |= {("as-before", m): {"decades": exact[m] * 1.02} for m in METHODS}
    assert choose(cost, ("as-before", "p14=0.1", "c8=0.1"))[0] == "as-before"
