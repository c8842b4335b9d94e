"""The LightningModule: one ``_step`` for training and validation, optimiser and schedule.

The network is a plain ``nn.Module`` held as ``self.network`` (so checkpoint weights sit under
``network.``); this class owns what only training needs: losses, logging, validation metrics
and the optimiser. Its constructor takes the three things a checkpoint must carry to rebuild
the network without any file: the event file's text, the options and the statistics
(``hyper_parameters`` of every checkpoint).

Validation metrics are computed once per epoch over the whole validation split (gathered
across processes), not averaged over batches, because purities are ratios over events.

Every training and validation batch is trimmed to the object slots its events use
(:meth:`~spanet_lite.dataset.batch.Batch.trimmed`) before the network sees it: exact (same
losses and metrics up to float rounding) and much cheaper when the file's padded width is well
above the typical object count. Batches from the device-resident loader, or moved to a GPU by
the data module, arrive already trimmed (:class:`~spanet_lite.dataset.device.SizedBatch`).

**No host round trips in a step.** The training and validation steps never read a tensor
value on the host (no ``.item()``, ``.tolist()``, Python branching on tensor values): loss
terms are summed on the device (:class:`RunningMeans`) and read once per epoch, validation
decodes greedily on the device (:mod:`spanet_lite.assignment.torch_decoding`; on the CPU
the faster numpy decoder) and keeps its records there. A GPU therefore never waits for the
host inside a step (tested with ``torch.cuda.set_sync_debug_mode("error")`` when CUDA is
present). ``decoding: exact`` is the exception: it decodes on the host, one round trip per
validation step.

The optimiser uses its fused kernel where it has one, on the CPU too, where Adam(W) steps each
parameter group as one flat tensor (:func:`~spanet_lite.training.optimizer.build_optimizer`).
``compile`` runs network and losses through ``torch.compile`` as one graph
(:func:`network_losses`; dynamic shapes on the CPU, static on CUDA;
:mod:`~spanet_lite.training.compilation`); mixed precision and TF32 are set by
:mod:`spanet_lite.training.hardware` (precision) and :mod:`spanet_lite.training.fit` (TF32).
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from spanet_lite.assignment.decoding import decode
from spanet_lite.assignment.metrics import assignment_metrics, match_outcome, paired_truth
from spanet_lite.assignment.torch_decoding import decode_greedy_torch
from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.training.compilation import compile_arguments
from spanet_lite.training.losses import LossResult, compute_losses
from spanet_lite.training.optimizer import build_optimizer
from spanet_lite.training.schedules import schedule_steps, warmup_cosine_scheduler

if TYPE_CHECKING:
    from spanet_lite.model.network import LayoutTables, SpanetNetwork
    from spanet_lite.model.outputs import Outputs


def network_losses(
    network: SpanetNetwork, spec: EventSpec, options: Options, batch: Batch, tables: LayoutTables
) -> LossResult:
    """The network's losses on ``batch``: what a compiled run compiles, as one graph.

    With the losses in the network's graph their few hundred small operations (gathers, masks,
    sums; forward and backward) are fused with the network's own
    (:mod:`~spanet_lite.training.compilation` has the measured gain).
    """
    outputs = network(batch.features, batch.masks, batch.pairs, tables)
    return compute_losses(outputs, batch, network, spec, options)


def _weighted_average(values: Tensor, weights: Tensor) -> Tensor:
    """sum(w v) / sum(w) in float64 (callers pass positive weights only, so never 0 / 0)."""
    w = weights.double()
    return (w * values.double()).sum() / w.sum()


def _without_views(batch: Batch) -> Batch:
    """``batch`` with every tensor that is a view of another (a trimmed input, a slice of the
    loaded block) copied: dynamo guards on that (``tensor._base``), and one kind of batch or the
    other would otherwise compile a second graph (minutes)."""

    def own(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.clone() if value._base is not None else value
        if isinstance(value, dict):
            return {key: own(item) for key, item in value.items()}
        return value

    return replace(batch, **{f.name: own(getattr(batch, f.name)) for f in fields(batch)})


class RunningMeans:
    """Event-weighted sums of scalar loss terms, kept on the device and read once per epoch.

    One ``torch.stack`` and one in-place add per step replace a ``self.log`` call per term,
    each of which costs Lightning a walk over its result collection (about 2 ms per call on
    the development CPU, more than the arithmetic of a small step).
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.sums: Tensor | None = None
        self.events = 0

    def add(self, values: dict[str, Tensor], events: int) -> None:
        stacked = torch.stack([value.detach().float() for value in values.values()])
        if self.sums is None or list(values) != self.names:
            self.names, self.sums, self.events = list(values), stacked * events, events
        else:
            if self.sums.device != stacked.device:  # restored from a checkpoint before the move
                self.sums = self.sums.to(stacked.device)
            self.sums.add_(stacked, alpha=events)
            self.events += events

    def state_dict(self) -> dict[str, Any]:
        sums = None if self.sums is None else self.sums.detach().cpu()
        return {"names": list(self.names), "sums": sums, "events": self.events}

    @classmethod
    def total(cls, running: RunningMeans, strategy: Any) -> RunningMeans:
        """``running`` summed over the processes of ``strategy`` (a collective: all must call)."""
        assert running.sums is not None
        total = cls()
        total.names = list(running.names)
        total.sums = strategy.reduce(running.sums.clone(), reduce_op="sum")
        events = torch.tensor(float(running.events), device=running.sums.device)
        total.events = int(strategy.reduce(events, reduce_op="sum").item())
        return total

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.names = list(state.get("names", []))
        sums = state.get("sums")
        self.sums = None if sums is None else sums.to(device)
        self.events = int(state.get("events", 0))


