"""The optimiser a run trains with: class by name, parameter groups for weight decay.

``l2_penalty`` is the weight decay of the decaying group; for AdamW it is decoupled from the
gradient (Loshchilov & Hutter), for other optimisers it is their own ``weight_decay`` (an L2
term). Only linear-map weight matrices decay; biases, norm gains and learned embeddings do not.

On the CPU, Adam and AdamW step through :class:`FlatOptimizer`: all parameters of a group as
one flat tensor, one fused kernel call per group instead of a few small operations per
parameter (the step of SPANet's ttbar example network, 157 parameters: ~1 ms -> ~0.2 ms, timed
alone).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from spanet_lite.config.options import Options
from spanet_lite.model.encoder import StackedLinear


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class of a validated ``optimizer`` option.

    ``config/options_validation.py`` checked the name against ``OPTIMIZERS`` (a test ties that
    list to ``torch.optim``), so it is looked up as given, as SPANet does.
    """
    return getattr(torch.optim, name)


def parameter_groups(network: nn.Module, l2_penalty: float) -> list[dict[str, Any]]:
    """Optimiser groups for decoupled weight decay: linear-map weights decay, nothing else does.

    Biases, LayerNorm gains/offsets (also the stacked ones, which have 3 dims) and learned
    type embeddings are excluded: shrinking them towards 0 changes what the network computes
    rather than limiting its capacity.
    """
    decay: list[Tensor] = []
    decay_ids: set[int] = set()
    for module in network.modules():
        if isinstance(module, (nn.Linear, StackedLinear)) and module.weight.requires_grad:
            decay.append(module.weight)
            decay_ids.add(id(module.weight))
    rest = [p for p in network.parameters() if p.requires_grad and id(p) not in decay_ids]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": float(l2_penalty)},
        {"params": rest, "weight_decay": 0.0},
    ]
    # -fsf may freeze every linear weight and leave only norms or embeddings to train
    return [group for group in groups if group["params"]]


def build_optimizer(
    network: nn.Module, options: Options, *, mixed_precision: bool = False
) -> torch.optim.Optimizer:
    """``options.optimizer`` over ``network``'s parameters, with ``options.l2_penalty`` as decay.

    With its fused kernel when it has one for these parameters (one kernel for all of them
    instead of a Python loop over every parameter: on the CPU the AdamW step of SPANet's ttbar
    example network went from ~14 ms to ~2 ms), else ``foreach``, else plain. Lightning's
    mixed-precision plugin refuses gradient clipping with a fused optimiser, so with
    ``mixed_precision`` and ``gradient_clip`` > 0 it is ``foreach``. Adam and AdamW over float32
    CPU parameters are a :class:`FlatOptimizer` around the fused kernel instead (it unscales
    and clips like any unfused optimiser).
    """
    cls = optimizer_class(options.optimizer)
    groups = parameter_groups(network, options.l2_penalty)
    accepted = inspect.signature(cls.__init__).parameters
    if "weight_decay" not in accepted:
        for group in groups:
            group.pop("weight_decay")
    if flat_steppable(options.optimizer, [p for group in groups for p in group["params"]]):
        return FlatOptimizer(cls, groups, lr=options.learning_rate, fused=True)
    kernels: list[dict[str, bool]] = []
    if "fused" in accepted and not (mixed_precision and options.gradient_clip > 0):
        kernels.append({"fused": True})
    if "foreach" in accepted:
        kernels.append({"foreach": True})
    for kernel in kernels:
        try:
            return cls(groups, lr=options.learning_rate, **kernel)
        except (RuntimeError, ValueError, TypeError):  # no such kernel for this device or dtype
            continue
    return cls(groups, lr=options.learning_rate)


FLAT_OPTIMIZERS = ("Adam", "AdamW")
"""Element-wise optimisers whose step over one flat tensor equals their step over the pieces."""


def flat_steppable(name: str, parameters: list[Tensor]) -> bool:
    """Whether :class:`FlatOptimizer` steps these: Adam(W), float32 CPU parameters (on an
    accelerator the fused kernels already take all parameters in one launch)."""
    return (
        name in FLAT_OPTIMIZERS
        and len(parameters) > 1
        and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in parameters)
    )


