"""In-memory inputs for ``run.predict(features, masks)``, checked against the run before any work.

A file is validated by :func:`spanet_lite.dataset.schema.validate_h5` before the network sees it;
arrays from a notebook get the same care here, because the network itself would either fail
deep inside torch (a traceback about ``mat1 and mat2``) or, worse, run on inputs that do not
mean what the caller thinks (a mask narrower than the objects, fewer mask rows than events) and
return plausible numbers. Every problem is one :class:`~spanet_lite.errors.InputError` naming the
argument and the input, e.g. ``features['Jets']: expected (events, objects, 5) with 5 the event
file's features (mass, pt, eta, ...), got (1000, 10, 4)``.

Shapes, in event-file feature order (what :func:`spanet_lite.dataset.reader.read_inputs` gives
for a file):

* SEQUENTIAL / RELATIVE input: features ``(events, objects, F)``, mask ``(events, objects)`` of
  bool, or of numbers read as a file's MASK is (:func:`~spanet_lite.dataset.hdf5_layout.mask_values`:
  non-zero = real object, as SPANet reads MASK);
* GLOBAL input: features ``(events, F)``, or ``(events, 1, F)`` as SPANet's ONNX export takes
  them; no mask is needed, and SPANet's ``(events, 1)`` mask is accepted when it is all True (a
  GLOBAL input is always one vector per event here, so a False would be silently ignored);
* RELATIVE pair features (``pairs``): ``(events, objects, objects, C)``.

The values obey the file's finiteness rule (:func:`~spanet_lite.dataset.value_checks.nonfinite_real`):
NaN or infinity is refused on a real object, never in a padded slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spanet_lite.config.event_spec import EventSpec, InputSpec
from spanet_lite.dataset.hdf5_layout import mask_values
from spanet_lite.dataset.value_checks import FINITE_REAL, LOG_DOMAIN, nonfinite_real, outside_log_domain
from spanet_lite.errors import InputError


@dataclass
class CheckedInputs:
    """Arrays ready for :func:`~spanet_lite.evaluation.inference.device_inputs`: one event count
    everywhere, GLOBAL inputs as (events, F), masks as bool."""

    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    pairs: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.features.values())))


def _names(names: Any) -> str:
    return ", ".join(str(n) for n in names) or "none"


def _feature_names(source: InputSpec) -> str:
    names = [f.name for f in source.features]
    return ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")


def _mapping(value: Any, argument: str, wanted: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(None, argument, f"a dict from {wanted}", type(value).__name__)
    return value


def _keys(given: Mapping[str, Any], argument: str, allowed: list[str], required: list[str],
          kind: str = "input") -> None:
    """Every required name present, no other name: a misspelt input would else be ignored."""
    for key in given:
        if key not in allowed:
            wanted = f"an input of the run's event file ({_names(allowed)})"
            raise InputError(None, f"{argument}[{key!r}]", wanted, "a name it does not have")
    missing = [name for name in required if name not in given]
    if missing:
        raise InputError(None, argument, f"an entry for every {kind} ({_names(required)})",
                         f"none for {_names(missing)}")


def _array(value: Any, where: str, kinds: str = "fiub") -> np.ndarray:
    if isinstance(value, torch.Tensor):  # a notebook's tensor may need grad or live on a GPU
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged lists
        raise InputError(None, where, "a rectangular array of numbers", str(error).split(".")[0]) from None
    if array.dtype.kind not in kinds:
        raise InputError(None, where, "an array of numbers", f"dtype {array.dtype}")
    return array


def _events(array: np.ndarray, where: str, events: tuple[int, str] | None) -> tuple[int, str]:
    """The event count every array must share, set by the first array met."""
    if events is not None and len(array) != events[0]:
        got = f"{len(array)} (shape {array.shape})"
        raise InputError(None, where, f"{events[0]} events, as {events[1]}", got)
    return events or (len(array), f"{where} has")


def _finite(values: np.ndarray, mask: np.ndarray | None, where: str) -> None:
    if values.dtype.kind != "f":
        return
    bad = nonfinite_real(values, mask)
    events = np.flatnonzero(bad.any(axis=tuple(range(1, bad.ndim))))  # zero events too
    if len(events):
        unit = "object" if mask is not None else "event"
        count = int(bad.sum()) if mask is not None else len(events)
        raise InputError(None, where, FINITE_REAL if mask is not None else "finite values",
                         f"NaN/inf in {count:,} {unit}(s) of {len(events):,} event(s), "
                         f"the first event {events[0]}")


def _log_domain(source: InputSpec, values: np.ndarray, mask: np.ndarray | None, where: str) -> None:
    """A ``log`` feature at or below -1 on a real object: refused, as in a file."""
    for index, feature in enumerate(source.features):
        if not feature.log:
            continue
        bad = outside_log_domain(values[..., index])
        if mask is not None:
            bad &= mask
        events = np.flatnonzero(bad.any(axis=tuple(range(1, bad.ndim))))  # zero events too
        if len(events):
            first = values[..., index][events[0]][bad[events[0]]].flat[0]
            raise InputError(None, f"{where}[..., {index}] ({feature.name})", LOG_DOMAIN,
                             f"{first:g} in event {events[0]} ({len(events):,} event(s) in all)")


def _zero_padding(values: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Padded slots set to 0, as the file reader does: they may hold anything (NaN included) and
    must not reach the network's arithmetic."""
    return np.where(real[..., None], values, 0).astype(np.float32, copy=False)


