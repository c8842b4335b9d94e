"""Torch modules that apply :class:`DatasetStatistics` inside the network.

The network takes *raw* features (file units) so that checkpoints and ONNX exports need
nothing but the run directory. Both transforms follow ``dataset/statistics.py``:

* features: ``x -> log(1 + x)`` for ``log`` features, then ``(x - mean) / std``; padded
  slots are set to exactly 0 afterwards (whatever the file held there, NaN included);
* regression targets: gaussian ``(y - mean) / std``, laplacian ``(y - median) / MAD``,
  log_gaussian ``s(y) = sign(y) log(1 + |y|)`` then ``(s - mean) / std``; and the inverse.

Statistics are stored as non-persistent buffers: they move with the module between
devices, but the state dict holds only learned weights (the statistics live in
``statistics.json`` and the checkpoint's hyper-parameters, one source of truth).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset.statistics import DatasetStatistics


class FeatureNormalizer(nn.Module):
    """Raw features -> network inputs, per input; padded slots become 0.

    An input missing from ``statistics`` (e.g. a hand-built test network) is left
    unscaled (mean 0, std 1); the log step follows the event file regardless.
    ``normalize=False`` (option ``normalize_features``) skips the mean/std step.
    """

    def __init__(self, spec: EventSpec, statistics: DatasetStatistics, normalize: bool = True) -> None:
        super().__init__()
        self.names = [spec_input.name for spec_input in spec.inputs]
        self.sequential = {spec_input.name for spec_input in spec.sequential}
        self.has_log: dict[str, bool] = {}
        for i, spec_input in enumerate(spec.inputs):
            count = spec_input.num_features
            mean = statistics.feature_mean.get(spec_input.name, [0.0] * count)
            std = statistics.feature_std.get(spec_input.name, [1.0] * count)
            if len(mean) != count or len(std) != count:
                raise ValueError(
                    f"statistics for input {spec_input.name!r} have {len(mean)} means and {len(std)} stds, "
                    f"the event file lists {count} features"
                )
            mean_t = torch.tensor(mean, dtype=torch.float32) if normalize else torch.zeros(count)
            std_t = torch.tensor(std, dtype=torch.float32) if normalize else torch.ones(count)
            std_t = torch.where(std_t > 0, std_t, torch.ones_like(std_t))
            log = torch.tensor([f.log for f in spec_input.features], dtype=torch.bool)
            self.has_log[spec_input.name] = bool(log.any())
            self.register_buffer(f"mean_{i}", mean_t, persistent=False)
            self.register_buffer(f"inv_std_{i}", 1.0 / std_t, persistent=False)
            self.register_buffer(f"log_{i}", log, persistent=False)

    def forward(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """SEQUENTIAL (B, N, F) and GLOBAL (B, F) raw features -> normalised, same shapes."""
        result = {}
        for i, name in enumerate(self.names):
            x = features[name].float()
            if self.has_log[name]:
                x = torch.where(getattr(self, f"log_{i}"), torch.log1p(x), x)
            x = (x - getattr(self, f"mean_{i}")) * getattr(self, f"inv_std_{i}")
            if name in self.sequential:
                x = torch.where(masks[name].unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
            result[name] = x
        return result


def signed_log1p(y: Tensor) -> Tensor:
    """``sign(y) log(1 + |y|)``: the log_gaussian pre-transform, odd and defined for all y."""
    return torch.sign(y) * torch.log1p(torch.abs(y))


def signed_expm1(z: Tensor) -> Tensor:
    """Inverse of :func:`signed_log1p`.

    While an ONNX graph is traced it is written ``exp(|z|) - 1``: ONNX has no ``expm1`` (the
    exporter stopped with a traceback on every run with a ``log_gaussian`` target), and the
    difference, float rounding near 0, is far below a regression's resolution.
    """
    magnitude = torch.abs(z)
    grown = torch.exp(magnitude) - 1.0 if torch.onnx.is_in_onnx_export() else torch.expm1(magnitude)
    return torch.sign(z) * grown


class RegressionNormalizer(nn.Module):
    """Regression targets between file units and the network's normalised units.

    A key missing from ``statistics`` has center 0 and scale 1. NaN (missing target)
    stays NaN in both directions.
    """

    def __init__(self, spec: EventSpec, statistics: DatasetStatistics) -> None:
        super().__init__()
        self.types = {target.key: target.type for target in spec.regressions}
        self.centers = {k: float(statistics.regression_center.get(k, 0.0)) for k in self.types}
        scales = {k: float(statistics.regression_scale.get(k, 1.0)) for k in self.types}
        self.scales = {k: (s if s > 0 else 1.0) for k, s in scales.items()}

    def _check(self, key: str) -> None:
        if key not in self.types:
            raise KeyError(f"{key!r} is not a regression target of this event file ({', '.join(self.types)})")

    def normalize(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw targets (file units) -> normalised units, per ``RegressionTarget.key``."""
        result = {}
        for key, y in values.items():
            self._check(key)
            if self.types[key] == "log_gaussian":
                y = signed_log1p(y)
            result[key] = (y - self.centers[key]) / self.scales[key]
        return result

    def denormalize(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Normalised predictions -> file units, per ``RegressionTarget.key``."""
        result = {}
        for key, z in values.items():
            self._check(key)
            y = z * self.scales[key] + self.centers[key]
            result[key] = signed_expm1(y) if self.types[key] == "log_gaussian" else y
        return result
