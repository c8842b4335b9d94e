"""``spanet-export``: the trained network as an ONNX graph, raw inputs in, readable outputs out.

Inputs (dynamic batch axis ``batch`` and, per SEQUENTIAL input, a dynamic object axis):

* ``<input>_data``: float32, SEQUENTIAL (batch, N, F) / GLOBAL (batch, F), raw file units
  (feature normalisation is inside the graph), features in event-file order;
* ``<input>_mask``: bool (batch, N), True = real object (SEQUENTIAL inputs only).

``N`` may be anything up to the input's width in the training file (``max_objects`` in the
run's statistics.json); the graph pads internally to that width (see :class:`ExportWrapper`).

Outputs, in event-file order:

* ``assignment_<particle>``: (batch, N, ..., N) joint log-probabilities over ordered tuples
  in the combined object space (all SEQUENTIAL inputs concatenated), -inf where impossible;
* ``detection_<particle>``: (batch,) probability that the particle is reconstructable;
* ``regression_<key>``: (batch,) de-normalised prediction (file units);
* ``classification_<key>``: (batch, C) class probabilities.

Keys have ``/`` replaced by ``_`` (``regression_EVENT_neutrino_px``). The model's metadata
(``spanet_lite``) holds a JSON description: inputs with their features, particles with their
products, and the output names, so a deployment can find everything without this package.
To turn the assignment outputs into object indices with numpy alone, use
``spanet_lite/assignment/numpy_decoder.py``, which ``--copy-decoder`` writes next to the model
as ``onnx_decoder.py`` (it imports nothing but numpy)::

    import onnxruntime, onnx_decoder
    session = onnxruntime.InferenceSession("model.onnx")
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"Jets_data": jets, "Jets_mask": mask})))
    chosen = onnx_decoder.decode(
        {"t1": out["assignment_t1"], "t2": out["assignment_t2"]},
        detections={"t1": out["detection_t1"], "t2": out["detection_t2"]}, threshold=0.5)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.errors import InputError
from spanet_lite.evaluation.trained import TrainedRun
from spanet_lite.io import atomic_path

OPSET = 17


def output_name(kind: str, key: str) -> str:
    return f"{kind}_{key.replace('/', '_')}"


class ExportWrapper(nn.Module):
    """Positional tensors in (ONNX has no dicts), the documented outputs out, as a tuple.

    The network itself is traced at a fixed width per SEQUENTIAL input (``widths``, the
    training file's ``max_objects``): the graph pads each input up to that width (padded slots
    are masked, so they change nothing) and cuts the assignment outputs back to the objects
    given. So the object axes of the graph are dynamic up to the training width.
    """

    def __init__(self, network: Any, spec: EventSpec, widths: dict[str, int]) -> None:
        super().__init__()
        self.network = network
        self.spec = spec
        self.widths = dict(widths)
        self.regression_keys = [t.key for t in spec.regressions]
        self.classification_keys = [t.key for t in spec.classifications]

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        features: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        keep: list[Tensor] = []  # per input: positions of the given slots in the padded space
        offset = 0
        position = 0
        for source in self.spec.sequential:
            data, mask = tensors[position], tensors[position + 1]
            position += 2
            width = self.widths[source.name]
            missing = width - data.shape[1]
            pad = torch.zeros_like(data[:, :1]).expand(-1, missing, -1)
            features[source.name] = torch.cat([data, pad], dim=1)  # (B, width, F)
            masks[source.name] = torch.cat([mask, torch.zeros_like(mask[:, :1]).expand(-1, missing)], dim=1)
            keep.append(torch.arange(data.shape[1], device=data.device) + offset)
            offset += width
        for source in self.spec.global_inputs:
            features[source.name] = tensors[position]
            position += 1
        slots = torch.cat(keep)  # (N given,) indices into the padded combined space
        outputs = self.network(features, masks)
        results: list[Tensor] = []
        for particle in self.spec.particles:
            values = outputs.assignments[particle.name]
            for axis in range(particle.num_products):
                values = values.index_select(axis + 1, slots)
            results.append(values)
        results += [torch.sigmoid(outputs.detections[p]) for p in self.spec.particle_names]
        if self.regression_keys:
            raw = self.network.denormalize_regressions(dict(outputs.regressions))
            results += [raw[key] for key in self.regression_keys]
        results += [torch.softmax(outputs.classifications[key], dim=-1) for key in self.classification_keys]
        return tuple(results)


def input_names(spec: EventSpec) -> list[str]:
    names = []
    for source in spec.sequential:
        names += [f"{source.name}_data", f"{source.name}_mask"]
    names += [f"{source.name}_data" for source in spec.global_inputs]
    return names


def output_names(spec: EventSpec) -> list[str]:
    names = [output_name("assignment", p) for p in spec.particle_names]
    names += [output_name("detection", p) for p in spec.particle_names]
    names += [output_name("regression", t.key) for t in spec.regressions]
    names += [output_name("classification", t.key) for t in spec.classifications]
    return names


def example_inputs(spec: EventSpec, batch: int = 2, objects: int = 8) -> tuple[Tensor, ...]:
    """Random raw inputs of the right shapes (positive, so log features are defined)."""
    generator = torch.Generator().manual_seed(0)
    tensors: list[Tensor] = []
    for source in spec.sequential:
        tensors.append(torch.rand(batch, objects, source.num_features, generator=generator) * 10 + 1)
        mask = torch.ones(batch, objects, dtype=torch.bool)
        mask[0, objects - 2 :] = False
        tensors.append(mask)
    for source in spec.global_inputs:
        tensors.append(torch.rand(batch, source.num_features, generator=generator) * 10 + 1)
    return tuple(tensors)


def dynamic_axes(spec: EventSpec) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for source in spec.sequential:
        axes[f"{source.name}_data"] = {0: "batch", 1: f"{source.name}_objects"}
        axes[f"{source.name}_mask"] = {0: "batch", 1: f"{source.name}_objects"}
    for source in spec.global_inputs:
        axes[f"{source.name}_data"] = {0: "batch"}
    for particle in spec.particles:
        axes[output_name("assignment", particle.name)] = {0: "batch", **{
            axis + 1: "objects" for axis in range(particle.num_products)
        }}
        axes[output_name("detection", particle.name)] = {0: "batch"}
    for key in [t.key for t in spec.regressions]:
        axes[output_name("regression", key)] = {0: "batch"}
    for key in [t.key for t in spec.classifications]:
        axes[output_name("classification", key)] = {0: "batch"}
    return axes


def description(spec: EventSpec) -> dict[str, Any]:
    """What the graph's metadata says about its inputs and outputs."""
    return {
        "inputs": [
            {"name": s.name, "kind": s.kind, "features": [f.name for f in s.features]} for s in spec.inputs
        ],
        "particles": [{"name": p.name, "products": list(p.product_names)} for p in spec.particles],
        "regressions": {output_name("regression", t.key): t.key for t in spec.regressions},
        "classifications": {output_name("classification", t.key): t.key for t in spec.classifications},
        "input_names": input_names(spec),
        "output_names": output_names(spec),
    }


