"""Random bit-error training (RandBET, Stutz et al., MLSys 2021) of a quantization-aware model.

Each step, after the clean loss of the fake-quantized model has been backpropagated, and only
while that loss is below ``threshold`` (re-checked every batch): the model's quantized weights go
onto a fresh *training* chip (:func:`neuralfuse.chips.training_chips`, from the run seed, epoch
and step) at bit-error rate ``ber`` through :class:`sramsim.Deployment`; the loss there is
backpropagated, its gradients clamped element-wise to ±``grad_clip``, and the model's gradients
become (clean + perturbed) / 2, as in the authors' code. The optimizer step then updates the
float weights as usual.

    randbet = RandBET(qat_model, create_model("vgg11", norm="group"), ber=0.01, seed=0)
    loss.backward()
    perturbed_loss = randbet.step(x, y, loss.item(), criterion, epoch, step)  # None while off
    optimizer.step()

sramsim deploys plain models only, so the deployed copy is ``shadow``, a model of the same
architecture without fake-quantizers whose parameters and buffers are set from the QAT model
before each use (the quantized weights; the fake-quantizer's gradient is the identity, so the
shadow's weight gradients are the QAT model's). The ``Deployment`` is rebuilt from the current
weights each time, as it quantizes and lays them out once at construction.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from characterization.validation import check_scalar
from neuralfuse.chips import training_chips, validation_chips
from neuralfuse.precision import DEFAULT_PRECISION, autocast
from sramsim import Deployment, MemoryConfig

def check_randbet(ber: float | None, threshold: float, grad_clip: float) -> None:
    """Raise a ValueError naming the first bad setting: ``ber`` (None: off) must be in (0, 0.5],
    ``threshold`` a non-negative loss, ``grad_clip`` positive."""
    if ber is not None:
        check_scalar(ber, "randbet_ber", float, min_val=0, max_val=0.5, include_boundaries="right",
                     allowed="a bit-error rate in (0, 0.5]")
    check_scalar(threshold, "randbet_threshold", float, min_val=0, allowed="a non-negative loss")
    check_scalar(grad_clip, "randbet_grad_clip", float, min_val=0, include_boundaries="neither",
                 allowed="a positive number")


class RandBET:
    """Bit-error training of ``model`` (QAT-enabled) through ``shadow`` (the same architecture,
    plain); see the module docstring. ``seed`` is the run seed the training chips derive from;
    the weights are deployed as ``memory`` says (default ``MemoryConfig()``: 8-bit symmetric)."""

    def __init__(self, model: nn.Module, shadow: nn.Module, *, ber: float, seed: int,
                 threshold: float = 1.75, grad_clip: float = 0.05, memory: MemoryConfig | None = None,
                 precision: str = DEFAULT_PRECISION) -> None:
        check_randbet(ber, threshold, grad_clip)
        self.precision = precision
        self.ber, self.threshold, self.grad_clip = ber, threshold, grad_clip
        self.model, self.shadow, self.seed = model, shadow, seed
        self.memory = MemoryConfig() if memory is None else memory
        self.chip: int | None = None  # the training chip of the last perturbed step
        shadow_params = dict(shadow.named_parameters())
        self._weights, self._params = [], []
        for name, module in model.named_modules():
            if parametrize.is_parametrized(module, "weight"):
                self._weights.append((shadow.get_submodule(name).weight, module))
        for name, param in model.named_parameters():
            self._params.append((param, shadow_params[name.replace(".parametrizations.weight.original",
                                                                   ".weight")]))
        self._buffers = list(zip(model.buffers(), shadow.buffers(), strict=True))

    @torch.no_grad()
    def sync(self) -> nn.Module:
        """Set the shadow's parameters and buffers to the model's (quantized weights); return it."""
        for param, shadow in self._params:
            shadow.copy_(param)
        for shadow, module in self._weights:
            shadow.copy_(module.weight)   # the fake-quantized weight
        for buffer, shadow in self._buffers:
            shadow.copy_(buffer)
        return self.shadow

    def deployment(self) -> Deployment:
        """A :class:`Deployment` of the model's current quantized weights (on the shadow)."""
        return Deployment(self.sync(), memory=self.memory)

    def step(self, x: torch.Tensor, y: torch.Tensor, clean_loss: float,
             criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             epoch: int, step: int) -> float | None:
        """After the clean backward pass: if ``clean_loss < threshold``, add the perturbed
        gradients of (x, y) on this step's training chip and return the perturbed loss; else
        leave the gradients alone and return None."""
        if not clean_loss < self.threshold:
            return None
        self.chip = training_chips(self.seed, epoch, step, 1)[0]
        self.shadow.train(self.model.training)
        self.shadow.zero_grad(set_to_none=True)
        with self.deployment().at(ber=self.ber, chip=self.chip) as perturbed:
            with autocast(self.precision, x.device):
                logits = perturbed(x).float()
            loss = criterion(logits, y)
            loss.backward()
        with torch.no_grad():
            for param, shadow in self._params:
                if shadow.grad is not None:
                    param.grad.add_(shadow.grad.clamp_(-self.grad_clip, self.grad_clip)).mul_(0.5)
        self.shadow.zero_grad(set_to_none=True)
        return loss.item()

    def validation_accuracies(self, evaluate: Callable[[nn.Module], float], chips: int) -> list[float]:
        """``evaluate(model)`` on each of the first ``chips`` validation chips at ``ber``."""
        deployment = self.deployment()
        accuracies = []
        with deployment.quantized():
            for chip in validation_chips(chips):
                with deployment.at(ber=self.ber, chip=chip) as perturbed:
                    accuracies.append(evaluate(perturbed))
        return accuracies
