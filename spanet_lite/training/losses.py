"""Training losses: assignment, detection, regression, classification, SPANet's kl term, overlap.

``compute_losses(outputs, batch, network, spec, options) -> LossResult(total, terms)``::

    total = assignment_loss_scale     * assignment_loss
          + detection_loss_scale      * detection_loss
          + regression_loss_scale     * regression_loss       (sum over regression targets)
          + classification_loss_scale * classification_loss   (sum over classification targets)
          + kl_loss_scale             * kl_loss               (SPANet's symmetric-divergence term)
          + overlap_loss_scale        * overlap_loss          (spanet_lite's overlap penalty)

Each family term is the sum of its per-part terms (``assignment_loss/<particle>`` ...), so
adding a regression target adds a term instead of diluting the others.

**Difference from SPANet's total** (docs/migrating_from_spanet.md, "Loss total"). SPANet
returns the *mean* of its list of scaled terms (one entry per particle for assignment and for
detection, one per regression/classification target, one kl entry, terms with scale 0 left
out), so adding a target or a particle shrinks the weight of every other term; each
particle's assignment *and* detection sums are divided by that particle's reconstructable
count, and its balancing weights are not divided out. Here the total is the explicit *sum*
above, and assignment and detection are each one weighted mean pooled over particles
(divided by the summed weights of the counted entries), so balancing weights only set
relative weights. For SPANet's default objective (only ``assignment_loss_scale`` non-zero, P
particles), with ``m_pb`` = particle p reconstructable in event b, ``N_p = sum_b m_pb`` and
``S_p = sum_b m_pb w_pb nll_pb``, SPANet's total is ``(1/P) sum_p S_p / max(1, N_p)`` and ours
is ``sum_p S_p / sum_p sum_b m_pb w_pb``. They are equal when every weight is 1 and every
particle has the same count N_p >= 1 in the batch, as with ``partial_events: false`` (SPANet's
default: every particle reconstructable in every event). With weights, SPANet's is ours times
the mean weight of the counted entries (it divides by counts, not by summed weights); with
partial events SPANet averages the particles' means equally (a particle with no reconstructable
event in the batch still counts in P, as 0), ours weighs each particle by its count.

**Assignment.** For output particle p compared with the targets t of particle q, the loss is
the negative log-probability of the *unordered* assignment: every ordering of t equivalent
under p's product group G counts as the same answer. The network's distribution is exactly
G-invariant and t has distinct objects, so ``P(unordered) = |G| P(t)`` and

    nll(p, q) = -log P_p(t_q) - log |G_p|        (0 for a perfect prediction)

with focal modulation ``(1 - P(unordered))^focal_gamma * nll``, capped at 1e4 so that a target
the network considers impossible cannot produce inf/NaN. Only particles that are fully
reconstructable (``batch.target_masks``) in events of ``batch.assignment_event_mask`` count,
weighted by ``w_q = event_weight x assignment_weight x particle_weight[q]`` (None = 1).

**EVENT symmetry.** For each element s of ``spec.event_symmetry`` (s[p] = index of the
particle whose targets output p is compared with), per event
``L_s = sum_p [q reconstructable] w_q nll(p, q = s[p])``; these are combined per
``combine_pair_loss`` with per-event coefficients c_s: ``min`` (one-hot on the smallest L_s, ties
split evenly),
``softmin`` (``softmax(-L_s)``) or ``mean`` (1/|S|), giving ``sum_s c_s L_s``. The assignment
loss is the batch sum of that divided by ``sum_{events, q} [q reconstructable] w_q``: a
weighted mean NLL per reconstructable particle. Detection, particle/product regressions and
classifications of an event-symmetric particle follow the same pairing, with the
coefficients detached (the assignment decides which truth particle an output stands for).

**Detection.** Binary cross-entropy of each particle's logit against ``target_masks`` (all
events, weights ``w_q``), normalised by the sum of weights over events and particles.

**Regression.** On normalised targets (``network.normalize_regressions``): squared error for
gaussian and log_gaussian (in the transformed ``sign(x) log(1 + |x|)`` space; SPANet's log_gaussian
loss is the squared error in raw units), absolute error for laplacian; NaN
targets are excluded; each target's weighted mean uses ``event_weight``; a batch where a
target is all NaN contributes exactly 0 for it.

**Classification.** Cross-entropy, labels -1 (or outside the head's classes) excluded, weights
``event_weight x classification_weights[key]``, weighted mean per target.

**kl_loss** (SPANet's term, as in its ``symmetric_divergence_loss``). For every transposition
(i, j) of the EVENT symmetry group (the transpositions the group's elements decompose into),
per event ``D_ij = JS(P_i, P_j)``, the Jensen-Shannon divergence between the two particles'
joint assignment distributions, with gradients flowing only through their mixture
``M = (P_i + P_j) / 2`` (P_i and P_j detached, as SPANet does); the event value is
``e = mean over pairs of exp(-D_ij^2)``, 0 for a pair where either particle is not
reconstructable. Minimising it pushes symmetric particles towards different assignments. The
batch value is SPANet's normalisation ``2 P sum_b w_b e_b / sum_{p,b} [p reconstructable]`` for
P particles (SPANet sums a weight tensor with an assignment and a detection slot per particle),
so with unit weights and full events it is twice the batch mean of e. ``w_b`` is the event
weight times the balancing weight ``assignment_weight``; the file's per-particle ``WEIGHT``
datasets are not in it, as in SPANet, where they weigh only the assignment and detection terms.
0 without EVENT symmetry.

**overlap_loss** (spanet_lite's ``overlap_loss_scale``). For particles p and p' in the same EVENT
orbit, the probability that object i is used by p is ``u_p(i) = sum_j P_p(product j = i)``; the
term is the ``event_weight``-weighted batch mean of ``sum_{pairs p<p'} sum_i u_p(i) u_p'(i)``,
the expected number of objects two symmetric particles would both claim if their choices were
independent.

Both are only computed (and logged) when their scale is positive, as SPANet does for kl.

**Negative weights** (NLO samples; the file check lets a few through with a warning). Every
"sum of weights" that divides a term above (assignment, detection, regression,
classification, overlap) is the sum of their magnitudes ``|w|``: the same number when no
weight is negative, and never 0 or negative for a batch that holds negative-weight events (a
last, short batch of one such event divided by the 1e-30 floor, a loss of order -1e30). The
EVENT pairing is chosen on ``L_s`` with ``|w_q|`` too, so a negative-weight event pairs its
outputs with the truth particles they fit best, as any other event does.

"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.config.options import Options
from spanet_lite.dataset.batch import Batch
from spanet_lite.model.outputs import Outputs
from spanet_lite.model.symmetric_attention import object_marginals

NLL_CAP = 1.0e4
"""Largest per-particle assignment NLL: keeps an impossible target finite (no inf/NaN)."""
_TINY = 1.0e-30


@dataclass
class LossResult:
    total: Tensor
    """Scalar to back-propagate."""
    terms: dict[str, Tensor]
    """Every term by name (scalars), family terms and per-part terms."""


def compute_losses(
    outputs: Outputs, batch: Batch, network: Any, spec: EventSpec, options: Options
) -> LossResult:
    """All loss terms of one batch; see the module docstring for the definitions."""
    device = next(iter(batch.features.values())).device
    size = batch.batch_size
    ones = torch.ones(size, device=device)
    event_weight = batch.event_weights.float() if batch.event_weights is not None else ones
    terms: dict[str, Tensor] = {}

    particle_weights = _particle_weights(batch, spec, event_weight)
    coefficients, permutations = _assignment_and_detection(
        outputs, batch, spec, options, particle_weights, terms
    )
    terms["regression_loss"] = _regression(
        outputs, batch, network, spec, coefficients, permutations, event_weight, terms
    )
    terms["classification_loss"] = _classification(
        outputs, batch, spec, coefficients, permutations, event_weight, terms
    )
    total = (
        options.assignment_loss_scale * terms["assignment_loss"]
        + options.detection_loss_scale * terms["detection_loss"]
        + options.regression_loss_scale * terms["regression_loss"]
        + options.classification_loss_scale * terms["classification_loss"]
    )
    if options.kl_loss_scale > 0:
        terms["kl_loss"] = symmetric_divergence(outputs, batch, spec, _balanced(batch, event_weight))
        total = total + options.kl_loss_scale * terms["kl_loss"]
    if options.overlap_loss_scale > 0:
        terms["overlap_loss"] = overlap_penalty(outputs, spec, event_weight)
        total = total + options.overlap_loss_scale * terms["overlap_loss"]
    return LossResult(total, terms)


# --------------------------------------------------------------- assignment
def _target_indices(targets: Tensor, num_objects: int) -> Tensor:
    """(B, k) combined object indices (-1 allowed) -> (B,) flat index into the N^k tuples.

    Strides are Python numbers: a stride tensor built per step would be a host-to-device copy.
    """
    k = targets.shape[1]
    clamped = targets.clamp_min(0)
    flat = clamped[:, k - 1]
    for j in range(k - 2, -1, -1):
        flat = flat + clamped[:, j] * num_objects ** (k - 1 - j)
    return flat


_PERMUTATIONS: dict[tuple[tuple[tuple[int, ...], ...], int, str], Tensor] = {}


def _permutation_table(elements: list[tuple[int, ...]], width: int, device: torch.device) -> Tensor:
    """(S, P) event-group elements as a tensor on ``device``, built once per (group, device)."""
    if torch.compiler.is_compiling():  # a constant of the compiled graph: no cache to guard on
        return torch.tensor(elements, dtype=torch.long, device=device).view(len(elements), width)
    key = (tuple(elements), width, str(device))
    table = _PERMUTATIONS.get(key)
    if table is None:
        table = torch.tensor(elements, dtype=torch.long, device=device).view(len(elements), width)
        _PERMUTATIONS[key] = table
    return table


def _elements(spec: EventSpec) -> list[tuple[int, ...]]:
    """The EVENT group's elements as Python tuples (read on the host, never from a tensor)."""
    return [tuple(int(q) for q in element) for element in spec.event_symmetry.elements]


