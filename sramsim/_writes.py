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
written in place where a chip changes few of its weights, only there, and cleared the same way.

Rewriting whole batched tensors with a chip's weights uses streaming stores (:mod:`sramsim._stores`):
nothing reads those lines before the next forward pass, so reading them into the cache first, as a
plain store does, would only double the memory traffic. Where a tensor must keep its quantized
weights (inside ``quantized()``, or a tensor on its grid), a chip whose faults change more than
``DENSE_FRACTION`` of its weights writes all of them the same way into the tensor's chip copy (made
on first use: one more copy of that tensor's weights) and swaps the parameter to it; leaving swaps
it back, so clearing writes nothing. With 16 float32 weights to a cache line, 1/64 of them changed
already touches a fifth of the lines, and a line written alone costs a read and a write of it: on
the 2-core Xeon loaded by two trainings, ResNet18 inside ``quantized()``, a forward pass between
chips, writing and clearing a chip's weights take 6.1 + 0.8 ms at 1% BER (3.9% of the weights
changed), against 7.9 + 7.8 ms rewriting the tensors in place and 5.5 + 5.4 ms one weight at a
time; near the threshold, at 0.4% BER (1.6% changed), 5.3 + 0.7 against 3.3 + 3.3 ms; at 0.2% BER
(0.8% changed) one weight at a time is the cheaper, 2.3 + 2.3 against 5.1 + 0.8 ms. Writing the
fault-free quantized weights (entering ``quantized()``) uses plain stores: the chips nested inside
may write their weights one by one into those lines.
"""
from __future__ import annotations

import numpy as np
import torch
from numba.typed import List
from torch import nn
from torch.autograd.graph import increment_version

from sramsim import _tensor_writes
from sramsim.storage import QuantParams, StorageFormat

#: Elements (or changed weights) per work item of the batched writes.
CHUNK = 1 << 16
#: A batched tensor in which more than this fraction of the weights change is written in full,
#: with streaming stores, to its chip copy, rather than weight by weight (see :meth:`WeightWriter.put`).
DENSE_FRACTION = 1 / 64
_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_NO_INDEX, _NO_VALUES = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int8)


class StoredTensor:
    """One stored tensor: its parameter, integer weights ``q``, their :class:`QuantParams` and
    :class:`StorageFormat`. ``scratch`` receives the quantized weights of a tensor not on its grid
    (None for one on its grid, which the format decides); ``target`` is where the weights are
    written (``scratch``, or the parameter's own tensor ``home``). ``chip_copy`` (made on first
    use, batched tensors only) receives a chip's weights in full where the target keeps the
    quantized ones (see :meth:`WeightWriter.put`)."""

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
        self.chip_copy: torch.Tensor | None = None
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

    def chip_array(self) -> np.ndarray:
        """``chip_copy``, made the first time it is asked for, as a flat NumPy array."""
        if self.chip_copy is None:
            self.chip_copy = torch.empty_like(self.home)   # the same strides
        return self.chip_copy.numpy().reshape(-1)

    def swap(self, tensor: torch.Tensor) -> None:
        """Point the parameter at ``tensor`` (its scratch, chip copy or own tensor); tell autograd
        (a graph that saved the other weights then refuses to backpropagate)."""
        self.param.data = tensor
        increment_version(self.param)

    def unchanged(self) -> bool:
        """Whether the parameter still holds what it held after the last restore."""
        return self.param.data_ptr() == self.data_ptr and self.param._version == self.version


class _Batch:
    """The batched tensors of one dtype; ``positions``: their places among all stored tensors."""

    def __init__(self, positions: list[int], tensors: list[StoredTensor]) -> None:
        self.positions = np.array(positions, dtype=np.int64)
        self.tensors, self.params = tensors, [t.param for t in tensors]
        self.flats = List([t.array.reshape(-1) for t in tensors])
        self.chip_flats = List(self.flats)   # a member's entry is its chip copy once it has one
        self.in_chip_copies = np.empty(0, dtype=np.int64)   # members swapped to them, until clear()
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
        return _tensor_writes.chunk_table(members, np.zeros_like(members), self.sizes[members], CHUNK)

    def _members(self, bounds: np.ndarray, skip_rewritten: bool) -> tuple[np.ndarray, ...]:
        """The members written (all, or those on their grid) and their changed weights'
        ``starts`` and ``stops`` in the chip's lists."""
        members = self.on_grid if skip_rewritten else self.everyone
        positions = self.positions[members]
        return members, bounds[positions], bounds[positions + 1]

    def _scatter(self, members: np.ndarray, starts: np.ndarray, stops: np.ndarray, index: np.ndarray,
                 values: np.ndarray) -> None:
        """Write ``values`` at ``index`` into these members' targets, weight by weight."""
        chunks = _tensor_writes.chunk_table(members, starts, stops, CHUNK)
        if chunks.size:
            _tensor_writes.scatter_scaled(self.flats, self.scales, self.shifts, index, values, chunks)
        for m in members[stops > starts]:   # autograd: a graph that saved them then refuses
            increment_version(self.params[m])

    def put(self, bounds: np.ndarray, index: np.ndarray, values: np.ndarray, skip_rewritten: bool) -> None:
        members, starts, stops = self._members(bounds, skip_rewritten)
        dense = stops - starts > DENSE_FRACTION * self.sizes[members]
        self._scatter(members[~dense], starts[~dense], stops[~dense], index, values)
        self.in_chip_copies = members[dense]
        for m in self.in_chip_copies:
            if self.tensors[m].chip_copy is None:
                self.chip_flats[m] = self.tensors[m].chip_array()
        if self.in_chip_copies.size:   # every weight from its integer, the chip's where it has one
            _tensor_writes.write_scaled(self.chip_flats, self.qs, self.scales, self.shifts,
                                        self._whole(self.in_chip_copies), index, values, bounds[self.positions],
                                        bounds[self.positions + 1], True)
        for m in self.in_chip_copies:
            self.tensors[m].swap(self.tensors[m].chip_copy)

    def clear(self, bounds: np.ndarray, index: np.ndarray, clean: np.ndarray, skip_rewritten: bool) -> None:
        members, starts, stops = self._members(bounds, skip_rewritten)
        written = ~np.isin(members, self.in_chip_copies)
        self._scatter(members[written], starts[written], stops[written], index, clean)
        for m in self.in_chip_copies:
            self.tensors[m].swap(self.tensors[m].target)
        self.in_chip_copies = np.empty(0, dtype=np.int64)

    def write_quantized(self, bounds: np.ndarray | None, index: np.ndarray, values: np.ndarray) -> None:
        if self.rewrite_chunks.size:
            starts = bounds[self.positions] if bounds is not None else _NO_INDEX
            stops = bounds[self.positions + 1] if bounds is not None else starts
            _tensor_writes.write_scaled(self.flats, self.qs, self.scales, self.shifts, self.rewrite_chunks, index,
                                        values, starts, stops, bounds is not None)   # streamed: a chip's weights
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
        """Write a chip's integer ``values``, dequantized, at the flat indices ``index``: entries
        ``bounds[t]:bounds[t + 1]`` belong to tensor ``t``. With ``skip_rewritten``, skip the
        tensors that :meth:`write_quantized` rewrites in full. Every other weight of the tensors
        written must hold its quantized value. A batched tensor with more than ``DENSE_FRACTION``
        of its weights in ``index`` is not written: its chip copy gets all its weights, from its
        integers and ``values``, with streaming stores, and the parameter is swapped to it, so
        that :meth:`clear` has nothing to write back."""
        for batch in self._batches:
            batch.put(bounds, index, values, skip_rewritten)
        self._put_single(bounds, index, values, skip_rewritten)

    @torch.no_grad()
    def clear(self, bounds: np.ndarray, index: np.ndarray, clean: np.ndarray,
              skip_rewritten: bool = False) -> None:
        """Undo :meth:`put` (same arguments, with the ``clean`` integers): write them back where
        :meth:`put` wrote, and swap the tensors it swapped to their chip copies back."""
        for batch in self._batches:
            batch.clear(bounds, index, clean, skip_rewritten)
        self._put_single(bounds, index, clean, skip_rewritten)

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
            tensor.swap(tensor.scratch)

    @torch.no_grad()
    def restore(self) -> None:
        """Swap the parameters that :meth:`write_quantized` swapped back to their own tensors (the
        originals), and take every tensor's state as the one to compare with (:meth:`changed`)."""
        for tensor in self._swapped:
            tensor.swap(tensor.home)
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
