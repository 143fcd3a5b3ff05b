"""Streaming (non-temporal) stores for the numba kernels that rewrite whole weight tensors.

A plain store to memory that is not in cache first reads the line it writes ("read for
ownership"), so rewriting a 45 MB tensor moves 90 MB. A non-temporal store writes the line without
reading it: :func:`stream_scaled` writes 32 bytes at a time that way, an aligned block of 8
float32 or 4 float64 (LLVM's ``!nontemporal`` store, which x86 lowers to
``vmovntps``/``movntps`` and AArch64 to ``stnp``; a target without such stores makes it a plain
one). The values are the scalar kernels' bit for bit: an int8 to float64, times the float64 scale,
plus the float64 shift (0 for the symmetric format: the product alone), rounded to the output's type. Streamed lines bypass the cache; a call ends with a memory
fence, so that its values are visible to every thread once it returns.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_BLOCK_BYTES = 32


def _contiguous(*arrays) -> bool:
    """Whether every argument is a C-contiguous array type (typing of the intrinsics below)."""
    return all(isinstance(a, types.Array) and a.layout == "C" for a in arrays)


def _vector_of(context, aryty) -> tuple[ir.VectorType, int]:
    """The 32-byte LLVM vector type of an array's elements, and its length."""
    element = context.get_data_type(aryty.dtype)
    lanes = _BLOCK_BYTES * 8 // aryty.dtype.bitwidth
    return ir.VectorType(element, lanes), lanes


def _block_pointer(context, builder, aryty, array, start, vector_type):
    """Pointer to ``array[start]`` as a pointer to ``vector_type``."""
    data = context.make_array(aryty)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [start]), vector_type.as_pointer())


def _splat(builder, vector_type, lanes, scalar):
    """A vector of ``lanes`` copies of ``scalar``."""
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _streaming_store(builder, value, pointer) -> None:
    store = builder.store(value, pointer, align=_BLOCK_BYTES)
    store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))


@intrinsic
def _stream_block_scaled(typingctx, out, q, start, scale, shift):
    """``out[start:start + L] = q[start:start + L] * scale + shift`` (int8 ``q``, float64 ``scale``
    and ``shift``, L =
    32 bytes of ``out``), one streaming store; ``out[start]`` must be 32-byte aligned."""
    if not (_contiguous(out, q) and out.dtype in (types.float32, types.float64) and q.dtype == types.int8):
        return None

    def codegen(context, builder, signature, args):
        out_type, q_type = signature.args[0], signature.args[1]
        vector_type, lanes = _vector_of(context, out_type)
        codes = builder.load(_block_pointer(context, builder, q_type, args[1], args[2],
                                            ir.VectorType(ir.IntType(8), lanes)), align=1)
        doubles = ir.VectorType(ir.DoubleType(), lanes)
        scale, shift = (_splat(builder, doubles, lanes, x) for x in args[3:5])
        value = builder.fadd(builder.fmul(builder.sitofp(codes, doubles), scale), shift)
        if isinstance(vector_type.element, ir.FloatType):  # float32: round once
            value = builder.fptrunc(value, vector_type)
        _streaming_store(builder, value, _block_pointer(context, builder, out_type, args[0], args[2], vector_type))
        return context.get_dummy_value()
    return types.void(out, q, start, scale, shift), codegen


@intrinsic
def _fence(typingctx):
    """A sequentially consistent memory fence: every streaming store before it is visible to
    every thread after it (x86 ``mfence``, AArch64 ``dmb ish``)."""
    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()
    return types.void(), codegen


@njit(cache=True)
def _head(out):
    """How many leading elements of ``out`` to write one at a time before its 32-byte boundary
    (all of them where the data is not aligned to its element size)."""
    size = out.itemsize
    misaligned = out.ctypes.data % _BLOCK_BYTES
    if misaligned % size:
        return out.size
    return min(out.size, (_BLOCK_BYTES - misaligned) % _BLOCK_BYTES // size)


@njit(cache=True)
def stream_scaled(out, q, scale, shift):
    """``out[:] = q * scale + shift`` (in float64, rounded once to ``out``'s type) for contiguous
    ``out`` (float32/64) and ``q`` (int8) of one size, with streaming stores."""
    lanes = _BLOCK_BYTES // out.itemsize
    i = _head(out)
    for j in range(i):
        out[j] = np.float64(q[j]) * scale + shift
    while i + lanes <= out.size:
        _stream_block_scaled(out, q, i, scale, shift)
        i += lanes
    for j in range(i, out.size):
        out[j] = np.float64(q[j]) * scale + shift
    _fence()