def _balanced(batch: Batch, event_weight: Tensor) -> Tensor:
    """``event_weight x assignment_weight`` (B,): the balancing weights, before any per-particle weight."""
    if batch.assignment_weights is None:
        return event_weight
    return event_weight * batch.assignment_weights.float()


def _particle_weights(batch: Batch, spec: EventSpec, event_weight: Tensor) -> list[Tensor]:
    """Per particle q, ``w_q = event_weight x assignment_weight x particle_weight[q]`` (B,)."""
    balanced = _balanced(batch, event_weight)
    return [
        balanced * batch.particle_weights[name].float() if name in batch.particle_weights else balanced
        for name in spec.particle_names
    ]


def _assignment_and_detection(
    outputs: Outputs,
    batch: Batch,
    spec: EventSpec,
    options: Options,
    weight: list[Tensor],
    terms: dict[str, Tensor],
) -> tuple[Tensor, Tensor]:
    """Fill the assignment and detection terms; return the per-event coefficients (S, B) and perms (S, P)."""
    names = spec.particle_names
    P, size = len(names), batch.batch_size
    device = next(iter(batch.features.values())).device
    elements = _elements(spec)
    permutations = _permutation_table(elements, P, device)
    if P == 0:
        zero = torch.zeros((), device=device)
        terms["assignment_loss"] = terms["detection_loss"] = zero
        return torch.ones(1, size, device=device), permutations

    in_loss = batch.assignment_event_mask if batch.assignment_event_mask is not None else True
    present, counted = [], []
    for name in names:
        present.append(batch.target_masks[name].bool())
        counted.append(present[-1] & in_loss)

    compared = [[False] * P for _ in range(P)]  # output p is compared with truth q (no sort: see below)
    for element in elements:
        for p, q in enumerate(element):
            compared[p][q] = True
    zero_row = torch.zeros(size, device=device)
    nll_rows, bce_rows = [zero_row] * (P * P), [zero_row] * (P * P)
    # In a plain double loop, not sorted pairs: a compiled graph (network_losses) breaks on sorting tuples.
    for p, q in ((p, q) for p in range(P) for q in range(P) if compared[p][q]):
        log_probs = outputs.assignments[names[p]]
        group_order = spec.particles[p].symmetry.order
        flat = _target_indices(batch.targets[names[q]], log_probs.shape[1])
        picked = log_probs.reshape(size, -1).gather(1, flat[:, None]).squeeze(1)
        nll = (-(picked + math.log(group_order))).clamp(max=NLL_CAP)
        if options.focal_gamma:
            prob = torch.exp(-nll).clamp(max=1.0)
            nll = (1.0 - prob) ** options.focal_gamma * nll
        nll_rows[p * P + q] = torch.where(counted[q], weight[q] * nll, zero_row)
        label = present[q].float()
        bce = F.binary_cross_entropy_with_logits(
            outputs.detections[names[p]].float(), label, reduction="none"
        )
        bce_rows[p * P + q] = weight[q] * bce

    select = (torch.arange(P, device=device) * P + permutations).reshape(-1)  # (S P,) rows (p, s[p])
    S = permutations.shape[0]
    nll_sp = torch.stack(nll_rows).index_select(0, select).view(S, P, size)  # (S, P, B)
    bce_sp = torch.stack(bce_rows).index_select(0, select).view(S, P, size)
    # Chosen on |w| nll (nll >= 0): a negative-weight event's L_s is negative, and its min would
    # pick the worst pairing for it, and for its detection/regression pairing. Same for w >= 0.
    per_element = nll_sp.abs().sum(1)  # (S, B)
    if options.combine_pair_loss == "min":
        # Ties (e.g. no particle reconstructable: every L_s = 0) are split evenly, so relabelling
        # symmetric truth particles never changes the detection/regression pairing.
        best = (per_element == per_element.min(0, keepdim=True).values).to(per_element.dtype)
        coefficients = best / best.sum(0, keepdim=True)
    elif options.combine_pair_loss == "softmin":
        coefficients = torch.softmax(-per_element, 0)
    else:
        coefficients = torch.full_like(per_element, 1.0 / S)

    assignment = (coefficients.unsqueeze(1) * nll_sp).sum((0, 2))  # (P,)
    detection = (coefficients.detach().unsqueeze(1) * bce_sp).sum((0, 2))
    # Magnitudes (module docstring, "Negative weights"): equal to the weights when none is negative.
    assignment_den = sum(
        torch.where(c, w.abs(), zero_row).sum() for c, w in zip(counted, weight, strict=True)
    )
    detection_den = sum(w.abs().sum() for w in weight)
    assignment = assignment / torch.as_tensor(assignment_den).clamp_min(_TINY)
    detection = detection / torch.as_tensor(detection_den).clamp_min(_TINY)
    for p, name in enumerate(names):
        terms[f"assignment_loss/{name}"] = assignment[p]
        terms[f"detection_loss/{name}"] = detection[p]
    terms["assignment_loss"] = assignment.sum()
    terms["detection_loss"] = detection.sum()
    return coefficients.detach(), permutations


