"""neuralfuse.data: the shipped default subset, CIFAR layouts, folder trees and errors."""
from __future__ import annotations

import hashlib
import pickle
import re

import numpy as np
import pytest
import torch
from PIL import Image

from neuralfuse import list_datasets, load_dataset
from neuralfuse.data import DEFAULT_ASSET, to_input_range

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


@pytest.fixture(scope="module")
def default_test():
    return load_dataset("default", split="test")


def save_image(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)


def test_default_dataset_is_a_balanced_cifar10_subset():
    train = load_dataset("default")
    assert len(train) == 10_000 and train.info.classes == CIFAR10_CLASSES
    assert train.info.num_classes == 10 and train.info.input_shape == (3, 32, 32) and train.info.hflip
    assert torch.bincount(train.labels).tolist() == [1000] * 10


def test_default_items_are_scaled_to_minus_one_one(default_test):
    x, y = default_test[0]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and y.dtype == torch.int64
    images, labels = default_test.tensors()
    assert images.min() >= -1 and images.max() <= 1
    assert images.min() == -1 and images.max() == 1  # the full pixel range is used
    assert torch.equal(images[5], default_test[5][0]) and torch.equal(labels, default_test.labels)
    assert torch.bincount(labels).tolist() == [200] * 10
    assert abs(default_test.images.float().mean().item() - 120.8) < 10  # CIFAR-10's mean pixel


def test_default_dataset_is_deterministic_and_loads_are_independent(default_test):
    again = load_dataset("default", split="test")
    assert torch.equal(again.images, default_test.images)
    assert torch.equal(again.labels, default_test.labels)
    again.images.zero_()
    assert load_dataset("default", split="test").images.any()


def test_default_works_with_a_dataloader(default_test):
    x, y = next(iter(torch.utils.data.DataLoader(default_test, batch_size=25)))
    assert x.shape == (25, 3, 32, 32) and y.shape == (25,)


def test_shipped_asset_matches_its_readme():
    readme = (DEFAULT_ASSET.parent / "cifar10-default.md").read_text()
    digest = hashlib.sha256(DEFAULT_ASSET.read_bytes()).hexdigest()
    assert f"sha256 of the shipped file: `{digest}`" in re.sub(r"\s+", " ", readme)
    assert DEFAULT_ASSET.stat().st_size < 5e6


def test_shipped_subset_is_the_first_files_of_each_class(cifar10_root):
    with np.load(DEFAULT_ASSET, allow_pickle=False) as archive:
        blob, offsets = archive["test_jpeg"].tobytes(), archive["test_offsets"]
        labels = archive["test_labels"]
    for i in range(0, 2000, 97):
        name = CIFAR10_CLASSES[labels[i]]
        expected = (cifar10_root / "test" / name / f"{i % 200:04d}.jpg").read_bytes()
        assert blob[offsets[i]:offsets[i + 1]] == expected


def test_cifar10_folder_layout_loads(cifar10_root, default_test):
    test = load_dataset("cifar10", cifar10_root, split="test")
    assert len(test) == 10_000 and test.info.classes == CIFAR10_CLASSES
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert torch.all(test.labels[1:] >= test.labels[:-1])  # class folders in alphabetical order
    assert torch.equal(test.images[1000:1200], default_test.images[200:400])  # automobile


