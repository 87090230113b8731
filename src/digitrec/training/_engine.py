"""The training steps behind :class:`digitrec.Trainer`.

Each step takes one mini-batch of raw ``uint8`` pixels already on the training
device and updates the model in place, returning the batch's summed loss.

* :class:`FusedMLPStep` serves Linear/ReLU stacks trained with SGD: the forward
  pass, the backward pass and the momentum update are written out as about 25
  tensor operations, with momentum folded into the gradient matrix products
  (``buffer.addmm_(..., beta=momentum)``). At the notebook's batch of 64 the
  step is bound by per-operation overhead, not arithmetic, so skipping autograd's
  graph and the optimizer's bookkeeping makes it about twice as fast as the
  general step. It computes the same update as autograd with ``torch.optim.SGD``
  (to float rounding). It keeps its own momentum buffers rather than a torch
  optimizer, because building any ``torch.optim`` optimizer first imports
  ``torch._dynamo`` (1.7 s here), longer than a whole fast MLP run.
* :class:`AutogradStep` serves everything else (other networks and optimizers,
  class weights, multilabel losses, mixed precision), with optional augmentation
  done on whole batches.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..models import DigitClassifier
from ._objective import Objective

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Step(Protocol):
    def __call__(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> torch.Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def make_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    momentum: float,
    betas: tuple[float, float],
    weight_decay: float,
    nesterov: bool,
) -> torch.optim.Optimizer:
    params = [param for param in model.parameters() if param.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)


def fusable_linears(model: DigitClassifier) -> list[nn.Linear] | None:
    """Return the Linear layers if the fused step computes what the model does, else None.

    That is when the network is Flatten, (Linear, ReLU)*, Linear, every parameter is
    trained, and nothing changes what the model computes: a subclass overriding
    ``forward`` or ``preprocess``, or hooks on a module. Anything else takes autograd.
    """
    for name in ("forward", "preprocess"):
        if getattr(type(model), name) is not getattr(DigitClassifier, name):
            return None
    if not all(param.requires_grad for param in model.parameters()):
        return None
    if any(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        for module in model.modules()
    ):
        return None
    if not isinstance(model.network, nn.Sequential):
        return None
    layers = list(model.network)
    if len(layers) < 2 or not isinstance(layers[0], nn.Flatten) or len(layers) % 2:
        return None
    linears = layers[1::2]
    activations = layers[2::2]
    if not all(type(layer) is nn.Linear for layer in linears):
        return None
    if not all(type(layer) is nn.ReLU for layer in activations):
        return None
    return [layer for layer in linears if isinstance(layer, nn.Linear)]


class FusedMLPStep:
    """Forward, backward and SGD-with-momentum update of a Linear/ReLU stack, by hand."""

    def __init__(
        self, model: DigitClassifier, linears: list[nn.Linear], momentum: float, weight_decay: float
    ) -> None:
        self._momentum = momentum
        self._weight_decay = weight_decay
        # Parameters and their momentum buffers in model.parameters() order: w1, b1, w2, ...
        self._params: list[torch.Tensor] = [
            param for layer in linears for param in (layer.weight, layer.bias)
        ]
        self.momentum_buffers = [torch.zeros_like(param) for param in self._params]
        shape = model.input_shape
        features = math.prod(shape)
        # Per-feature scale and shift for uint8 input: (x / 255 - mean) / std in one addcmul.
        self._scale = (
            (model.pixel_scale / 255.0).expand(1, *shape).reshape(1, features).contiguous()
        )
        self._shift = model.pixel_shift.expand(1, *shape).reshape(1, features).contiguous()
        # Tensors reused from step to step, per batch size (all batches but an epoch's
        # last share one): constants, and the normalized input, whose 200 KB would
        # otherwise be a fresh memory mapping (and page faults) at every step.
        self._per_size: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _reused(self, count: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        if count not in self._per_size:
            self._per_size[count] = (
                torch.ones(count, device=device),
                torch.full((count, 1), -1.0, device=device),
                torch.empty(count, self._scale.shape[1], device=device),
            )
        return self._per_size[count]

    def state_dict(self) -> dict[str, Any]:
        return {"momentum_buffers": list(self.momentum_buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for buffer, saved in zip(self.momentum_buffers, state["momentum_buffers"], strict=True):
                buffer.copy_(saved)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> torch.Tensor:
        count = labels.shape[0]
        ones, minus_ones, inputs = self._reused(count, images.device)
        params = self._params
        buffers = self.momentum_buffers
        last = len(params) // 2 - 1
        with torch.no_grad():
            inputs.copy_(images.reshape(count, -1))
            activations = [torch.addcmul(self._shift, inputs, self._scale, out=inputs)]
            for index in range(last + 1):
                output = torch.addmm(params[2 * index + 1], activations[-1], params[2 * index].t())
                activations.append(output.relu_() if index < last else output)
            log_probs = torch.log_softmax(activations[-1], dim=1)
            loss = F.nll_loss(log_probs, labels, reduction="sum")
            # d(loss)/d(logits) = softmax - one_hot, summed over the batch; the 1/count
            # of the mean is applied once, as alpha of each buffer update.
            grad = log_probs.exp_()
            grad.scatter_add_(1, labels.unsqueeze(1), minus_ones)
            scale = 1.0 / count
            for index in range(last, -1, -1):
                below = activations[index]
                buffers[2 * index].addmm_(grad.t(), below, beta=self._momentum, alpha=scale)
                buffers[2 * index + 1].addmv_(grad.t(), ones, beta=self._momentum, alpha=scale)
                if index:
                    grad = torch.ops.aten.threshold_backward(grad.mm(params[2 * index]), below, 0)
            if self._weight_decay:
                torch._foreach_add_(buffers, params, alpha=self._weight_decay)
            torch._foreach_add_(params, buffers, alpha=-lr)
        return loss


def random_affine(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate (up to 10 degrees), scale (up to 10%) and shift (up to 2/28 of a side) each image.

    ``pixels`` are floats in [0, 1] whose background is 0, so the zero padding that
    the transform brings in is background too.
    """
    count = pixels.shape[0]

    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(count, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(10.0))
    zoom = 1 + uniform(0.1)
    shift_x, shift_y = uniform(4 / 28), uniform(4 / 28)  # affine_grid spans [-1, 1]: 2/28 px = 4/28
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift_x], dim=1), torch.stack([sin, cos, shift_y], dim=1)], dim=1
    ).to(pixels.device)
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class AutogradStep:
    """The general step: autograd, a torch optimizer, optional batch augmentation and autocast."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        objective: Objective,
        augment: torch.Generator | None,
        precision: str = "fp32",
        device_type: str = "cpu",
    ) -> None:
        self.optimizer = optimizer
        self._model = model
        self._objective = objective
        self._augment = augment
        self._autocast = _AUTOCAST.get(precision)
        self._device_type = device_type
        # float16 gradients underflow without loss scaling; bfloat16's range needs none.
        self._scaler = torch.amp.GradScaler(device_type) if precision == "fp16" else None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"optimizer": self.optimizer.state_dict()}
        if self._augment is not None:
            state["augment_rng"] = self._augment.get_state()
        if self._scaler is not None:
            state["grad_scaler"] = self._scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        if self._augment is not None:
            self._augment.set_state(state["augment_rng"])
        if self._scaler is not None:
            self._scaler.load_state_dict(state["grad_scaler"])

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = images
        if self._augment is not None:
            batch = random_affine(images.to(torch.float32).mul_(1.0 / 255.0), self._augment)
        if self._autocast is None:
            logits = self._model(batch)
        else:
            with torch.autocast(self._device_type, dtype=self._autocast):
                logits = self._model(batch)
        loss = self._objective(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self._scaler is None:
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
        else:
            self._scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
            self._scaler.step(self.optimizer)
            self._scaler.update()
        return loss.detach() * labels.shape[0]


def learning_rate(
    peak: float, schedule: str, step: int, total_steps: int, warmup_steps: int
) -> float:
    """Return the learning rate of ``step`` (counted from 0) under ``schedule``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
