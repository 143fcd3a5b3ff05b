"""Run a torch model as a simulated low-voltage chip would: the one API the rest of the world uses.

    deployment = Deployment(model, bits=8, tech="14nm-512x64")   # quantize + lay out once
    with deployment.at(voltage=0.83, chip=3) as perturbed:       # the model, on chip 3
        logits = perturbed(x)                                   # restored bit-exactly on exit
    deployment.report(voltage=0.83, chip=3)                      # BER, faulty cells, flipped bits

How weights are stored is one :class:`~sramsim.memory.MemoryConfig` (bits, storage format, tech,
fault model, layout), given as ``memory=`` or built from the keywords ``bits=``, ``tech=``,
``fault_model=`` and ``layout=`` (not both); ``deployment.memory`` holds it:

    deployment = Deployment(model, memory=MemoryConfig(bits=8, storage="robust"))
    with deployment.at(fault_map=load_fault_map("chip3.npz")) as perturbed:   # a measured chip
        ...

What is stored in the faulty weight memory (:func:`stored_tensors`): the ``weight`` of every
``nn.Linear`` and every convolution (``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``),
``nn.MultiheadAttention``'s input projection (``in_proj_weight``, or ``q/k/v_proj_weight``; its
``out_proj`` is an ``nn.Linear``), in ``model.modules()`` order, each followed by its biases if
``include_bias=True``; embedding tables with ``include_embeddings=True``; any other parameter named
in ``extra_tensors``. Biases (by default), normalization parameters and embeddings (by default) are
not touched, as in the paper; a large weight tensor left out draws a warning, and ``report()``
gives the coverage per kind of layer. Every stored tensor is quantized per tensor in the storage
format (:mod:`sramsim.storage`: ``"symmetric"`` two's complement, the default, or ``"robust"``,
Stutz et al.'s asymmetric unsigned codes read back clamped into the tensor's range) and laid out
one after another in arrays (:mod:`sramsim.array`); ``layout="neuralfuse-code"`` places the faults
as the NeuralFuse authors' code does instead (:mod:`sramsim.layouts`, registered layout objects).

Inside ``at(...)`` the model runs as the chip would: *all* stored tensors hold their quantized values
and the weights that sit on faulty cells hold what their faulty codes read as: the fault model
(see :mod:`sramsim.faults`) applied to the bits of their b-bit codes, decoded by the format.
``quantized()`` gives the fault-free chip. A chip is a seed (``chip=``, with a voltage or BER) or
a fault map (``fault_map=``, e.g. a file from ``sramsim faultmap`` or one measured on silicon,
loaded with :func:`sramsim.load_fault_map`): the map's faulty cells and stuck values are applied
to the stored codes at the map's own rate, exactly as the seed's own map would be; a map of other
arrays, too few cells or another layout's geometry is refused. On exit the original weights come
back bit for bit, also after an exception.

No copy of the model is made: its own ``Parameter`` objects hold the chip's weights. A stored
tensor whose weights are already on their format's quantization grid (e.g. a model exported after
quantization-aware training) is written in place where a chip changes few of its weights, only
there, and cleared on exit. Any other gets a scratch tensor of its shape and strides, made once (as
much memory as a copy of those weights), that receives its quantized weights; inside the block
the parameter's storage is swapped to it (``param.data``) and on exit swapped back, so restoring
the originals copies nothing. A chip that changes more than 1/64 of the weights of a tensor that
keeps its quantized ones (inside ``quantized()``, or on its grid) writes them all to a chip copy
of the tensor, made once (one more copy of those weights), swapped in and out the same way.
Optimizers, hooks and modules see the chip's weights through the parameters; a tensor taken from
a parameter's old storage before the block (``.data``, ``detach()``, ``state_dict()``) keeps the
originals, and a tool that recorded storage addresses (CUDA graphs) must record inside the block. Writes run under ``torch.no_grad()``, so parameters
with ``requires_grad=True`` work and a forward and backward pass may run inside the block; a graph
kept past the block's end refuses to backpropagate (torch's in-place error) instead of using
weights that have changed since.

Cost: entering ``at()`` draws the chip's faults and writes the tensors not on their grid in one
streamed pass; leaving is free. Nested in ``quantized()``, each chip writes only the weights its
faults change and clears them on exit, or streams a tensor where they are more than 1/64 of its
weights into its chip copy, which leaving swaps out (``sramsim._writes``). Both are a few percent
of one forward pass: on a 2-core Intel Xeon with AMX running two trainings, ResNet18 at 1% BER
(0.834 Vmin), a new chip costs 18.3 ms alone and 17.9 ms nested on one thread, 19.5 and 18.1 ms on
two, 18.7 / 20.0 ms nested with a forward pass between chips: 3.0-3.6% of a batch-128 bf16 forward
pass of 0.55-0.59 s (``bench/bench_deploy.py --precision bf16``, medians of three runs).

    with deployment.quantized():
        for seed in range(10):
            with deployment.at(voltage=0.83, chip=seed) as perturbed:
                accuracy.append(evaluate(perturbed))
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

import characterization
from sramsim import _perturb, layouts
from sramsim._parallel import parallel
from sramsim._writes import StoredTensor, WeightWriter
from sramsim.array import ArrayGeometry, MemoryLayout
from sramsim.faults import FAULT_MODEL_SEMANTICS, Chip, FaultMap, max_hazard
from sramsim.layers import STORED_LAYERS
from sramsim.memory import MemoryConfig
from sramsim.operating_point import OperatingPoint

#: Embedding tables: stored only with ``include_embeddings=True``.
EMBEDDING_LAYERS = (nn.Embedding, nn.EmbeddingBag)
#: An unstored parameter of two or more dimensions and at least this many elements draws an
#: :class:`UnstoredWeightWarning`.
UNSTORED_WARNING_SIZE = 4096
_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
                *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))


class UnstoredWeightWarning(UserWarning):
    """A large weight tensor of the model is not stored in the faulty memory."""


def _stored_names(module: nn.Module, include_bias: bool, include_embeddings: bool) -> tuple[str, ...]:
    """Names of the parameters of ``module`` itself that are stored."""
    if isinstance(module, nn.MultiheadAttention):  # q/k/v_proj_weight when _qkv_same_embed_dim is False
        weights, biases = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"), \
            ("in_proj_bias", "bias_k", "bias_v")
    elif isinstance(module, STORED_LAYERS) or (include_embeddings and isinstance(module, EMBEDDING_LAYERS)):
        weights, biases = ("weight",), ("bias",)
    else:
        return ()
    return weights + biases if include_bias else weights


def stored_tensors(model: nn.Module, include_bias: bool = False, include_embeddings: bool = False,
                   extra_tensors: Sequence[str] = ()) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of every tensor stored in the weight memory, in storage order.

    Stored: the weight of every ``nn.Linear`` (``MultiheadAttention.out_proj`` included) and every
    convolution, ``nn.MultiheadAttention``'s ``in_proj_weight`` (or its ``q/k/v_proj_weight``), with
    ``include_embeddings`` the weight of every ``nn.Embedding``/``nn.EmbeddingBag``, with
    ``include_bias`` these layers' biases, and the parameters named in ``extra_tensors`` (names as
    in ``model.named_parameters()``). In ``model.named_modules()`` order, each module's tensors in
    the order it registered them; a shared tensor is stored once.
    """
    extra = set(extra_tensors)
    names = dict(model.named_parameters())
    unknown = sorted(extra - names.keys())
    if unknown:
        raise ValueError(f"extra_tensors {unknown} are not parameters of the model (its parameters: "
                         f"{', '.join(list(names)[:8])}{', ...' if len(names) > 8 else ''})")
    found, seen = [], set()
    for module_name, module in model.named_modules():
        selected = _stored_names(module, include_bias, include_embeddings)
        if selected and parametrize.is_parametrized(module):
            raise ValueError(f"layer {module_name!r} is parametrized (e.g. fake-quantized for QAT): "
                             "remove its parametrizations before deploying it")
        prefix = f"{module_name}." if module_name else ""
        for name, param in module.named_parameters(recurse=False):
            if (name in selected or prefix + name in extra) and id(param) not in seen:
                seen.add(id(param))
                found.append((prefix + name, param))
    if not found:
        raise ValueError("the model has no weight to deploy: no nn.Linear, convolution or "
                         "nn.MultiheadAttention layer (embeddings need include_embeddings=True, "
                         "other tensors extra_tensors=[name, ...])")
    return found


