"""Datasets behind one function, :func:`load_dataset`, decoded once into memory.

Every split is decoded up front into a uint8 tensor (N, 3, H, W); :class:`ImageDataset` turns an
item into float32 in [-1, 1] (pixel / 255 * 2 - 1) when accessed, and :meth:`ImageDataset.tensors`
gives the whole split at once for vectorized batching.

Layouts under ``root``:

- class-per-folder trees (every dataset but "default"): ``root/<split>/<class>/<image>``
  (.jpg, .jpeg, .png, .ppm, .bmp); labels are the class folders in sorted order. For "gtsrb",
  ``split="train"`` also finds the standard ``root/Final_Training/Images/<class>/`` layout;
- "cifar10" / "cifar100" also read the original python batches, ``root/cifar-10-batches-py`` /
  ``root/cifar-100-python`` (or ``root`` pointing at that folder), which ``download=True`` fetches;
- "default" has no root: it is a class-balanced CIFAR-10 subset shipped in ``neuralfuse/assets``
  (see ``cifar10-default.md`` there).

>>> train = load_dataset("default")
>>> x, y = train[0]                       # float32 (3, 32, 32) in [-1, 1], int64
>>> images, labels = train.tensors()      # the whole split, same scaling
"""
from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from tqdm import tqdm

from characterization.validation import check_scalar

DEFAULT_ASSET = Path(__file__).parent / "assets" / "cifar10-default.npz"
_HOLDOUT_STREAM = 0x4E46_484F  # "NFHO": keeps the split's stream apart from other uses of a seed
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp"})


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a trainer need to know about a loaded dataset."""

    name: str
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]
    hflip: bool  # whether a horizontal flip is a label-preserving augmentation

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class _Archive:
    """The original python-pickle release of a CIFAR dataset."""

    folder: str
    url: str
    md5: str
    files: dict[str, tuple[str, ...]]  # split -> batch files
    meta: str
    label_key: bytes
    names_key: bytes


@dataclass(frozen=True)
class _Spec:
    image_size: int | None  # None: the caller gives image_size
    crop: bool  # resize the shorter side and center-crop (else resize to a square)
    hflip: bool
    archive: _Archive | None = None


_CIFAR10 = _Archive("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    "c58f30108f718f92721af3b95e74349a",
                    {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
                    "batches.meta", b"labels", b"label_names")
_CIFAR100 = _Archive("cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                     "eb9058c3a382ffc7106e4002c42a8d85", {"train": ("train",), "test": ("test",)},
                     "meta", b"fine_labels", b"fine_label_names")
_SPECS = {
    "default": _Spec(32, crop=False, hflip=True),
    "cifar10": _Spec(32, crop=False, hflip=True, archive=_CIFAR10),
    "cifar100": _Spec(32, crop=False, hflip=True, archive=_CIFAR100),
    "gtsrb": _Spec(32, crop=False, hflip=False),  # mirrored signs change meaning
    "imagenet10": _Spec(224, crop=True, hflip=True),
    "folder": _Spec(None, crop=False, hflip=False),  # unknown content: flips not assumed valid
}


class ImageDataset(torch.utils.data.Dataset):
    """A split held in memory as uint8 ``images`` (N, 3, H, W) and int64 ``labels`` (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo):
        self.images = images
        self.labels = labels
        self.info = info

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_input_range(self.images[index]), self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split: float32 images in [-1, 1] and int64 labels."""
        return to_input_range(self.images), self.labels

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The samples at ``indices`` (a 1-d integer tensor), as a dataset of their own."""
        return ImageDataset(self.images[indices], self.labels[indices], self.info)

    def __repr__(self) -> str:
        return (f"ImageDataset({self.info.name!r}, n={len(self)}, classes={self.info.num_classes}, "
                f"shape={self.info.input_shape})")