# ------------------------------------------------- regression, classification
def _permuted_keys(target: Any, spec: EventSpec, permutations: Tensor, known: set[str]) -> list[str]:
    """The target key output ``target`` is compared with under each event-group element."""
    if target.particle is None:
        return [target.key] * permutations.shape[0]
    p = spec.particle_names.index(target.particle)
    j = None if target.product == "PARTICLE" else spec.particles[p].product_names.index(target.product)
    keys = []
    for element in _elements(spec):
        q = spec.particles[element[p]]
        level = "PARTICLE" if j is None else q.product_names[j]
        key = f"{q.name}/{level}/{target.name}"
        keys.append(key if key in known else target.key)
    return keys


def _pairing(
    target: Any,
    spec: EventSpec,
    permutations: Tensor,
    known: set[str],
    coefficients: Tensor,
    event_weight: Tensor,
) -> tuple[list[str], Tensor]:
    """Target keys compared with ``target``'s output, and their per-event weights (S', B).

    Collapses to the single key with weight ``event_weight`` when the event group never moves it.
    """
    keys = _permuted_keys(target, spec, permutations, known)
    if len(set(keys)) == 1:
        return keys[:1], event_weight.unsqueeze(0)
    return keys, coefficients * event_weight


def _weighted_mean(values: Tensor, weights: Tensor, valid: Tensor) -> Tensor:
    """sum(w v) / sum(|w|) over valid entries; exactly 0 when nothing is valid (never NaN).

    |w|, not w: a batch of negative-weight (NLO) events would otherwise divide by a sum at or
    below 0, i.e. by the 1e-30 floor (a loss of order 1e30) or flip the term's sign.
    """
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    numerator = torch.where(valid, weights * values, zero).sum()
    return numerator / torch.where(valid, weights.abs(), zero).sum().clamp_min(_TINY)


