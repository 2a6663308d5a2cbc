"""The figure style: divergence drawn as such, no NaN warnings, reproducible files."""

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bisls_core import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def _figures_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path))


def test_diverged_runs_are_marked_and_raise_no_warning():
    y = np.array([[1.0, 0.5, 0.25, 0.1], [1.0, 2.0, np.inf, np.nan], [1.0, np.nan, np.nan, np.nan]])
    fig, ax = plotting.new_figure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = plotting.plot_runs(ax, y, "SGD", log=True)
    xs, ys = line.get_data()
    assert np.isfinite(ys).all()  # the mean over the runs still alive
    crosses = [l for l in ax.lines if l.get_marker() == "x"]
    assert len(crosses) == 2  # one cross per diverged run
    plt.close(fig)


def test_all_runs_diverged_stops_the_curve():
    y = np.array([[1.0, np.nan, np.nan]])
    fig, ax = plotting.new_figure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = plotting.plot_runs(ax, y, "SGD")
    assert np.isnan(line.get_data()[1][1:]).all()
    plt.close(fig)


def test_one_colour_per_method():
    assert plotting.color("BiSLS-Adam") == plotting.COLORS["BiSLS-Adam"]
    assert plotting.color("SPSB") != plotting.color("SPS_max")


def test_saved_png_is_byte_reproducible(tmp_path):
    def draw():
        fig, ax = plotting.new_figure()
        plotting.plot_runs(ax, np.array([[3.0, 2.0, 1.0], [3.0, 1.5, 0.5]]), "SPSB")
        paths = plotting.save(fig, "repro")
        plt.close(fig)
        return [p.read_bytes() for p in paths]

    assert draw() == draw()
