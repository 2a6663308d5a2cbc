"""pytest configuration shared by the unit tests and ``make nbval``.

nbval compares each re-executed cell's outputs with the committed ones. It leaves plain
``image/png`` outputs out of the comparison, but a figure that a notebook glues for the
book (``myst_nb.glue``) is stored under ``application/papermill.record/image/png`` and is
compared byte for byte. The figures are drawn from the committed results cache, yet the
last bits of a logarithm or a least-squares fit depend on the CPU's vector instructions,
and a line moved by such a round-off changes the anti-aliasing of a few pixels by one
level. Here a glued PNG counts as the same figure under the rule by which
:func:`bisls_core.plotting.save` keeps a committed figure file
(:func:`bisls_core.plotting.same_png`: same size, every pixel within one level); any other
change still fails, and every text output is still compared exactly.
"""

from __future__ import annotations

import base64
import binascii

import pytest

#: The outputs compared as figures rather than as text.
PNG_KEYS = ("application/papermill.record/image/png", "image/png")


def _decoded(value) -> bytes | None:
    try:
        return base64.b64decode("".join(value) if isinstance(value, list) else value)
    except (binascii.Error, TypeError, ValueError):
        return None


def _same_figures(test: list, ref: list) -> None:
    """Replace each glued PNG of ``test`` that shows the same figure as its counterpart in
    ``ref`` (outputs in order) by the reference's bytes, so nbval compares equal texts."""
    from bisls_core.plotting import same_png

    for out_t, out_r in zip(test, ref):
        data_t, data_r = out_t.get("data") or {}, out_r.get("data") or {}
        for key in PNG_KEYS:
            if key in data_t and key in data_r and data_t[key] != data_r[key]:
                new, old = _decoded(data_t[key]), _decoded(data_r[key])
                if new is not None and old is not None and same_png(old, new):
                    data_t[key] = data_r[key]


def pytest_configure(config):
    if not getattr(config.option, "nbval", False):
        return
    from nbval import plugin

    compare = plugin.IPyNbCell.compare_outputs
    if getattr(compare, "_bisls_figures", False):
        return

    def compare_outputs(self, test, ref, skip_compare=None):
        _same_figures(test, ref)
        return compare(self, test, ref, skip_compare)

    compare_outputs._bisls_figures = True
    plugin.IPyNbCell.compare_outputs = compare_outputs


#: The claim ids the unit tests record (``record_claim`` refuses an unregistered id).
TOY_CLAIMS = ("toy-claim", "toy-1", "nb-1", "nb-2", "nb-3")


@pytest.fixture
def toy_claims():
    """Register the toy claims of the unit tests for one test (:data:`TOY_CLAIMS`)."""
    from bisls_core import registry as R

    toys = [R.Claim(id=cid, page=cid.split("-")[0], text="a toy claim", statistic="x",
                    direction="below") for cid in TOY_CLAIMS]
    with R.REGISTRY.scoped(*toys):
        yield toys
