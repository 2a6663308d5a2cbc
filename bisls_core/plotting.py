"""One figure style for the whole book.

* one colour per method (the paper's legend names), the same on every page;
* mean ± std bands over runs (:func:`plot_runs`); a run that diverged is drawn
  up to its divergence and marked with a cross, never as silent gaps;
* :func:`save` writes ``figures/<name>.png`` and ``.svg`` reproducibly
  (no timestamps in the files).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import experiments
from .stepsizes import check_choice

__all__ = ["COLORS", "color", "figure_scale", "figures_dir", "new_figure", "plot_runs", "save",
           "scale_note", "style"]

#: One colour per method, by the paper's legend name (tab10 / tab20 hues).
COLORS: dict[str, str] = {
    # single level
    "SPS_max": "#d62728",
    "DecSPS": "#9467bd",
    "SPSB": "#1f77b4",
    "SPSB (1 sample)": "#1f77b4",
    "SPSB (2 samples)": "#17becf",
    "SLS": "#ff7f0e",
    "SLSB": "#2ca02c",
    "SLSB (1 sample)": "#2ca02c",
    "SLSB (2 samples)": "#98df8a",
    "decaying-step SGD": "#7f7f7f",
    "SGD": "#8c564b",
    "Adam": "#e377c2",
    # bilevel
    "BiSLS-SGD": "#2ca02c",
    "BiSLS-Adam": "#1f77b4",
    "BiSPS": "#d62728",
    "BiSPS (1 sample)": "#d62728",
    "BiSPS (2 samples)": "#ff9896",
    # parameter-free baselines (both levels, or single level), from their own packages
    "Prodigy": "#bcbd22",
    "Schedule-free SGD": "#8c6d31",
    "Schedule-free AdamW": "#7b4173",
    "DoG": "#393b79",
}

_FALLBACK = plt.get_cmap("tab10").colors


def color(label: str, i: int = 0) -> str | tuple:
    """The book's colour for ``label``; the ``i``-th tab10 colour otherwise."""
    return COLORS.get(label, _FALLBACK[i % len(_FALLBACK)])


def style() -> None:
    """Apply the book's matplotlib style (call once per notebook)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "font.size": 10,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
            "legend.fontsize": 8,
            "svg.hashsalt": "bisls",
        }
    )


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 3.6, height: float = 3.0):
    """A figure with a grid of axes of ``width x height`` inches each."""
    style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows),
                             squeeze=False, layout="constrained")
    return fig, axes.ravel() if nrows * ncols > 1 else axes[0, 0]


def plot_runs(
    ax,
    y: np.ndarray,
    label: str,
    *,
    x: np.ndarray | None = None,
    i: int = 0,
    log: bool = False,
    band: bool = True,
    **kwargs,
):
    """Mean ± std over runs (axis 0) of ``y`` (shape ``(n_runs, n_points)``).

    Non-finite values mark divergence: the mean is taken over the runs still
    alive at each point, the curve stops when every run has diverged, and the
    first divergence of each run is marked with a cross on the last finite
    value. With ``log=True`` the band is the geometric mean × / ÷ the geometric
    std (so it stays positive on a log axis).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    n = y.shape[1]
    x = np.arange(n) if x is None else np.asarray(x)
    c = kwargs.pop("color", color(label, i))
    finite = np.isfinite(y) & ((y > 0) if log else True)
    alive = finite.sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vals = np.where(finite, np.log(np.where(finite, y, 1.0)) if log else y, np.nan)
        mean = np.nanmean(vals, axis=0)
        std = np.nanstd(vals, axis=0)
    mean[alive == 0] = np.nan
    std[alive == 0] = np.nan
    lo, mid, hi = (np.exp(mean - std), np.exp(mean), np.exp(mean + std)) if log else (
        mean - std, mean, mean + std)
    (line,) = ax.plot(x, mid, color=c, label=label, **kwargs)
    if band and y.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=c, alpha=0.2, linewidth=0)
    for run in y:
        bad = np.flatnonzero(~np.isfinite(run))
        if bad.size:
            j = bad[0]
            yj = run[j - 1] if j > 0 and np.isfinite(run[j - 1]) else (np.nanmax(mid) if np.isfinite(mid).any() else 1.0)
            ax.plot(x[j], yj, marker="x", color=c, markersize=8, mew=2, linestyle="none")
    if log:
        ax.set_yscale("log")
    return line


def figures_dir(scale: str | None = None) -> Path:
    """Where the figures of a run at ``scale`` are written: ``$BISLS_FIGURES`` when set;
    otherwise ``<repo>/figures`` for the book's scale
    (:func:`bisls_core.experiments.book_scale`) when this process updates the book
    (:func:`bisls_core.experiments.writes_book`: ``make results``, ``make notebooks``)
    under the primary reading (:func:`bisls_core.scales.primary_reading_in_use`), and ``<repo>/.scratch/figures/<scale>``, which git ignores, for every other run.
    ``scale=None``: the scale of this process's runs
    (:func:`bisls_core.experiments.scale_in_use`), the book's when there were none."""
    env = os.environ.get("BISLS_FIGURES")
    if env:
        d = Path(env)
    else:
        scale = scale or experiments.scale_in_use() or experiments.book_scale()
        check_choice("scale", scale, experiments.SCALES)
        if (scale == experiments.book_scale() and experiments.writes_book()
                and experiments.scales.primary_reading_in_use()):
            d = experiments.scales.repo_root() / "figures"
        else:
            d = experiments.scales.scratch_dir() / "figures" / scale
    d.mkdir(parents=True, exist_ok=True)
    return d


