"""Event files and options files: read, validate, and turn into dataclasses.

Importing this package does not import torch (or rich), so command-line tools can check
their inputs before paying for the heavy imports.
"""

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
from spanet_lite.config.options import (
    NO_EFFECT,
    OPTION_GROUPS,
    SPANET_KEYS,
    Options,
    keys_without_effect,
    without_effect_summary,
)
from spanet_lite.config.options_file import (
    load_options,
    parse_options,
    parse_options_text,
    resolve_path,
    typed_options,
    typed_overrides,
)
from spanet_lite.config.options_table import options_table
from spanet_lite.config.options_validation import validate_options
from spanet_lite.config.symmetry import PermutationGroup

__all__ = [
    "NO_EFFECT",
    "OPTION_GROUPS",
    "SPANET_KEYS",
    "ClassificationTarget",
    "EventSpec",
    "Feature",
    "InputSpec",
    "Options",
    "ParticleSpec",
    "PermutationGroup",
    "Product",
    "RegressionTarget",
    "keys_without_effect",
    "load_event_spec",
    "load_options",
    "options_table",
    "parse_event_spec",
    "parse_options",
    "parse_options_text",
    "resolve_path",
    "typed_options",
    "typed_overrides",
    "validate_options",
    "without_effect_summary",
]