def holdout_split(n: int, val_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) of ``n`` samples, ``val_size`` of them held out.

    The validation samples are drawn uniformly at random with NumPy's PCG64 seeded by ``seed``, so
    the split is a function of (n, val_size, seed) alone, the same on every machine. Base-model
    training and generator training use the same split (the base model records it), so no image
    that chose an epoch, a λ or a checkpoint was trained on. Both index tensors are sorted.

    >>> train, val = holdout_split(10, 3, seed=0)
    >>> len(train), len(val), sorted(train.tolist() + val.tolist()) == list(range(10))
    (7, 3, True)
    """
    for name, value, low in (("n", n, 1), ("val_size", val_size, 0), ("seed", seed, 0)):
        check_scalar(value, name, int, min_val=low)
    if val_size >= n:
        raise ValueError(f"val_size={val_size} leaves no training data: the dataset has {n} samples")
    order = np.random.default_rng([_HOLDOUT_STREAM, seed]).permutation(n)
    return torch.from_numpy(np.sort(order[val_size:])), torch.from_numpy(np.sort(order[:val_size]))


def fixed_subset(dataset: Dataset, n: int | None) -> Dataset:
    """``n`` samples of ``dataset`` drawn without replacement by a fixed seed (all of it if n is None).

    The same on every machine; the indices are kept in order. Datasets sorted by class give an
    (almost) class-balanced subset, unlike their first ``n`` samples.
    """
    if n is None:
        return dataset
    check_scalar(n, "samples", int, min_val=1, max_val=len(dataset),
                 allowed=f"an integer from 1 to {len(dataset)} (the dataset's size)")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n]
    return Subset(dataset, sorted(order.tolist()))


def recorded_split(base_meta: Mapping[str, Any], dataset: str) -> dict[str, int] | None:
    """The split ``{"val_size", "seed"}`` that the base model with checkpoint metadata ``base_meta``
    held out of ``dataset``'s training images, or None when it held out none of that dataset.

    >>> recorded_split({"dataset": "cifar10", "split": {"val_size": 5000, "seed": 0}}, "cifar10")
    {'val_size': 5000, 'seed': 0}
    """
    split = base_meta.get("split") or {}
    if base_meta.get("dataset") != dataset or not split.get("val_size"):
        return None
    return {"val_size": split["val_size"], "seed": split["seed"]}


def base_validation_set(train_set: ImageDataset, base_meta: Mapping[str, Any]) -> ImageDataset:
    """The images of ``train_set`` that the base model with checkpoint metadata ``base_meta`` held
    out for validation (``neuralfuse train-base --val-size``): where choices are made.

    Raises a ValueError when the base model held out no images of this dataset.
    """
    split = recorded_split(base_meta, train_set.info.name)
    if split is None:
        raise ValueError(f"the base model holds out no validation images of {train_set.info.name!r} "
                         f"(trained on {base_meta.get('dataset')!r} with split "
                         f"{base_meta.get('split') or 'none'}): train it with `neuralfuse train-base --val-size N`")
    return train_set.subset(holdout_split(len(train_set), split["val_size"], split["seed"])[1])


def to_input_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1]: pixel / 255 * 2 - 1 (the paper's input scaling)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels, got {images.dtype}")
    return images.to(torch.float32).div_(255).mul_(2).sub_(1)


def list_datasets() -> list[str]:
    """Names :func:`load_dataset` accepts."""
    return sorted(_SPECS)


def load_dataset(name: str, root: str | os.PathLike[str] | None = None, split: str = "train", *,
                 download: bool = False, image_size: int | None = None) -> ImageDataset:
    """Load one split of a dataset, decoded into memory; items are (x in [-1, 1], y).

    ``root`` is where the data lives (not used by "default"); ``download=True`` fetches the
    python release of "cifar10" / "cifar100" into ``root`` first; ``image_size`` is the side of
    the square images of a "folder" tree (the other datasets have their fixed size).

    >>> test = load_dataset("cifar10", "~/data/cifar10", split="test")   # doctest: +SKIP
    >>> test.info.num_classes, len(test)                                    # doctest: +SKIP
    (10, 10000)
    """
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    spec = _SPECS[name]
    if image_size is not None and spec.image_size is not None:
        raise ValueError(f"{name} images are {spec.image_size}x{spec.image_size}; image_size is "
                         "only for 'folder'")
    size = image_size or spec.image_size
    if size is None or size < 1:
        raise ValueError(f"{name} needs image_size=<side in pixels>, got {image_size!r}")
    if download and spec.archive is None:
        raise ValueError(f"download=True is only available for cifar10 and cifar100, not {name}")

    if name == "default":
        if root is not None:
            raise ValueError("the default dataset ships with the package: leave root=None")
        images, labels, classes = _load_default(split)
    else:
        if root is None:
            raise ValueError(f"{name} needs root=<folder with the data>. "
                             f"{_where(name, Path('<root>'), split)}")
        root = Path(root).expanduser()
        if download:
            _download(spec.archive, root)
        batches = _find_batches(root, spec.archive) if spec.archive else None
        if batches is not None:
            images, labels, classes = _read_batches(batches, spec.archive, split)
        else:
            images, labels, classes = _read_tree(_split_dir(name, root, split), size, spec.crop)
    info = DatasetInfo(name, classes, tuple(images.shape[1:]), spec.hflip)
    return ImageDataset(images, labels, info)


# --- the shipped default subset ------------------------------------------------------------------

def _load_default(split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    if split not in ("train", "test"):
        raise ValueError(f"the default dataset has splits 'train' and 'test', not {split!r}")
    images, labels, classes = _decode_default(split)
    return images.clone(), labels.clone(), classes


@functools.lru_cache(maxsize=2)
def _decode_default(split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    with np.load(DEFAULT_ASSET, allow_pickle=False) as archive:
        blob = archive[f"{split}_jpeg"].tobytes()
        offsets = archive[f"{split}_offsets"]
        labels = torch.from_numpy(archive[f"{split}_labels"].astype(np.int64))
        classes = tuple(str(name) for name in archive["classes"])
    jpegs = [io.BytesIO(blob[start:end]) for start, end in zip(offsets[:-1], offsets[1:])]
    return _decode(jpegs, 32, crop=False, desc=f"default/{split}"), labels, classes


# --- class-per-folder trees --------------------------------------------------------------------

def _split_dir(name: str, root: Path, split: str) -> Path:
    candidates = [root / split]
    if name == "gtsrb" and split == "train":
        candidates.append(root / "Final_Training" / "Images")
    found = next((path for path in candidates if path.is_dir()), None)
    if found is None:
        raise FileNotFoundError(f"no {name} data found. {_where(name, root, split)}")
    return found


def _read_tree(split_dir: Path, size: int, crop: bool
               ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    classes = tuple(sorted(path.name for path in split_dir.iterdir() if path.is_dir()))
    if not classes:
        raise FileNotFoundError(f"{split_dir} has no class folders (expected <class>/<image>)")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(path for path in (split_dir / name).iterdir()
                       if path.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise FileNotFoundError(f"class folder {split_dir / name} holds no images "
                                    f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += found
        labels += [label] * len(found)
    images = _decode(files, size, crop, desc=str(split_dir))
    return images, torch.tensor(labels, dtype=torch.int64), classes


def _decode(sources: Sequence[Path | IO[bytes]], size: int, crop: bool, desc: str) -> torch.Tensor:
    """Decode images with Pillow into a uint8 tensor (N, 3, size, size)."""
    out = np.empty((len(sources), size, size, 3), dtype=np.uint8)
    for i, source in enumerate(tqdm(sources, desc=f"decoding {desc}", unit="img", disable=None,
                                    leave=False)):
        with Image.open(source) as image:
            out[i] = np.asarray(_fit(image.convert("RGB"), size, crop))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _fit(image: Image.Image, size: int, crop: bool) -> Image.Image:
    """Square ``size`` x ``size``: resize, or (crop) resize the shorter side and center-crop."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    if not crop:
        return image.resize((size, size), Image.Resampling.BILINEAR)
    scale = size / min(width, height)
    width, height = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (width - size) // 2, (height - size) // 2
    return image.resize((width, height), Image.Resampling.BILINEAR).crop(
        (left, top, left + size, top + size))


