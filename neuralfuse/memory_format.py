"""The memory format a model trains and evaluates in: channels-last where it is safe, contiguous otherwise.

Channels-last (NHWC) runs oneDNN's CPU convolutions 1.1-2x faster than the default NCHW layout for
the base models here (measured: full-width VGG11, batch 128, QAT step 0.39 s vs 0.44 s on 2 threads).
But oneDNN has crashed (SIGSEGV/SIGABRT in the backward pass) on some x86 CPUs, AMD EPYC among them,
for channels-last convolutions with very few channels: a ResNet18 at width 0.0625, whose
convolutions have 4 channels, dies in ``loss.backward()`` while widths 0.125 and up run. Small
convolutions gain nothing from NHWC anyway, so a model only goes channels-last when every
convolution has at least :data:`MIN_CHANNELS` input and output channels; the first convolution may
read the raw image (3 channels), the common channels-last case that oneDNN handles.

Training (:mod:`neuralfuse.train_base`) converts the model; evaluation and EOPM pass channels-last
*images* only (:func:`neuralfuse.evaluation.load_batches`) and leave the weights contiguous, where
:class:`sramsim.Deployment` writes faults into them: a full-width VGG11 then evaluates at 2.25 ms
per image instead of 3.28 on one thread.

    >>> from neuralfuse.models import create_model
    >>> preferred_memory_format(create_model("resnet18", width=0.25))
    torch.channels_last
    >>> preferred_memory_format(create_model("resnet18", width=0.0625))
    torch.contiguous_format
"""
from __future__ import annotations

import torch
from torch import nn

MIN_CHANNELS = 8
"""Fewest channels a convolution may have for its model to run channels-last."""


def preferred_memory_format(model: nn.Module) -> torch.memory_format:
    """``torch.channels_last`` if every 2-d convolution of ``model`` is wide enough, else contiguous."""
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convs:
        return torch.contiguous_format
    wide = all(m.out_channels >= MIN_CHANNELS and (m.in_channels >= MIN_CHANNELS or m is convs[0])
               for m in convs)
    return torch.channels_last if wide else torch.contiguous_format
