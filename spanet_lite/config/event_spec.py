"""The event topology: what the detector sees and which particles decay into which objects.

``load_event_spec(path)`` reads a SPANet event file (docs/formats.md section 1) into frozen
dataclasses. Everything downstream (dataset, network, losses, evaluation) reads the
topology from an :class:`EventSpec` and never from the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from spanet_lite.config.masses import MassConstraint
from spanet_lite.config.symmetry import PermutationGroup

FEATURE_OPTIONS = ("none", "log", "normalize", "log_normalize")
REGRESSION_TYPES = ("gaussian", "laplacian", "log_gaussian")
InputKind = Literal["SEQUENTIAL", "RELATIVE", "GLOBAL"]


@dataclass(frozen=True)
class Feature:
    """One input feature and its preprocessing option (none | log | normalize | log_normalize)."""

    name: str
    option: str = "none"

    @property
    def log(self) -> bool:
        """Apply ``x -> log(x + 1)`` first."""
        return self.option in ("log", "log_normalize")

    @property
    def normalize(self) -> bool:
        """Standardise with mean/std of real entries of the training split."""
        return self.option in ("normalize", "log_normalize")


@dataclass(frozen=True)
class InputSpec:
    """A SEQUENTIAL input (a variable-length set of objects), a RELATIVE one (a set of objects
    whose features may also be pairwise, ``(N, W, W)`` datasets; which ones is a fact of the
    HDF5 file, not of the event file) or a GLOBAL one (one vector per event)."""

    name: str
    kind: InputKind
    features: tuple[Feature, ...]

    @property
    def num_features(self) -> int:
        return len(self.features)

    @property
    def is_relative(self) -> bool:
        return self.kind == "RELATIVE"

    @property
    def has_objects(self) -> bool:
        """SEQUENTIAL and RELATIVE inputs are sets of objects with a MASK; their slots are
        assignable and part of the combined object index space."""
        return self.kind != "GLOBAL"


@dataclass(frozen=True)
class Product:
    """A decay product. ``input`` names the SEQUENTIAL input it must come from, or None (any input)."""

    name: str
    input: str | None = None


@dataclass(frozen=True)
class ParticleSpec:
    """A particle and its decay products; ``symmetry`` acts on the product positions."""

    name: str
    products: tuple[Product, ...]
    symmetry: PermutationGroup

    @property
    def num_products(self) -> int:
        return len(self.products)

    @property
    def product_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.products)


def target_key(name: str, particle: str | None, product: str | None) -> str:
    """A regression's or classification's path below its group: ``EVENT/<name>`` for an event
    target, ``<particle>/<product>/<name>`` for one of a particle (product ``PARTICLE``)."""
    if particle is None:
        return f"EVENT/{name}"
    return f"{particle}/{product}/{name}"


@dataclass(frozen=True)
class RegressionTarget:
    """A real-valued target. ``key`` is its HDF5 path below ``REGRESSIONS/``.

    ``particle`` is None for EVENT targets; ``product`` is None for EVENT targets,
    ``"PARTICLE"`` for particle-level ones, else the product name.
    """

    name: str
    type: str = "gaussian"
    particle: str | None = None
    product: str | None = None

    @property
    def key(self) -> str:
        return target_key(self.name, self.particle, self.product)


@dataclass(frozen=True)
class ClassificationTarget:
    """An integer class target. ``key`` is its HDF5 path below ``CLASSIFICATIONS/``."""

    name: str
    particle: str | None = None
    product: str | None = None

    @property
    def key(self) -> str:
        return target_key(self.name, self.particle, self.product)


@dataclass(frozen=True)
class EventSpec:
    """Everything the event file says, validated.

    The combined object index space is the concatenation of all object inputs (SEQUENTIAL and
    RELATIVE, as SPANet) in event-file order (padding included); assignment targets and outputs
    live in it.
    """

    sequential: tuple[InputSpec, ...]
    """The object inputs, SEQUENTIAL and RELATIVE, in event-file order."""
    global_inputs: tuple[InputSpec, ...]
    particles: tuple[ParticleSpec, ...]
    event_symmetry: PermutationGroup
    regressions: tuple[RegressionTarget, ...] = ()
    classifications: tuple[ClassificationTarget, ...] = ()
    source: str | None = field(default=None, compare=False)
    #: Masses from the spanet_lite-only ``SPANET_LITE`` section (chi-square baseline; see
    #: config.masses). Not part of the topology, so two specs that differ only here are equal.
    masses: tuple[MassConstraint, ...] = field(default=(), compare=False)

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        """All inputs: object inputs (SEQUENTIAL, RELATIVE) first, then GLOBAL, each in event-file order."""
        return self.sequential + self.global_inputs

    @property
    def particle_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.particles)

    @property
    def relative(self) -> tuple[InputSpec, ...]:
        """The RELATIVE inputs, in event-file order."""
        return tuple(s for s in self.sequential if s.is_relative)

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def particle(self, name: str) -> ParticleSpec:
        for spec in self.particles:
            if spec.name == name:
                return spec
        raise KeyError(name)
