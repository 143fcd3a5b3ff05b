"""Bit operations of the perturbation kernels that numba lacks: LLVM's population count, a
64-byte compare to a 64-bit mask, and the bits set in a range of bytes."""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_ONE = np.uint64(1)


@intrinsic
def popcount(typingctx, x):
    """The number of bits set in the unsigned integer ``x`` (LLVM's ``ctpop``: one instruction)."""
    if not isinstance(x, types.Integer) or x.signed:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return x(x), codegen


@intrinsic
def nonzero_bits(typingctx, a, start):
    """A uint64 whose bit j is set iff ``a[start + j]`` is not 0, for j < 64 (``a`` a C-contiguous
    uint8 array with at least ``start + 64`` elements): one 64-byte load and compare. Bit j is
    element j on a little-endian CPU, as all of numba's targets are."""
    if not (isinstance(a, types.Array) and a.layout == "C" and a.dtype == types.uint8
            and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        block = ir.VectorType(ir.IntType(8), 64)
        values = builder.load(builder.bitcast(builder.gep(data, [args[1]]), block.as_pointer()), align=1)
        return builder.bitcast(builder.icmp_unsigned("!=", values, ir.Constant(block, None)), ir.IntType(64))
    return types.uint64(a, start), codegen


@njit(cache=True)
def bits_set(a, lo, hi):
    """The number of bits set in ``a[lo:hi]`` (uint8, ``a.size`` a multiple of 8), 64 at a time."""
    i, hi = np.uint64(lo), np.uint64(hi)
    total = 0
    while i < hi and i % 8:
        total += popcount(a[i])
        i += _ONE
    words = a.view(np.uint64)
    for j in range(i >> np.uint64(3), hi >> np.uint64(3)):
        total += popcount(words[j])
    i = max(i, hi & ~np.uint64(7))
    while i < hi:
        total += popcount(a[i])
        i += _ONE
    return total
