"""Arithmetic precision of forward and backward passes: ``--precision fp32|bf16|fp16``.

    with autocast("bf16", device):        # matrix products and convolutions in bfloat16
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y)

``fp32`` (the default) computes as before. ``bf16`` runs the forward passes under
``torch.autocast`` with bfloat16, fast on CPUs with bf16 matrix units (Intel AMX, ``avx512_bf16``)
and on CUDA. Measured by ``bench/bench_precision.py`` on the shipped VGG11 (AMX Xeon, one
thread, a loaded machine): a batch-128 forward, an EOPM step and an evaluation 1.9-2.4x faster,
mean PA over 3 chips at 1% and 5% BER within 0.5 points of fp32, 99.3-100% of the predictions the
same. ``torch.compile`` made the bf16 forward slower (0.65x, after minutes of compiling), so it
is not used. ``fp16`` autocasts to float16, for evaluation on CUDA
only: CPUs have no float16 matrix units where bf16 ones exist (torch runs it, slower than bf16),
so it is refused on the CPU; and float16's narrow range would need loss scaling in training,
which is not implemented, so training refuses it. Both messages name bf16.

Only the arithmetic changes. Weights stay stored in float32, and :class:`sramsim.Deployment`
quantizes them and writes a chip's faults into them exactly as at fp32; autocast casts them as each
operation reads them. Its weight-cast cache is off, because a deployment swaps faulty weights into
the parameters between passes and a cached cast would serve the old ones. Losses are computed on
``.float()`` logits, backward passes run outside autocast, and generator outputs F(x) are kept in
float32.

The precision is a run setting like the device: it is recorded in every result (evaluation JSON,
``sweep.json``, a training run's ``config.json``, a base model's checkpoint, the demo summary), and
a run or sweep resumes only with the precision it started with.
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
DEFAULT_PRECISION = "fp32"
PRECISION_HELP = ("Arithmetic of the forward/backward passes: fp32, bf16 (autocast; fast on CPUs with "
                  "AMX/avx512_bf16 and on CUDA) or fp16 (CUDA only). Weights and faults are unchanged.")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device | str | None = None, *,
                    training: bool = False) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS` usable on ``device`` (and for
    training, when ``training``), else raise a ValueError naming it and what is allowed: ``fp16``
    needs a CUDA device and is not for training.

    >>> check_precision("bf16", "cpu")
    'bf16'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not valid: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and training:
        raise ValueError("precision 'fp16' is for evaluation only (training would need loss scaling): "
                         "train with bf16 or fp32")
    if precision == "fp16" and device is not None and torch.device(device).type != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA device, not {str(device)!r}: "
                         "use bf16 or fp32 on the CPU")
    return precision


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager:
    """A context running the forward passes inside it at ``precision`` on ``device``'s kind of
    device (nothing changes for ``fp32``); raises like :func:`check_precision`."""
    check_precision(precision, device)
    if precision == DEFAULT_PRECISION:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision], cache_enabled=False)
