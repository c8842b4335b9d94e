"""``spanet-export``: the trained network as an ONNX graph in SPANet's convention.

Names, shapes and conventions follow ``python -m spanet.export``, so code written against a
SPANet export runs on ours. Inputs, one pair per input, the object inputs (SEQUENTIAL,
RELATIVE) first and then the GLOBAL ones, each in event-file order (SPANet keeps the event
file's order throughout, so the graph's input positions differ where a GLOBAL section is written
above an object input: feed the inputs by name) (dynamic axes ``batch_size`` and ``num_<input>``):

* ``<input>_data``: float32, SEQUENTIAL (batch, N, F), GLOBAL (batch, 1, F), features in
  event-file order. Without ``input_log_transform`` the features whose option is ``log`` or
  ``log_normalize`` (:attr:`Feature.log`) enter as ``log(1 + x)`` (SPANet's convention: the
  user applies the log, the graph normalises); with it they enter raw, in file units.
  Mean/std normalisation is always inside the graph.
* ``<input>_mask``: bool, SEQUENTIAL (batch, N), True = real object; GLOBAL (batch, 1). A
  GLOBAL input has no padding in spanet_lite: its mask is part of the graph's signature, as in
  SPANet, and the vector is always used.
* RELATIVE inputs in SPANet's pair layout: ``<input>_data`` (batch, N, N, F) holds at ``[b, i, j]``
  object ``j``'s per-object features, then the pair ``(i, j)``'s pairwise features (those the
  training file stored as ``(N, W, W)``, each group in event-file order); ``<input>_mask``
  (batch, N, N) is True where both objects are real. The same log convention applies to both.
  Physics pair features (``pair_features``) are computed inside the graph from the inputs.

``N`` may be anything up to the input's width in the training file (``max_objects`` in the
run's statistics.json); the graph pads internally to that width (see :class:`ExportWrapper`).

Outputs, in SPANet's order:

* ``<particle>_assignment_probability``: (batch, N, ..., N) joint probabilities over ordered
  tuples in the combined object space (SEQUENTIAL inputs concatenated), 0 where impossible;
  with ``output_log_transform``: ``<particle>_assignment_log_probability`` (-inf there);
* ``<particle>_detection_probability`` (batch,) (``_detection_log_probability`` with
  ``output_log_transform``);
* one output per regression key, named by the key (``EVENT/neutrino_px``): (batch,) in file units;
* one output per classification key (``EVENT/signal``): (batch, C) class probabilities
  (log-probabilities with ``output_log_transform``);
* regressions and classifications each in SPANet's order (EVENT targets, then per particle its
  PARTICLE targets and its products'), whatever order the event file lists them in;
* with ``output_embeddings``: ``EVENT/embedding_vector``, ``<particle>/PARTICLE/embedding_vector``
  and ``<particle>/<product>/embedding_vector``, (batch, D) each.

The model's metadata (``spanet_lite``) holds a JSON description: inputs with their features,
particles with their products, the conventions chosen and the names, so a deployment can find
everything without this package. To turn the assignment outputs into object indices with numpy
alone, use ``spanet_lite/assignment/numpy_decoder.py``, which ``--copy-decoder`` writes next to
the model as ``onnx_decoder.py`` (it imports nothing but numpy)::

    import onnxruntime, onnx_decoder
    session = onnxruntime.InferenceSession("model.onnx")
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, feeds)))
    chosen = onnx_decoder.decode(
        {p: out[f"{p}_assignment_probability"] for p in ("t1", "t2")},
        detections={p: out[f"{p}_detection_probability"] for p in ("t1", "t2")},
        threshold=0.5, probabilities=True)
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from spanet_lite.assignment import numpy_decoder
from spanet_lite.config.event_spec import ClassificationTarget, EventSpec, InputSpec, RegressionTarget
from spanet_lite.config.options_file import as_integer
from spanet_lite.errors import InputError
from spanet_lite.evaluation.inference import embedding_vectors
from spanet_lite.evaluation.trained import TrainedRun, require_run
from spanet_lite.io import all_or_nothing, atomic_path
from spanet_lite.outputs import check_outputs, output

OPSET = 15
"""SPANet's default (its --opset), so a SPANet user's runtime reads our default export too."""
OPSETS = range(14, 21)
"""Opsets the graph exports to: 14 brings scaled dot-product attention, 20 is the newest that
torch's (TorchScript-based) exporter writes."""