#: What makes the files byte-reproducible: no software or date in the PNG, no date or
#: creator in the SVG, and SVG ids drawn from a fixed salt instead of random ones.
_PNG_METADATA = {"Software": None}
_SVG_METADATA = {"Date": None, "Creator": None}


def scale_note(scale: str) -> str:
    """The text every figure file carries in its metadata (PNG ``Description`` text
    chunk, SVG Dublin Core ``dc:description``): ``"scale: cpu"``."""
    return f"scale: {scale}"


def figure_scale(path: str | Path) -> str | None:
    """The scale a figure file written by :func:`save` states in its metadata
    (``None`` when it states none)."""
    import re

    path = Path(path)
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            text = im.text.get("Description", "")
    else:
        found = re.search(r"<dc:description>([^<]*)</dc:description>", path.read_text("utf-8"))
        text = found.group(1) if found else ""
    return text[len("scale: "):] if text.startswith("scale: ") else None


def save(fig, name: str, formats: Sequence[str] = ("png", "svg"), *,
         scale: str | None = None) -> list[Path]:
    """Write ``<figures_dir(scale)>/<name>.<fmt>`` byte-reproducibly (no timestamps,
    no software version, fixed SVG ids). A file that already holds the same figure is
    left as it is: the same bytes, or for a PNG the same size with every pixel within
    one level of 255 (the anti-aliasing of a line moved by a round-off, e.g. a fit by
    another CPU's LAPACK), and then its other formats too (an SVG's coordinates and clip
    ids move with the same round-off). So a rerun that draws the same figure changes no file.
    A figure goes into the committed ``figures/`` only from a command that updates the
    book at its scale; any other goes to a folder git ignores
    (:func:`figures_dir`). Each PNG and SVG states its scale in its metadata
    (:func:`scale_note`, read back by :func:`figure_scale`), not in its pixels. In plan
    mode (:func:`bisls_core.experiments.plan_path`) it writes nothing and returns ``[]``."""
    if experiments.plan_path() is not None:  # a plan's figures are drawn from stand-ins
        return []
    scale = scale or experiments.scale_in_use() or experiments.book_scale()
    folder = figures_dir(scale)
    note = {"Description": scale_note(scale)}
    rendered = {}
    for fmt in formats:
        meta = ({**_PNG_METADATA, **note} if fmt == "png" else
                {**_SVG_METADATA, **note} if fmt == "svg" else None)
        buf = io.BytesIO()
        with plt.rc_context({"svg.hashsalt": "bisls"}):
            fig.savefig(buf, format=fmt, metadata=meta, bbox_inches="tight")
        rendered[folder / f"{name}.{fmt}"] = (fmt, buf.getvalue())
    # A vector file's coordinates and clip ids move with the same round-off: when the
    # PNG of this figure is the same, every existing format of it is kept.
    same_png = any(fmt == "png" and _same_figure(p, data, fmt) for p, (fmt, data) in rendered.items())
    for p, (fmt, data) in rendered.items():
        if not (_same_figure(p, data, fmt) or (same_png and p.is_file())):
            p.write_bytes(data)
    return list(rendered)


def _same_figure(path: Path, data: bytes, fmt: str) -> bool:
    """Does ``path`` already hold this figure (see :func:`save`)?"""
    try:
        old = path.read_bytes()
    except OSError:
        return False
    return old == data or (fmt == "png" and same_png(old, data))


def same_png(old: bytes, new: bytes) -> bool:
    """Do two PNG files show the same figure: the same text metadata (the scale), the
    same size, and every pixel within one level of 255 (the anti-aliasing of a line moved
    by a round-off: another CPU's vector instructions in a logarithm or a fit)? The rule
    by which :func:`save` keeps a figure file, and by which ``make nbval`` compares the
    figures a notebook glues (the repository's ``conftest.py``). An unreadable PNG is not
    the same."""
    if old == new:
        return True
    from PIL import Image

    try:
        a, b = Image.open(io.BytesIO(old)), Image.open(io.BytesIO(new))
        if a.text != b.text:  # the same pixels stating another scale: a new figure
            return False
        a, b = np.asarray(a), np.asarray(b)
    except Exception:  # noqa: BLE001 - an unreadable file is not the same figure
        return False
    return a.shape == b.shape and a.dtype == b.dtype and bool(
        np.abs(a.astype(np.int32) - b.astype(np.int32)).max(initial=0) <= 1)


__all__ += ["same_png"]


def publish(fig, name: str) -> None:
    """Put a notebook's figure in the book: :func:`save` it as ``figures/<name>``, glue it
    under ``name`` for the page's ``{glue:figure}`` (inside a notebook kernel, through
    ``myst_nb.glue``, without displaying it), and close it."""
    save(fig, name)
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from myst_nb import glue
    except ImportError:  # plotting outside the book's environment: nothing to glue
        glue = None
    if glue is not None and InteractiveShell.initialized():
        glue(name, fig, display=False)
    plt.close(fig)


__all__ += ["publish"]
