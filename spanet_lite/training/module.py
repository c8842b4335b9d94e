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
above the typical object count.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from spanet_lite.assignment.decoding import decode
from spanet_lite.assignment.metrics import assignment_metrics
from spanet_lite.config.event_file import parse_event_spec
from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.dataset.statistics import DatasetStatistics
from spanet_lite.training.optimizer import build_optimizer
from spanet_lite.training.schedules import schedule_steps, warmup_cosine_scheduler

if TYPE_CHECKING:
    from spanet_lite.model.outputs import Outputs
    from spanet_lite.training.losses import LossResult


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
    ) -> None:
        super().__init__()
        from spanet_lite.model.network import SpanetNetwork

        options = Options.from_dict(options)
        if isinstance(statistics, DatasetStatistics):
            statistics = statistics.to_dict()
        self.save_hyperparameters(
            {"event_file_text": event_file_text, "options": options.to_dict(), "statistics": statistics}
        )
        self.spec: EventSpec = parse_event_spec(event_file_text, source="event_file.yaml")
        self.options = options
        self.statistics = DatasetStatistics.from_dict(statistics)
        self.network = SpanetNetwork(self.spec, self.options, self.statistics)
        self._sequential = [s.name for s in self.spec.sequential]
        self.latest_terms: dict[str, Tensor] = {}
        self._validation_store: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "val")

    def batch_losses(self, batch: Batch) -> tuple[Batch, Outputs, LossResult]:
        """The batch trimmed to the object slots its events use, the network's outputs on it and
        its losses (those of the untrimmed batch, up to float rounding).

        Trimming happens here rather than in ``on_before_batch_transfer`` (on the host): that
        costs one device-to-host read of the kept widths per step on an accelerator, but
        Lightning warns on every run when a LightningModule overrides that hook next to a data
        module.
        """
        from spanet_lite.training.losses import compute_losses

        batch = batch.trimmed(self._sequential)
        outputs = self.network(batch.features, batch.masks)
        return batch, outputs, compute_losses(outputs, batch, self.network, self.spec, self.options)

    def _step(self, batch: Batch, stage: str) -> Tensor:
        """Forward, losses, logging; on validation also keep what the epoch metrics need."""
        batch, outputs, result = self.batch_losses(batch)
        size = batch.batch_size
        distributed = self.trainer.world_size > 1  # epoch means over all processes' events
        self.log(
            f"{stage}/total_loss",
            result.total.detach(),
            on_step=False,
            on_epoch=True,
            batch_size=size,
            sync_dist=distributed,
        )
        for name, value in result.terms.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                on_step=False,
                on_epoch=True,
                batch_size=size,
                sync_dist=distributed,
            )
        if stage == "train":
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
            record["regressions"] = {
                key: (outputs.regressions[key].float() - truth[key].float()) for key in outputs.regressions
            }
        if outputs.classifications:
            record["classifications"] = {
                key: torch.stack([logits.argmax(-1), batch.classifications[key]], dim=-1)
                for key, logits in outputs.classifications.items()
            }
        return record

    # --------------------------------------------------------- epoch metrics
    def on_validation_epoch_start(self) -> None:
        self._validation_store = []

    def on_validation_epoch_end(self) -> None:
        records, self._validation_store = self._validation_store, []
        if not records or self.trainer.sanity_checking:
            return
        metrics = self._epoch_metrics(records)
        for name, value in metrics.items():
            self.log(
                f"val/{name}", value, on_step=False, on_epoch=True, sync_dist=False, rank_zero_only=False
            )

    def _epoch_metrics(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """Purities, regression error and classification accuracy over the whole split."""
        gather = self._gather
        weights = gather(torch.cat([r["weights"] for r in records]))
        metrics: dict[str, float] = {}
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
        if "regressions" in records[0]:
            errors = []
            for key in records[0]["regressions"]:
                residual = gather(torch.cat([r["regressions"][key] for r in records]))
                valid = torch.isfinite(residual)
                if valid.any():
                    error = float(residual[valid].abs().mean())
                    metrics[f"regression_error/{key}"] = error
                    errors.append(error)
            if errors:
                metrics["regression_error"] = sum(errors) / len(errors)
        if "classifications" in records[0]:
            accuracies = []
            for key in records[0]["classifications"]:
                pairs = gather(torch.cat([r["classifications"][key] for r in records]))
                labelled = pairs[:, 1] >= 0
                if labelled.any():
                    accuracy = float((pairs[labelled, 0] == pairs[labelled, 1]).float().mean())
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
        optimizer = build_optimizer(self.network, options)
        steps_per_epoch = self._steps_per_epoch()
        total, warmup = schedule_steps(
            epochs=options.epochs,
            steps_per_epoch=steps_per_epoch,
            warmup_epochs=options.learning_rate_warmup_epochs,
        )
        scheduler = warmup_cosine_scheduler(
            optimizer, total_steps=total, warmup_steps=warmup, cycles=options.learning_rate_cycles
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

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