def _sequential(source: InputSpec, values: Any, mask: Any, events: tuple[int, str] | None
                ) -> tuple[np.ndarray, np.ndarray, tuple[int, str]]:
    where, mask_where = f"features[{source.name!r}]", f"masks[{source.name!r}]"
    width = source.num_features
    wanted = f"(events, objects, {width}) with {width} the event file's features ({_feature_names(source)})"
    array = _array(values, where)
    if array.ndim != 3 or array.shape[2] != width:
        hint = ""
        if array.ndim == 2 and array.shape[-1] == width:
            hint = " (one event? pass x[None] or x[i:i + 1])"
        elif array.ndim == 3 and array.shape[1] == width:
            hint = " (transposed? the features are the last axis)"
        raise InputError(None, where, wanted, f"{array.shape}{hint}")
    events = _events(array, where, events)
    flags = mask_values(_array(mask, mask_where))
    _events(flags, mask_where, events)
    if flags.shape != array.shape[:2]:
        raise InputError(None, mask_where, f"(events, objects) = {array.shape[:2]} as {where}",
                         str(flags.shape))
    _finite(array, flags, where)
    _log_domain(source, array, flags, where)
    return _zero_padding(array, flags), flags, events


def _global(source: InputSpec, values: Any, mask: Any, events: tuple[int, str] | None
            ) -> tuple[np.ndarray, tuple[int, str]]:
    where, mask_where = f"features[{source.name!r}]", f"masks[{source.name!r}]"
    width = source.num_features
    array = _array(values, where)
    if array.ndim == 3 and array.shape[1] == 1:  # SPANet's (and our ONNX export's) one-vector layout
        array = array[:, 0]
    if array.ndim != 2 or array.shape[1] != width:
        raise InputError(None, where, f"(events, {width}) or (events, 1, {width}) with {width} the event "
                         f"file's features ({_feature_names(source)})", str(array.shape))
    events = _events(array, where, events)
    if mask is not None:
        flags = mask_values(_array(mask, mask_where))
        got = None
        if flags.shape not in ((len(array),), (len(array), 1)):
            got = str(flags.shape)
        elif not flags.all():
            got = f"False in {int((~flags).sum()):,} event(s)"
        if got is not None:
            raise InputError(None, mask_where, "an all-True (events, 1) mask or none (a GLOBAL input "
                             "is always one vector per event)", got)
    _finite(array, None, where)
    _log_domain(source, array, None, where)
    return array, events


def check_inputs(
    spec: EventSpec,
    pair_features: Mapping[str, list[str]],
    features: Any,
    masks: Any,
    pairs: Any = None,
) -> CheckedInputs:
    """``run.predict``'s arrays checked against the run (module docstring); InputError otherwise.

    ``pair_features``: RELATIVE input -> the pair feature names the run was trained with
    (``statistics.pair_features``); those inputs need their (events, objects, objects, C) array."""
    names = [s.name for s in spec.inputs]
    objects = [s.name for s in spec.sequential]
    features = _mapping(features, "features", "each input name to its raw features")
    if masks is None:
        raise InputError(None, "masks", f"a dict from each SEQUENTIAL input ({_names(objects)}) to its "
                         "(events, objects) bool mask, as arrays need one", "None")
    masks = _mapping(masks, "masks", "each SEQUENTIAL input to its (events, objects) bool mask")
    _keys(features, "features", names, names)
    _keys(masks, "masks", names, objects)
    needed = [name for name, found in pair_features.items() if found]
    pairs = _mapping({} if pairs is None else pairs, "pairs", "each RELATIVE input to its pair features")
    _keys(pairs, "pairs", needed, needed, "RELATIVE input with pair features")
    events: tuple[int, str] | None = None
    checked = CheckedInputs({}, {}, {})
    for source in spec.inputs:
        name = source.name
        if source.kind == "GLOBAL":
            checked.features[name], events = _global(source, features[name], masks.get(name), events)
            continue
        checked.features[name], checked.masks[name], events = _sequential(
            source, features[name], masks[name], events)
    for name in needed:
        where, mask = f"pairs[{name!r}]", checked.masks[name]
        count = len(pair_features[name])
        array = _array(pairs[name], where)
        shape = (*mask.shape, mask.shape[1], count)
        if array.shape != shape:
            raise InputError(None, where, f"(events, objects, objects, {count}) = {shape} with {count} the "
                             f"run's pair features ({_names(pair_features[name])})", str(array.shape))
        _finite(array, mask, where)
        checked.pairs[name] = _zero_padding(array, mask[:, :, None] & mask[:, None, :])
    return checked