def write_cifar_batches(folder, files, meta, label_key, names_key, classes, per_file, seed=0):
    """A small copy of the python release: the same pickled dicts, fewer images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    with open(folder / meta, "wb") as f:
        pickle.dump({names_key: [name.encode() for name in classes]}, f)
    batches = {}
    for file in files:
        batch = {b"data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
                 label_key: rng.integers(0, len(classes), per_file).tolist()}
        with open(folder / file, "wb") as f:
            pickle.dump(batch, f)
        batches[file] = batch
    return batches


@pytest.mark.parametrize("name, folder, train_files, test_file, meta, label_key, names_key", [
    ("cifar10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
     "batches.meta", b"labels", b"label_names"),
    ("cifar100", "cifar-100-python", ["train"], "test", "meta", b"fine_labels", b"fine_label_names"),
])
def test_cifar_python_batches_load(tmp_path, name, folder, train_files, test_file, meta, label_key,
                                   names_key):
    classes = ("apple", "bee", "cat")
    batches = write_cifar_batches(tmp_path / folder, [*train_files, test_file], meta, label_key,
                                  names_key, classes, per_file=4)
    train = load_dataset(name, tmp_path)
    assert len(train) == 4 * len(train_files) and train.info.classes == classes
    data = np.concatenate([batches[file][b"data"] for file in train_files])
    # a row is the 1024 red, then green, then blue values of a 32x32 image, row-major
    assert train.images[3, 1, 2, 5] == data[3, 1024 + 2 * 32 + 5]
    expected_labels = sum((batches[file][label_key] for file in train_files), [])
    assert train.labels.tolist() == expected_labels and train.labels.dtype == torch.int64
    test = load_dataset(name, tmp_path / folder, split="test")  # root may be the folder itself
    x, _ = test[0]
    expected = torch.from_numpy(batches[test_file][b"data"][0].reshape(3, 32, 32)).float()
    torch.testing.assert_close(x, expected / 255 * 2 - 1)


def test_folder_tree_loads_and_resizes(tmp_path):
    save_image(tmp_path / "train" / "red" / "a.png", np.full((20, 40, 3), (255, 0, 0)))
    save_image(tmp_path / "train" / "red" / "b.png", np.full((40, 40, 3), (255, 0, 0)))
    save_image(tmp_path / "train" / "blue" / "a.PNG", np.full((8, 8, 3), (0, 0, 255)))
    (tmp_path / "train" / "blue" / "notes.txt").write_text("not an image")
    data = load_dataset("folder", tmp_path, image_size=16)
    assert data.info.classes == ("blue", "red") and data.labels.tolist() == [0, 1, 1]
    assert data.images.shape == (3, 3, 16, 16) and not data.info.hflip
    images, _ = data.tensors()
    assert torch.all(images[0, 2] == 1) and torch.all(images[0, :2] == -1)  # blue
    assert torch.all(images[1:, 0] == 1) and torch.all(images[1:, 1:] == -1)  # red


def test_imagenet10_resizes_the_shorter_side_and_center_crops(tmp_path):
    pixels = np.zeros((224, 448, 3))
    pixels[:, :112] = (255, 0, 0)
    pixels[:, 112:336] = (0, 255, 0)
    pixels[:, 336:] = (0, 0, 255)
    save_image(tmp_path / "val" / "n01" / "x.jpeg", pixels)
    data = load_dataset("imagenet10", tmp_path, split="val")
    assert data.info.input_shape == (3, 224, 224)
    green = data.images[0, 1].float()
    assert green[:, 4:-4].min() > 240 and data.images[0, 0, :, 4:-4].float().max() < 15


def test_gtsrb_standard_training_layout(tmp_path):
    images = tmp_path / "Final_Training" / "Images"
    for label in ("00000", "00001"):
        save_image(images / label / f"{label}_00000_00000.ppm", np.full((37, 41, 3), 128))
        (images / label / f"GT-{label}.csv").write_text("Filename;Width;Height\n")
    data = load_dataset("gtsrb", tmp_path)
    assert data.info.classes == ("00000", "00001") and data.images.shape == (2, 3, 32, 32)
    assert data.info.hflip is False


def test_list_datasets_names_every_dataset():
    assert list_datasets() == ["cifar10", "cifar100", "default", "folder", "gtsrb", "imagenet10"]


@pytest.mark.parametrize("args, kwargs, error, message", [
    (("mnist",), {}, ValueError, "known: cifar10, cifar100, default, folder"),
    (("cifar10",), {}, ValueError, "needs root=.*download=True"),
    (("cifar10", "/no/such/dir"), {}, FileNotFoundError,
     "/no/such/dir/cifar-10-batches-py.*/no/such/dir/train/<class>"),
    (("gtsrb", "/no/such/dir"), {"download": True}, ValueError, "only available for cifar10"),
    (("cifar10", "/no/such/dir"), {"image_size": 64}, ValueError, "only for 'folder'"),
    (("folder", "/no/such/dir"), {}, ValueError, "needs image_size"),
    (("default", "/some/dir"), {}, ValueError, "leave root=None"),
    (("default",), {"split": "val"}, ValueError, "'train' and 'test'"),
])
def test_bad_requests_fail_clearly(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        load_dataset(*args, **kwargs)


def test_empty_class_folder_fails(tmp_path):
    save_image(tmp_path / "train" / "a" / "x.png", np.zeros((4, 4, 3)))
    (tmp_path / "train" / "b").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        load_dataset("folder", tmp_path, image_size=4)


def test_input_range_conversion():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    torch.testing.assert_close(to_input_range(pixels), torch.tensor([-1.0, -0.6, 1.0]))
    with pytest.raises(TypeError, match="uint8"):
        to_input_range(pixels.float())