def _regression(
    outputs: Outputs,
    batch: Batch,
    network: Any,
    spec: EventSpec,
    coefficients: Tensor,
    permutations: Tensor,
    event_weight: Tensor,
    terms: dict[str, Tensor],
) -> Tensor:
    total = torch.zeros((), device=event_weight.device)
    if not spec.regressions:
        return total
    known = {t.key for t in spec.regressions}
    truth = network.normalize_regressions({key: batch.regressions[key].float() for key in known})
    for target in spec.regressions:
        prediction = outputs.regressions[target.key].float()  # (B,)
        keys, weight = _pairing(target, spec, permutations, known, coefficients, event_weight)
        y = torch.stack([truth[key] for key in keys])  # (S, B)
        valid = torch.isfinite(y)
        y = torch.where(valid, y, torch.zeros_like(y))
        error = (prediction - y).abs() if target.type == "laplacian" else (prediction - y) ** 2
        term = _weighted_mean(error, weight, valid)
        terms[f"regression_loss/{target.key}"] = term
        total = total + term
    return total


def _classification(
    outputs: Outputs,
    batch: Batch,
    spec: EventSpec,
    coefficients: Tensor,
    permutations: Tensor,
    event_weight: Tensor,
    terms: dict[str, Tensor],
) -> Tensor:
    total = torch.zeros((), device=event_weight.device)
    known = {t.key for t in spec.classifications}
    ones = torch.ones_like(event_weight)
    for target in spec.classifications:
        logits = outputs.classifications[target.key].float()  # (B, C)
        classes = logits.shape[-1]
        keys, pairing = _pairing(target, spec, permutations, known, coefficients, event_weight)
        losses, weights, valids = [], [], []
        for key in keys:
            labels = batch.classifications[key].long()
            valid = (labels >= 0) & (labels < classes)
            losses.append(F.cross_entropy(logits, labels.clamp(0, classes - 1), reduction="none"))
            extra = batch.classification_weights.get(key)
            weights.append(ones if extra is None else extra.float())
            valids.append(valid)
        term = _weighted_mean(torch.stack(losses), pairing * torch.stack(weights), torch.stack(valids))
        terms[f"classification_loss/{target.key}"] = term
        total = total + term
    return total


