"""``spanet-predict``: run a trained network over a file and write what it finds, as a truth file.

The output has the layout of a SPANet dataset, so it can be inspected with
``spanet-inspect --event-file`` and evaluated with ``spanet-test`` like any labelled file::

    INPUTS/...                                  copied unchanged from the input file
    WEIGHTS/EVENT/weight                        copied when the input has per-event weights
    TARGETS/<particle>/<product>     int64 (N,) decoded assignment, -1 = not reported; an
                                                associated product's index counts inside its
                                                own input, as in SPANet files
    REGRESSIONS/<key>                float32 (N,) de-normalised prediction (file units)
    CLASSIFICATIONS/<key>            int64 (N,) most probable class
    PREDICTIONS/assignment_probability/<particle>  float32 (N,) probability of the chosen tuple
    PREDICTIONS/detection_probability/<particle>   float32 (N,) probability the particle is present
    PREDICTIONS/classification_probability/<key>   float32 (N, C) class probabilities
    PREDICTIONS/embedding            float32 (N, D) event embedding (only with --embeddings)

The file is read and written ``batch_size`` events at a time (memory does not grow with the
file), written to a temporary file beside the target and renamed at the end, so a crash or
Ctrl-C never leaves a half-written OUT.h5. The input file is never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.dataset import reader, schema
from spanet_lite.errors import InputError
from spanet_lite.evaluation.inference import Predictions, infer, to_tensors
from spanet_lite.evaluation.trained import TrainedRun
from spanet_lite.io import atomic_path


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

    with progress_bar(layout.num_events, description, enabled=progress) as advance:
        for start, stop in reader.row_blocks(layout.num_events, batch_size):
            inputs = reader.read_inputs(file, run.spec, start, stop)
            f, m = to_tensors(inputs.features, inputs.masks, run.device)
            yield start, stop, infer(
                run.network, run.spec, f, m, threshold=threshold, mode=mode, embeddings=embeddings
            )
            advance(stop - start)


def input_layout(file: h5py.File, run: TrainedRun, path: str | Path) -> reader.FileLayout:
    """Check a file's INPUTS as training does (schema, values included); its layout, else InputError."""
    event_weight = run.options.event_weight_dataset
    schema.validate_h5(
        file, run.spec, source=str(path), event_weight_dataset=event_weight, inputs_only=True
    ).raise_for_errors()
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
    with schema.open_h5(path) as file:
        layout = input_layout(file, run, path)
        parts = [
            p
            for _, _, p in iterate_predictions(
                run, file, layout, batch_size=batch_size, threshold=threshold, mode=mode,
                embeddings=embeddings, progress=progress,
            )
        ]
    return Predictions.concatenate(parts)


def to_file_indices(
    spec: EventSpec, particle: str, combined: np.ndarray, layout: reader.FileLayout
) -> np.ndarray:
    """(B, k) combined indices -> (B, k) indices as a SPANet file stores them.

    An associated product counts inside its own input; an unassociated one stays combined.
    """
    offsets = schema.target_index_offsets(spec, layout.max_objects)
    result = combined.copy()
    for j, product in enumerate(spec.particle(particle).products):
        if product.input is None:
            continue
        local = combined[:, j] - offsets[product.input]
        inside = (combined[:, j] >= 0) & (local >= 0) & (local < layout.max_objects[product.input])
        result[:, j] = np.where(inside, local, -1)
    return result


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def _block_datasets(
    spec: EventSpec, layout: reader.FileLayout, predicted: Predictions
) -> Iterator[tuple[str, np.ndarray]]:
    """(dataset name, values for this block) for everything the output file holds."""
    for particle in spec.particles:
        indices = to_file_indices(spec, particle.name, predicted.assignments[particle.name], layout)
        for j, product in enumerate(particle.products):
            yield schema.target_path(particle.name, product.name), indices[:, j].astype(np.int64)
        probability = predicted.assignment_probabilities[particle.name]
        yield f"PREDICTIONS/assignment_probability/{particle.name}", probability.astype(np.float32)
        detection = predicted.detection_probabilities[particle.name]
        yield f"PREDICTIONS/detection_probability/{particle.name}", detection.astype(np.float32)
    for key, values in predicted.regressions.items():
        yield schema.regression_path(key), values.astype(np.float32)
    for key, probabilities in predicted.classifications.items():
        yield schema.classification_path(key), probabilities.argmax(axis=1).astype(np.int64)
        yield f"PREDICTIONS/classification_probability/{key}", probabilities.astype(np.float32)
    if predicted.embeddings is not None:
        yield "PREDICTIONS/embedding", predicted.embeddings.astype(np.float32)


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
) -> int:
    """Predict every event of ``input_path`` into ``output_path`` (layout in the module
    docstring); returns the number of events. ``threshold`` defaults to the run's
    ``detection_threshold``; ``mode`` to its ``decoding`` option."""
    input_path, output_path = Path(input_path), Path(output_path)
    if _same_file(input_path, output_path) or input_path.resolve() == output_path.resolve():
        raise InputError(output_path, "", "an output path different from the input file", "the input file")
    if batch_size < 1:
        raise InputError(None, "--batch-size", "a positive number of events", str(batch_size))
    threshold = run.options.detection_threshold if threshold is None else threshold
    mode = mode or run.options.decoding
    spec = run.spec
    with schema.open_h5(input_path) as source:
        layout = input_layout(source, run, input_path)
        n = layout.num_events
        with atomic_path(output_path) as tmp, h5py.File(tmp, "w") as out:
            source.copy(source["INPUTS"], out, name="INPUTS")
            weight = run.options.event_weight_dataset.strip("/")
            if weight and isinstance(source.get(weight), h5py.Dataset):
                parent, _, name = weight.rpartition("/")
                source.copy(source[weight], out.require_group(parent) if parent else out, name=name)
            datasets: dict[str, h5py.Dataset] = {}

            def dataset(name: str, shape: tuple[int, ...], dtype: np.dtype) -> h5py.Dataset:
                if name not in datasets:
                    chunks = (min(max(n, 1), 65536), *shape) if n else None
                    datasets[name] = out.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=chunks)
                return datasets[name]

            for particle in spec.particles:  # present even for an empty file
                for product in particle.products:
                    dataset(schema.target_path(particle.name, product.name), (), np.dtype(np.int64))
            for start, stop, predicted in iterate_predictions(
                run, source, layout, batch_size=batch_size, threshold=threshold, mode=mode,
                embeddings=embeddings, progress=progress, description=f"predicting {input_path.name}",
            ):
                for name, values in _block_datasets(spec, layout, predicted):
                    dataset(name, values.shape[1:], values.dtype)[start:stop] = values
            out.attrs["spanet_lite_run"] = str(run.directory)
            out.attrs["spanet_lite_checkpoint"] = str(run.checkpoint)
            out.attrs["detection_threshold"] = float(threshold)
            out.attrs["decoding"] = mode
    return n
