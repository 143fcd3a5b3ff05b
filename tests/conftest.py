"""Shared fixtures."""
from __future__ import annotations

import fcntl
import shutil
import tarfile
from pathlib import Path

import numba
import pytest

REPO = Path(__file__).resolve().parent.parent
CIFAR10_TARBALL = REPO.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"
CACHE = REPO / ".cache"


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """The full JPEG CIFAR-10 (``train/<class>/*.jpg``, ``test/<class>/*.jpg``), extracted once
    from the shared tarball into ``<repo>/.cache/cifar10-jpeg`` and reused by later runs.

    pytest-xdist workers take a file lock, so one extracts while the others wait; the tree is
    extracted into a temporary folder and renamed into place, so an interrupted run never leaves
    a half-extracted tree behind.
    """
    target = CACHE / "cifar10-jpeg"
    if target.is_dir():
        return target
    if not CIFAR10_TARBALL.is_file():
        pytest.skip(f"shared CIFAR-10 tarball not found at {CIFAR10_TARBALL}")
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / "cifar10-jpeg.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            partial = CACHE / "cifar10-jpeg.partial"
            shutil.rmtree(partial, ignore_errors=True)
            with tarfile.open(CIFAR10_TARBALL, "r:gz") as archive:
                archive.extractall(partial, filter="data")
            partial.rename(target)
    return target


@pytest.fixture
def numba_threads():
    """Set numba's thread count inside a test (call the fixture with it) and restore it afterwards."""
    before = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(before)