# ------------------------------------------------------------ SPANet's kl
def event_transpositions(elements: tuple[tuple[int, ...], ...]) -> list[tuple[int, int]]:
    """Sorted pairs (i, j), i < j, of the transpositions the group's elements decompose into.

    Each cycle ``(a0 a1 ... an)`` (a0 its smallest position) is the product of the
    transpositions ``(a0 ak)``, the decomposition SPANet takes from sympy; a group of swaps
    (t1 <-> t2) gives just that pair.
    """
    pairs: set[tuple[int, int]] = set()
    for element in elements:
        seen: set[int] = set()
        for start in range(len(element)):
            if start in seen or element[start] == start:
                continue
            cycle, position = [], start
            while position not in seen:
                seen.add(position)
                cycle.append(position)
                position = element[position]
            first = min(cycle)
            pairs.update((first, other) for other in cycle if other != first)
    return sorted(pairs)


def jensen_shannon(log_p: Tensor, log_q: Tensor) -> Tensor:
    """(B, ...) log-distributions -> (B,) JS divergence; gradients only through the mixture.

    Entries where a distribution is exactly 0 contribute 0 (SPANet drops their ``0 * -inf``
    with ``nansum``). Our invalid assignments are exactly ``-inf`` in both distributions; they
    are taken out before the mixture, so that no NaN reaches the gradient.
    """
    finite_p, finite_q = torch.isfinite(log_p), torch.isfinite(log_q)
    zero = torch.zeros_like(log_p)
    either = finite_p | finite_q
    log_m = torch.logsumexp(
        torch.stack((torch.where(either, log_p, zero), torch.where(either, log_q, zero))), dim=0
    ) - math.log(2.0)
    log_p, log_q = log_p.detach(), log_q.detach()
    safe_p, safe_q = torch.where(finite_p, log_p, zero), torch.where(finite_q, log_q, zero)
    kl_p = torch.where(finite_p, safe_p.exp() * (safe_p - log_m), zero)
    kl_q = torch.where(finite_q, safe_q.exp() * (safe_q - log_m), zero)
    return (kl_p + kl_q).flatten(1).sum(1) / 2.0