def parameter_kind(module: nn.Module) -> str:
    """The kind of layer that owns a parameter, as :meth:`Deployment.report` counts coverage:
    linear, conv, attention, embedding, norm or other."""
    for kind, types in (("linear", nn.Linear), ("conv", nn.modules.conv._ConvNd),
                        ("attention", nn.MultiheadAttention), ("embedding", EMBEDDING_LAYERS),
                        ("norm", _NORM_LAYERS)):
        if isinstance(module, types):
            return kind
    return "other"


def _owned_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, str]]:
    """(name, parameter, kind of its layer) of every parameter of ``model``, each once."""
    seen = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, param in module.named_parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield prefix + name, param, parameter_kind(module)


def _warn_unstored(model: nn.Module, stored: set[int]) -> None:
    """Warn once for each large weight tensor of ``model`` that is not stored, saying how to store it."""
    for name, param, kind in _owned_parameters(model):
        if id(param) in stored or param.dim() < 2 or param.numel() < UNSTORED_WARNING_SIZE:
            continue
        how = "pass include_embeddings=True" if kind == "embedding" else f"pass extra_tensors=[{name!r}]"
        warnings.warn(f"{name} ({kind}, {param.numel():,} weights) is not stored in the faulty "
                      f"weight memory: {how} to store it", UnstoredWeightWarning, stacklevel=3)


