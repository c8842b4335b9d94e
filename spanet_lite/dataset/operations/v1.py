"""SPANet 1.x files, seen through the current layout.

SPANet 1.x (INI event files) stored one jet collection and flat particle groups::

    source/<feature>      float (N, J)   padded jets
    source/mask           bool  (N, J)   True = real jet
    <particle>/<product>  int   (N,)     jet index, -1 = not matched
    <particle>/mask       bool  (N,)     the particle is present in the event

The current layout names these ``INPUTS/<sequential>/<feature>``, ``INPUTS/<sequential>/MASK``
and ``TARGETS/<particle>/<product>``. The particle mask keeps its meaning as the optional
``TARGETS/<particle>/MASK`` (False takes the particle out of the assignment loss, as in 1.x);
SPANet's own converter drops it.

:func:`v1_view` builds an in-memory HDF5 file of external links under the current names, so
the file is validated by the one validator and copied by the one streaming copy, without
a converted copy in between; :func:`v1_name` maps a current path back for error messages.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from spanet_lite.config.event_spec import EventSpec
from spanet_lite.errors import InputError

V1_SOURCE = "source"
V1_MASK = "mask"


def sequential_name(spec: EventSpec, path: str | Path) -> str:
    """The event file's one SEQUENTIAL input, which receives 1.x's ``source`` jets."""
    if len(spec.sequential) != 1:
        names = ", ".join(s.name for s in spec.sequential)
        raise InputError(spec.source, "INPUTS/SEQUENTIAL",
                         "exactly one SEQUENTIAL input for a SPANet 1.x file "
                         f"({path} has one jet collection)",
                         f"{len(spec.sequential)} ({names})")
    return spec.sequential[0].name


def v1_view(path: str | Path, spec: EventSpec) -> h5py.File:
    """An in-memory file whose datasets link to ``path``'s 1.x datasets under the current names."""
    path = Path(path)
    jets = sequential_name(spec, path)
    from spanet_lite.dataset.schema import open_h5

    with open_h5(path) as original:
        source = original.get(V1_SOURCE)
        if not isinstance(source, h5py.Group) or not isinstance(source.get(V1_MASK), h5py.Dataset):
            current = "INPUTS" if "INPUTS" in original else None
            got = "the current layout (INPUTS/...): it needs no conversion" if current else "no source/mask"
            raise InputError(path, V1_SOURCE, "a SPANet 1.x file with a source group and source/mask", got)
        links: dict[str, str] = {}
        for name, node in source.items():
            if isinstance(node, h5py.Dataset):
                links[f"INPUTS/{jets}/{'MASK' if name == V1_MASK else name}"] = f"{V1_SOURCE}/{name}"
        for group_name, group in original.items():
            if group_name == V1_SOURCE or not isinstance(group, h5py.Group):
                continue
            for name, node in group.items():
                if isinstance(node, h5py.Dataset):
                    current = "MASK" if name == V1_MASK else name
                    links[f"TARGETS/{group_name}/{current}"] = f"{group_name}/{name}"
    view = h5py.File(f"v1-view-{id(links)}.h5", "w", driver="core", backing_store=False)
    target = str(path.resolve())
    for current, old in links.items():
        view[current] = h5py.ExternalLink(target, old)
    return view


def v1_name(where: str, spec: EventSpec) -> str:
    """The 1.x name of a current path (``INPUTS/Source/MASK`` -> ``source/mask``), for messages."""
    parts = where.split("/")
    if len(parts) >= 2 and parts[0] == "INPUTS" and parts[1] in {s.name for s in spec.sequential}:
        rest = parts[2:]
        return "/".join([V1_SOURCE, *(V1_MASK if p == "MASK" else p for p in rest)])
    if len(parts) >= 2 and parts[0] == "TARGETS":
        return "/".join(V1_MASK if p == "MASK" else p for p in parts[1:])
    return where