class SpanetModule(pl.LightningModule):
    """Training wrapper around :class:`~spanet_lite.model.network.SpanetNetwork`.

    Parameters
    ----------
    event_file_text:
        The event file's YAML, verbatim (the topology is re-parsed from it on load).
    options:
        ``Options.to_dict()`` (or an :class:`Options`).
    statistics:
        ``DatasetStatistics.to_dict()`` (or a :class:`DatasetStatistics`).
    """

    def __init__(
        self,
        event_file_text: str,
        options: dict[str, Any] | Options,
        statistics: dict[str, Any] | DatasetStatistics,
        frozen: Sequence[str] = (),
    ) -> None:
        super().__init__()
        from spanet_lite.model.network import SpanetNetwork

        options = Options.from_dict(options)
        if isinstance(statistics, DatasetStatistics):
            statistics = statistics.to_dict()
        self.save_hyperparameters(
            {"event_file_text": event_file_text, "options": options.to_dict(), "statistics": statistics,
             "frozen": []}
        )
        self.spec: EventSpec = parse_event_spec(event_file_text, source="event_file.yaml")
        self.options = options
        self.statistics = DatasetStatistics.from_dict(statistics)
        self.network = SpanetNetwork(self.spec, self.options, self.statistics)
        self._sequential = [s.name for s in self.spec.sequential]
        self.latest_terms: dict[str, Tensor] = {}
        self._validation_store: list[dict[str, Any]] = []
        self._running = {"train": RunningMeans(), "val": RunningMeans()}
        self.decode_on_device = False
        """Greedy validation decoding with the torch decoder also on the CPU (where the numpy one
        is ~10x faster and there is no device to wait for); on an accelerator it always is."""
        self.compile_mode = "off"
        """What :meth:`on_fit_start` compiles (``"off"``, ``"dynamic"`` on the CPU or ``"network"``
        on CUDA); ``fit`` sets it from :func:`~spanet_lite.training.compilation.choose_compile`."""
        self.report: Callable[[str], None] = print
        """Where a one-line note goes (the run's console)."""
        self._compiled: Any = None
        self._compile_checked = True
        self._frozen_heap = False
        self._unreached: tuple[torch.nn.Parameter, ...] | None = ()
        """Weights no loss reaches, learned by the eager first step of a compiled run (None until
        then): compiled steps leave their gradients None, as eager steps do."""
        self._weight_decays: list[float | None] | None = None
        """Each optimiser group's weight decay as this run's options set it (None for a group
        without one), recorded by :meth:`configure_optimizers` for :meth:`on_train_start`."""
        self.steps_per_epoch: int | None = None
        """Optimiser steps per epoch the schedule was built for (set by :meth:`configure_optimizers`),
        saved in every checkpoint: a run continued from it must take as many, see
        :func:`~spanet_lite.training.fit.check_steps_per_epoch`."""
        self.freeze_parameters(frozen)

    def freeze_parameters(self, names: Sequence[str]) -> None:
        """Keep the named parameters fixed (``requires_grad=False``), and record them in the
        checkpoint so that ``--resume`` keeps them fixed too (fine-tuning with -sf ... -fsf)."""
        wanted = set(names)
        frozen = set(self.hparams["frozen"])
        for name, parameter in self.named_parameters():
            if name in wanted:
                parameter.requires_grad_(False)
                frozen.add(name)
        self.hparams["frozen"] = sorted(frozen)

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def batch_losses(self, batch: Batch) -> tuple[Batch, Outputs | None, LossResult]:
        """The batch trimmed to the object slots its events use, the network's outputs on it and
        its losses (those of the untrimmed batch, up to float rounding). A compiled training
        step runs network and losses as one graph and returns no outputs (None).

        Trimming happens here rather than in ``on_before_batch_transfer`` (on the host): that
        costs one device-to-host read of the kept widths per step on an accelerator, but
        Lightning warns on every run when a LightningModule overrides that hook next to a data
        module.
        """
        batch = batch.trimmed(self._sequential)
        # Validation runs eagerly: compiling its gradient-free graph as well would cost another
        # few minutes at the first validation, for a small share of the run's steps.
        # The first training step of a compiled run is eager too: it shows which weights no
        # loss reaches (see on_after_backward).
        if self._compiled is not None and self.network.training and self._unreached is not None:
            result = self._compiled_losses(batch)
            if result is not None:
                return batch, None, result
        outputs = self.network(batch.features, batch.masks, batch.pairs)
        return batch, outputs, compute_losses(outputs, batch, self.network, self.spec, self.options)

    def _compiled_losses(self, batch: Batch) -> LossResult | None:
        """The compiled :func:`network_losses` of ``batch``; None when compiling it just failed
        (the run then trains eagerly from here on)."""
        # The tables that depend only on the widths are built here, eagerly, so that the graph
        # neither breaks to build them nor fixes the widths.
        tables = self.network.layout_tables(batch.masks)
        batch = _without_views(batch)
        if self._compile_checked:
            return self._compiled(batch, tables)
        # The first compiled call is where compiling happens, so where it fails.
        self._compile_checked = True
        try:
            result = self._compiled(batch, tables)
        except Exception as error:  # any compiler failure means: train eagerly
            self.drop_compiled()
            self.compile_mode = "off"
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            self.report(f"torch.compile failed ({type(error).__name__}: {first_line}); training eagerly")
            return None
        # Compiling leaves about a million Python objects (graphs, guards, generated code) that
        # live as long as the run, and every full garbage collection walks them all (0.7-1.5 s
        # each, SPANet's ttbar options on the CPU). Out of the collector's sight until training
        # ends (drop_compiled).
        gc.collect()
        gc.freeze()
        self._frozen_heap = True
        return result

    def compile_losses(self, **options: Any) -> None:
        """Compile :func:`network_losses` over this module's network (``options`` go to
        ``torch.compile``); used from the next training step after the first."""
        losses = functools.partial(network_losses, self.network, self.spec, self.options)
        # Kept outside the module registry so checkpoints keep the network's own keys.
        object.__setattr__(self, "_compiled", torch.compile(losses, **options))
        self._compile_checked = False

    def drop_compiled(self) -> None:
        """Back to the eager network (and a garbage collector that sees everything again);
        ``fit`` calls this however training ended."""
        object.__setattr__(self, "_compiled", None)
        if self._frozen_heap:
            gc.unfreeze()
            self._frozen_heap = False

    def _step(self, batch: Batch, stage: str) -> Tensor:
        """Forward, losses, running sums; on validation also keep what the epoch metrics need."""
        batch, outputs, result = self.batch_losses(batch)
        self._running[stage].add({"total_loss": result.total, **result.terms}, batch.batch_size)
        if stage == "train":
            # The running sums above are checkpointed with the module (``on_save_checkpoint``),
            # so an epoch resumed from a mid-epoch checkpoint averages all of its batches.
            self.latest_terms = {
                "total_loss": result.total.detach(),
                **{name: value.detach() for name, value in result.terms.items() if "/" not in name},
            }
        else:
            self._validation_store.append(self._evaluation_record(outputs, batch))
        return result.total

    @torch.no_grad()
    def _evaluation_record(self, outputs: Any, batch: Batch) -> dict[str, Any]:
        """Decoded assignments, targets and head outputs of one validation batch (kept on device).

        Predictions and targets are in the batch's own (trimmed) object space; the metrics
        only compare them within an event, where that space is the file's, relabelled in order.
        """
        record: dict[str, Any] = {}
        if self.spec.particles:
            on_accelerator = next(iter(outputs.assignments.values())).device.type != "cpu"
            if self.options.decoding == "greedy" and (on_accelerator or self.decode_on_device):
                predictions = decode_greedy_torch(outputs.assignments, self.spec.particle_names)
            else:
                predictions = decode(outputs.assignments, self.spec, mode=self.options.decoding)
            record["predictions"] = predictions
            record["targets"] = dict(batch.targets)
            record["target_masks"] = dict(batch.target_masks)
        size = batch.batch_size
        weights = (
            batch.event_weights if batch.event_weights is not None else torch.ones(size, device=self.device)
        )
        record["weights"] = weights.float()
        if outputs.regressions:
            truth = self.network.normalize_regressions(dict(batch.regressions))
            # (B, 2): prediction and truth, kept apart so that the epoch's metrics can pair an
            # EVENT-symmetric particle's truth with the particle its assignment went for.
            record["regressions"] = {
                key: torch.stack([outputs.regressions[key].float(), truth[key].float()], dim=-1)
                for key in outputs.regressions
            }
        if outputs.classifications:
            record["classifications"] = {
                key: torch.stack([logits.argmax(-1), batch.classifications[key]], dim=-1)
                for key, logits in outputs.classifications.items()
            }
        return record

    # --------------------------------------------------------- epoch metrics
    def on_fit_start(self) -> None:
        if self.compile_mode == "off":
            return
        # One graph per width bucket (CUDA) or per symbolic shape family (CPU), with and without
        # gradients: allow more than the default 8 recompilations before dynamo gives up.
        config = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(config, name):
                setattr(config, name, max(int(getattr(config, name)), 32))
        self.compile_losses(**compile_arguments(self.compile_mode))
        self._unreached = None

    def on_after_backward(self) -> None:
        """Give weights no loss reaches no gradient in compiled steps either.

        One compiled graph returns zeros, where eager autograd returns None, for weights the loss
        does not depend on (the detection heads at ``detection_loss_scale: 0``, say), and AdamW
        would then decay them, which SPANet and our eager steps do not. Which weights those are
        follows from the options, not the batch, so the eager first step tells.
        """
        if self._compiled is None:
            return
        if self._unreached is None:
            self._unreached = tuple(
                p for p in self.network.parameters() if p.requires_grad and p.grad is None
            )
        for parameter in self._unreached:
            parameter.grad = None

    def on_fit_end(self) -> None:
        """Leave the network eager, as it was built, for whatever uses it after training."""
        self.drop_compiled()

    def on_train_epoch_end(self) -> None:
        self._log_running("train")  # only left when no validation ran this epoch

    def on_validation_epoch_start(self) -> None:
        self._validation_store = []
        self._running["val"] = RunningMeans()

    def _log_running(self, stage: str) -> None:
        """Log the epoch means of ``stage``'s loss terms (one device read) and start over."""
        running, self._running[stage] = self._running[stage], RunningMeans()
        if running.sums is None:
            return
        sums = running.sums
        events = torch.tensor(float(running.events), device=sums.device)
        if self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
            events = self.trainer.strategy.reduce(events, reduce_op="sum")
        means = (sums / events.clamp_min(1.0)).tolist()
        for name, value in zip(running.names, means, strict=True):
            self.log(
                f"{stage}/{name}", value, on_step=False, on_epoch=True, sync_dist=False, rank_zero_only=False
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        running = self._running["train"]
        if self._trainer is not None and self.trainer.world_size > 1 and running.sums is not None:
            # Each process sums its own share; rank 0 writes the file, so it keeps the sums of all
            # (every process saves, with as many steps behind it, so all take part in the reduce).
            running = RunningMeans.total(running, self.trainer.strategy)
        checkpoint["running_loss_terms"] = running.state_dict()
        if self.steps_per_epoch is not None:
            checkpoint["steps_per_epoch"] = self.steps_per_epoch
        if self._trainer is not None:  # the steps per epoch follow from it: a resume must repeat it
            checkpoint["processes"] = int(self.trainer.world_size)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("running_loss_terms")
        if state:
            running = self._running["train"]
            running.load_state_dict(state, self.device)
            if self._trainer is not None and self.trainer.global_rank > 0 and running.sums is not None:
                # The sums are every process's (on_save_checkpoint): rank 0 carries them on, the
                # others start from zero, so the epoch's reduce counts them once.
                running.sums.zero_()
                running.events = 0

    def on_validation_epoch_end(self) -> None:
        records, self._validation_store = self._validation_store, []
        if self.trainer.sanity_checking:
            self._running["val"] = RunningMeans()
            return
        # The training means are logged here too: the recorder reads them at the end of the
        # training epoch, before the module's own on_train_epoch_end runs.
        self._log_running("train")
        self._log_running("val")
        if not records:
            return
        metrics = self._epoch_metrics(records)
        for name, value in metrics.items():
            self.log(
                f"val/{name}", value, on_step=False, on_epoch=True, sync_dist=False, rank_zero_only=False
            )

    def _epoch_metrics(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """Purities, regression error and classification accuracy over the whole split.

        All event-weighted, as documented; regression error and accuracy take the events of
        positive weight only, the rule of spanet-test's regression and classification summaries,
        so the logged accuracy is the one ``run.evaluate`` reports for the same events.
        """
        gather = self._gather
        weights = gather(torch.cat([r["weights"] for r in records]))
        metrics: dict[str, float] = {}
        regressions = {key: gather(torch.cat([r["regressions"][key] for r in records]))
                       for key in records[0].get("regressions", {})}
        classifications = {key: gather(torch.cat([r["classifications"][key] for r in records]))
                           for key in records[0].get("classifications", {})}
        if self.spec.particles:
            names = self.spec.particle_names
            predictions = {p: gather(torch.cat([r["predictions"][p] for r in records])) for p in names}
            targets = {p: gather(torch.cat([r["targets"][p] for r in records])) for p in names}
            masks = {p: gather(torch.cat([r["target_masks"][p] for r in records])) for p in names}
            values = assignment_metrics(predictions, targets, masks, self.spec, weights=weights)
            metrics.update({key: float(value) for key, value in values.items()})
            purities = [metrics[f"particle_purity/{p}"] for p in names if f"particle_purity/{p}" in metrics]
            finite = [v for v in purities if math.isfinite(v)]
            if finite:
                metrics["particle_purity"] = sum(finite) / len(finite)
            if len(self.spec.event_symmetry.elements) > 1 and (regressions or classifications):
                element = match_outcome(predictions, targets, masks, self.spec).element
                for heads, declared in ((regressions, self.spec.regressions),
                                        (classifications, self.spec.classifications)):
                    truth = paired_truth(element, self.spec, {key: pair[:, 1] for key, pair in heads.items()},
                                         declared)
                    for key, pair in heads.items():
                        pair[:, 1] = torch.as_tensor(truth[key], device=pair.device, dtype=pair.dtype)
        if regressions:
            errors = []
            for key, pair in regressions.items():
                residual = pair[:, 0] - pair[:, 1]
                valid = torch.isfinite(residual) & (weights > 0)
                if valid.any():
                    error = float(_weighted_average(residual[valid].abs(), weights[valid]))
                    metrics[f"regression_error/{key}"] = error
                    errors.append(error)
            if errors:
                metrics["regression_error"] = sum(errors) / len(errors)
        if classifications:
            accuracies = []
            for key, pairs in classifications.items():
                labelled = (pairs[:, 1] >= 0) & (weights > 0)
                if labelled.any():
                    correct = (pairs[labelled, 0] == pairs[labelled, 1]).float()
                    accuracy = float(_weighted_average(correct, weights[labelled]))
                    metrics[f"classification_accuracy/{key}"] = accuracy
                    accuracies.append(accuracy)
            if accuracies:
                metrics["classification_accuracy"] = sum(accuracies) / len(accuracies)
        return metrics

    def _gather(self, tensor: Tensor) -> Tensor:
        """Concatenate ``tensor`` (first axis) over all processes; ranks may hold different counts."""
        if self.trainer.world_size <= 1:
            return tensor
        length = torch.tensor([tensor.shape[0]], device=tensor.device)
        lengths = self.all_gather(length).reshape(-1)
        longest = int(lengths.max())
        padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
        padded[: tensor.shape[0]] = tensor
        gathered = self.all_gather(padded)  # (world, longest, ...)
        return torch.cat([gathered[i, : int(n)] for i, n in enumerate(lengths)])

    # ------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        """The options' optimiser (:mod:`spanet_lite.training.optimizer`) and its per-step schedule."""
        options = self.options
        trainer = self._trainer
        precision = str(getattr(trainer, "precision", "")) if trainer is not None else ""
        optimizer = build_optimizer(self.network, options, mixed_precision="mixed" in precision)
        steps_per_epoch = self.steps_per_epoch = self._steps_per_epoch()
        total, warmup = schedule_steps(
            epochs=options.epochs,
            steps_per_epoch=steps_per_epoch,
            warmup_epochs=options.learning_rate_warmup_epochs,
        )
        scheduler = warmup_cosine_scheduler(
            optimizer, total_steps=total, warmup_steps=warmup, cycles=options.learning_rate_cycles
        )
        # None: an optimiser without weight decay (Rprop; build_optimizer leaves the key out)
        self._weight_decays = [
            float(group["weight_decay"]) if "weight_decay" in group else None
            for group in optimizer.param_groups
        ]
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_start(self) -> None:
        """Put this run's ``learning_rate`` and ``l2_penalty`` into the optimiser and schedule.

        Lightning restores them from a checkpoint (``--resume``, ``-cf``) with the values of the
        run that wrote it (the schedule's ``base_lrs``, each group's ``lr`` and ``weight_decay``),
        so ``--resume --lr X`` trained on at the old rate while the options said X. The schedule
        keeps its restored step and this run's shape (``--epochs`` stretches it), so the rate is
        recomputed from both here; for a new run this changes nothing.
        """
        decays = self._weight_decays
        if not self.trainer.optimizers or not self.trainer.lr_scheduler_configs or decays is None:
            return
        optimizer = self.trainer.optimizers[0]
        scheduler = self.trainer.lr_scheduler_configs[0].scheduler
        if len(decays) != len(optimizer.param_groups) or not hasattr(scheduler, "lr_lambdas"):
            return
        rate = float(self.options.learning_rate)
        scheduler.base_lrs = [rate] * len(optimizer.param_groups)
        for group, factor, decay in zip(optimizer.param_groups, scheduler.lr_lambdas, decays, strict=True):
            group["initial_lr"] = rate
            group["lr"] = rate * factor(scheduler.last_epoch)
            if decay is not None:
                group["weight_decay"] = decay
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() reports

    def _steps_per_epoch(self) -> int:
        """Optimiser steps per epoch, from the training loader's length.

        ``Trainer.estimated_stepping_batches`` would answer too, but it builds the training
        iterator before a checkpoint is restored, and then Lightning never hands the loader
        its saved position: a run resumed mid-epoch would replay the epoch's first batches.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            length = len(datamodule.train_dataloader())
            return max(1, math.ceil(length / self.trainer.accumulate_grad_batches))
        total = self.trainer.estimated_stepping_batches
        return max(1, math.ceil(total / max(1, self.options.epochs)))
