"""From a torch model and an input shape to a SCALE-SIM topology (one row per weight layer).

Forward hooks record every convolution, transposed convolution and linear layer that runs, with
its real input and output shapes, so any network built from those modules works. Each run of a
module becomes a :class:`Layer`: a SCALE-SIM conv row (IFMAP size, filter size, channels, filters,
stride) plus the real shapes and weight MACs. SCALE-SIM derives the output size itself as
``ceil((ifmap - filter + stride) / stride)``.

Two conventions map a module to its row:

``"paper"`` (default) — the topology files behind the NeuralFuse paper's Table 6:
  * a convolution's padding is folded into the IFMAP size (``H + 2·pad``: 34 for a padded 3×3
    conv on 32×32) and its real stride kept, so SCALE-SIM's output size can exceed PyTorch's
    (17 instead of 16 for a stride-2 3×3 conv on 32×32, and for a stride-2 1×1 shortcut too);
    a dilated kernel's extra span, (d−1)·(k−1), is taken off the IFMAP size;
  * 1×1 convolutions are not padded, except the network's last layer when it is a 1×1 conv (the
    UNets' output conv), which the authors counted on a map padded by one pixel each side;
  * a transposed conv becomes a conv over its output size + 2, same kernel, stride 1, with input
    and output channels swapped (SCALE-SIM has no transposed conv).

``"exact"`` — what the array physically computes, no quirks: every layer's output size is its
real one (IFMAP = the input rows the kernel actually touches); a transposed conv is the stride-1
conv over its zero-inserted input (kernel and channels as in the module, real output size).

In both, a linear layer is a 1×1 conv on a 1×1 input (or on an N×1 map for N tokens), pooling,
upsampling, normalisation, activations, additions and concatenations are not layers, and a
grouped conv is ``groups`` independent convs of ``channels/groups → filters/groups``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from characterization.atomic import atomic_path
from sramsim.layers import STORED_LAYERS, eval_mode

CONVENTIONS = ("paper", "exact")


def scalesim_output_size(ifmap: int, filter_size: int, stride: int) -> int:
    """SCALE-SIM's output size, ``ceil((ifmap - filter + stride) / stride)``."""
    return math.ceil((ifmap - filter_size + stride) / stride)


@dataclass(frozen=True)
class Layer:
    """One weight layer: its SCALE-SIM row (per group) and the real shapes it ran with."""

    name: str
    kind: str                    # "conv" | "deconv" | "linear"
    in_shape: tuple[int, ...]    # real input shape of one sample, e.g. (64, 32, 32)
    out_shape: tuple[int, ...]   # real output shape of one sample
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int                # input channels of one group
    filters: int                 # output channels of one group
    stride_h: int
    stride_w: int
    groups: int
    macs: int                    # weight multiply-accumulates with the real shapes

    @property
    def ofmap_h(self) -> int:
        """Output rows as SCALE-SIM computes them."""
        return scalesim_output_size(self.ifmap_h, self.filter_h, self.stride_h)

    @property
    def ofmap_w(self) -> int:
        """Output columns as SCALE-SIM computes them."""
        return scalesim_output_size(self.ifmap_w, self.filter_w, self.stride_w)

    def scalesim_row(self) -> tuple:
        """The SCALE-SIM conv-topology fields of one group, name first."""
        return (self.name, self.ifmap_h, self.ifmap_w, self.filter_h, self.filter_w,
                self.channels, self.filters, self.stride_h, self.stride_w)


@dataclass(frozen=True)
class _Call:
    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """Return ``input_shape`` (one sample, no batch dimension) as a tuple of positive ints."""
    shape = tuple(input_shape)
    if not shape or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"input_shape={input_shape!r} is invalid: give one sample's shape as "
                         "positive integers, e.g. (3, 32, 32)")
    return shape


