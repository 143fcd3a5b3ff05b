"""Training-time augmentation shared by base-model and generator training: random crop and flip.

Both trainers draw an epoch's crop offsets and flip flags up front from a NumPy generator seeded by
(seed, epoch, ...), so the augmentation of every sample is a function of the seed and the epoch
alone (what exact resumption needs), then apply them batch by batch with :func:`augment`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CROP_PADDING = 4


def augmentation_plan(rng: np.random.Generator, n: int, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets (n×2, in [0, 2·CROP_PADDING]) and flip flags (n,) for n samples, drawn from ``rng``.

    ``flip=False`` (datasets where a mirror image changes the label) gives no flips.
    """
    offsets = rng.integers(0, 2 * CROP_PADDING + 1, size=(n, 2))
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    return torch.from_numpy(offsets), torch.from_numpy(flips)


def augment(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random-crop a batch (N,C,H,W) after padding each side by CROP_PADDING; flip where ``flips``.

    The padding is -1, black in the [-1, 1] input scale. Row/column offsets per image are
    ``offsets[:, 0]`` and ``offsets[:, 1]``; (pad, pad) returns the image unchanged.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (CROP_PADDING,) * 4, value=-1.0)
    rows = (offsets[:, 0, None] + torch.arange(h))[:, None, :, None]  # N,1,H,1
    cols = (offsets[:, 1, None] + torch.arange(w))[:, None, None, :]  # N,1,1,W
    crops = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                   rows, cols]
    return torch.where(flips[:, None, None, None], crops.flip(-1), crops)