def export_onnx(run: TrainedRun, path: str | Path, *, opset: int = OPSET) -> Path:
    """Write ``run``'s network to ``path`` as ONNX (atomically) and return the path."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError(path, "", "an output file ending in .onnx", path.suffix or "no suffix")
    try:
        import onnx
    except ImportError:
        raise InputError(None, "spanet-export", "the onnx package (pip install 'spanet-lite[onnx]')",
                         "not installed") from None
    spec = run.spec
    widths = {s.name: int(run.statistics.max_objects.get(s.name, 0)) for s in spec.sequential}
    if min(widths.values(), default=1) < 1:
        raise InputError(run.directory / "statistics.json", "max_objects",
                         "a width for every SEQUENTIAL input", str(run.statistics.max_objects))
    run.network.to("cpu")
    wrapper = ExportWrapper(run.network, spec, widths).eval()
    example = example_inputs(spec, objects=min(widths.values()))
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # The tracer warns that the (padded) widths become constants: that is the design above.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # The newer torch.export-based exporter needs onnxscript, which the onnx extra does not
        # pull in; the TorchScript exporter used here warns that it is the legacy path.
        warnings.simplefilter("ignore", DeprecationWarning)
        wrapper(*example)  # fills the network's per-width caches before tracing
        torch.onnx.export(
            wrapper,
            example,
            str(tmp),
            input_names=input_names(spec),
            output_names=output_names(spec),
            dynamic_axes=dynamic_axes(spec),
            opset_version=opset,
            dynamo=False,
        )
        model = onnx.load(str(tmp))
        entry = model.metadata_props.add()
        entry.key = "spanet_lite"
        entry.value = json.dumps(description(spec))
        onnx.save(model, str(tmp))
    return path
