"""Shared fixtures."""
from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CIFAR10_TARBALL = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CACHE = REPO / ".cache"


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """The full JPEG CIFAR-10 (``train/<class>/*.jpg``, ``test/<class>/*.jpg``), extracted once
    from the shared tarball into ``<repo>/.cache/cifar10-jpeg`` and reused by later runs.

    Each process extracts into its own temporary folder and renames it into place; renaming is
    atomic, so concurrent pytest-xdist workers never see a half-extracted tree.
    """
    target = CACHE / "cifar10-jpeg"
    if target.is_dir():
        return target
    if not CIFAR10_TARBALL.is_file():
        pytest.skip(f"shared CIFAR-10 tarball not found at {CIFAR10_TARBALL}")
    CACHE.mkdir(exist_ok=True)
    partial = CACHE / f"cifar10-jpeg.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(CIFAR10_TARBALL, "r:gz") as archive:
        archive.extractall(partial, filter="data")
    try:
        partial.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(partial)  # another worker finished first
    return target