class FlatOptimizer(torch.optim.Optimizer):
    """``inner(groups, **options)`` stepping every parameter group as one flat tensor.

    torch's fused CPU Adam(W) kernel still walks the parameters one by one, with a few small
    operations each (step counter, scalar reads): for a network of a hundred small tensors
    that costs more than the arithmetic. Here each group's parameters are moved into one
    contiguous buffer (each piece starting on a 64-byte boundary, as the matrix kernels like)
    and become views of it: the same ``Parameter`` objects, so the module's ``state_dict``, a
    compiled graph and gradient clipping see nothing new. Gradients are views of a second
    buffer, so autograd accumulates into place; the inner optimiser steps the flat tensor.

    ``param_groups`` are the inner class's own (per parameter, every hyper-parameter filled
    in), so learning-rate schedulers, gradient clipping and AMP's unscaling work on them as
    usual; their values are handed to the flat groups before every step. ``state_dict`` and
    ``load_state_dict`` use torch's per-parameter layout, so checkpoints are interchangeable
    with a plain ``inner`` optimiser (a run resumed on a GPU reads them, and back).

    A parameter without a gradient keeps its value and moments, as torch skips it. Two things
    are shared by a group instead of kept per parameter: the step counter (Adam's bias
    correction), and ``zero_grad``'s "none" (a parameter that had a gradient in the last step
    gets a zeroed one, not None). Both differ from torch only for a parameter that has
    gradients in some steps and not in others; in spanet_lite's networks which parameters get
    gradients follows from the options, not the batch.
    """

    ALIGN = 16
    """Elements (of float32: 64 bytes) each parameter's piece of the buffer is aligned to."""

    def __init__(
        self, inner: type[torch.optim.Optimizer], groups: Iterable[dict[str, Any]], **options: Any
    ) -> None:
        template = inner(list(groups), **options)  # fills every group's hyper-parameters, holds no state
        super().__init__(template.param_groups, template.defaults)
        self._flats: list[Tensor] = []
        self._slices: list[list[slice]] = []
        self._grads: list[list[Tensor]] = []
        self._seen: list[list[bool]] = []
        flat_groups = []
        for group in self.param_groups:
            params: list[Tensor] = group["params"]
            slices, start = [], 0
            for p in params:
                slices.append(slice(start, start + p.numel()))
                start += -(-p.numel() // self.ALIGN) * self.ALIGN
            flat = torch.zeros(start, dtype=params[0].dtype, device=params[0].device)
            flat.grad = torch.zeros_like(flat)
            with torch.no_grad():
                for p, where in zip(params, slices, strict=True):
                    flat[where].copy_(p.reshape(-1))
                    p.data = flat[where].view_as(p)
            self._flats.append(flat)
            self._slices.append(slices)
            self._grads.append([flat.grad[where].view_as(p) for p, where in zip(params, slices, strict=True)])
            self._seen.append([False] * len(params))
            flat_groups.append({**_hyper(group), "params": [flat]})
        self._inner = inner(flat_groups, **options)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradient buffers; a parameter whose gradient is not a view of them (none
        yet, or one set from outside) gets None with ``set_to_none``, else its own zeroed."""
        for flat, params, views in zip(self._flats, self.param_groups, self._grads, strict=True):
            flat.grad.zero_()  # type: ignore[union-attr]
            for p, view in zip(params["params"], views, strict=True):
                if p.grad is None or p.grad is view:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        kept: list[tuple[Tensor, slice, Tensor]] = []
        pairs = zip(self.param_groups, self._inner.param_groups, self._flats, strict=True)
        for index, (group, inner, flat) in enumerate(pairs):
            inner.update(_hyper(group))
            views, slices, seen = self._grads[index], self._slices[index], self._seen[index]
            for i, p in enumerate(group["params"]):
                grad = p.grad
                if grad is views[i]:
                    seen[i] = True
                elif grad is None:
                    views[i].zero_()
                    kept.extend(self._keep(flat, slices[i]))
                else:  # autograd's own tensor (the parameter had none before): adopt it
                    views[i].copy_(grad)
                    p.grad = views[i]
                    seen[i] = True
        self._inner.step()
        for tensor, where, saved in kept:
            tensor[where] = saved
        return loss

    def _keep(self, flat: Tensor, where: slice) -> list[tuple[Tensor, slice, Tensor]]:
        """A parameter's value and moments, to put back after the step (it had no gradient)."""
        state = self._inner.state.get(flat, {})
        tensors = [flat, *(v for v in state.values() if v.shape == flat.shape)]
        return [(tensor, where, tensor[where].clone()) for tensor in tensors]

    def state_dict(self) -> dict[str, Any]:
        """torch's per-parameter layout: what ``inner`` over the same parameters would save."""
        state: dict[int, dict[str, Tensor]] = {}
        groups, index = [], 0
        layout = zip(self.param_groups, self._flats, self._slices, self._seen, strict=True)
        for group, flat, slices, seen in layout:
            flat_state = self._inner.state.get(flat, {})
            ids = []
            for p, where, has in zip(group["params"], slices, seen, strict=True):
                if has and flat_state:
                    state[index] = {
                        key: value[where].view_as(p).clone() if value.shape == flat.shape else value.clone()
                        for key, value in flat_state.items()
                    }
                ids.append(index)
                index += 1
            groups.append({**_hyper(group), "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Read torch's per-parameter layout (from this class or from ``inner`` itself)."""
        saved_groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g["params"]) for g in saved_groups] != sizes:
            raise ValueError("loaded state dict has parameter groups of other sizes than this optimizer's")
        saved_state = state_dict["state"]
        pairs = zip(self.param_groups, saved_groups, self._flats, self._slices, strict=True)
        for index, (group, saved, flat, slices) in enumerate(pairs):
            group.update(_hyper(saved))
            entries = [saved_state.get(i) for i in saved["params"]]
            self._seen[index] = [entry is not None for entry in entries]
            present = [entry for entry in entries if entry is not None]
            if not present:
                self._inner.state.pop(flat, None)
                continue
            merged: dict[str, Tensor] = {}
            for key, sample in present[0].items():
                if sample.dim() == 0:  # the step counter: shared (equal for parameters stepped together)
                    merged[key] = max((entry[key] for entry in present), key=float).clone()
                    continue
                merged[key] = torch.zeros_like(flat)
                for entry, where in zip(entries, slices, strict=True):
                    if entry is not None:
                        merged[key][where] = entry[key].reshape(-1).to(flat)
            self._inner.state[flat] = merged
        for group, inner in zip(self.param_groups, self._inner.param_groups, strict=True):
            inner.update(_hyper(group))


def _hyper(group: dict[str, Any]) -> dict[str, Any]:
    """A parameter group's settings without its parameters."""
    return {key: value for key, value in group.items() if key != "params"}