@dataclass
class _Faults:
    """A chip's faults applied to the stored integers: what to write and what to report."""

    seed: int
    ber: float
    voltage: float | None
    index: np.ndarray    # per changed weight, tensor by tensor, increasing: its flat index in its tensor
    value: np.ndarray    # its value on the chip (int8)
    clean: np.ndarray    # its fault-free value (int8)
    bounds: np.ndarray   # the changed weights of tensor t are entries bounds[t]:bounds[t+1]
    counts: np.ndarray   # per tensor: faulty cells, flipped bits, changed weights
    faulty_cells: int    # in all the arrays used, spare cells included


class Deployment:
    """A model's weights stored as ``memory`` says (a :class:`MemoryConfig`; or the shorthands
    ``bits``, ``tech``, ``fault_model``, ``layout``, defaults 8, the default technology,
    ``"stuck-at"``, ``"arrays"``) in arrays of ``geometry``, ready to run on any chip at any
    voltage (see the module docstring). ``self.memory`` is the config, ``self.storage`` its
    :class:`~sramsim.storage.StorageFormat`.

    ``fault_model`` is ``"stuck-at"`` (default, the paper's) or ``"flip"``; see
    :mod:`sramsim.faults`. Chips are ints (seeds, any integer in [0, 2**63)) or :class:`Chip`\\ s.
    ``layout`` is ``"arrays"`` (default, physical) or ``"neuralfuse-code"`` (the authors' one
    8,192 × 128 map shared by all layers; 8-bit only, ``geometry`` unused); see
    :mod:`sramsim.layouts`. ``self.layout`` is the :class:`MemoryLayout` of the arrays and
    ``self.layout_name`` the fault layout's name.
    ``include_bias``, ``include_embeddings`` and ``extra_tensors`` add tensors to the stored ones
    (see :func:`stored_tensors`); a large weight tensor left out draws an
    :class:`UnstoredWeightWarning` that says how to include it.

    >>> model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> deployment = Deployment(model, bits=8)
    >>> with deployment.at(ber=0.01, chip=3) as perturbed:
    ...     y = perturbed(torch.zeros(1, 64))
    >>> deployment.report(ber=0.01, chip=3)["fault_model"]
    'stuck-at'
    """

    def __init__(self, model: nn.Module, bits: int | None = None, tech: str | None = None,
                 fault_model: str | None = None, include_bias: bool = False,
                 geometry: ArrayGeometry = ArrayGeometry(), layout: str | None = None,
                 include_embeddings: bool = False, extra_tensors: Sequence[str] = (), *,
                 memory: MemoryConfig | None = None) -> None:
        self.model = model
        self.memory = _memory_config(memory, bits=bits, tech=tech, fault_model=fault_model, layout=layout)
        self.bits, self.tech, self.fault_model = self.memory.bits, self.memory.tech, self.memory.fault_model
        self.layout_name, self.storage = self.memory.layout, self.memory.storage_format
        self._fault_layout = self.memory.fault_layout
        self._fault_layout.geometry(geometry)   # a layout with a map of its own refuses a geometry
        self.voltage_model = characterization.load(self.tech)
        self.include_bias = bool(include_bias)
        self.include_embeddings = bool(include_embeddings)
        self.geometry = geometry
        params = stored_tensors(model, include_bias, include_embeddings, extra_tensors)
        _warn_unstored(model, {id(p) for _, p in params})
        self.layout = MemoryLayout([p.numel() for _, p in params], self.bits, geometry)
        # The integers of all tensors, one after another, as the kernels read them (a NumPy
        # allocation: large ones get huge pages, which matters for the kernels' random reads).
        self._q = np.empty(self.layout.n_words, dtype=np.int8)
        stored = []
        for (name, param), start, stop in zip(params, self.layout.offsets, self.layout.offsets[1:]):
            q, quant_params = self.storage.integers(param, self.bits)
            self._q[start:stop] = q.cpu().reshape(-1).numpy()
            if param.device.type == "cpu":   # share the one copy of the integers
                q = torch.from_numpy(self._q[start:stop]).view(param.shape)
            stored.append(StoredTensor(name, param, q, quant_params, self.storage))
        self._writer = WeightWriter(stored)
        self._state = "original"
        self._buffers: tuple[np.ndarray, ...] | None = None

    @contextmanager
    def quantized(self) -> Iterator[nn.Module]:
        """The model on a fault-free chip: every stored tensor holds its quantized values."""
        self._require_state("original", "quantized()")
        self._check_unchanged()
        try:
            self._writer.write_quantized()
            self._state = "quantized"
            yield self.model
        finally:
            self._writer.restore()
            self._state = "original"

    def point(self, point: OperatingPoint | None = None, *, voltage: float | None = None,
              ber: float | None = None) -> OperatingPoint:
        """The operating point given as ``point`` or as ``voltage=`` (× Vmin) or ``ber=``: exactly
        one of the three, and a point of this deployment's technology."""
        if point is None:
            return OperatingPoint.resolve(voltage=voltage, ber=ber, tech=self.tech,
                                          voltage_model=self.voltage_model)
        if voltage is not None or ber is not None:
            raise ValueError(f"give either an OperatingPoint or voltage=/ber=, not both (got {point!r} "
                             f"and voltage={voltage!r}, ber={ber!r})")
        if not isinstance(point, OperatingPoint):
            raise TypeError(f"point must be an OperatingPoint, got {type(point).__name__}")
        if point.tech != self.tech:
            raise ValueError(f"operating point of tech {point.tech!r} does not match the deployment's "
                             f"tech {self.tech!r}")
        return point

    @contextmanager
    def at(self, point: OperatingPoint | None = None, *, voltage: float | None = None,
           ber: float | None = None, chip: int | Chip | None = None,
           fault_map: FaultMap | None = None) -> Iterator[nn.Module]:
        """The model on ``chip`` at ``point``, or at ``voltage`` (V/Vmin) or bit-error rate
        ``ber`` (exactly one), or on the chip a ``fault_map`` describes (e.g. one measured, loaded
        with :func:`sramsim.load_fault_map`; alone, at the map's own rate); the weights are
        restored bit-exactly on exit. ``at(ber=0, chip=...)`` is the fault-free quantized model."""
        self._require_state(("original", "quantized"), "at()")
        faults = self._faults_of(point, voltage, ber, chip, fault_map, reuse_buffers=True)
        outer = self._state == "original"
        if outer:
            self._check_unchanged()
        try:
            if outer:
                self._writer.write_quantized(faults.bounds, faults.index, faults.value)
            else:
                self._writer.put(faults.bounds, faults.index, faults.value)
            self._state = "faulty"
            yield self.model
        finally:
            self._writer.clear(faults.bounds, faults.index, faults.clean, skip_rewritten=outer)
            if outer:
                self._writer.restore()
            self._state = "original" if outer else "quantized"

    def report(self, point: OperatingPoint | None = None, *, voltage: float | None = None,
               ber: float | None = None, chip: int | Chip | None = None,
               fault_map: FaultMap | None = None) -> dict:
        """What ``at(voltage=|ber=, chip=)`` (or ``at(fault_map=)``) does to the model, as a
        JSON-serializable dict: tech, storage format, fault model and layout and their semantics,
        voltage, BER, energy per access (relative to
        Vmin; None when asked by BER), cells, faulty cells, flipped bits, changed weights, and the
        same counts per stored tensor under ``"layers"`` (records; ``pandas.DataFrame(report["layers"])``),
        and the coverage: ``stored_parameters`` of ``parameters`` (their ratio ``coverage``), per kind
        of layer (see :func:`parameter_kind`) under ``"coverage_by_kind"`` (records).
        Under ``"neuralfuse-code"`` the cells are those of the one shared map, and a tensor's
        ``faulty_cells`` counts the faulty bits its weights read (a cell is read by many weights)."""
        faults = self._faults_of(point, voltage, ber, chip, fault_map)
        layout, counts, cell_layout = self.layout, faults.counts, self._fault_layout
        g = cell_layout.geometry(self.geometry)
        rows, cols, arrays, cells = g.rows, g.cols, cell_layout.n_arrays(layout), cell_layout.n_cells(layout)
        layers = [{"name": stored.name, "shape": list(stored.param.shape), "weights": size,
                   "faulty_cells": int(faulty), "flipped_bits": int(flipped),
                   "changed_weights": int(changed)}
                  for stored, size, (faulty, flipped, changed) in zip(self._writer.tensors, layout.sizes, counts)]
        return {
            "tech": self.tech,
            "storage": self.memory.storage,
            "storage_semantics": self.storage.semantics,
            "fault_model": self.fault_model,
            "fault_model_semantics": FAULT_MODEL_SEMANTICS[self.fault_model],
            "layout": self.layout_name,
            "layout_semantics": self._fault_layout.semantics,
            "chip": faults.seed,
            "voltage": faults.voltage,
            "ber": faults.ber,
            "energy_per_access": None if faults.voltage is None
            else float(self.voltage_model.energy_per_access(faults.voltage)),
            "bits": self.bits,
            "array_rows": rows,
            "array_cols": cols,
            "arrays": arrays,
            "cells": cells,
            "weight_cells": layout.n_words * self.bits,
            "weights": layout.n_words,
            "faulty_cells": faults.faulty_cells,
            "faulty_weight_cells": int(counts[:, 0].sum()),
            "flipped_bits": int(counts[:, 1].sum()),
            "changed_weights": int(counts[:, 2].sum()),
            "layers": layers,
            **self.coverage(),
        }

    def coverage(self) -> dict:
        """Parameters stored in the faulty memory out of all the model's parameters, in all and per
        kind of layer (:func:`parameter_kind`), as the keys ``parameters``, ``stored_parameters``,
        ``coverage`` and ``coverage_by_kind`` (records: kind, parameters, stored, coverage)."""
        stored = {id(t.param) for t in self._writer.tensors}
        kinds: dict[str, list[int]] = {}
        for _, param, kind in _owned_parameters(self.model):
            counts = kinds.setdefault(kind, [0, 0])
            counts[0] += param.numel()
            counts[1] += param.numel() if id(param) in stored else 0
        total, kept = sum(c[0] for c in kinds.values()), sum(c[1] for c in kinds.values())
        return {"parameters": total, "stored_parameters": kept, "coverage": kept / total if total else 0.0,
                "coverage_by_kind": [{"kind": kind, "parameters": n, "stored": k,
                                      "coverage": k / n if n else 0.0}
                                     for kind, (n, k) in sorted(kinds.items())]}

    @property
    def stored_names(self) -> tuple[str, ...]:
        """The names of the stored tensors, in the order they are laid out in memory."""
        return tuple(t.name for t in self._writer.tensors)

    def __repr__(self) -> str:
        return (f"Deployment({len(self._writer.tensors)} tensors, {self.layout.n_words} weights, "
                f"bits={self.bits}, storage={self.memory.storage!r}, tech={self.tech!r}, "
                f"fault_model={self.fault_model!r}, include_bias={self.include_bias}, "
                f"include_embeddings={self.include_embeddings}, layout={self.layout_name!r}, "
                + (f"arrays={self.layout.n_arrays} of {self.geometry.rows}x{self.geometry.cols})"
                   if self._fault_layout.own_geometry is None else
                   f"map of {self._fault_layout.own_geometry.rows}x{self._fault_layout.own_geometry.cols})"))

    # -- internals ---------------------------------------------------------------------------

    def _chip(self, chip: int | Chip) -> Chip:
        if not isinstance(chip, Chip):
            return Chip(chip, self.tech, self.geometry)
        if chip.tech != self.tech or chip.geometry != self.geometry:
            raise ValueError(f"chip of tech {chip.tech!r} with {chip.geometry} does not match the "
                             f"deployment's tech {self.tech!r} with {self.geometry}")
        return chip

    def _faults_of(self, point: OperatingPoint | None, voltage: float | None, ber: float | None,
                   chip: int | Chip | None, fault_map: FaultMap | None, reuse_buffers: bool = False) -> _Faults:
        """The faults of ``chip`` at the point given, or of ``fault_map`` (given alone)."""
        if fault_map is None:
            if chip is None:
                raise ValueError("give chip= (a seed or a Chip) with a voltage or BER, or fault_map=")
            return self._faults(chip, self.point(point, voltage=voltage, ber=ber), reuse_buffers)
        if chip is not None or point is not None or voltage is not None or ber is not None:
            raise ValueError("a fault map is one chip at one rate: give fault_map= alone, without "
                             f"chip=, a point, voltage= or ber= (got chip={chip!r}, voltage={voltage!r}, "
                             f"ber={ber!r})")
        return self._map_faults(fault_map)

    def _faults(self, chip: int | Chip, point: OperatingPoint, reuse_buffers: bool = False) -> _Faults:
        """Generate ``chip``'s faults and apply them to the stored integers. With
        ``reuse_buffers`` the result lives in buffers kept for the next call (fresh memory is slow
        to fault in); only one such result may be alive at a time."""
        chip = self._chip(chip)
        rate = point.ber
        flip, code_xor = self.fault_model == "flip", self.storage.code_xor(self.bits)
        if self._fault_layout.shared_map:
            fault_map = layouts.code_fault_map(chip.seed, self.tech, rate)
            return self._read(chip.seed, rate, point.voltage, *layouts.apply_code_faults(
                fault_map, self._q, self.layout.offsets, flip, code_xor), len(fault_map))
        buffers = self._buffers if reuse_buffers and self._buffers is not None else _empty_buffers()
        g = self.geometry
        faults = _perturb.ChipFaults(np.uint64(chip.seed), max_hazard(rate), flip, code_xor)
        arrays = _perturb.WordArrays(g.rows, g.cols, self.bits)
        buffers, n, counts, faulty = parallel(_perturb.perturb_chip, faults, arrays, self.layout.n_arrays,
                                              self._q, self.layout.offsets, buffers)
        if reuse_buffers:
            self._buffers = buffers
        index, value, clean = buffers[:3]
        return self._read(chip.seed, rate, point.voltage, index[:n], value[:n], clean[:n], counts, int(faulty))

    def check_fault_map(self, fault_map: FaultMap) -> FaultMap:
        """Return ``fault_map`` if this deployment can run on it, else raise a one-line ValueError
        saying why (another technology, other arrays, too few cells, another layout's geometry)."""
        if not isinstance(fault_map, FaultMap):
            raise TypeError(f"fault_map must be a FaultMap (see sramsim.load_fault_map), got "
                            f"{type(fault_map).__name__}")
        if fault_map.tech != self.tech:
            raise ValueError(f"fault map of tech {fault_map.tech!r} does not match the deployment's "
                             f"tech {self.tech!r}")
        self._fault_layout.check_map(fault_map, self.layout, self.geometry)
        return fault_map

    def _map_faults(self, fault_map: FaultMap) -> _Faults:
        """The faults of a loaded or generated map, applied as :meth:`_faults` applies a chip's."""
        cell_layout = self._fault_layout
        self.check_fault_map(fault_map)
        flip, code_xor = self.fault_model == "flip", self.storage.code_xor(self.bits)
        if cell_layout.shared_map:
            found = layouts.apply_code_faults(fault_map, self._q, self.layout.offsets, flip, code_xor)
        else:
            found = layouts.apply_array_faults(fault_map, self._q, self.layout.offsets, self.bits, flip,
                                               code_xor)
        faulty = int(np.searchsorted(fault_map.cells, cell_layout.n_cells(self.layout)))
        return self._read(fault_map.seed, fault_map.ber, fault_map.voltage, *found, faulty)

    def _read(self, seed: int, ber: float, voltage: float | None, index: np.ndarray, value: np.ndarray,
              clean: np.ndarray, counts: np.ndarray, faulty_cells: int) -> _Faults:
        """The faults found, with the integers read from faulty codes clamped as the format reads them."""
        self.storage.clamp_integers(value, self.bits)
        bounds = np.concatenate(([0], np.cumsum(counts[:, 2])))
        return _Faults(seed, ber, voltage, index, value, clean, bounds, counts, faulty_cells)

    def _require_state(self, allowed: str | tuple[str, ...], what: str) -> None:
        if self._state not in allowed:
            raise RuntimeError(f"{what} cannot be entered while the deployment is {self._state} "
                               "(blocks nest only as at() inside quantized())")

    def _check_unchanged(self) -> None:
        changed = self._writer.changed()
        if changed is not None:
            raise RuntimeError(f"{changed} changed (values, device or dtype) since the "
                               "Deployment was made: make a new Deployment of the model")


