"""Synthetic collider events with SPANet's file layout: ``spanet-generate`` in Python.

``write_file(path, "ttbar_allhad", events=10_000, seed=1)`` writes an HDF5 file matching
``PROCESSES["ttbar_allhad"].event_file_text``; ``generate_arrays`` returns the same arrays in
memory. The physics model is described in ``production`` (partons), ``detector`` (jets, tags,
matching, MET) and ``config`` (every parameter and its source).
"""

from spanet_lite.physics.generator.config import PhysicsConfig, Selection
from spanet_lite.physics.generator.engine import Summary, generate_arrays, write_file
from spanet_lite.physics.generator.processes import PROCESSES, Process

__all__ = ["PROCESSES", "PhysicsConfig", "Process", "Selection", "Summary", "generate_arrays", "write_file"]
