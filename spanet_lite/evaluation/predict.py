"""``spanet-predict``: run a trained network over a file and write SPANet's prediction file.

The output holds exactly the datasets ``python -m spanet.predict`` writes, with SPANet's
meaning, and spanet_lite's additions under a group SPANet does not use::

    INPUTS/<input>/<feature>                     copied unchanged from the input file
    TARGETS/<particle>/<product>          int64 (N,) best assignment for every event (no
                                                 detection gating), index in the combined object
                                                 space (SEQUENTIAL inputs concatenated, each
                                                 padded to its width in the file), as SPANet
    TARGETS/<particle>/assignment_probability  float32 (N,) probability of that assignment up to
                                                 the particle's symmetry (group order x tuple)
    TARGETS/<particle>/detection_probability   float32 (N,) probability the particle is present
    TARGETS/<particle>/marginal_probability    float32 (N,) detection x assignment
    REGRESSIONS/<key>                     float32 (N,) de-normalised prediction (file units)
    CLASSIFICATIONS/<key>                 float32 (N, C) class probabilities (rows sum to 1)
    EMBEDDINGS/EVENT, EMBEDDINGS/<particle>/PARTICLE, EMBEDDINGS/<particle>/<product>
                                          float32 (N, D) only with -v/--output_vectors

    SPANET_LITE/TARGETS/<particle>/<product>  int64 (N,) the assignment spanet_lite reports:
                                                 detection-gated (-1 below the threshold; a
                                                 particle left out blocks no objects) and, for a
                                                 product tied to one input, indexed inside that
                                                 input as a labelled file stores it
    SPANET_LITE/CLASSIFICATIONS/<key>     int64 (N,) most probable class
    SPANET_LITE/WEIGHTS/...               the per-event weights, when the input has them

The file attributes name the run, checkpoint, detection threshold and decoding mode.
It is read and written ``batch_size`` events at a time (memory does not grow with the file),
written to a temporary file beside the target and renamed at the end, so a crash or Ctrl-C
never leaves a half-written OUT.h5. The input file is never overwritten.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import h5py
import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset import hdf5_layout, reader, schema
from spanet_lite.errors import InputError, SpanetWarning
from spanet_lite.evaluation.inference import Predictions, device_inputs, infer
from spanet_lite.evaluation.trained import TrainedRun, require_run
from spanet_lite.hdf5_paths import classification_path, regression_path, target_path
from spanet_lite.io import atomic_hdf5, check_hdf5_writes
from spanet_lite.outputs import check_outputs, output


def iterate_predictions(
    run: TrainedRun,
    file: h5py.File,
    layout: reader.FileLayout,
    *,
    batch_size: int,
    threshold: float | None,
    mode: str,
    embeddings: bool = False,
    progress: bool = False,
    description: str = "predicting",
) -> Iterator[tuple[int, int, Predictions]]:
    """(start, stop, predictions) for consecutive blocks of an open file."""
    from spanet_lite.evaluation.progress import progress_bar

    hdf5_layout.check_pair_features(layout.pair_features, run.statistics.pair_features, layout.path)
    with progress_bar(layout.num_events, description, enabled=progress) as advance:
        for start, stop in reader.row_blocks(layout.num_events, batch_size):
            inputs = reader.read_inputs(file, run.spec, start, stop)
            batch = device_inputs(run.spec, inputs.features, inputs.masks, inputs.pairs, run.device)
            yield start, stop, infer(
                run.network, run.spec, batch.features, batch.masks, threshold=threshold, mode=mode,
                embeddings=embeddings, pairs=batch.pairs, slots=batch.slots,
            )
            advance(stop - start)


def prediction_datasets(source: h5py.File, run: TrainedRun) -> contextlib.AbstractContextManager[h5py.File]:
    """What predict reads of ``source`` (its INPUTS and event weights), in memory when they fit
    (:func:`~spanet_lite.dataset.schema.in_memory`): checked and then read without a second
    decompression."""
    return schema.in_memory(source, run.spec, event_weight_dataset=run.options.event_weight_dataset,
                            inputs_only=True)


def input_layout(file: h5py.File, run: TrainedRun, path: str | Path) -> reader.FileLayout:
    """Check a file's INPUTS as training does (schema, values included) and its event weights,
    which predict copies, as data (dtype, shape, finite; the rules on their sum are the loss's);
    its layout, else InputError. Warnings (an input without any object) go out as SpanetWarning."""
    event_weight = run.options.event_weight_dataset
    report = schema.validate_h5(
        file, run.spec, source=str(path), event_weight_dataset=event_weight, inputs_only=True
    )
    report.raise_for_errors()
    for line in report.warning_lines():
        warnings.warn(line, SpanetWarning, stacklevel=2)
    return reader.resolve_layout(file, run.spec, path, event_weight)


def predict_file_arrays(
    run: TrainedRun,
    path: str | Path,
    *,
    batch_size: int,
    threshold: float | None,
    mode: str,
    embeddings: bool = False,
    progress: bool = False,
) -> Predictions:
    """All predictions for a file, in memory (the Python API's ``run.predict(path)``)."""
    with schema.open_h5(path) as source, prediction_datasets(source, run) as file:
        layout = input_layout(file, run, path)
        parts = [
            p
            for _, _, p in iterate_predictions(
                run, file, layout, batch_size=batch_size, threshold=threshold, mode=mode,
                embeddings=embeddings, progress=progress,
            )
        ]
    return run.predictions(parts, threshold=threshold, mode=mode, embeddings=embeddings)


def to_file_indices(
    spec: EventSpec, particle: str, combined: np.ndarray, layout: reader.FileLayout
) -> np.ndarray:
    """(B, k) combined indices -> (B, k) indices as a SPANet file stores them.

    An associated product counts inside its own input; an unassociated one stays combined.
    """
    offsets = hdf5_layout.target_index_offsets(spec, layout.max_objects)
    result = combined.copy()
    for j, product in enumerate(spec.particle(particle).products):
        if product.input is None:
            continue
        local = combined[:, j] - offsets[product.input]
        inside = (combined[:, j] >= 0) & (local >= 0) & (local < layout.max_objects[product.input])
        result[:, j] = np.where(inside, local, -1)
    return result


RUN_ATTRIBUTE = "spanet_lite_run"
"""The file attribute naming the run that wrote a prediction file: how ``spanet-test`` knows one."""

LITE_GROUP = "SPANET_LITE"
"""Where the datasets SPANet's predict does not write live (never a SPANet name)."""


def _block_datasets(
    spec: EventSpec, layout: reader.FileLayout, predicted: Predictions
) -> Iterator[tuple[str, np.ndarray]]:
    """(dataset name, values for this block) for everything the output file holds."""
    marginals = predicted.marginal_probabilities
    for particle in spec.particles:
        name = particle.name
        best = predicted.assignments[name]
        for j, product in enumerate(particle.products):
            yield target_path(name, product.name), best[:, j].astype(np.int64)
        assignment = predicted.assignment_probabilities[name]
        yield target_path(name, "assignment_probability"), assignment.astype(np.float32)
        detection = predicted.detection_probabilities[name]
        yield target_path(name, "detection_probability"), detection.astype(np.float32)
        yield target_path(name, "marginal_probability"), marginals[name].astype(np.float32)
    for key, values in predicted.regressions.items():
        yield regression_path(key), values.astype(np.float32)
    for key, probabilities in predicted.classifications.items():
        yield classification_path(key), probabilities.astype(np.float32)
    for key, vector in (predicted.embeddings or {}).items():
        yield f"EMBEDDINGS/{key}", vector.astype(np.float32)
    if predicted.reported is not None:
        for particle in spec.particles:
            indices = to_file_indices(spec, particle.name, predicted.reported[particle.name], layout)
            for j, product in enumerate(particle.products):
                yield f"{LITE_GROUP}/TARGETS/{particle.name}/{product.name}", indices[:, j].astype(np.int64)
    for key, probabilities in predicted.classifications.items():
        yield f"{LITE_GROUP}/CLASSIFICATIONS/{key}", probabilities.argmax(axis=1).astype(np.int64)


def check_prediction_output(
    run: TrainedRun,
    input_path: str | Path,
    output_path: str | Path,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
    name: str = "output_path",
) -> None:
    """:func:`write_predictions`' output rule (see there), its line naming the output as ``name``
    spells it: the keyword, or ``spanet-predict``'s ``output``, which the command checks first
    (its metavar ``OUT.h5`` read ``OUT.h5: OUT.h5: ...`` for a file of that name)."""
    check_outputs([output(output_path, name)], inputs=[input_path, run.checkpoint, *inputs],
                  overwrite=overwrite)


def _linked_files(source: h5py.File, weight: str) -> list[str]:
    """The other files that datasets under ``source``'s INPUTS, and its ``weight`` dataset, live
    in (external links) or read (the part files of virtual datasets): read like ``source``, so
    never an output either. Links that do not resolve are the check's."""
    files: list[str] = []
    with contextlib.suppress(OSError, RuntimeError, KeyError, ValueError):
        group = source.get("INPUTS")
        items = schema.walk_tree(group) if isinstance(group, h5py.Group) else []
        nodes = [item.node for item in items if item.kind == "dataset"]
        nodes.append(source.get(weight.strip("/")) if weight.strip("/") else None)
        datasets = [node for node in nodes if isinstance(node, h5py.Dataset)]
        files += [node.file.filename for node in datasets]
        files += [name for node in datasets if node.is_virtual for name in hdf5_layout.virtual_parts(node)]
    return [name for name in files if name != source.filename]


COPY_ROWS = 65536
"""Rows per read and write when a virtual dataset's values are copied (memory stays bounded)."""


def materialise_virtual(source: h5py.Group | h5py.Dataset, out: h5py.File, path: str) -> None:
    """Give every virtual dataset at or under ``out[path]``, copied from ``source`` (the same
    place in the input), its values instead of its mapping, attributes kept.

    h5py's copy keeps a virtual dataset virtual: its source files are named as the input names
    them, often relative to the input's folder, so OUT.h5 read from another folder, or after the
    parts moved, shows the fill value. SPANet's predict copies the numbers."""
    node = out[path]
    if isinstance(node, h5py.Dataset):
        found = [("", node)]
    else:
        found = [(item.path, item.node) for item in schema.walk_tree(node) if item.kind == "dataset"]
    for name, copied in found:
        if not copied.is_virtual:
            continue
        values = source[name] if name else source
        attributes = dict(copied.attrs)
        target = f"{path}/{name}" if name else path
        parent, _, leaf = target.rpartition("/")
        del out[target]
        group = out.require_group(parent or "/")
        dataset = group.create_dataset(leaf, shape=values.shape, dtype=values.dtype)
        if values.ndim == 0:
            dataset[()] = values[()]
        else:
            for start, stop in reader.row_blocks(values.shape[0], COPY_ROWS):
                dataset[start:stop] = values[start:stop]
        dataset.attrs.update(attributes)


def write_predictions(
    run: TrainedRun,
    input_path: str | Path,
    output_path: str | Path,
    *,
    batch_size: int = 1024,
    threshold: float | None = None,
    mode: str | None = None,
    embeddings: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    inputs: Iterable[str | Path | None] = (),
    output_name: str = "output_path",
) -> int:
    """Predict every event of ``input_path`` into ``output_path`` (layout in the module
    docstring); returns the number of events. ``threshold`` defaults to the run's
    ``detection_threshold``; ``mode`` to its ``decoding`` option.

    Before any work, the output rule of :mod:`spanet_lite.outputs` (:func:`check_prediction_output`):
    an existing ``output_path`` is replaced only with ``overwrite=True``, and never when it is
    ``input_path``, the run's checkpoint, one of ``inputs`` (other files the caller read, such
    as ``spanet-predict -ef``) or a file of a training run. Checked here as well as in the CLI
    so a notebook gets the same protection; its refusals name the output ``output_name``."""
    require_run(run)
    input_path, output_path = Path(input_path), Path(output_path)
    settings = run.settings(batch_size=batch_size, threshold=threshold, mode=mode)
    batch_size, threshold, mode = settings.batch_size, settings.threshold, settings.mode
    inputs = list(inputs)
    check_prediction_output(run, input_path, output_path, overwrite=overwrite, inputs=inputs,
                            name=output_name)
    spec = run.spec
    with schema.open_h5(input_path) as source:
        linked = _linked_files(source, run.options.event_weight_dataset)
        if linked:  # before reading anything: the files the input links to are inputs too
            check_prediction_output(run, input_path, output_path, overwrite=overwrite,
                                    inputs=[*inputs, *linked], name=output_name)
        with prediction_datasets(source, run) as inputs_file:
            layout = input_layout(inputs_file, run, input_path)
            n = layout.num_events
            with atomic_hdf5(output_path) as out:
                try:  # links resolved: a soft link's target is not copied, an external one may be OUT.h5
                    source.copy(source["INPUTS"], out, name="INPUTS", expand_soft=True, expand_external=True)
                except RuntimeError as error:
                    if "too many links" not in str(error):
                        raise
                    raise InputError(input_path, "INPUTS", "a readable HDF5 file", str(error)) from None
                materialise_virtual(source["INPUTS"], out, "INPUTS")
                weight = run.options.event_weight_dataset.strip("/")
                if weight and isinstance(source.get(weight), h5py.Dataset):
                    parent, _, name = f"{LITE_GROUP}/{weight}".rpartition("/")
                    source.copy(source[weight], out.require_group(parent), name=name)
                    materialise_virtual(source[weight], out, f"{LITE_GROUP}/{weight}")
                datasets: dict[str, h5py.Dataset] = {}

                def dataset(name: str, shape: tuple[int, ...], dtype: np.dtype) -> h5py.Dataset:
                    if name not in datasets:
                        chunks = (min(max(n, 1), 65536), *shape) if n else None
                        datasets[name] = out.create_dataset(name, shape=(n, *shape), dtype=dtype,
                                                            chunks=chunks)
                    return datasets[name]

                for particle in spec.particles:  # present even for an empty file
                    for product in particle.products:
                        dataset(target_path(particle.name, product.name), (), np.dtype(np.int64))
                for start, stop, predicted in iterate_predictions(
                    run, inputs_file, layout, batch_size=batch_size, threshold=threshold, mode=mode,
                    embeddings=embeddings, progress=progress, description=f"predicting {input_path.name}",
                ):
                    for name, values in _block_datasets(spec, layout, predicted):
                        dataset(name, values.shape[1:], values.dtype)[start:stop] = values
                    check_hdf5_writes(out)  # a full disk stops here, not after predicting the rest
                out.attrs[RUN_ATTRIBUTE] = str(run.directory)
                out.attrs["spanet_lite_checkpoint"] = str(run.checkpoint)
                out.attrs["detection_threshold"] = float(threshold)
                out.attrs["decoding"] = mode
    return n
