"""Fault-map files (``.npz``) of any size: the size estimate, writing whole or streamed, and
reading one back (:func:`read_fault_map`, behind :func:`sramsim.load_fault_map`).

A map that fits in memory is generated at once and written by :meth:`FaultMap.save`. A larger one
is generated a chunk of arrays at a time by :func:`stream_fault_map`: each chunk's faulty cells go
to spool files next to the output, and the ``.npz`` members are then copied from them, so memory
stays bounded by one chunk. Both give the same file (same keys, same arrays): a region of a chip
is the same region cut from a larger map (see :meth:`Chip.fault_map`).
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from characterization.atomic import atomic_path
from characterization.validation import check_scalar
from sramsim.fault_models import FAULT_MODEL_SEMANTICS, check_fault_model

if TYPE_CHECKING:   # sramsim.faults imports this module
    from sramsim.faults import Chip, FaultMap

#: Bytes per faulty cell in the file: cell index (int64), stuck value (uint8), quantile (float64).
FILE_BYTES_PER_FAULT = 17
#: Bytes per faulty cell while a map is generated at once: the kernel's chunk slots, its output,
#: and the quantiles computed for the file.
MEMORY_BYTES_PER_FAULT = 2 * FILE_BYTES_PER_FAULT + 8
_ARRAYS = (("cell_index", np.int64), ("stuck_value", np.uint8), ("quantile", np.float64))
_COPY_BLOCK = 1 << 24


@dataclass(frozen=True)
class MapSize:
    """What a fault map of ``n_cells`` cells at rate ``ber`` needs: an upper estimate of its
    faulty cells (expected count plus 6 sigma) and the bytes of its file and of building it at once."""

    n_cells: int
    ber: float
    faulty: int

    @classmethod
    def estimate(cls, n_cells: int, ber: float) -> MapSize:
        expected = n_cells * ber
        return cls(n_cells, ber, int(expected + 6 * math.sqrt(expected) + 1024))

    @property
    def file_bytes(self) -> int:
        return self.faulty * FILE_BYTES_PER_FAULT + 4096

    @property
    def memory_bytes(self) -> int:
        return self.faulty * MEMORY_BYTES_PER_FAULT


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable`` of ``/proc/meminfo`` where
    there is one, else the free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_disk(folder: str | os.PathLike[str]) -> int:
    """Bytes free on the file system of ``folder``."""
    return shutil.disk_usage(folder).free


def human_bytes(n: float) -> str:
    """``n`` bytes as a short text (``"3.2 GB"``; decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            break
        n /= 1000
    else:
        unit = "PB"
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"


def metadata(start: int, n_cells: int, ber: float, voltage: float | None, seed: int, tech: str,
             rows: int, cols: int, fault_model: str) -> dict:
    """The scalar keys of a fault-map file (see :meth:`FaultMap.save`)."""
    check_fault_model(fault_model)
    per_array = rows * cols
    arrays = 0 if n_cells == 0 else (start + n_cells - 1) // per_array - start // per_array + 1
    return {"start": start, "n_cells": n_cells, "rows": rows, "cols": cols, "arrays": arrays,
            "ber": ber, "voltage": np.nan if voltage is None else voltage, "seed": np.uint64(seed),
            "tech": tech, "fault_model": fault_model,
            "fault_model_semantics": FAULT_MODEL_SEMANTICS[fault_model]}


def write_npz(path: str | os.PathLike[str], arrays: dict[str, tuple[np.dtype, int, Iterable]],
              scalars: dict) -> None:
    """Write an ``.npz`` file atomically, as ``numpy.savez`` would, from arrays given in pieces:
    ``arrays[key] = (dtype, length, iterable of 1-D pieces or bytes)``, then 0-d ``scalars``."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, (dtype, length, pieces) in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                    "shape": (length,)})
                for piece in pieces:
                    member.write(piece if isinstance(piece, bytes) else np.ascontiguousarray(piece, dtype).data)
        for key, value in scalars.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def write_fault_map(path: str | os.PathLike[str], fault_map: FaultMap, fault_model: str) -> None:
    """Write a whole map (see :meth:`FaultMap.save`)."""
    g = fault_map.geometry
    scalars = metadata(fault_map.start, fault_map.n_cells, fault_map.ber, fault_map.voltage,
                       fault_map.seed, fault_map.tech, g.rows, g.cols, fault_model)
    columns = (fault_map.cells, fault_map.stuck, fault_map.quantile)
    write_npz(path, {key: (dtype, len(fault_map), [column])
                     for (key, dtype), column in zip(_ARRAYS, columns)}, scalars)


def stream_fault_map(path: str | os.PathLike[str], chip: Chip, n_cells: int, *,
                     voltage: float | None = None, ber: float | None = None, start: int = 0,
                     fault_model: str = "stuck-at", chunk_arrays: int = 4096,
                     progress: bool | None = None) -> int:
    """Write the map of cells ``start .. start + n_cells - 1`` of ``chip`` to ``path`` generating
    ``chunk_arrays`` arrays at a time (the file equals ``chip.fault_map(...).save(path)``); return
    the number of faulty cells. Needs twice the file's size on disk until it ends (spool files
    next to ``path``); a progress bar counts cells (``progress=None``: only on a terminal)."""
    check_scalar(chunk_arrays, "chunk_arrays", int, min_val=1, allowed="a positive integer")
    rate = chip.ber(voltage=voltage, ber=ber)
    g = chip.geometry
    scalars = metadata(start, n_cells, rate, voltage, chip.seed, chip.tech, g.rows, g.cols, fault_model)
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".faultmap-spool-") as spool:
        files = {key: open(os.path.join(spool, key), "w+b") for key, _ in _ARRAYS}
        try:
            count = 0
            with tqdm(total=n_cells, unit="cell", unit_scale=True, disable=None if progress is None
                      else not progress, desc="fault map") as bar:
                for lo, hi in _chunks(start, start + n_cells, chunk_arrays * g.cells):
                    piece = chip.fault_map(hi - lo, ber=rate, start=lo)
                    for (key, dtype), column in zip(_ARRAYS, (piece.cells, piece.stuck, piece.quantile)):
                        files[key].write(np.ascontiguousarray(column, dtype).data)
                    count += len(piece)
                    bar.update(hi - lo)
            for f in files.values():
                f.seek(0)
            write_npz(path, {key: (dtype, count, _blocks(files[key])) for key, dtype in _ARRAYS}, scalars)
        finally:
            for f in files.values():
                f.close()
    return count


def read_fault_map(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The keys of a fault-map file (see :meth:`sramsim.FaultMap.save`), checked: the three
    arrays (``cell_index`` sorted, unique and inside the map's cells, ``stuck_value`` 0 or 1,
    ``quantile`` in [0, 1)) and the scalars as Python values (``voltage`` None when NaN). Anything
    else raises a one-line ValueError ``"not a fault-map file: PATH (why)"``."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"not a fault-map file: {os.fspath(path)} ({why})")

    names = (*(key for key, _ in _ARRAYS), *_SCALARS)
    if not os.path.isfile(path):
        raise refuse("no such file")
    if not zipfile.is_zipfile(path):
        raise refuse("not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = {key: npz[key] for key in names if key in npz.files}
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise refuse(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    missing = [key for key in names if key not in keys]
    if missing:
        raise refuse(f"keys {', '.join(missing)} are missing")
    for key, dtype in _ARRAYS:
        if keys[key].ndim != 1 or keys[key].dtype != dtype or len(keys[key]) != len(keys["cell_index"]):
            raise refuse(f"{key} must be a 1-D {np.dtype(dtype).name} array as long as cell_index")
    try:
        scalars = {key: convert(keys[key]) for key, convert in _SCALARS.items()}
    except (TypeError, ValueError) as err:
        raise refuse(f"a scalar key is not a scalar of its type: {err}") from None
    cells, start, stop = keys["cell_index"], scalars["start"], scalars["start"] + scalars["n_cells"]
    if min(start, scalars["n_cells"], scalars["rows"] - 1, scalars["cols"] - 1) < 0 or not 0 <= scalars["ber"] <= 1:
        raise refuse(f"start {start}, n_cells {scalars['n_cells']}, rows {scalars['rows']}, cols "
                     f"{scalars['cols']} or ber {scalars['ber']} out of range")
    if cells.size and (np.any(np.diff(cells) <= 0) or cells[0] < start or cells[-1] >= stop):
        raise refuse(f"cell_index must be increasing and inside cells {start}..{stop}")
    if np.any(keys["stuck_value"] > 1) or np.any(~((keys["quantile"] >= 0) & (keys["quantile"] < 1))):
        raise refuse("stuck_value must be 0 or 1 and quantile in [0, 1)")
    voltage = scalars["voltage"]
    return {**{key: keys[key] for key, _ in _ARRAYS}, **scalars,
            "voltage": None if np.isnan(voltage) else voltage}


def _scalar(kind: type) -> Any:
    """A converter of a 0-d array to a Python ``kind`` that refuses arrays of other shapes or kinds."""
    def convert(value: np.ndarray) -> Any:
        if value.ndim != 0 or (kind is str) != (value.dtype.kind == "U"):
            raise ValueError(f"{value.dtype}{list(value.shape)}")
        return kind(value.item())
    return convert


_SCALARS = {"start": _scalar(int), "n_cells": _scalar(int), "rows": _scalar(int), "cols": _scalar(int),
            "ber": _scalar(float), "voltage": _scalar(float), "seed": _scalar(int), "tech": _scalar(str),
            "fault_model": _scalar(str)}


def _chunks(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges covering ``[lo, hi)``, cut at multiples of ``size``."""
    while lo < hi:
        stop = min(hi, (lo // size + 1) * size)
        yield lo, stop
        lo = stop


def _blocks(f) -> Iterator[bytes]:
    while block := f.read(_COPY_BLOCK):
        yield block