def extract_topology(model: nn.Module, input_shape: Sequence[int],
                     convention: str = "paper") -> tuple[Layer, ...]:
    """Run ``model`` once on a zero input of ``input_shape`` and return its weight layers in order.

    The model is left as it was (training flag, parameters, buffers).

    >>> extract_topology(nn.Conv2d(3, 8, 3, padding=1), (3, 32, 32))[0].ifmap_h
    34
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} is unknown: "
                         f"use one of {', '.join(CONVENTIONS)}")
    calls = _record_calls(model, check_input_shape(input_shape))
    if not calls:
        raise ValueError(f"{type(model).__name__} ran no conv, transposed conv or linear layer")
    names = _unique_names([c.name for c in calls])
    last = len(calls) - 1
    return tuple(_to_layer(call, name, convention, i == last)
                 for i, (call, name) in enumerate(zip(calls, names)))


def _record_calls(model: nn.Module, input_shape: tuple[int, ...]) -> list[_Call]:
    """Run ``model`` once in eval mode on a zero input, hooks on its weight layers."""
    calls: list[_Call] = []

    def hook(name):
        def record(module, inputs, output):
            calls.append(_Call(name, module, tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))
        return record

    handles = [m.register_forward_hook(hook(name or type(m).__name__))
               for name, m in model.named_modules()
               if isinstance(m, STORED_LAYERS)]
    param = next(model.parameters(), None)
    x = torch.zeros((1, *input_shape),
                    dtype=param.dtype if param is not None else torch.float32,
                    device=param.device if param is not None else "cpu")
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        hint = ("" if conv is None else f"its first convolution takes {conv.in_channels}-channel images: "
                f"give channels x height x width, e.g. {conv.in_channels}x32x32 (torch: {first_line})")
        raise ValueError(f"{type(model).__name__} cannot run on an input of shape "
                         f"{'x'.join(map(str, input_shape))}: {hint or first_line}") from err
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _unique_names(names: list[str]) -> list[str]:
    """Suffix a module's second and later runs with #2, #3, … (a shared module runs twice)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _to_layer(call: _Call, name: str, convention: str, is_last: bool) -> Layer:
    module = call.module
    if isinstance(module, nn.Linear):
        return _linear(call, name)
    if isinstance(module, nn.ConvTranspose2d):
        return _deconv(call, name, convention)
    if isinstance(module, nn.Conv2d):
        return _conv(call, name, convention, is_last)
    raise ValueError(f"layer {name!r} is a {type(module).__name__}: only Conv2d, ConvTranspose2d "
                     "and Linear layers can be mapped to a SCALE-SIM topology")


def _linear(call: _Call, name: str) -> Layer:
    m = call.module
    tokens = math.prod(call.in_shape) // m.in_features
    return Layer(name, "linear", call.in_shape, call.out_shape,
                 ifmap_h=tokens, ifmap_w=1, filter_h=1, filter_w=1,
                 channels=m.in_features, filters=m.out_features, stride_h=1, stride_w=1,
                 groups=1, macs=tokens * m.in_features * m.out_features)


def _conv(call: _Call, name: str, convention: str, is_last: bool) -> Layer:
    m = call.module
    (c_in, h, w), (c_out, oh, ow) = call.in_shape[-3:], call.out_shape[-3:]
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, m.stride, m.dilation
    if convention == "exact":
        ih, iw = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    else:
        pad_h, pad_w = _total_padding(m)
        ih, iw = h + pad_h - (dh - 1) * (kh - 1), w + pad_w - (dw - 1) * (kw - 1)
        if is_last and (kh, kw) == (1, 1):
            ih, iw = ih + 2, iw + 2
    g = m.groups
    return Layer(name, "conv", call.in_shape, call.out_shape,
                 ifmap_h=ih, ifmap_w=iw, filter_h=kh, filter_w=kw,
                 channels=c_in // g, filters=c_out // g, stride_h=sh, stride_w=sw, groups=g,
                 macs=oh * ow * kh * kw * (c_in // g) * c_out)


def _deconv(call: _Call, name: str, convention: str) -> Layer:
    m = call.module
    (c_in, h, w), (c_out, oh, ow) = call.in_shape[-3:], call.out_shape[-3:]
    kh, kw = m.kernel_size
    g = m.groups
    if convention == "exact":
        ih, iw, channels, filters = oh + kh - 1, ow + kw - 1, c_in // g, c_out // g
    else:
        ih, iw, channels, filters = oh + 2, ow + 2, c_out // g, c_in // g
    return Layer(name, "deconv", call.in_shape, call.out_shape,
                 ifmap_h=ih, ifmap_w=iw, filter_h=kh, filter_w=kw,
                 channels=channels, filters=filters, stride_h=1, stride_w=1, groups=g,
                 macs=h * w * kh * kw * c_in * (c_out // g))


def _total_padding(m: nn.Conv2d) -> tuple[int, int]:
    """Rows and columns of padding a conv adds in all (both sides)."""
    if m.padding == "valid":
        return 0, 0
    if m.padding == "same":
        return tuple(d * (k - 1) for d, k in zip(m.dilation, m.kernel_size))
    return 2 * m.padding[0], 2 * m.padding[1]


def write_scalesim_topology(layers: Sequence[Layer], path: str | os.PathLike) -> None:
    """Write ``layers`` as a SCALE-SIM conv-topology CSV (a grouped conv as one row per group)."""
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
             "Num Filter, Strides,"]
    for layer in layers:
        name, ih, iw, fh, fw, c, k, sh, sw = layer.scalesim_row()
        if sh != sw:
            raise ValueError(f"layer {name!r} has stride {sh}x{sw}: a SCALE-SIM topology file "
                             "holds one stride for both directions")
        for g in range(layer.groups):
            row_name = name if layer.groups == 1 else f"{name}/g{g}"
            row_name = row_name.replace("DP", "dp")  # SCALE-SIM splits layers named *DP* by channel
            lines.append(f"{row_name}, {ih}, {iw}, {fh}, {fw}, {c}, {k}, {sh},")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

