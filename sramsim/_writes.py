"""How a :class:`sramsim.Deployment` writes its stored tensors: the quantized weights, a chip's
changed weights, and the originals back.

CPU tensors that are contiguous float32 or float64 are written in batches, one per dtype, each
operation one parallel numba call over pieces of all the batch's tensors. One call per tensor would
cost a parallel region per tensor, and a region costs tens of microseconds where idle threads sleep
(``OMP_WAIT_POLICY=passive``, the right setting on a shared machine): more than the writes of a
ResNet18's 21 tensors themselves. The writes do not wait for torch's thread pool either, which on
a busy machine costs more still. Other tensors (float16, non-contiguous, on a GPU) are written one
at a time by NumPy or torch.

A tensor whose weights are not on their quantization grid (a float model's) is never written
itself: its quantized weights go to a scratch tensor of the same shape, and the parameter's
storage is swapped to it on entering a block (``param.data = scratch``, the same ``Parameter``
object, so the model, optimizers and hooks see the chip's weights) and back to its own tensor on
leaving, which restores the originals bit for bit at no cost and keeps as much memory as a copy
of them would. A tensor on its grid (a model exported after quantization-aware training) is
written in place, only where a chip changes a weight, and cleared the same way.

Rewriting whole batched tensors with a chip's weights uses streaming stores (:mod:`sramsim._stores`):
nothing reads those lines before the next forward pass, so reading them into the cache first, as a
plain store does, would only double the memory traffic. A chip whose faults change more than
``DENSE_FRACTION`` of a batched tensor's weights rewrites that tensor in full the same way, also
inside ``quantized()``, and so does clearing them: with 16 float32 weights to a cache line, 1/64 of
them changed already touches a fifth of the lines, and a line written alone costs a read and a
write of it (on a 2-core VM, ResNet18, a forward pass between chips: 16.2 instead of 19.1 ms a chip
at 1% BER, 11.7 instead of 13.2 at 0.5%; 9.8 against 8.8 at 0.25%). Writing the fault-free
quantized weights (entering ``quantized()``) uses plain stores: the chips nested inside may write
their weights one by one into those lines.
"""
from __future__ import annotations

import numpy as np
import torch
from numba.typed import List
from torch import nn
from torch.autograd.graph import increment_version

from sramsim import _kernels
from sramsim.storage import QuantParams, StorageFormat

#: Elements (or changed weights) per work item of the batched writes.
CHUNK = 1 << 16
#: A batched tensor in which more than this fraction of the weights change is rewritten in full,
#: with streaming stores, rather than written weight by weight (see :meth:`WeightWriter.put`).
DENSE_FRACTION = 1 / 64
_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_NO_INDEX, _NO_VALUES = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8)


class StoredTensor:
    """One stored tensor: its parameter, integer weights ``q``, their :class:`QuantParams` and
    :class:`StorageFormat`. ``scratch`` receives the quantized weights of a tensor not on its grid
    (None for one on its grid, which the format decides); ``target`` is where the weights are
    written (``scratch``, or the parameter's own tensor ``home``)."""

    def __init__(self, name: str, param: nn.Parameter, q: torch.Tensor, params: QuantParams,
                 storage: StorageFormat) -> None:
        self.name, self.param, self.q, self.params, self.storage = name, param, q, params, storage
        self.home = param.data
        on_grid = _bit_equal(param, self._values(self.q))
        self.scratch = None if on_grid else torch.empty_like(self.home)   # the same strides
        self.target = self.home if on_grid else self.scratch
        # The batched kernels write q * scale + offset without a clamp: exact for float32 (the
        # grid's ends, computed in float64, round to the range's ends), so a clamping format's
        # float64 tensors go one at a time through the format's own dequantize.
        self.batched = (param.device.type == "cpu" and self.target.is_contiguous()
                        and (param.dtype == torch.float32
                             or (param.dtype == torch.float64 and not storage.clamps)))
        self.array = self.target.numpy() if self.batched else None
        self.data_ptr, self.version = param.data_ptr(), param._version

    def _values(self, q: torch.Tensor) -> torch.Tensor:
        return self.storage.dequantize(q, self.params, self.param.dtype)

    def put(self, index: np.ndarray, q: np.ndarray) -> None:
        """Write the integers ``q``, dequantized, at flat indices ``index`` (row-major order)."""
        device = self.param.device
        self.target.put_(torch.from_numpy(index).to(device), self._values(torch.from_numpy(q).to(device)))
        increment_version(self.param)

    def write_quantized(self) -> None:
        """Write every weight's quantized value into ``target``."""
        self.target.copy_(self._values(self.q))

    def swap(self, to_scratch: bool) -> None:
        """Point the parameter at its scratch tensor, or back at its own; tell autograd (a graph
        that saved the other weights then refuses to backpropagate)."""
        self.param.data = self.scratch if to_scratch else self.home
        increment_version(self.param)

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
        self.scales = np.array([t.params.scale for t in tensors])
        self.shifts = np.array([t.params.offset for t in tensors])
        rewritten = np.array([t.scratch is not None for t in tensors], dtype=bool)
        self.rewritten, self.on_grid = np.flatnonzero(rewritten), np.flatnonzero(~rewritten)  # members
        self.everyone = np.arange(len(tensors))
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
            _kernels.scatter_scaled(self.flats, self.scales, self.shifts, index, values, chunks)
        if dense.any():   # their other weights hold their quantized values: rewritten as they are
            _kernels.write_scaled(self.flats, self.qs, self.scales, self.shifts, self._whole(members[dense]), index, values,
                                  bounds[self.positions], bounds[self.positions + 1], True)
        for m in members[stops > starts]:   # autograd: a graph that saved them then refuses
            increment_version(self.params[m])

    def write_quantized(self, bounds: np.ndarray | None, index: np.ndarray, values: np.ndarray) -> None:
        if self.rewrite_chunks.size:
            starts = bounds[self.positions] if bounds is not None else _NO_INDEX
            stops = bounds[self.positions + 1] if bounds is not None else starts
            _kernels.write_scaled(self.flats, self.qs, self.scales, self.shifts, self.rewrite_chunks, index, values,
                                  starts, stops, bounds is not None)   # streamed: a chip's weights
        if bounds is not None:
            self.put(bounds, index, values, skip_rewritten=True)


