"""Inference throughput: decoding alone, and spanet-predict end to end (read, network, decode, write).

* Decoding: all-hadronic ttbar, 10 object slots (6 to 10 real), two particles with three
  products; joint log-probabilities drawn at random (a harder case for greedy than a trained
  network's peaked distributions: more conflicts to resolve). 200,000 events (``--quick``:
  50,000), greedy; exact mode on a tenth of them for comparison; best of three runs.
* Predict: ``write_predictions`` (what ``spanet-predict`` runs) over
  ``data/full_hadronic_ttbar/example.h5`` (10,000 events, 10 slots; ``--quick``: its first
  2,000) with a network of the default options (SPANet's: hidden_dim 128, 4 encoder layers, 4
  branch encoder layers; pair features on, ``pair_features: auto``), trained by ``train()`` for
  one epoch on 500 of the events only to get a real run directory (speed does not depend on the
  weights), batch size 1024, CPU.
  SPANet's own evaluation of 10,000 ttbar events with its example model takes about 25 s on
  this machine (about 400 events/s, decoding included).
* spanet-test: ``evaluate_file`` (what ``spanet-test`` runs, the tables and the chi-square
  baseline included) over the same events with the same run, default threads.
* The chi-square baseline alone (``chi_square_assign``, the event file's top and W masses: up
  to 18,900 assignments per event) on the same events, best of three.

JSON keys: ``decode_events_per_s``, ``exact_decode_events_per_s``, ``predict_events_per_s`` (torch's
default thread count), ``predict_events_per_s_1_thread``, ``test_events_per_s``,
``chi_square_events_per_s``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "full_hadronic_ttbar" / "example.h5"
EVENT_FILE = REPO / "event_files" / "full_hadronic_ttbar.yaml"
RUN_FRACTION, RUN_BATCH = 0.05, 64
"""The run behind the predict figures trains one epoch on 5 % of ``DATA`` (500 events) in batches of 64."""


def random_ttbar_log_probs(events: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    n = 10
    real = torch.randint(6, n + 1, (events,), generator=generator)
    grid = torch.meshgrid(*[torch.arange(n)] * 3, indexing="ij")
    repeated = (grid[0] == grid[1]) | (grid[0] == grid[2]) | (grid[1] == grid[2])
    padded = torch.arange(n)[None, :] >= real[:, None]  # (B, N)
    invalid = repeated[None] | padded[:, :, None, None] | padded[:, None, :, None] | padded[:, None, None, :]
    result = {}
    for particle in ("t1", "t2"):
        logits = torch.randn(events, n, n, n, generator=generator) * 3
        logits = logits.masked_fill(invalid, float("-inf")).reshape(events, -1)
        result[particle] = torch.log_softmax(logits, dim=1).reshape(events, n, n, n)
    return result


def bench_decode(events: int) -> tuple[float, float]:
    from spanet_lite.assignment.decoding import decode
    from spanet_lite.config import load_event_spec

    spec = load_event_spec(EVENT_FILE)
    assignments = random_ttbar_log_probs(events)
    subset = {k: v[: events // 10] for k, v in assignments.items()}
    greedy = exact = 0.0
    for _ in range(3):  # best of three: the machine is shared, the slow runs measure the neighbours
        start = time.perf_counter()
        decode(assignments, spec)
        greedy = max(greedy, events / (time.perf_counter() - start))
        start = time.perf_counter()
        decode(subset, spec, mode="exact")
        exact = max(exact, (events // 10) / (time.perf_counter() - start))
    return greedy, exact


def make_run(log_dir: Path, data: Path) -> Path:
    """A run directory of the default options, written by ``spanet_lite``'s own training.

    One epoch of ``train()`` on the first :data:`RUN_FRACTION` of ``data`` writes the run
    as ``spanet-train`` does (options, event file, statistics, checkpoints), so the bench reads
    what a user's run holds and never writes into a run folder itself, which the output rule of
    :mod:`spanet_lite.outputs` forbids. The weights barely move; the speed does not depend on them.
    """
    from spanet_lite.config.options import Options
    from spanet_lite.training.run import train

    result = train(
        Options(), event_file=EVENT_FILE, training_file=data, epochs=1, batch_size=RUN_BATCH,
        log_dir=log_dir, name="bench_inference", quiet=True,
        option_values={"dataset_limit": RUN_FRACTION, "num_dataloader_workers": 0},
    )
    return result.run_dir


def subset_file(source: Path, target: Path, events: int) -> Path:
    import h5py

    def copy(name: str, node) -> None:  # visititems stops at the first non-None return
        if isinstance(node, h5py.Dataset):
            dst.create_dataset(name, data=node[:events])

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        src.visititems(copy)
    return target


def bench_chi_square(events: int) -> float:
    """Events/s of the chi-square baseline on the first ``events`` events of :data:`DATA`."""
    import h5py

    from spanet_lite.config import load_event_spec
    from spanet_lite.dataset.reader import read_inputs
    from spanet_lite.evaluation.chisquare import chi_square_assign, object_kinematics

    spec = load_event_spec(EVENT_FILE)
    with h5py.File(DATA, "r") as file:  # raw features, as spanet-test hands them to the baseline
        inputs = read_inputs(file, spec, 0, events)
    kinematics = object_kinematics(spec, inputs.features, inputs.masks)
    best = 0.0
    for _ in range(3):  # best of three: the machine is shared, the slow runs measure the neighbours
        start = time.perf_counter()
        chi_square_assign(spec, spec.masses, kinematics)
        best = max(best, events / (time.perf_counter() - start))
    return best


def bench_predict(events: int) -> dict[str, float]:
    """Events/s of write_predictions with torch's default thread count, then with one thread,
    and of evaluate_file (spanet-test) with the default threads.

    On a machine shared with other jobs, OpenMP threads spinning on busy cores can make the
    multi-threaded pass many times slower than the single-threaded one.
    """
    import torch

    from spanet_lite.evaluation.predict import write_predictions
    from spanet_lite.evaluation.run import load_run

    default_threads = torch.get_num_threads()
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = subset_file(DATA, folder / "input.h5", events)
        run = load_run(make_run(folder / "runs", DATA))
        write_predictions(run, subset_file(DATA, folder / "warm.h5", 256), folder / "warm_out.h5")
        # Named by pass, not by thread count: with one default thread (OMP_NUM_THREADS=1) both
        # passes run on one thread, and the second must not find the first one's output.
        for label, threads in (("default", default_threads), ("one_thread", 1)):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            count = write_predictions(run, data, folder / f"out_{label}.h5", batch_size=1024)
            rates[label] = count / (time.perf_counter() - start)
        torch.set_num_threads(default_threads)
        start = time.perf_counter()
        run.evaluate(data, batch_size=1024)
        rates["test"] = events / (time.perf_counter() - start)
    return {**rates, "threads": default_threads}


def main() -> None:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    decode_events = 50_000 if args.quick else 200_000
    predict_events = 2_000 if args.quick else 10_000
    greedy, exact = bench_decode(decode_events)
    predict = bench_predict(predict_events)
    chi_square = bench_chi_square(predict_events)
    reference = 400.0
    rows = [
        ["decode, greedy (10-object ttbar)", f"{decode_events:,}", greedy, "target >= 50,000"],
        ["decode, exact", f"{decode_events // 10:,}", exact, ""],
        [f"spanet-predict, {predict['threads']} threads (read, network, decode, write)",
         f"{predict_events:,}", predict["default"],
         f"{predict['default'] / reference:.1f}x SPANet (~400 ev/s)"],
        ["spanet-predict, 1 thread", f"{predict_events:,}", predict["one_thread"],
         f"{predict['one_thread'] / reference:.1f}x SPANet"],
        [f"spanet-test, {predict['threads']} threads (tables, chi-square baseline)", f"{predict_events:,}",
         predict["test"], ""],
        ["chi-square baseline alone (top and W masses)", f"{predict_events:,}", chi_square, ""],
    ]
    _common.report(
        "Inference throughput (events/s)", ["what", "events", "events/s", "note"], rows,
        {
            "decode_events_per_s": greedy,
            "exact_decode_events_per_s": exact,
            "predict_events_per_s": predict["default"],
            "predict_events_per_s_1_thread": predict["one_thread"],
            "test_events_per_s": predict["test"],
            "chi_square_events_per_s": chi_square,
            "torch_threads": predict["threads"],
            "predict_events": predict_events,
            "quick": args.quick,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
