"""How a :class:`sramsim.Deployment` writes its stored tensors: the quantized weights, a chip's
changed weights, and the originals back.

CPU tensors that are contiguous float32 or float64 are written in batches, one per dtype, each
operation one parallel numba call over pieces of all the batch's tensors. One call per tensor would
cost a parallel region per tensor, and a region costs tens of microseconds where idle threads sleep
(``OMP_WAIT_POLICY=passive``, the right setting on a shared machine): more than the writes of a
ResNet18's 21 tensors themselves. The writes do not wait for torch's thread pool either, which on
a busy machine costs more still. Other tensors (float16, non-contiguous, on a GPU) are written one
at a time by NumPy or torch.

Rewriting whole batched tensors with a chip's weights, and restoring their originals, uses
streaming stores (:mod:`sramsim._stores`): nothing reads those lines before the next forward pass,
so reading them into the cache first, as a plain store does, would only double the memory traffic.
A chip whose faults change more than ``DENSE_FRACTION`` of a batched tensor's weights rewrites that
tensor in full the same way, also inside ``quantized()``, and so does clearing them: with 16 float32
weights to a cache line, 1/64 of them changed already touches a fifth of the lines, and a line
written alone costs a read and a write of it (on a 2-core VM, ResNet18, a forward pass between
chips: 16.2 instead of 19.1 ms a chip at 1% BER, 11.7 instead of 13.2 at 0.5%; 9.8 against 8.8 at
0.25%). Writing the fault-free quantized weights (entering ``quantized()``) uses plain stores: the
chips nested inside may write their weights one by one into those lines.
"""
from __future__ import annotations

import numpy as np
import torch
from numba.typed import List
from torch import nn
from torch.autograd.graph import increment_version

from sramsim import _kernels

#: Elements (or changed weights) per work item of the batched writes.
CHUNK = 1 << 16
#: A batched tensor in which more than this fraction of the weights change is rewritten in full,
#: with streaming stores, rather than written weight by weight (see :meth:`WeightWriter.put`).
DENSE_FRACTION = 1 / 64
_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_NO_INDEX, _NO_VALUES = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8)


class StoredTensor:
    """One stored tensor: its parameter, integer weights ``q`` and scale; ``original`` is a copy
    of the weights to restore, or None where they lie on the quantization grid already."""

    def __init__(self, name: str, param: nn.Parameter, q: torch.Tensor, scale: torch.Tensor) -> None:
        self.name, self.param, self.q, self.scale = name, param, q, scale.to(param.dtype)
        on_grid = _bit_equal(param, torch.mul(self.q, self.scale))
        self.original = None if on_grid else param.detach().clone()
        numpy_ok = param.device.type == "cpu" and param.dtype in (torch.float16, torch.float32, torch.float64)
        self.array = param.detach().numpy() if numpy_ok else None
        self.array_scale = self.array.dtype.type(self.scale.item()) if numpy_ok else None
        self.batched = (numpy_ok and self.array.dtype != np.float16 and self.array.flags.c_contiguous)
        self.data_ptr, self.version = param.data_ptr(), param._version

    def put(self, index: np.ndarray, q: np.ndarray) -> None:
        """Write the integers ``q``, dequantized, at flat indices ``index`` (row-major order)."""
        if self.array is not None:
            np.put(self.array, index, q * self.array_scale)
            increment_version(self.param)
        else:
            device = self.param.device
            self.param.put_(torch.from_numpy(index).to(device),
                            torch.mul(torch.from_numpy(q).to(device), self.scale))

    def write_quantized(self) -> None:
        """Write every weight's quantized value ``q * s``."""
        if self.array is not None:
            np.multiply(self.q.numpy(), self.array_scale, out=self.array)
            increment_version(self.param)
        else:
            torch.mul(self.q, self.scale, out=self.param)

    def restore(self) -> None:
        """Write back the original weights, bit for bit."""
        if self.array is not None:
            np.copyto(self.array, self.original.numpy())
            increment_version(self.param)
        else:
            self.param.copy_(self.original)

    def unchanged(self) -> bool:
        """Whether the parameter still holds what it held after the last restore."""
        return self.param.data_ptr() == self.data_ptr and self.param._version == self.version


