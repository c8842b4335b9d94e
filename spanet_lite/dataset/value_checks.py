"""Value checks that training, ``spanet-inspect`` and ``spanet-predict`` share.

A file can have the right layout and still be unusable: a ``log`` feature at or below -1
(``log(x + 1)`` is undefined), an input whose MASK is False everywhere (nothing to learn, purity
NaN; predicting on such a file is fine, so there it is a warning), event or particle weights
whose sum is not positive (all negative: the weighted loss is unbounded below; all zero:
nothing is trained; a few negative ones are only a warning, as NLO samples have them), or a
class label far above the others (a typo that silently
adds classes: labels 0, 1 and one 5 make six classes). :class:`ValueChecks` finds these chunk by
chunk inside :func:`spanet_lite.dataset.schema.validate_h5`, so the one report that
``spanet-inspect`` prints is the one the loader acts on: errors stop training (and
``spanet-predict``, which checks its INPUTS with ``inputs_only``; the training rules, about the
loss and what there is to learn, are not its business), warnings are printed by both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from spanet_lite.config.event_spec import EventSpec

if TYPE_CHECKING:
    from spanet_lite.dataset.schema import Problem

LOG_DOMAIN = "values above -1 for the log option (x -> log(x + 1))"
FINITE_REAL = "finite values for real objects"
"""What the INPUTS must hold where the MASK is True (and everywhere in a GLOBAL input): a NaN
there reaches the network and turns every prediction of the event into NaN."""


def outside_log_domain(values: np.ndarray) -> np.ndarray:
    """Where a ``log`` feature's values leave the domain of ``log(x + 1)`` (NaN is the finiteness
    rule's business): the file checks and ``run.predict`` on arrays apply this one rule."""
    return np.isfinite(values) & (values <= -1)