def kl_pairs(spec: EventSpec) -> list[tuple[int, int]]:
    """The particle pairs ``kl_loss`` compares: the EVENT symmetry's transpositions. None (no
    particles, or no EVENT symmetry) makes the term 0 whatever ``kl_loss_scale`` says, so
    nothing that depends on it (an event weight's scale) is worth a word."""
    return event_transpositions(spec.event_symmetry.elements) if spec.particle_names else []


def symmetric_divergence(outputs: Outputs, batch: Batch, spec: EventSpec, weight: Tensor) -> Tensor:
    """SPANet's ``kl_loss`` term (see the module docstring); ``weight`` is the per-event w (B,)."""
    names = spec.particle_names
    pairs = kl_pairs(spec)
    if not pairs:
        return torch.zeros((), device=next(iter(batch.features.values())).device)
    present = [batch.target_masks[name].bool() for name in names]
    values = []
    for i, j in pairs:
        divergence = jensen_shannon(
            outputs.assignments[names[i]].float(), outputs.assignments[names[j]].float()
        )
        value = torch.exp(-(divergence**2))
        values.append(torch.where(present[i] & present[j], value, torch.zeros_like(value)))
    per_event = torch.stack(values).mean(0)  # (B,)
    numerator = 2.0 * len(names) * (weight * per_event).sum()
    count = torch.stack(present).sum()
    return numerator / count.clamp_min(1)


# ---------------------------------------------------------------- overlap
def overlap_penalty(outputs: Outputs, spec: EventSpec, event_weight: Tensor) -> Tensor:
    """Weighted batch mean of sum over EVENT-symmetric pairs of sum_i u_p(i) u_p'(i) (see module doc)."""
    total = torch.zeros_like(event_weight)
    for orbit in spec.event_symmetry.orbits():
        if len(orbit) < 2:
            continue
        usage = [
            object_marginals(outputs.assignments[spec.particles[p].name]).sum(1) for p in orbit
        ]  # (B, N)
        for a in range(len(usage)):
            for b in range(a + 1, len(usage)):
                total = total + (usage[a] * usage[b]).sum(1)
    return (event_weight * total).sum() / event_weight.abs().sum().clamp_min(_TINY)
