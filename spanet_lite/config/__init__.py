"""Event files and options files: read, validate, and turn into frozen dataclasses."""

from spanet_lite.config.event_file import load_event_spec, parse_event_spec
from spanet_lite.config.event_spec import (
    ClassificationTarget,
    EventSpec,
    Feature,
    InputSpec,
    ParticleSpec,
    Product,
    RegressionTarget,
)
from spanet_lite.config.symmetry import PermutationGroup

__all__ = [
    "ClassificationTarget",
    "EventSpec",
    "Feature",
    "InputSpec",
    "ParticleSpec",
    "PermutationGroup",
    "Product",
    "RegressionTarget",
    "load_event_spec",
    "parse_event_spec",
]