@dataclass(frozen=True)
class Convention:
    """SPANet's three export switches (``spanet.export --input-log-transform`` ...)."""

    input_log_transform: bool = False
    output_log_transform: bool = False
    output_embeddings: bool = False


class ExportWrapper(nn.Module):
    """Positional tensors in (ONNX has no dicts), SPANet's outputs out, as a tuple.

    The network itself is traced at a fixed width per SEQUENTIAL input (``widths``, the
    training file's ``max_objects``): the graph pads each input up to that width (padded slots
    are masked, so they change nothing) and cuts the assignment outputs back to the objects
    given. So the object axes of the graph are dynamic up to the training width.
    """

    def __init__(
        self,
        network: Any,
        spec: EventSpec,
        widths: dict[str, int],
        convention: Convention = Convention(),
        pairs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``pairs``: the run's ``statistics.pair_features`` (RELATIVE input -> pairwise features)."""
        super().__init__()
        self.network = network
        self.spec = spec
        self.widths = dict(widths)
        self.convention = convention
        self.regression_keys = spanet_target_order(spec, spec.regressions)
        self.classification_keys = spanet_target_order(spec, spec.classifications)
        for source in spec.inputs:
            flags = torch.tensor([f.log for f in source.features], dtype=torch.bool)
            self.register_buffer(f"log_{source.name}", flags, persistent=False)
        self.pair_counts: dict[str, int] = {}
        for source in spec.relative:
            order = relative_order(source, (pairs or {}).get(source.name, ()))
            self.pair_counts[source.name] = source.num_features - len(order.objects)
            # SPANet's column order -> event-file order, for the per-object features
            self.register_buffer(f"order_{source.name}", torch.tensor(order.to_event_file), persistent=False)
            flags = torch.tensor([source.features[i].log for i in order.pairs], dtype=torch.bool)
            self.register_buffer(f"log_{source.name}_pairs", flags, persistent=False)

    def _relative(self, name: str, data: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """SPANet's (B, N, N, F) pair layout -> per-object features (B, N, F) in event-file order
        (a pairwise feature contributes its diagonal, as the reader gives it), the object mask
        (the diagonal of the pair mask) and the pairwise features (B, N, N, C), or None."""
        index = torch.arange(data.shape[1], device=data.device)
        objects = data[:, index, index].index_select(-1, getattr(self, f"order_{name}"))  # (B, N, F)
        count = self.pair_counts[name]
        pairs = self._raw(f"{name}_pairs", data[..., data.shape[-1] - count:]) if count else None
        return objects, mask[:, index, index], pairs

    def _raw(self, name: str, data: Tensor) -> Tensor:
        """Back to file units when the log features arrive as log(1 + x) (the network applies the log)."""
        if self.convention.input_log_transform:
            return data
        flags = getattr(self, f"log_{name}")
        if not bool(flags.any()):
            return data
        # exp(y) - 1 rather than expm1, which the ONNX exporter lacks; the network's log1p undoes it
        # to within float rounding (absolute error ~1e-7 in log(1 + x)).
        return torch.where(flags, torch.exp(data) - 1.0, data)

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        features: dict[str, Tensor] = {}
        masks: dict[str, Tensor] = {}
        pairs: dict[str, Tensor] = {}
        keep: dict[str, Tensor] = {}  # per SEQUENTIAL input: positions of the given slots, padded space
        given = {s.name: (tensors[2 * i], tensors[2 * i + 1]) for i, s in enumerate(self.spec.inputs)}
        offset = 0
        for source in self.spec.sequential:
            data, mask = given[source.name]
            width = self.widths[source.name]
            missing = width - data.shape[1]
            if source.is_relative:
                data, mask, pair = self._relative(source.name, data, mask)
                if pair is not None:
                    pair = F.pad(pair, (0, 0, 0, missing, 0, missing))
                    pairs[source.name] = pair
            data = self._raw(source.name, data)
            pad = torch.zeros_like(data[:, :1]).expand(-1, missing, -1)
            features[source.name] = torch.cat([data, pad], dim=1)  # (B, width, F)
            masks[source.name] = torch.cat([mask, torch.zeros_like(mask[:, :1]).expand(-1, missing)], dim=1)
            keep[source.name] = torch.arange(data.shape[1], device=data.device) + offset
            offset += width
        for source in self.spec.global_inputs:
            data, mask = given[source.name]
            vector = self._raw(source.name, data[:, 0])
            # The mask has no effect (a GLOBAL input is always present here), but it stays an input
            # of the graph, as in SPANet's signature: an unused input would be dropped by the exporter.
            features[source.name] = torch.where(mask[:, :1].bool(), vector, vector)
        slots = torch.cat([keep[s.name] for s in self.spec.sequential])  # (N given,) in the padded space
        outputs = self.network(features, masks, pairs) if pairs else self.network(features, masks)
        log = self.convention.output_log_transform
        assignments: list[Tensor] = []
        for particle in self.spec.particles:
            values = outputs.assignments[particle.name]
            for axis in range(particle.num_products):
                values = values.index_select(axis + 1, slots)
            assignments.append(values if log else values.exp())
        detections = [
            F.logsigmoid(outputs.detections[p]) if log else torch.sigmoid(outputs.detections[p])
            for p in self.spec.particle_names
        ]
        regressions: list[Tensor] = []
        if self.regression_keys:
            raw = self.network.denormalize_regressions(dict(outputs.regressions))
            regressions = [raw[key] for key in self.regression_keys]
        classifications = [
            F.log_softmax(outputs.classifications[key], dim=-1) if log
            else torch.softmax(outputs.classifications[key], dim=-1)
            for key in self.classification_keys
        ]
        embeddings: list[Tensor] = []
        if self.convention.output_embeddings:
            vectors = embedding_vectors(self.spec, outputs)
            embeddings = [vectors[key] for key in embedding_keys(self.spec)]
        return (*assignments, *detections, *regressions, *classifications, *embeddings)


def spanet_target_order(
    spec: EventSpec, targets: Sequence[RegressionTarget] | Sequence[ClassificationTarget]
) -> list[str]:
    """The keys of ``targets`` in the order of SPANet's export: EVENT targets first, then per
    particle in EVENT order its PARTICLE targets and its products' in product order, file order
    within each. SPANet builds this order from the event's structure, not from where the
    REGRESSIONS or CLASSIFICATIONS section lists a target, and code written for its export may
    read the outputs by position."""
    particles = list(spec.particle_names)

    def rank(target: RegressionTarget | ClassificationTarget) -> tuple[int, int]:
        if target.particle is None:
            return 0, 0
        products = spec.particle(target.particle).product_names
        level = 0 if target.product == "PARTICLE" else 1 + products.index(target.product or "")
        return 1 + particles.index(target.particle), level

    return [target.key for target in sorted(targets, key=rank)]


def embedding_keys(spec: EventSpec) -> list[str]:
    """The embedding vectors in SPANet's order: event, then per particle its own and its products'."""
    keys = ["EVENT"]
    for particle in spec.particles:
        keys.append(f"{particle.name}/PARTICLE")
        keys += [f"{particle.name}/{product}" for product in particle.product_names]
    return keys


@dataclass(frozen=True)
class RelativeOrder:
    """A RELATIVE input's columns in SPANet's pair layout: per-object features first, then the
    pairwise ones, each group in event-file order (positions in the event file's feature list)."""

    objects: tuple[int, ...]
    pairs: tuple[int, ...]

    @property
    def spanet(self) -> tuple[int, ...]:
        return self.objects + self.pairs

    @property
    def to_event_file(self) -> list[int]:
        """For each event-file feature, its column in SPANet's layout."""
        return [self.spanet.index(i) for i in range(len(self.spanet))]


def relative_order(source: InputSpec, pair_names: Sequence[str]) -> RelativeOrder:
    """Split a RELATIVE input's features into per-object and pairwise ones (``pair_names``, the
    run's ``statistics.pair_features``), since SPANet's pair layout puts the per-object ones first."""
    names = [f.name for f in source.features]
    return RelativeOrder(
        tuple(i for i, n in enumerate(names) if n not in pair_names),
        tuple(i for i, n in enumerate(names) if n in pair_names),
    )


def input_names(spec: EventSpec) -> list[str]:
    """SPANet's graph input names, ``<input>_data`` and ``<input>_mask`` per input, object inputs
    first and then GLOBAL ones (:attr:`EventSpec.inputs`; SPANet: the event file's order): the
    order of the positional tensors, and what code written for a SPANet export feeds."""
    names = []
    for source in spec.inputs:
        names += [f"{source.name}_data", f"{source.name}_mask"]
    return names


def output_names(spec: EventSpec, convention: Convention = Convention()) -> list[str]:
    """SPANet's graph output names in SPANet's order (see the module docstring), matching the
    tuple :class:`ExportWrapper` returns; ``_log_probability`` names with ``output_log_transform``."""
    kind = "log_probability" if convention.output_log_transform else "probability"
    names = [f"{p}_assignment_{kind}" for p in spec.particle_names]
    names += [f"{p}_detection_{kind}" for p in spec.particle_names]
    names += spanet_target_order(spec, spec.regressions)
    names += spanet_target_order(spec, spec.classifications)
    if convention.output_embeddings:
        names += [f"{key}/embedding_vector" for key in embedding_keys(spec)]
    return names


def example_inputs(
    spec: EventSpec,
    batch: int = 2,
    objects: int = 8,
    convention: Convention = Convention(),
    pairs: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Tensor, ...]:
    """Random inputs of the right shapes in the convention's units (log features as log(1 + x)
    unless ``input_log_transform``); RELATIVE inputs in SPANet's pair layout."""
    generator = torch.Generator().manual_seed(0)
    tensors: list[Tensor] = []
    for source in spec.inputs:
        log = torch.tensor([f.log for f in source.features], dtype=torch.bool)
        count = objects if source.kind != "GLOBAL" else 1
        shape = (batch, count, count) if source.is_relative else (batch, count)
        data = torch.rand(*shape, source.num_features, generator=generator) * 10 + 1
        if source.is_relative:
            log = log[list(relative_order(source, (pairs or {}).get(source.name, ())).spanet)]
        if not convention.input_log_transform:
            data = torch.where(log, torch.log1p(data), data)
        mask = torch.ones(batch, count, dtype=torch.bool)
        if source.kind != "GLOBAL":
            mask[0, objects - 2 :] = False
        if source.is_relative:
            mask = mask[:, :, None] & mask[:, None, :]
        tensors += [data, mask]
    return tuple(tensors)


def dynamic_axes(spec: EventSpec, convention: Convention = Convention()) -> dict[str, dict[int, str]]:
    """The axes left free in the graph: the batch everywhere, and each input's object count, so
    one model serves any batch and any number of objects up to the training width. The names
    are ``batch_size``, ``num_<input>`` and ``num_objects``."""
    axes: dict[str, dict[int, str]] = {}
    for source in spec.inputs:
        for part in ("data", "mask"):
            axes[f"{source.name}_{part}"] = {0: "batch_size", 1: f"num_{source.name}"}
            if source.is_relative:
                axes[f"{source.name}_{part}"][2] = f"num_{source.name}"
    for name in output_names(spec, convention):
        axes[name] = {0: "batch_size"}
    for name, particle in zip(output_names(spec, convention), spec.particles, strict=False):
        axes[name] |= {axis + 1: "num_objects" for axis in range(particle.num_products)}
    return axes


def description(
    spec: EventSpec, convention: Convention = Convention(), pairs: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """What the graph's metadata says about its inputs and outputs."""
    return {
        "convention": {"layout": "spanet", **asdict(convention)},
        "inputs": [
            {
                "name": s.name, "kind": s.kind, "features": [f.name for f in s.features],
                "log_features": [f.name for f in s.features if f.log],
            }
            for s in spec.inputs
        ],
        "particles": [{"name": p.name, "products": list(p.product_names)} for p in spec.particles],
        "regressions": spanet_target_order(spec, spec.regressions),
        "classifications": spanet_target_order(spec, spec.classifications),
        "pair_features": {name: list(names) for name, names in (pairs or {}).items() if names},
        "input_names": input_names(spec),
        "output_names": output_names(spec, convention),
    }


DECODER_NAME = "onnx_decoder.py"
"""The numpy-only decoder's name next to an exported model (``spanet-export --copy-decoder``)."""


def check_opset(opset: object, where: str) -> int:
    """An opset the exporter writes this graph in (:data:`OPSETS`), as an ``int`` by the rule of
    every integer setting (:func:`~spanet_lite.config.options_file.as_integer`), else one line
    naming ``where``. ``opset="17"`` read ``got 17``, a valid-looking value, and ``17.0`` passed
    the range test and went on as a float."""
    wanted = f"an ONNX opset from {OPSETS.start} to {OPSETS.stop - 1}"
    value = as_integer(opset, where)
    if value not in OPSETS:
        raise InputError(None, where, wanted, str(value))
    return value


def check_export_outputs(
    run: TrainedRun,
    path: str | Path,
    copy_decoder: bool,
    *,
    overwrite: bool = False,
    names: tuple[str, str] = ("path", "copy_decoder"),
) -> Path | None:
    """:func:`export_onnx`'s files before any work: ``path`` ends in ``.onnx``, and it and, with
    ``copy_decoder``, the decoder beside it obey the output rule of :mod:`spanet_lite.outputs`.
    The lines name them as ``names`` spells them: the keywords, or ``spanet-export``'s
    ``output`` and ``--copy-decoder``, which the command checks first. Returns the decoder's
    path (None without ``copy_decoder``)."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise InputError(path, "", "an output file ending in .onnx", path.suffix or "no suffix")
    decoder = path.with_name(DECODER_NAME) if copy_decoder else None
    check_outputs([output(path, names[0]), output(decoder, names[1])], inputs=[run.checkpoint],
                  overwrite=overwrite)
    return decoder


def export_onnx(
    run: TrainedRun,
    path: str | Path,
    *,
    opset: int = OPSET,
    convention: Convention = Convention(),
    copy_decoder: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``run``'s network to ``path`` as ONNX (atomically) and return the path.

    ``copy_decoder`` also writes :mod:`~spanet_lite.assignment.numpy_decoder` beside it as
    ``onnx_decoder.py``. Both files obey the output rule of :mod:`spanet_lite.outputs`, checked
    before the export (:func:`check_export_outputs`): an existing file is replaced only with
    ``overwrite=True``, and never the run's checkpoint or a file of a training run. They are
    written together: a failure of either leaves neither (:func:`~spanet_lite.io.all_or_nothing`).
    The graph is traced on the CPU; a run loaded on a GPU is back on it afterwards."""
    require_run(run)
    opset = check_opset(opset, "opset")
    decoder = check_export_outputs(run, path, copy_decoder, overwrite=overwrite)
    path = Path(path)
    try:
        import onnx
    except ImportError:
        raise InputError(None, "ONNX export", "the onnx package (pip install 'spanet-lite[onnx]')",
                         "not installed") from None
    spec = run.spec
    widths = {s.name: int(run.statistics.max_objects.get(s.name, 0)) for s in spec.sequential}
    if min(widths.values(), default=1) < 1:
        raise InputError(run.directory / "statistics.json", "max_objects",
                         "a width for every SEQUENTIAL input", str(run.statistics.max_objects))
    device = run.device
    run.network.to("cpu")
    try:
        pairs = run.statistics.pair_features
        wrapper = ExportWrapper(run.network, spec, widths, convention, pairs).eval()
        objects = min(widths.values(), default=1)
        example = example_inputs(spec, objects=objects, convention=convention, pairs=pairs)
        with all_or_nothing() as group:  # the model and the decoder, or neither
            with atomic_path(path, group=group) as tmp, torch.no_grad(), warnings.catch_warnings():
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
                    output_names=output_names(spec, convention),
                    dynamic_axes=dynamic_axes(spec, convention),
                    opset_version=opset,
                    dynamo=False,
                )
                model = onnx.load(str(tmp))
                entry = model.metadata_props.add()
                entry.key = "spanet_lite"
                entry.value = json.dumps(description(spec, convention, pairs))
                onnx.save(model, str(tmp))
            if decoder is not None:
                with atomic_path(decoder, group=group) as tmp:
                    shutil.copyfile(numpy_decoder.__file__, tmp)
    finally:
        run.network.to(device)
    return path
