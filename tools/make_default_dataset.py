"""Build neuralfuse/assets/cifar10-default.npz, the small CIFAR-10 subset shipped as the "default"
dataset, from the JPEG CIFAR-10 tarball (train/<class>/<NNNN>.jpg, test/<class>/<NNNN>.jpg).

Selection rule: for every class, the first 1000 training and the first 200 test files in sorted
file-name order. JPEG bytes are kept as they are (no re-encoding). The archive is written with
fixed timestamps, so the same tarball always gives a byte-identical file.

Usage:
    python tools/make_default_dataset.py [--tarball ../shared/datasets/cifar10-jpeg.tar.gz]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TARBALL = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
TARBALL_SHA256 = "0bfcb68717a0ecb0d51ed61034906a773d48d424d94b766a46d7d1c55702a4d9"
OUTPUT = REPO / "neuralfuse" / "assets" / "cifar10-default.npz"
PER_CLASS = {"train": 1000, "test": 200}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_jpegs(tarball: Path) -> dict[tuple[str, str], dict[str, bytes]]:
    """{(split, class): {file name: JPEG bytes}} for every image in the tarball."""
    images: dict[tuple[str, str], dict[str, bytes]] = defaultdict(dict)
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) == 3 and parts[0] in PER_CLASS:
                images[parts[0], parts[1]][parts[2]] = archive.extractfile(member).read()
    return images


def select(images: dict[tuple[str, str], dict[str, bytes]]) -> dict[str, np.ndarray]:
    """The arrays of the .npz: ``classes`` and, per split, concatenated JPEG bytes, offsets and
    labels."""
    classes = sorted({name for _, name in images})
    arrays = {"classes": np.array(classes)}
    for split, count in PER_CLASS.items():
        blobs, labels = [], []
        for label, name in enumerate(classes):
            files = images[split, name]
            if len(files) < count:
                raise SystemExit(f"{split}/{name} has {len(files)} images, fewer than {count}")
            blobs += [files[file] for file in sorted(files)[:count]]
            labels += [label] * count
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(blob) for blob in blobs], dtype=np.int64)
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.uint8)
    return arrays


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed timestamps. Deflate still pays here: the JPEG
    files repeat the same ~600-byte header, which it squeezes out."""
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                             buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, default=TARBALL)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if sha256(args.tarball) != TARBALL_SHA256:
        raise SystemExit(f"{args.tarball}: sha256 differs from {TARBALL_SHA256}; the subset "
                         "would not match the documented one")
    write_npz(args.out, select(read_jpegs(args.tarball)))
    print(f"wrote {args.out}: {args.out.stat().st_size / 1e6:.2f} MB, sha256 {sha256(args.out)}")


if __name__ == "__main__":
    main()