class WeightWriter:
    """All stored tensors of a deployment, in layout order: how they are written and restored."""

    def __init__(self, tensors: list[StoredTensor]) -> None:
        self.tensors = tensors
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, tensor in enumerate(tensors):
            if tensor.batched:
                by_dtype.setdefault(tensor.array.dtype, []).append(i)
        self._batches = [_Batch(positions, [tensors[i] for i in positions])
                         for positions in by_dtype.values()]
        self._single = [(i, t) for i, t in enumerate(tensors) if not t.batched]   # (position, tensor)
        self._swapped = [t for t in tensors if t.scratch is not None]

    @torch.no_grad()
    def put(self, bounds: np.ndarray, index: np.ndarray, values: np.ndarray,
            skip_rewritten: bool = False) -> None:
        """Write the integer ``values``, dequantized, at the flat indices ``index``: entries
        ``bounds[t]:bounds[t + 1]`` belong to tensor ``t``. With ``skip_rewritten``, skip the
        tensors that :meth:`write_quantized` rewrites in full. Every other weight of the tensors
        written must hold its quantized value: a batched tensor with more than ``DENSE_FRACTION``
        of its weights in ``index`` is rewritten in full from its integers."""
        for batch in self._batches:
            batch.put(bounds, index, values, skip_rewritten)
        self._put_single(bounds, index, values, skip_rewritten)

    @torch.no_grad()
    def write_quantized(self, bounds: np.ndarray | None = None, index: np.ndarray = _NO_INDEX,
                        values: np.ndarray = _NO_VALUES) -> None:
        """Write the quantized values of the tensors that are not on their grid already into
        their scratch tensors, and swap the parameters to those; with ``bounds``, ``index`` and
        ``values`` (as for :meth:`put`, ``index`` increasing within each tensor), also a chip's
        integers there, into every tensor: the batched tensors that are rewritten get them in the
        same pass."""
        for batch in self._batches:
            batch.write_quantized(bounds, index, values)
        for _, tensor in self._single:
            if tensor.scratch is not None:
                tensor.write_quantized()
        if bounds is not None:
            self._put_single(bounds, index, values, skip_rewritten=False)
        for tensor in self._swapped:
            tensor.swap(to_scratch=True)

    @torch.no_grad()
    def restore(self) -> None:
        """Swap the parameters that :meth:`write_quantized` swapped back to their own tensors (the
        originals), and take every tensor's state as the one to compare with (:meth:`changed`)."""
        for tensor in self._swapped:
            tensor.swap(to_scratch=False)
        for tensor in self.tensors:
            tensor.version = tensor.param._version

    def _put_single(self, bounds: np.ndarray, index: np.ndarray, values: np.ndarray,
                    skip_rewritten: bool) -> None:
        """:meth:`put` for the tensors written one at a time."""
        for t, tensor in self._single:
            lo, hi = bounds[t], bounds[t + 1]
            if lo < hi and not (skip_rewritten and tensor.scratch is not None):
                tensor.put(index[lo:hi], values[lo:hi])

    def changed(self) -> str | None:
        """The name of a tensor changed since the last restore (or since it was made), or None."""
        return next((t.name for t in self.tensors if not t.unchanged()), None)


def _bit_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors of one floating dtype hold the same bits (so -0.0 differs from 0.0)."""
    as_int = _SAME_SIZE_INT[a.element_size()]
    return a.shape == b.shape and torch.equal(a.detach().view(as_int), b.view(as_int))