class _Batch:
    """The batched tensors of one dtype; ``positions``: their places among all stored tensors."""

    def __init__(self, positions: list[int], tensors: list[StoredTensor]) -> None:
        self.positions = np.array(positions, dtype=np.int64)
        self.params = [t.param for t in tensors]
        self.flats = List([t.array.reshape(-1) for t in tensors])
        self.qs = List([t.q.numpy().reshape(-1) for t in tensors])
        self.scales = np.array([float(t.array_scale) for t in tensors])
        rewritten = np.array([t.original is not None for t in tensors], dtype=bool)
        self.rewritten, self.on_grid = np.flatnonzero(rewritten), np.flatnonzero(~rewritten)  # members
        self.everyone = np.arange(len(tensors))
        # an empty slice stands for the originals of tensors on the grid (never read)
        self.originals = List([t.original.numpy().reshape(-1) if t.original is not None else flat[:0]
                               for t, flat in zip(tensors, self.flats)])
        self.sizes = np.array([t.q.numel() for t in tensors], dtype=np.int64)
        self.rewrite_chunks = self._whole(self.rewritten)

    def _whole(self, members: np.ndarray) -> np.ndarray:
        """The work items that cover these members' tensors in full."""
        return _kernels.chunk_table(members, np.zeros_like(members), self.sizes[members], CHUNK)

    def put(self, bounds: np.ndarray, index: np.ndarray, values: np.ndarray, skip_rewritten: bool) -> None:
        members = self.on_grid if skip_rewritten else self.everyone
        positions = self.positions[members]
        starts, stops = bounds[positions], bounds[positions + 1]
        dense = stops - starts > DENSE_FRACTION * self.sizes[members]
        chunks = _kernels.chunk_table(members[~dense], starts[~dense], stops[~dense], CHUNK)
        if chunks.size:
            _kernels.scatter_scaled(self.flats, self.scales, index, values, chunks)
        if dense.any():   # their other weights hold their quantized values: rewritten as they are
            _kernels.write_scaled(self.flats, self.qs, self.scales, self._whole(members[dense]), index, values,
                                  bounds[self.positions], bounds[self.positions + 1], True)
        self._bump(members[stops > starts])

    def write_quantized(self, bounds: np.ndarray | None, index: np.ndarray, values: np.ndarray) -> None:
        if self.rewrite_chunks.size:
            starts = bounds[self.positions] if bounds is not None else _NO_INDEX
            stops = bounds[self.positions + 1] if bounds is not None else starts
            _kernels.write_scaled(self.flats, self.qs, self.scales, self.rewrite_chunks, index, values,
                                  starts, stops, bounds is not None)   # streamed: a chip's weights
            self._bump(self.rewritten)
        if bounds is not None:
            self.put(bounds, index, values, skip_rewritten=True)

    def restore(self) -> None:
        if self.rewrite_chunks.size:
            _kernels.copy_chunks(self.flats, self.originals, self.rewrite_chunks)
            self._bump(self.rewritten)

    def _bump(self, members: np.ndarray) -> None:
        """Tell autograd that these parameters changed (a graph that saved them then refuses)."""
        for m in members:
            increment_version(self.params[m])


class WeightWriter:
    """All stored tensors of a deployment, in layout order, and the three ways they are written."""

    def __init__(self, tensors: list[StoredTensor]) -> None:
        self.tensors = tensors
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, tensor in enumerate(tensors):
            if tensor.batched:
                by_dtype.setdefault(tensor.array.dtype, []).append(i)
        self._batches = [_Batch(positions, [tensors[i] for i in positions])
                         for positions in by_dtype.values()]
        self._single = [(i, t) for i, t in enumerate(tensors) if not t.batched]   # (position, tensor)

    @torch.no_grad()
    def put(self, bounds: np.ndarray, index: np.ndarray, values: np.ndarray,
            skip_rewritten: bool = False) -> None:
        """Write the integer ``values``, dequantized, at the flat indices ``index``: entries
        ``bounds[t]:bounds[t + 1]`` belong to tensor ``t``. With ``skip_rewritten``, skip the
        tensors that :meth:`restore` rewrites in full. Every other weight of the tensors written
        must hold its quantized value: a batched tensor with more than ``DENSE_FRACTION`` of its
        weights in ``index`` is rewritten in full from its integers."""
        for batch in self._batches:
            batch.put(bounds, index, values, skip_rewritten)
        self._put_single(bounds, index, values, skip_rewritten)

    @torch.no_grad()
    def write_quantized(self, bounds: np.ndarray | None = None, index: np.ndarray = _NO_INDEX,
                        values: np.ndarray = _NO_VALUES) -> None:
        """Write the quantized values of the tensors that are not on their grid already; with
        ``bounds``, ``index`` and ``values`` (as for :meth:`put`, ``index`` increasing within
        each tensor), also a chip's integers there, into every tensor: the batched tensors that are
        rewritten get them in the same pass."""
        for batch in self._batches:
            batch.write_quantized(bounds, index, values)
        for _, tensor in self._single:
            if tensor.original is not None:
                tensor.write_quantized()
        if bounds is not None:
            self._put_single(bounds, index, values, skip_rewritten=False)

    @torch.no_grad()
    def restore(self) -> None:
        """Write back the original weights of the tensors :meth:`write_quantized` rewrote, and
        take every tensor's state as the one to compare with (:meth:`changed`)."""
        for batch in self._batches:
            batch.restore()
        for _, tensor in self._single:
            if tensor.original is not None:
                tensor.restore()
        for tensor in self.tensors:
            tensor.version = tensor.param._version

    def _put_single(self, bounds: np.ndarray, index: np.ndarray, values: np.ndarray,
                    skip_rewritten: bool) -> None:
        """:meth:`put` for the tensors written one at a time."""
        for t, tensor in self._single:
            lo, hi = bounds[t], bounds[t + 1]
            if lo < hi and not (skip_rewritten and tensor.original is not None):
                tensor.put(index[lo:hi], values[lo:hi])

    def changed(self) -> str | None:
        """The name of a tensor changed since the last restore (or since it was made), or None."""
        return next((t.name for t in self.tensors if not t.unchanged()), None)


def _bit_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors of one floating dtype hold the same bits (so -0.0 differs from 0.0)."""
    as_int = _SAME_SIZE_INT[a.element_size()]
    return a.shape == b.shape and torch.equal(a.detach().view(as_int), b.view(as_int))
