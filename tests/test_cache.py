"""Faults of the results cache: corrupt entries, unwritable folders, reruns that must
leave committed files as they are, and where each scale writes."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bisls_core import experiments as E  # noqa: E402
from bisls_core import plotting  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CALLS: list[tuple[int, int]] = []
NOISE = {"rel": 0.0}


def runner(config, *, seed, device):
    """A small record of every kind a runner returns (floats with NaN, ints, bools)."""
    CALLS.append((config["K"], seed))
    rng = np.random.default_rng(seed)
    loss = rng.normal(size=config["K"]) * (1.0 + NOISE["rel"])
    loss[-1] = np.nan
    return {"loss": loss, "steps": np.arange(config["K"], dtype=np.int64) * seed,
            "diverged": np.array([False, seed % 2 == 1]), "final": np.float32(seed)}


runner.cache_version = "1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("BISLS_BOOK_SCALE", raising=False)
    monkeypatch.delenv("BISLS_EXECUTOR", raising=False)
    E._ENV_EXECUTORS.clear()
    CALLS.clear()
    NOISE["rel"] = 0.0


def grid(**kw):
    args = dict(name="toy", scale="smoke", n_runs=2, seed=3, device="cpu", progress=False)
    args.update(kw)
    return E.run_grid(runner, {"A": {"K": 5}, "B": {"K": 6}}, **args)


#: The metadata of an entry written by hand in these tests (run_grid writes its own).
META = {"runner": "tests.toy@1", "config": {}, "seed": 0, "scale": "smoke", "device": "cpu",
        "seconds": 1.0}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
        for k in a)


# --------------------------------------------------------------------------- corrupt entries
def test_every_single_byte_flip_reads_back_exactly_or_as_missing(tmp_path):
    """Flip each byte of a small entry in turn (two patterns): every read returns the
    original arrays exactly, or ``None`` with one warning naming the file; nothing raises."""
    path = tmp_path / "entry.npz"
    record = runner({"K": 7}, seed=1, device="cpu")
    E._write_entry(path, "k", record, META)
    original = E._read_entry(path, "k")
    assert original is not None and _same(original, {k: np.asarray(v) for k, v in record.items()})
    data = path.read_bytes()
    assert len(data) > 1000
    missing = exact = 0
    for i in range(len(data)):
        for pattern in (0xFF, 0x01):
            damaged = bytearray(data)
            damaged[i] ^= pattern
            path.write_bytes(bytes(damaged))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = E._read_entry(path, "k")
            if got is None:
                missing += 1
                assert len(caught) == 1 and str(path) in str(caught[0].message), (i, pattern)
            else:
                exact += 1
                assert _same(got, original), f"byte {i} ^ {pattern:#x} changed the arrays"
                assert not caught
    assert missing > len(data)  # most flips break the entry and are reported as such


def test_arrays_that_fail_their_checksum_are_missing(tmp_path):
    """A well-formed file whose arrays are not those it was written with (a zip the
    CRC cannot catch: repacked with the old metadata) is not read."""
    path = tmp_path / "entry.npz"
    E._write_entry(path, "k", {"x": np.arange(4.0)}, META)
    with np.load(path) as data:
        meta = data["__meta__"]
    assert "sha256" in json.loads(str(meta))
    np.savez_compressed(path, x=np.arange(4.0) + 1e-12, __meta__=meta)
    with pytest.warns(RuntimeWarning, match="checksum"):
        assert E._read_entry(path, "k") is None


def test_entries_without_checksum_are_refused(tmp_path):
    """An entry without the checksum of its arrays (hand-made, or of an old code version)
    is not served: one warning names the file, and the run is recomputed."""
    path = tmp_path / "legacy.npz"
    meta = {**META, "key": "k"}
    np.savez_compressed(path, x=np.arange(3.0), __meta__=np.asarray(json.dumps(meta)))
    with pytest.warns(RuntimeWarning, match=f"{path}.*sha256"):
        assert E._read_entry(path, "k") is None


def test_committed_cache_reads_cleanly():
    entries = sorted((ROOT / "results" / E.BOOK_SCALE / "fig04_quadratics").glob("*.npz"))
    assert entries
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in entries:
            assert E._read_entry(path, path.stem) is not None, path


def test_run_grid_recomputes_a_corrupt_entry_with_one_warning():
    first = grid()
    assert len(CALLS) == 4
    files = sorted((Path(os.environ["BISLS_RESULTS"]) / "smoke" / "toy").glob("*.npz"))
    victim = files[2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the compressed arrays
    victim.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=victim.name) as caught:
        again = grid()
    assert len([w for w in caught if "cache entry" in str(w.message)]) == 1
    assert len(CALLS) == 5  # exactly the damaged run, the grid went on
    for label in first:
        assert _same(first[label], again[label])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grid()  # repaired
    assert len(CALLS) == 5


# --------------------------------------------------------------------------- reruns
def test_recompute_that_reproduces_keeps_the_files_byte_for_byte():
    grid()
    folder = Path(os.environ["BISLS_RESULTS"]) / "smoke" / "toy"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.npz")}
    assert len(before) == 4
    g = grid(recompute=True)
    assert len(CALLS) == 8
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.glob("*.npz")} == before
    assert all(m["seconds"] >= 0 for meta in g.meta.values() for m in meta)


def test_recompute_within_round_off_keeps_the_stored_arrays():
    stored = grid()
    folder = Path(os.environ["BISLS_RESULTS"]) / "smoke" / "toy"
    before = {p: p.read_bytes() for p in folder.glob("*.npz")}
    NOISE["rel"] = 1e-15  # another CPU's round-off
    g = grid(recompute=True)
    assert {p: p.read_bytes() for p in folder.glob("*.npz")} == before
    for label in stored:
        assert _same(g[label], stored[label])  # the grid shows what the files hold


def test_recompute_that_differs_rewrites_the_entries():
    stored = grid()
    NOISE["rel"] = 1e-6
    g = grid(recompute=True)
    assert not np.array_equal(g["A"]["loss"], stored["A"]["loss"], equal_nan=True)
    assert _same(grid()["A"], g["A"])  # the cache now holds the new numbers


# ------------------------------------------------------------------ where each scale writes
def test_only_the_book_scale_writes_into_the_committed_folders(monkeypatch):
    monkeypatch.delenv("BISLS_RESULTS")
    monkeypatch.delenv("BISLS_FIGURES", raising=False)
    assert E.book_scale() == E.BOOK_SCALE == "cpu"
    # a user's run (no BISLS_WRITE_BOOK) writes to scratch at every scale, the book's too
    monkeypatch.delenv("BISLS_WRITE_BOOK", raising=False)
    assert E.results_dir("cpu") == E.results_dir() == ROOT / ".scratch" / "results"
    assert plotting.figures_dir("cpu") == ROOT / ".scratch" / "figures" / "cpu"
    assert E.read_dirs("cpu") == [ROOT / "results", ROOT / ".scratch" / "results"]
    monkeypatch.setenv("BISLS_WRITE_BOOK", "yes")
    with pytest.raises(ValueError, match="BISLS_WRITE_BOOK"):
        E.results_dir("cpu")
    # make results / make notebooks: only the book's scale writes into results/ and figures/
    monkeypatch.setenv("BISLS_WRITE_BOOK", "1")
    assert E.results_dir("cpu") == E.results_dir() == ROOT / "results"
    assert E.results_dir("smoke") == E.results_dir("paper") == ROOT / ".scratch" / "results"
    assert plotting.figures_dir("cpu") == ROOT / "figures"
    assert plotting.figures_dir("smoke") == ROOT / ".scratch" / "figures" / "smoke"
    monkeypatch.setenv("BISLS_BOOK_SCALE", "paper")
    assert E.results_dir("paper") == ROOT / "results"
    assert E.results_dir("cpu") == ROOT / ".scratch" / "results"
    assert plotting.figures_dir("cpu") == ROOT / ".scratch" / "figures" / "cpu"
    monkeypatch.setenv("BISLS_BOOK_SCALE", "huge")
    with pytest.raises(ValueError, match="BISLS_BOOK_SCALE"):
        E.results_dir("cpu")


def test_figures_follow_the_scale_of_the_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("BISLS_FIGURES", raising=False)
    monkeypatch.setenv("BISLS_WRITE_BOOK", "1")
    monkeypatch.setattr(E.scales, "repo_root", lambda: tmp_path)
    grid(scale="smoke")
    assert E.scale_in_use() == "smoke"
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    paths = plotting.save(fig, "toy")
    scratch = tmp_path / ".scratch" / "figures" / "smoke"
    assert paths == [scratch / "toy.png", scratch / "toy.svg"]
    assert plotting.save(fig, "toy", scale="cpu")[0] == tmp_path / "figures" / "toy.png"
    plt.close(fig)


def test_saved_figures_are_byte_reproducible(tmp_path, monkeypatch):
    """Even a figure not made by new_figure (no book style: random SVG ids by default)."""
    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path))
    outputs = []
    for _ in range(2):
        plt.rcParams["svg.hashsalt"] = None
        fig, ax = plt.subplots()
        ax.fill_between([0, 1, 2], [0, 1, 0], [1, 2, 1], alpha=0.3)
        ax.plot([0, 1, 2], [1, 0, 1], label="x")
        ax.legend()
        paths = plotting.save(fig, "same")
        outputs.append([p.read_bytes() for p in paths])
        plt.close(fig)
    assert outputs[0] == outputs[1]
    assert b"Software" not in outputs[0][0] and b"<dc:date>" not in outputs[0][1]


def test_a_png_within_round_off_is_kept_and_a_changed_one_replaced(tmp_path, monkeypatch):
    """Another CPU's round-off moves a line by a fraction of a pixel: anti-aliasing
    levels change by one; such a PNG is the same figure and is kept."""
    from PIL import Image

    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1])
    png = plotting.save(fig, "f", formats=("png",))[0]
    fresh = png.read_bytes()

    def shifted(by: int) -> bytes:  # the same metadata (the figure's scale), shifted pixels
        from PIL.PngImagePlugin import PngInfo

        image = Image.open(png)
        info = PngInfo()
        for key, value in image.text.items():
            info.add_text(key, value)
        pixels = np.asarray(image).astype(np.int32)
        pixels[::7, ::5, :3] = np.clip(pixels[::7, ::5, :3] + by, 0, 255)
        buf = __import__("io").BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buf, format="png", pnginfo=info)
        return buf.getvalue()

    nearly = shifted(-1)
    png.write_bytes(nearly)
    stamp = png.stat().st_mtime_ns
    plotting.save(fig, "f", formats=("png",))
    assert png.read_bytes() == nearly and png.stat().st_mtime_ns == stamp
    png.write_bytes(shifted(-40))
    plotting.save(fig, "f", formats=("png",))
    assert png.read_bytes() == fresh
    plt.close(fig)


def test_claims_of_another_scale_go_to_scratch_and_same_claims_stay(tmp_path, monkeypatch, toy_claims):
    monkeypatch.delenv("BISLS_RESULTS")
    monkeypatch.setenv("BISLS_WRITE_BOOK", "1")
    monkeypatch.setattr(E.scales, "repo_root", lambda: tmp_path)
    args = dict(claim="c", paper="p", ours="o", verdict="held")
    E.record_claim("nb", "nb-1", scale="smoke", **args)
    assert (tmp_path / ".scratch" / "results" / "smoke" / "claims" / "nb.json").is_file()
    E.record_claim("nb", "nb-1", scale="cpu", **args)
    path = tmp_path / "results" / "cpu" / "claims" / "nb.json"
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    E.record_claim("nb", "nb-1", scale="cpu", **args)
    assert path.stat().st_mtime_ns == stamp - 10**9  # not rewritten
    E.record_claim("nb", "nb-1", scale="cpu", **{**args, "verdict": "partly"})
    assert json.loads(path.read_text())["nb-1"]["verdict"] == "partly"


# --------------------------------------------------------------------------- unwritable cache
def test_cache_folder_under_a_file_fails_before_any_run(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BISLS_RESULTS", str(blocker / "results"))
    with pytest.raises(OSError) as err:
        grid()
    text = str(err.value)
    assert str(blocker / "results" / "smoke" / "toy") in text and "BISLS_RESULTS" in text
    assert CALLS == []  # nothing computed


def test_read_only_cache_folder_fails_before_any_run(tmp_path, monkeypatch):
    """The folder exists but cannot be written (as a non-root user on a read-only
    folder; mocked here, since root writes anywhere)."""
    monkeypatch.delenv("BISLS_RESULTS")
    monkeypatch.setenv("BISLS_WRITE_BOOK", "1")
    monkeypatch.setattr(E.scales, "repo_root", lambda: tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(E.cache.tempfile, "mkstemp", denied)
    with pytest.raises(OSError) as err:
        grid(scale="cpu")
    text = str(err.value)
    assert str(tmp_path / "results" / "cpu" / "toy") in text
    assert "repository root" in text and "BISLS_RESULTS" in text and "Permission denied" in text
    assert CALLS == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_cache_folder_as_a_user(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    (folder / "smoke" / "toy").mkdir(parents=True)
    monkeypatch.setenv("BISLS_RESULTS", str(folder))
    os.chmod(folder / "smoke" / "toy", 0o500)
    try:
        with pytest.raises(OSError, match="BISLS_RESULTS"):
            grid()
    finally:
        os.chmod(folder / "smoke" / "toy", 0o700)
    assert CALLS == []


def test_a_cached_grid_needs_no_writable_folder(monkeypatch):
    first = grid()
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(E.cache.tempfile, "mkstemp", denied)
    again = grid()
    assert len(CALLS) == 4 and _same(first["A"], again["A"])


def test_svg_of_a_figure_whose_png_is_the_same_is_kept(tmp_path, monkeypatch):
    """A round-off that moves a line by 1e-6 of its span rewrites an SVG's coordinates
    but not its PNG: the SVG is kept too. A real change replaces both."""
    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path))

    def draw(top: float) -> list:
        fig, ax = plt.subplots()
        ax.plot([0, 1, 2], [1, top, 1])
        ax.set_ylim(0, 2)
        paths = plotting.save(fig, "g")
        plt.close(fig)
        return [p.read_bytes() for p in paths]

    first = draw(0.3)
    svg_alone = tmp_path / "alone"
    monkeypatch.setenv("BISLS_FIGURES", str(svg_alone))
    nudged_svg = draw(0.3 + 3e-6)[1]
    assert nudged_svg != first[1]  # the SVG alone would have changed
    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path))
    assert draw(0.3 + 3e-6) == first
    assert draw(0.9) != first


def test_cache_log_names_every_entry_a_grid_uses_and_prune_lists_the_rest(tmp_path, monkeypatch):
    """With ``$BISLS_CACHE_LOG`` set, run_grid logs the entries it reads or writes;
    ``scripts/prune_cache.py`` lists the entries the log does not name (and removes
    them only with --apply)."""
    import importlib.util

    log = tmp_path / "use.log"
    grid()  # four entries, not logged
    monkeypatch.setenv("BISLS_CACHE_LOG", str(log))
    E.run_grid(runner, {"A": {"K": 5}}, name="toy", scale="smoke", n_runs=2, seed=3,
               device="cpu", progress=False)  # the two entries of A, read from the cache
    folder = Path(os.environ["BISLS_RESULTS"]) / "smoke" / "toy"
    logged = {Path(line) for line in log.read_text().split()}
    assert len(logged) == 2 and logged < {p.resolve() for p in folder.glob("*.npz")}
    spec = importlib.util.spec_from_file_location("prune_cache", ROOT / "scripts" / "prune_cache.py")
    prune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prune)
    monkeypatch.setattr(prune, "ROOT", Path(os.environ["BISLS_RESULTS"]).parent)
    stale, n_used = prune.unused(log, "smoke")
    assert n_used == 2 and {p.resolve() for p in folder.glob("*.npz")} - logged == set(stale)
    assert prune.main([str(log), "--scale", "smoke"]) == 0 and len(list(folder.glob("*.npz"))) == 4
    assert prune.main([str(log), "--scale", "smoke", "--apply"]) == 0
    assert {p.resolve() for p in folder.glob("*.npz")} == logged
