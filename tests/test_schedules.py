"""The learning-rate schedule: linear warm-up, then SPANet's linear decay (0 cycles) or cosine cycles."""

from __future__ import annotations

import math

import pytest
import torch

from spanet_lite.training.schedules import schedule_steps, warmup_cosine_factor, warmup_cosine_scheduler


def factor(step: int, total: int = 110, warmup: int = 10, cycles: int = 1) -> float:
    return warmup_cosine_factor(step, total_steps=total, warmup_steps=warmup, cycles=cycles)


def test_warm_up_rises_linearly_from_zero_as_in_spanet() -> None:
    # SPANet's get_linear_schedule_with_warmup: s / W, so the first step has rate 0
    assert [factor(s) for s in range(3)] == pytest.approx([0.0, 0.1, 0.2])
    assert factor(9) == pytest.approx(0.9)


def test_cosine_starts_at_full_rate_halves_midway_and_ends_near_zero() -> None:
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)  # halfway through the 100 decay steps
    assert factor(109) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))
    assert factor(110) == 0.0


def test_cycles_restart_at_the_full_rate() -> None:
    # 100 decay steps in 4 cycles of 25: each cycle starts at 1 and reaches 0.5 half-way.
    values = [factor(10 + 25 * c, cycles=4) for c in range(4)]
    assert values == pytest.approx([1.0] * 4)
    assert factor(10 + 25 * 2 + 12.5, cycles=4) == pytest.approx(0.5)  # type: ignore[arg-type]
    assert factor(10 + 24, cycles=4) < 0.01


def test_zero_cycles_is_spanets_linear_decay_after_warm_up() -> None:
    # SPANet's default learning_rate_cycles = 0: from the full rate straight down to zero
    decay = [factor(s, cycles=0) for s in range(10, 111, 10)]
    assert decay == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    assert factor(5, cycles=0) == factor(5, cycles=1)  # the warm-up is the same


def test_zero_cycles_through_the_optimizer_decays_linearly() -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    scheduler = warmup_cosine_scheduler(optimizer, total_steps=12, warmup_steps=2, cycles=0)
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.0, 0.25] + [0.5 * (10 - k) / 10 for k in range(10)])


def test_no_warm_up_starts_at_the_full_rate() -> None:
    assert factor(0, warmup=0) == pytest.approx(1.0)


def test_schedule_steps_warm_up_is_uncapped_as_in_spanet() -> None:
    assert schedule_steps(epochs=10, steps_per_epoch=7, warmup_epochs=1.0) == (70, 7)
    assert schedule_steps(epochs=1, steps_per_epoch=8, warmup_epochs=1.0) == (8, 8)  # all warm-up
    assert schedule_steps(epochs=3, steps_per_epoch=10, warmup_epochs=0.5) == (30, 5)
    assert schedule_steps(epochs=1, steps_per_epoch=8, warmup_epochs=2.0) == (8, 16)
    # warm-up longer than the run: the rate only rises, 0 .. 7/16 of the peak
    assert [factor(s, total=8, warmup=16, cycles=0) for s in (0, 7)] == pytest.approx([0.0, 7 / 16])


def test_scheduler_state_holds_the_step_counter_and_resumes_exactly() -> None:
    def make() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return optimizer, warmup_cosine_scheduler(optimizer, total_steps=50, warmup_steps=5, cycles=2)

    straight_opt, straight = make()
    for _ in range(30):
        straight_opt.step()
        straight.step()

    first_opt, first = make()
    for _ in range(12):
        first_opt.step()
        first.step()
    second_opt, second = make()
    second.load_state_dict(first.state_dict())
    second_opt.param_groups[0]["lr"] = first_opt.param_groups[0]["lr"]
    for _ in range(18):
        second_opt.step()
        second.step()
    assert second_opt.param_groups[0]["lr"] == pytest.approx(straight_opt.param_groups[0]["lr"], abs=0)
    assert second_opt.param_groups[0]["lr"] == pytest.approx(0.1 * factor(30, total=50, warmup=5, cycles=2))


def test_schedule_steps_counts_any_finite_warm_up() -> None:
    """learning_rate_warmup_epochs 1e308 (allowed: finite, >= 0) overflowed the float product to
    infinity, and round() raised OverflowError: a traceback from spanet-train."""
    total, warmup = schedule_steps(epochs=2, steps_per_epoch=4, warmup_epochs=1e308)
    assert total == 8 and warmup == int(1e308) * 4
    assert 0 < factor(7, total=total, warmup=warmup, cycles=0) < 1e-300  # the rate stays near 0
