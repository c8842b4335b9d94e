"""Training throughput of the network on CPU, and the cost of the EVENT-group loss.

For each configuration, at batch size 32 on synthetic events with its slot count:
events/s per wall second and per CPU second of a full training step (forward,
``compute_losses``, backward, fused AdamW step) and of forward+backward alone, the
parameter count, and the peak RSS (each configuration runs in its own subprocess).
Then the time of ``compute_losses`` alone (forward + backward through the losses) for
4 particles with an EVENT group of 2, 6 and 24 elements.

Then padding trimming (``Batch.trimmed``, what the training module does to every batch) on
real data: training steps of the ttH example options on the first training batches of
``data/semi_leptonic_ttH/example.h5`` (the options' batch size, 19 slots, ~7.8 real objects
per event), with and without trimming, alternated; best pass of each, and their ratio
(``tth_trimmed_train_events_per_s``, ``tth_untrimmed_train_events_per_s``, ``tth_trimming``).

Yardstick: SPANet v2 trains its ``full_hadronic_ttbar/example.json`` (2.54 M parameters,
batch 32) at about 90 events/s on the 2-core development machine.

The ``*_pairs`` configurations are the example options with ``pair_features: physics`` (the ParT
pair features as attention bias): their ratio to the plain ones is the cost of the option.

Usage: ``python bench/bench_model.py [--quick] [--threads N] [--json PATH]``. One intra-op
thread by default: on a shared 2-core machine, two OpenMP threads stall each other whenever one
is descheduled. The machine's load average is recorded with the figures.

JSON keys: ``configs`` (per configuration: ``train_events_per_s``, ``train_events_per_cpu_s``,
``forward_backward_events_per_s``, ``parameters``, ``peak_rss_mb``, ...), ``event_group_loss_ms``
(per group size), ``tth_trimmed_train_events_per_s``, ``tth_untrimmed_train_events_per_s``,
``tth_trimming``, ``load_average``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import parser, peak_rss_mb, report

ROOT = Path(__file__).resolve().parents[1]
BATCH = 32
TTBAR, TTH = "event_files/full_hadronic_ttbar.yaml", "event_files/semi_leptonic_ttH.yaml"
CONFIGS = {
    # name: (event file, options file or None for Options() defaults, slots)
    "full_hadronic_ttbar": (
        "event_files/full_hadronic_ttbar.yaml",
        "options_files/full_hadronic_ttbar/example.json",
        10,
    ),
    "full_hadronic_ttbar_defaults": ("event_files/full_hadronic_ttbar.yaml", None, 10),
    "semi_leptonic_ttH": (
        "event_files/semi_leptonic_ttH.yaml",
        "options_files/semi_leptonic_ttH/example.json",
        19,
    ),
    "semi_leptonic_ttH_defaults": ("event_files/semi_leptonic_ttH.yaml", None, 19),
    "full_hadronic_ttbar_pairs": (
        "event_files/full_hadronic_ttbar.yaml",
        "options_files/full_hadronic_ttbar/example.json",
        10,
    ),
    "semi_leptonic_ttH_pairs": (
        "event_files/semi_leptonic_ttH.yaml",
        "options_files/semi_leptonic_ttH/example.json",
        19,
    ),
}
# Option changes of a configuration: the plain ones without the ParT pair features (model/pairs.py),
# as they were measured before the option existed, the *_pairs ones with them.
CONFIG_CHANGES: dict[str, dict] = {
    **{name: {"pair_features": "none"} for name in CONFIGS},
    "full_hadronic_ttbar_pairs": {"pair_features": "physics"},
    "semi_leptonic_ttH_pairs": {"pair_features": "physics"},
}


def synthetic_batch(spec, slots: int, seed: int = 0):
    """32 events, 6..slots real objects each, distinct random targets, 80 % of particles present."""
    import torch

    from spanet_lite.dataset.batch import Batch

    g = torch.Generator().manual_seed(seed)
    features, masks = {}, {}
    for spec_input in spec.sequential:
        counts = torch.randint(6, slots + 1, (BATCH, 1), generator=g)
        masks[spec_input.name] = torch.arange(slots)[None] < counts
        features[spec_input.name] = torch.rand(BATCH, slots, spec_input.num_features, generator=g) * 5
    for spec_input in spec.global_inputs:
        features[spec_input.name] = torch.rand(BATCH, spec_input.num_features, generator=g) * 5
    real = torch.cat([masks[s.name] for s in spec.sequential], 1)
    order = torch.argsort(torch.rand(real.shape, generator=g) - real.float(), 1)  # real objects first
    targets, target_masks, start = {}, {}, 0
    for particle in spec.particles:
        k = particle.num_products
        targets[particle.name] = order[:, start : start + k].clone()
        target_masks[particle.name] = torch.rand(BATCH, generator=g) < 0.8
        targets[particle.name][~target_masks[particle.name], -1] = -1
        start += k
    return Batch(
        features,
        masks,
        targets,
        target_masks,
        regressions={t.key: torch.randn(BATCH, generator=g) for t in spec.regressions},
        classifications={t.key: torch.randint(0, 2, (BATCH,), generator=g) for t in spec.classifications},
    )


def statistics_for(spec):
    from spanet_lite.dataset.statistics import DatasetStatistics

    return DatasetStatistics(num_classes={t.key: 2 for t in spec.classifications})


def run_config(name: str, quick: bool) -> dict:
    """One configuration, in this process: train and forward+backward throughput."""
    import torch

    from spanet_lite.config import load_event_spec
    from spanet_lite.config.options import Options
    from spanet_lite.config.options_file import load_options
    from spanet_lite.model.network import SpanetNetwork
    from spanet_lite.training.losses import compute_losses
    from spanet_lite.training.optimizer import parameter_groups

    event_file, options_file, slots = CONFIGS[name]
    spec = load_event_spec(ROOT / event_file)
    options = load_options(ROOT / options_file) if options_file else Options()
    options = options.replace(**CONFIG_CHANGES.get(name, {}))
    torch.manual_seed(0)
    network = SpanetNetwork(spec, options, statistics_for(spec)).train()
    batch = synthetic_batch(spec, slots)
    optimizer = torch.optim.AdamW(parameter_groups(network, options.l2_penalty), lr=1e-4, fused=True)

    def forward_backward() -> None:
        outputs = network(batch.features, batch.masks, batch.pairs)
        compute_losses(outputs, batch, network, spec, options).total.backward()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward()
        optimizer.step()

    # --quick: enough to see the per-step cost (the first step is the slow one, warm-ups take it),
    # short enough that tests/test_bench_quick.py runs the whole bench in about half a minute.
    warm, steps, repeats = (2, 3, 2) if quick else (3, 30, 5)
    figures = {}
    for key, step in (("train", train_step), ("forward_backward", forward_backward)):
        for _ in range(warm):
            step()
        wall, cpu = float("inf"), float("inf")
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                step()
            wall = min(wall, (time.perf_counter() - start) / steps)
            cpu = min(cpu, (time.process_time() - start_cpu) / steps)
        figures[f"{key}_events_per_s"] = BATCH / wall
        figures[f"{key}_events_per_cpu_s"] = BATCH / cpu
        figures[f"{key}_ms_per_step"] = wall * 1e3
    figures.update(
        parameters=sum(p.numel() for p in network.parameters()),
        peak_rss_mb=peak_rss_mb(),
        slots=slots,
        batch_size=BATCH,
        options={
            k: getattr(options, k)
            for k in (
                "hidden_dim",
                "num_embedding_layers",
                "num_encoder_layers",
                "num_branch_encoder_layers",
                "num_branch_embedding_layers",
                "num_attention_heads",
                "transformer_activation",
                "pair_features",
            )
        },
    )
    return figures


def group_loss_cost(quick: bool) -> dict[str, float]:
    """ms per batch of 32 for compute_losses forward+backward, EVENT group of 2, 6, 24 elements."""
    import torch

    from spanet_lite.config import parse_event_spec
    from spanet_lite.config.options import Options
    from spanet_lite.model.network import SpanetNetwork
    from spanet_lite.model.outputs import Outputs
    from spanet_lite.training.losses import compute_losses

    result = {}
    for group, order in (("[[t1, t2]]", 2), ("[[t1, t2, t3]]", 6), ("[[t1, t2, t3, t4]]", 24)):
        text = (
            "INPUTS:\n  SEQUENTIAL:\n    Jets: {pt: log_normalize, eta: normalize}\nEVENT:\n"
            + "".join(f"  t{i}: [q1, q2, b]\n" for i in range(1, 5))
            + f"PERMUTATIONS:\n  EVENT: {group}\n"
            + "".join(f"  t{i}: [[q1, q2]]\n" for i in range(1, 5))
        )
        spec = parse_event_spec(text)
        options = Options(hidden_dim=32, num_encoder_layers=1, num_branch_encoder_layers=1)
        network = SpanetNetwork(spec, options, statistics_for(spec))
        batch = synthetic_batch(spec, 12)
        with torch.no_grad():
            raw = network(batch.features, batch.masks)
        leaves = Outputs(
            {k: v.clone().requires_grad_() for k, v in raw.assignments.items()},
            {k: v.clone().requires_grad_() for k, v in raw.detections.items()},
        )
        assert spec.event_symmetry.order == order

        def step(leaves=leaves, batch=batch, network=network, spec=spec, options=options) -> None:
            compute_losses(leaves, batch, network, spec, options).total.backward()

        for _ in range(3):
            step()
        best = float("inf")
        for _ in range(3 if quick else 5):
            start = time.perf_counter()
            for _ in range(10 if quick else 30):
                step()
            best = min(best, (time.perf_counter() - start) / (10 if quick else 30))
        result[str(order)] = best * 1e3
    return result


TTH_OPTIONS, TTH_DATA = "options_files/semi_leptonic_ttH/example.json", "data/semi_leptonic_ttH/example.h5"


def tth_trimming(quick: bool) -> dict:
    """Training events/s on real ttH example batches with and without trimming their padding."""
    import statistics

    import torch

    from spanet_lite.config import load_event_spec
    from spanet_lite.config.options_file import load_options
    from spanet_lite.dataset.datamodule import SpanetDataModule
    from spanet_lite.model.network import SpanetNetwork
    from spanet_lite.training.losses import compute_losses
    from spanet_lite.training.optimizer import parameter_groups

    options = load_options(ROOT / TTH_OPTIONS)
    spec = load_event_spec(ROOT / options.event_info_file)
    data = SpanetDataModule(spec, options, training_file=ROOT / TTH_DATA)
    data.setup("fit")
    count, repeats = (4, 2) if quick else (10, 5)
    batches = []
    for batch in data.train_dataloader():
        batches.append(batch)
        if len(batches) == count:
            break
    order = [s.name for s in spec.sequential]
    torch.manual_seed(0)
    network = SpanetNetwork(spec, options, data.statistics).train()
    optimizer = torch.optim.AdamW(parameter_groups(network, options.l2_penalty), lr=1e-4, fused=True)

    def one_pass(trim: bool) -> float:
        start = time.perf_counter()
        for batch in batches:
            batch = batch.trimmed(order) if trim else batch
            optimizer.zero_grad(set_to_none=True)
            outputs = network(batch.features, batch.masks)
            compute_losses(outputs, batch, network, spec, options).total.backward()
            optimizer.step()
        return time.perf_counter() - start

    for trim in (True, False):  # warm-up, and the tensor attention's tables for each width
        one_pass(trim)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for trim in (False, True):
            seconds[trim].append(one_pass(trim))
    events = sum(b.batch_size for b in batches)
    kept = [sum(b.trimmed(order).masks[n].shape[1] for n in order) for b in batches]
    trimmed, untrimmed = events / min(seconds[True]), events / min(seconds[False])
    return {
        "tth_trimmed_train_events_per_s": trimmed,
        "tth_untrimmed_train_events_per_s": untrimmed,
        "tth_trimming": {
            "speedup": trimmed / untrimmed,
            "batch_size": options.batch_size,
            "batches": count,
            "slots": sum(batches[0].masks[n].shape[1] for n in order),
            "mean_kept_slots": sum(kept) / len(kept),
            "median_pass_speedup": statistics.median(seconds[False]) / statistics.median(seconds[True]),
        },
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--one", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        sys.stdout.write(json.dumps(run_config(args.one, args.quick)) + "\n")
        return
    load_before = os.getloadavg()
    figures: dict = {"configs": {}}
    rows = []
    for name in CONFIGS:
        command = [sys.executable, __file__, "--one", name, "--threads", str(args.threads)]
        command += ["--quick"] if args.quick else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        config = json.loads(output.strip().splitlines()[-1])
        figures["configs"][name] = config
        rows.append(
            [
                name,
                config["slots"],
                f"{config['parameters']:,}",
                config["train_events_per_s"],
                config["train_events_per_cpu_s"],
                config["forward_backward_events_per_s"],
                config["peak_rss_mb"],
            ]
        )
    figures["event_group_loss_ms"] = group_loss_cost(args.quick)
    figures.update(tth_trimming(args.quick))
    figures["load_average"] = {"before": load_before, "after": os.getloadavg()}
    figures["torch_threads"] = args.threads
    for order, ms in figures["event_group_loss_ms"].items():
        rows.append([f"loss, group {order}", 12, "-", BATCH / ms * 1e3, "-", "-", "-"])
    trimming = figures["tth_trimming"]
    for label, key, slots in (
        ("", "tth_untrimmed_train_events_per_s", trimming["slots"]),
        (", trimmed", "tth_trimmed_train_events_per_s", f"{trimming['mean_kept_slots']:.1f}"),
    ):
        label = f"ttH data, batch {trimming['batch_size']}{label}"
        rows.append([label, slots, "-", figures[key], "-", "-", "-"])
    report(
        f"spanet_lite network, CPU, batch {BATCH}, {args.threads} thread(s), load {load_before[0]:.1f}",
        ["config", "slots", "params", "train ev/s", "train ev/cpu-s", "fwd+bwd ev/s", "RSS MB"],
        rows,
        figures,
        args.json,
    )


if __name__ == "__main__":
    main()