# --- CIFAR python batches --------------------------------------------------------------------------

def _find_batches(root: Path, archive: _Archive) -> Path | None:
    for folder in (root / archive.folder, root):
        if (folder / archive.meta).is_file():
            return folder
    return None


def _read_batches(folder: Path, archive: _Archive, split: str
                  ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    if split not in archive.files:
        raise ValueError(f"{folder} has splits {', '.join(archive.files)}, not {split!r}")
    # Pickle runs code from the file: these are the user's own copies of the official release.
    with open(folder / archive.meta, "rb") as f:
        classes = tuple(name.decode() for name in pickle.load(f, encoding="bytes")[archive.names_key])
    images, labels = [], []
    for file in archive.files[split]:
        with open(folder / file, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[archive.label_key], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)), classes


def _download(archive: _Archive, root: Path) -> None:
    """Fetch and unpack the python release into ``root`` unless it is already there."""
    if _find_batches(root, archive) is not None:
        return
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        tarball = Path(tmp) / "archive.tar.gz"
        print(f"downloading {archive.url}", file=sys.stderr)
        urllib.request.urlretrieve(archive.url, tarball)
        md5 = hashlib.md5(tarball.read_bytes()).hexdigest()
        if md5 != archive.md5:
            raise OSError(f"{archive.url}: md5 {md5} differs from the published {archive.md5}")
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        os.replace(Path(tmp) / archive.folder, root / archive.folder)


def _where(name: str, root: Path, split: str) -> str:
    """Where ``name``'s data was expected and how to get it."""
    tree = f"a class-per-folder tree {root / split}/<class>/<image>"
    archive = _SPECS[name].archive
    if archive is not None:
        return (f"Expected the python release in {root / archive.folder} or {tree}; "
                f"load_dataset({name!r}, root, download=True) fetches it from {archive.url}.")
    if name == "gtsrb":
        return (f"Expected {tree} or, for train, the standard GTSRB training layout "
                f"{root}/Final_Training/Images/<class>/*.ppm "
                "(https://benchmark.ini.rub.de/gtsrb_dataset.html).")
    return f"Expected {tree}."