def _memory_config(memory: MemoryConfig | None, **shorthands: object) -> MemoryConfig:
    """``memory``, or a :class:`MemoryConfig` of the shorthand keywords given (not both)."""
    given = {name: value for name, value in shorthands.items() if value is not None}
    if memory is None:
        return MemoryConfig(**given)
    if given:
        raise ValueError(f"give memory= or the shorthands {', '.join(shorthands)}, not both "
                         f"(got memory={memory.describe()!r} and {', '.join(f'{k}={v!r}' for k, v in given.items())})")
    if not isinstance(memory, MemoryConfig):
        raise TypeError(f"memory must be a MemoryConfig, got {type(memory).__name__}")
    return memory


def _empty_buffers() -> tuple[np.ndarray, ...]:
    """Output and scratch buffers for :func:`sramsim._perturb.perturb_chip`, grown by it."""
    return tuple(np.empty(0, dtype) for dtype in (np.int64, np.int8, np.int8) * 2)


def deploy(model: nn.Module, *, voltage: float | None = None, ber: float | None = None,
           chip: int | Chip | None = None, fault_map: FaultMap | None = None, bits: int | None = None,
           tech: str | None = None, fault_model: str | None = None, include_bias: bool = False,
           layout: str | None = None, include_embeddings: bool = False, extra_tensors: Sequence[str] = (),
           memory: MemoryConfig | None = None) -> nn.Module:
    """A perturbed deep copy of ``model`` as it runs on ``chip`` at ``voltage`` or ``ber`` (or on
    ``fault_map``), for one-off use (``model`` is untouched). To evaluate many chips use
    :class:`Deployment`.

    >>> perturbed = deploy(nn.Linear(64, 10), ber=0.01, chip=0)
    """
    clone = copy.deepcopy(model)
    deployment = Deployment(clone, bits, tech, fault_model, include_bias, layout=layout,
                            include_embeddings=include_embeddings, extra_tensors=extra_tensors,
                            memory=memory)
    faults = deployment._faults_of(None, voltage, ber, chip, fault_map)
    deployment._writer.write_quantized(faults.bounds, faults.index, faults.value)
    return clone
