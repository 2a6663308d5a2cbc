"""Issue 22's faults of the cache and the claim records, each reproduced:

* a rerun (``recompute``) at the book's scale rewrote committed entries, claims and
  figures when its runs drifted on another CPU: now only ``BISLS_WRITE_BOOK=1`` (``make
  results``, ``make notebooks``) writes there, and an entry whose recompute differs
  (perturbed here) stays as committed;
* invalid claim records (truncated, ``{}``, ``runs: 5.9``, ``interval: ["abc", "def"]``)
  and invalid cache entries (a run's array shortened, values without their checksum)
  are refused with the file and the key named;
* a data folder is keyed by the data it holds, not by its path;
* files are written with the umask's mode, not 0600;
* each finished run is one line of ``$BISLS_PROGRESS``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bisls_core import cache as C  # noqa: E402
from bisls_core import data  # noqa: E402
from bisls_core import experiments as E  # noqa: E402
from bisls_core import plotting  # noqa: E402
from bisls_core import records  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CALLS: list[int] = []


def runner(config, *, seed, device):
    CALLS.append(seed)
    return {"loss": np.linspace(1.0, 0.1, config["K"]) * (1 + seed / 10)}


runner.cache_version = "1"


@pytest.fixture()
def repo(tmp_path, monkeypatch):
    """A repository root of its own: committed ``results/`` and ``figures/`` under it."""
    for name in ("BISLS_RESULTS", "BISLS_FIGURES", "BISLS_BOOK_SCALE", "BISLS_EXECUTOR",
                 "BISLS_WRITE_BOOK", "BISLS_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(E.scales, "repo_root", lambda: tmp_path)
    E._ENV_EXECUTORS.clear()
    CALLS.clear()
    return tmp_path


def _grid(**kw):
    args = dict(name="toy", scale="cpu", n_runs=2, seed=0, device="cpu", progress=False)
    return E.run_grid(runner, {"A": {"K": 4}}, **{**args, **kw})


def _claim(**kw):
    args = dict(claim="c", paper="p", ours="o", verdict="held", scale="cpu")
    return E.record_claim("toy", "toy-1", **{**args, **kw})


# ---------------------------------------------------------------- a rerun never rewrites the book
def test_a_rerun_that_drifts_never_rewrites_the_committed_book(repo, monkeypatch, toy_claims):
    monkeypatch.setenv("BISLS_WRITE_BOOK", "1")  # make results: fills the committed cache
    _grid()
    _claim()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    plotting.save(fig, "toy")
    committed = sorted((repo / "results").rglob("*.npz")) + sorted((repo / "results").rglob("*.json"))
    assert len(committed) == 3 and (repo / "figures" / "toy.png").is_file()
    # another CPU: the committed entries differ from what a recompute gives (perturbed)
    for path in committed[:2]:
        with np.load(path) as d:
            rec = {k: d[k] for k in d.files}
        meta = json.loads(str(rec.pop("__meta__")))
        key = meta.pop("key")
        C._write_entry(path, key, {"loss": rec["loss"] * (1 + 1e-6)}, meta)
    before = {p: p.read_bytes() for p in [*committed, repo / "figures" / "toy.png"]}
    stamps = {p: p.stat().st_mtime_ns for p in before}

    monkeypatch.delenv("BISLS_WRITE_BOOK")  # a user's rerun, recompute on
    CALLS.clear()
    grid = _grid(recompute=True)
    assert CALLS == [0, 1]  # computed again ...
    _claim(verdict="not held", ours="other")
    ax.plot([1, 0])
    plotting.save(fig, "toy", scale="cpu")
    plt.close(fig)
    after = {p: p.read_bytes() for p in before}
    assert after == before and {p: p.stat().st_mtime_ns for p in before} == stamps
    scratch = repo / ".scratch"  # ... into scratch, which git ignores
    assert len(list((scratch / "results" / "cpu" / "toy").glob("*.npz"))) == 2
    assert json.loads((scratch / "results" / "cpu" / "claims" / "toy.json").read_text())[
        "toy-1"]["verdict"] == "not held"
    assert (scratch / "figures" / "cpu" / "toy.png").is_file()
    np.testing.assert_array_equal(grid["A"]["loss"][0], runner({"K": 4}, seed=0, device="cpu")["loss"])
    # without recompute, a user's run reads the committed entries (no run computed)
    CALLS.clear()
    committed_grid = _grid()
    assert CALLS == [] and not np.array_equal(committed_grid["A"]["loss"], grid["A"]["loss"])


# ---------------------------------------------------------------- checked claim records
@pytest.mark.parametrize("text, where", [
    ('{"toy-1": {"claim": "c"', "not valid JSON"),
    ("{}", "should be non-empty|does not have enough properties|minProperties"),
    (None, "'runs'"),
    (None, "'interval'"),
])
def test_an_invalid_claim_record_is_refused_naming_the_file_and_key(repo, text, where):
    path = repo / "claims" / "toy.json"
    path.parent.mkdir()
    good = {"toy-1": {"claim": "c", "paper": "p", "ours": "o", "verdict": "held", "scale": "cpu",
                      "why": "", "notebook": "toy", "runs": 5, "interval": [0.1, 0.2],
                      "statistic": "s"}}
    if text is None:
        bad = json.loads(json.dumps(good))
        bad["toy-1"].update(runs=5.9) if where == "'runs'" else bad["toy-1"].update(
            interval=["abc", "def"])
        text = json.dumps(bad)
    path.write_text(text)
    with pytest.raises(records.ClaimRecordError, match=where) as err:
        records.read_claims(path)
    assert str(path) in str(err.value)
    if where.startswith("'"):
        assert "claim 'toy-1'" in str(err.value)
    path.write_text(json.dumps(good))
    assert records.read_claims(path) == good


def test_record_claim_refuses_to_overwrite_an_invalid_file(repo, toy_claims):
    path = repo / ".scratch" / "results" / "cpu" / "claims" / "toy.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"toy-1": ')
    with pytest.raises(records.ClaimRecordError, match=str(path)):
        _claim()
    assert path.read_text() == '{"toy-1": '


def test_the_scorecard_refuses_an_invalid_or_missing_record(repo, monkeypatch, tmp_path_factory):
    sys.path.insert(0, str(ROOT / "scripts"))
    import scorecard

    claims = repo / "results" / "cpu" / "claims"
    shutil.copytree(ROOT / "results" / "cpu" / "claims", claims)
    assert len(scorecard.collect("cpu")) == len(list(claims.glob("*.json")))
    (claims / "fig04_quadratics.json").write_text("{}")
    with pytest.raises(records.ClaimRecordError, match="fig04_quadratics.json"):
        scorecard.collect("cpu")
    (claims / "fig04_quadratics.json").unlink()
    with pytest.raises(records.ClaimRecordError, match="fig04_quadratics"):
        scorecard.check_complete(scorecard.collect("cpu"), "cpu")
    with pytest.raises(records.ClaimRecordError, match="fig04_quadratics"):
        scorecard.main(["--out", str(repo / "book")])
    assert not (repo / "book" / "scorecard.md").exists()


def test_every_committed_claim_record_follows_the_schema():
    files = sorted((ROOT / "results" / "cpu" / "claims").glob("*.json"))
    assert files
    for path in files:
        records.read_claims(path)


# ---------------------------------------------------------------- checked cache entries
def test_a_shortened_array_in_one_entry_names_the_entry(repo, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(repo / "results"))
    _grid()
    path = sorted((repo / "results" / "cpu" / "toy").glob("*.npz"))[1]
    with np.load(path) as d:
        rec = {k: d[k] for k in d.files}
    meta = json.loads(str(rec.pop("__meta__")))
    key = meta.pop("key")
    C._write_entry(path, key, {"loss": rec["loss"][:-1]}, meta)  # a valid entry, one row short
    with pytest.raises(ValueError, match=r"configuration 'A': array 'loss'.*\.npz"):
        _grid()


def test_made_up_values_without_their_checksum_are_recomputed(repo, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(repo / "results"))
    first = _grid()
    path = sorted((repo / "results" / "cpu" / "toy").glob("*.npz"))[0]
    with np.load(path) as d:
        meta = d["__meta__"]
        loss = d["loss"]
    np.savez_compressed(path, loss=loss * 0.5, __meta__=meta)  # the old checksum kept
    CALLS.clear()
    with pytest.warns(RuntimeWarning, match=f"{path.name}.*checksum"):
        again = _grid()
    assert len(CALLS) == 1
    np.testing.assert_array_equal(again["A"]["loss"], first["A"]["loss"])


def test_a_bilevel_entry_of_the_wrong_length_is_refused(tmp_path):
    meta = {"runner": "bisls_core.bilevel.run_config@1", "config": {"K": 3}, "seed": 0,
            "scale": "cpu", "device": "cpu", "seconds": 1.0}
    ok = {"val_loss": np.zeros(3), "initial_val_loss": np.float64(1), "x_final": np.zeros(7)}
    C._write_entry(tmp_path / "a.npz", "a", ok, meta)
    assert C._read_entry(tmp_path / "a.npz", "a") is not None
    with pytest.raises(ValueError, match=r"b\.npz: array 'val_loss' has shape \(2,\)"):
        C._write_entry(tmp_path / "b.npz", "b", {**ok, "val_loss": np.zeros(2)}, meta)
    with pytest.raises(ValueError, match="dtype"):
        C._write_entry(tmp_path / "c.npz", "c", {**ok, "val_loss": np.array(["x"] * 3)}, meta)
    with pytest.raises(ValueError, match="seed"):
        C._write_entry(tmp_path / "d.npz", "d", ok, {**meta, "seed": -1})


def test_every_committed_entry_reads_verified():
    bad = []
    for path in sorted((ROOT / "results" / "cpu").rglob("*.npz")):
        try:
            C._load_entry(path, path.stem)
        except Exception as err:  # noqa: BLE001
            bad.append(f"{path}: {err}")
    assert not bad, "\n".join(bad[:5])


# ---------------------------------------------------------------- the data set is in the key
def _mnist_copy(folder: Path, n_drop: int = 0) -> None:
    data.load_mnist()  # the shipped subset, decompressed in the data cache
    shutil.copytree(data.cache_dir() / "mnist" / "MNIST", folder / "MNIST")
    if n_drop:  # another set: fewer test digits (idx header: count at bytes 4..8)
        for name, size in (("t10k-images-idx3-ubyte", 784), ("t10k-labels-idx1-ubyte", 1)):
            path = folder / "MNIST" / "raw" / name
            raw = bytearray(path.read_bytes())
            n = int.from_bytes(raw[4:8], "big") - n_drop
            raw[4:8] = n.to_bytes(4, "big")
            head = 16 if size == 784 else 8
            path.write_bytes(bytes(raw[:head + n * size]))


def test_the_cache_key_follows_the_data_a_folder_holds(tmp_path):
    config = {"problem": "hyperrep", "problem_args": {"n_train": 10}, "K": 2}
    default = E.cache_key(runner, config, 0)
    folder = tmp_path / "mnist-folder"
    folder.mkdir()
    with_root = {**config, "problem_args": {"n_train": 10, "data_root": str(folder)}}
    with pytest.warns(UserWarning, match="falling back"):
        empty = E.cache_key(runner, with_root, 0)
    assert empty == default  # the runs load the shipped subset: the same data, the same entry
    _mnist_copy(folder)
    full = E.cache_key(runner, with_root, 0)
    assert full != default
    shutil.rmtree(folder / "MNIST")
    _mnist_copy(folder, n_drop=5)
    assert E.cache_key(runner, with_root, 0) not in (default, full)
    ident = data.mnist_identity(folder)
    assert ident.startswith("MNIST 8000+1995 digits, sha256 ")


# ---------------------------------------------------------------- small things
def test_entries_and_claims_follow_the_umask(repo, monkeypatch, toy_claims):
    monkeypatch.setenv("BISLS_RESULTS", str(repo / "results"))
    old = os.umask(0o022)
    try:
        _grid()
        _claim()
    finally:
        os.umask(old)
    files = [*(repo / "results").rglob("*.npz"), *(repo / "results").rglob("*.json")]
    assert files and {oct(p.stat().st_mode & 0o777) for p in files} == {"0o644"}


def test_each_finished_run_is_one_progress_line(repo, monkeypatch):
    progress = repo / "progress.jsonl"
    monkeypatch.setenv("BISLS_PROGRESS", str(progress))
    _grid(n_runs=3)
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert [(d["label"], d["seed"], d["done"], d["total"]) for d in lines] == [
        ("A", 0, 1, 3), ("A", 1, 2, 3), ("A", 2, 3, 3)]
    assert all(d["name"] == "toy" and d["seconds"] >= 0 for d in lines)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs the git checkout")
def test_a_user_papermill_rerun_of_the_book_scale_with_recompute_leaves_git_clean(tmp_path):
    """The README's rerun at the book's scale with ``recompute True``, on the cheapest page
    of the single-level family, whose line-search runs drift across CPUs."""
    status = ["git", "status", "--porcelain=v1", "--untracked-files=all"]
    before = subprocess.run(status, cwd=ROOT, capture_output=True, text=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISLS_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    cmd = [str(Path(sys.executable).parent / "papermill"), "notebooks/thm1_convex_rate.ipynb",
           str(tmp_path / "out.ipynb"), "--cwd", "notebooks", "-k", "python3",
           "--no-progress-bar", "-p", "recompute", "True"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert subprocess.run(status, cwd=ROOT, capture_output=True, text=True).stdout == before


def test_a_recompute_that_differs_only_in_its_seconds_keeps_the_stored_entry():
    stored = {"loss": np.array([2.0, 1.0]), "time": np.array([0.1, 0.2])}
    assert C._reproduces({"loss": np.array([2.0, 1.0]), "time": np.array([0.3, 0.1])}, stored)
    assert not C._reproduces({"loss": np.array([2.0, 1.1]), "time": np.array([0.1, 0.2])}, stored)
    assert not C._reproduces({"loss": np.array([2.0, 1.0]), "time": np.array([0.1])}, stored)


def test_a_smoke_record_of_one_run_is_valid_and_zero_runs_is_not(tmp_path):
    rec = {"claim": "c", "paper": "p", "ours": "o", "verdict": "inconclusive", "scale": "smoke",
           "why": "", "notebook": "toy", "runs": 1, "interval": [0.0, 1.0], "statistic": "s"}
    records.check_claims({"toy-1": rec}, tmp_path / "toy.json")
    with pytest.raises(records.ClaimRecordError, match="'runs'.*nothing was written"):
        records.check_claims({"toy-1": {**rec, "runs": 0}}, tmp_path / "toy.json", writing=True)