def nonfinite_real(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Where ``values`` break the finiteness rule: bool, shaped like ``values`` less its last axis.

    ``values`` ends in a feature axis: SEQUENTIAL (n, N, F) with ``mask`` (n, N) (padded slots
    may hold anything: they never reach the network), RELATIVE pair features (n, N, N, C) (a pair
    counts when both of its objects are real), GLOBAL (n, F) with ``mask`` None (every value
    counts). The file checks (:mod:`~spanet_lite.dataset.schema`, one dataset at a time, so
    ``F == 1``), the reader and ``run.predict`` on arrays all apply this one rule.
    """
    bad = ~np.isfinite(values).all(axis=-1)
    if mask is None:
        return bad
    if bad.ndim == 3:
        return bad & mask[:, :, None] & mask[:, None, :]
    return bad & mask


class ValueChecks:
    """Accumulates the value findings of one file; ``tally`` is the scan's counter factory."""

    def __init__(self, spec: EventSpec, tally: Callable[[str, str, str, str], Any], *,
                 training_rules: bool = True) -> None:
        """``training_rules``: the weight rules, about the loss, and an input without any object
        as an error, for there is nothing to learn from it. Not when predicting: the weights are
        only carried into the output, and a sample without, say, any lepton is a fair thing to
        predict on (particles that need one come out unassigned), so that is a warning."""
        self.spec = spec
        self.tally = tally
        self.training_rules = training_rules
        self.weights: dict[str, _WeightSums] = {}

    def chunk(self, read: Callable[[str], np.ndarray], usable: dict[str, Any],
              masks: dict[str, np.ndarray], start: int) -> None:
        """Check one chunk: ``read(path)`` gives its rows of a dataset, ``masks`` its MASKs."""
        for path, expected in usable.items():
            if expected.role in ("feature", "global"):
                feature = self._feature(expected.input, path.rsplit("/", 1)[-1])
                if feature is None or not feature.log:
                    continue
                values = read(path)
                bad = outside_log_domain(values)
                if expected.role == "feature":
                    mask = masks.get(expected.input or "")
                    if mask is None:
                        continue
                    if bad.ndim == 3:  # a RELATIVE pair feature: both objects real
                        bad = (bad & mask[:, :, None] & mask[:, None, :]).reshape(len(bad), -1)
                        values = values.reshape(len(values), -1)
                    else:
                        bad &= mask
                self.tally(path, "log_domain", LOG_DOMAIN, "{values:value} at or below -1").add(
                    bad, start, values)
            elif expected.role in ("event_weight", "target_weight") and self.training_rules:
                values = read(path).astype(np.float64, copy=False)
                self.weights.setdefault(path, _WeightSums()).add(values[np.isfinite(values)])

    def _feature(self, input_name: str | None, name: str) -> Any:
        for source in self.spec.inputs:
            if source.name == input_name:
                return next((f for f in source.features if f.name == name), None)
        return None

    def finish(self, objects: dict[str, list[int]], classes: dict[str, dict[int, int]],
               num_events: int) -> list[Problem]:
        """Whole-file findings, once every chunk was seen."""
        from spanet_lite.dataset.hdf5_layout import classification_path, mask_path
        from spanet_lite.dataset.schema import Problem

        found: list[Problem] = []
        if num_events == 0:
            return found
        for name, (total, _) in objects.items():
            if total == 0 and self.training_rules:
                found.append(Problem("error", mask_path(name),
                                     "expected at least one real object (MASK True) in the file, got none",
                                     "empty_mask"))
            elif total == 0:
                found.append(Problem("warning", mask_path(name), "no real object (MASK True) in the "
                                     "file: a particle that needs one of them is not assigned", "empty_mask"))
        for path, sums in self.weights.items():
            if sums.absolute == 0:
                found.append(Problem("error", path, "expected some non-zero weights, got only zeros "
                                     "(nothing would be trained)", "weight"))
            elif sums.total <= 0:
                found.append(Problem("error", path, "expected weights with a positive sum (the weighted loss "
                                     f"is unbounded below otherwise), got sum {sums.total:.4g} with "
                                     f"{sums.negative:,} negative weight(s)", "weight"))
            elif sums.negative:
                found.append(Problem("warning", path, f"{sums.negative:,} negative weight(s): the loss of "
                                     "those events is unbounded below", "weight"))
        for key, table in classes.items():
            message = label_gap(table)
            if message:
                found.append(Problem("warning", classification_path(key), message, "label_gap"))
        return found


class _WeightSums:
    """Sum, sum of magnitudes and count of negative values of one weight dataset."""

    def __init__(self) -> None:
        self.total = self.absolute = 0.0
        self.negative = 0

    def add(self, values: np.ndarray) -> None:
        self.total += float(values.sum())
        self.absolute += float(np.abs(values).sum())
        self.negative += int(np.count_nonzero(values < 0))


def label_gap(counts: dict[int, int]) -> str | None:
    """A warning for labels that look like a typo: a few events with a label beyond a gap.

    The class count is ``max label + 1``, so a stray high label adds classes that never occur.
    Labels above the first missing class count as stray when they hold at most 1 % of the
    labelled events (or a single event); a real gap (labels 0 and 3, half each) is left alone.
    """
    labels = sorted(label for label, count in counts.items() if count > 0)
    if len(labels) < 2 or labels[-1] + 1 == len(labels):
        return None
    missing = _missing_labels(labels, 6)  # walks the gaps: a label of 2**40 made range() a MemoryError
    first_gap = missing[0]
    stray = sum(counts[label] for label in labels if label > first_gap)
    if stray > max(1.0, 0.01 * sum(counts[label] for label in labels)):
        return None
    shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
    return (f"class labels 0..{labels[-1]} make {labels[-1] + 1} classes, but {shown} never occur "
            f"({stray:,} event(s) above the gap; a typo?)")


def _missing_labels(labels: list[int], most: int) -> list[int]:
    """The first ``most`` of ``0 .. labels[-1]`` absent from the sorted, distinct ``labels``,
    found gap by gap, so the work does not grow with the value of the highest label."""
    missing: list[int] = []
    expected = 0
    for label in labels:
        missing += range(expected, min(label, expected + most - len(missing)))
        if len(missing) >= most:
            break
        expected = label + 1
    return missing
