"""Event files: SPANet's grammar, the two reference topologies, and one-line errors.

Every error test asserts the whole message a user would read, so the tests double as
documentation of what each mistake looks like.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config import (
    ClassificationTarget,
    Feature,
    Product,
    RegressionTarget,
    load_event_spec,
    parse_event_spec,
)
from spanet_lite.errors import InputError

# Line numbers in expected messages count from this block: INPUTS is lines 1-10.
INPUTS = """\
INPUTS:
  SEQUENTIAL:
    Jets:
      pt: log_normalize
      eta: normalize
    Leptons:
      pt: log_normalize
  GLOBAL:
    Met:
      met: log_normalize
"""


def parse(text: str):
    return parse_event_spec(text, source="topology.yaml")


def error_message(text: str) -> str:
    with pytest.raises(InputError) as caught:
        parse(text)
    return str(caught.value)


# ------------------------------------------------------------------ reference files
def test_spanet_reference_ttH_file_loads_unchanged(reference_dir: Path):
    spec = load_event_spec(reference_dir / "semi_leptonic_ttH.yaml")
    (momenta,) = spec.sequential
    assert momenta.name == "Momenta"
    assert [f.name for f in momenta.features] == [
        "mass", "pt", "eta", "sin_phi", "cos_phi", "qtag", "btag", "etag", "utag",
    ]  # fmt: skip
    assert momenta.features[0] == Feature("mass", "log_normalize")
    assert momenta.features[0].log and momenta.features[0].normalize
    assert not momenta.features[6].log and not momenta.features[6].normalize
    (met,) = spec.global_inputs
    assert [(f.name, f.option) for f in met.features] == [
        ("met", "log_normalize"), ("sin_phi", "normalize"), ("cos_phi", "normalize"),
    ]  # fmt: skip
    assert spec.particle_names == ("lt", "ht", "h")
    assert spec.particle("ht").product_names == ("b", "q1", "q2")
    assert spec.particle("ht").symmetry.elements == ((0, 1, 2), (0, 2, 1))
    assert spec.particle("h").symmetry.order == 2
    assert spec.particle("lt").symmetry.is_trivial
    assert spec.event_symmetry.is_trivial
    assert [t.key for t in spec.regressions] == [
        "EVENT/neutrino_eta", "EVENT/neutrino_px", "EVENT/neutrino_py", "EVENT/neutrino_pz",
        "EVENT/log_invariant_mass",
    ]  # fmt: skip
    assert all(t.type == "gaussian" for t in spec.regressions)
    assert spec.classifications == (ClassificationTarget("signal"),)


def test_bundled_full_hadronic_ttbar_file_matches_the_classic_topology(repo_root: Path):
    spec = load_event_spec(repo_root / "event_files" / "full_hadronic_ttbar.yaml")
    (source,) = spec.sequential
    assert source.name == "Source"
    assert [f.name for f in source.features] == ["mass", "pt", "eta", "phi", "btag"]
    assert spec.global_inputs == ()
    assert spec.particle_names == ("t1", "t2")
    for particle in spec.particles:
        assert particle.products == (Product("q1"), Product("q2"), Product("b"))
        assert particle.symmetry.elements == ((0, 1, 2), (1, 0, 2))
    assert spec.event_symmetry.elements == ((0, 1), (1, 0))
    assert spec.regressions == () and spec.classifications == ()


# ------------------------------------------------------------------------ grammar
def test_empty_sections_mean_nothing_declared():
    spec = parse(
        "INPUTS:\n  SEQUENTIAL:\n    Jets:\n      pt: none\n  GLOBAL:\n"
        "EVENT:\n  t: [b]\nPERMUTATIONS:\nREGRESSIONS:\nCLASSIFICATIONS:\n"
    )
    assert spec.global_inputs == ()
    assert spec.regressions == () and spec.classifications == ()
    assert spec.particles[0].symmetry.is_trivial and spec.event_symmetry.is_trivial


def test_associated_and_unassociated_products():
    spec = parse(INPUTS + "EVENT:\n  lt:\n    - b: Jets\n    - l: Leptons\n    - nu\n    - x:\n")
    assert spec.particle("lt").products == (
        Product("b", "Jets"),
        Product("l", "Leptons"),
        Product("nu"),
        Product("x"),
    )


TARGETS_AS_MAPPING = """\
EVENT:
  t1: [b, q1, q2]
  t2: [b, q1, q2]
PERMUTATIONS:
  EVENT:
    - [t1, t2]
REGRESSIONS:
  EVENT:
    - met
    - [log_mass, log_gaussian]
  t1:
    PARTICLE: [[mass, laplacian]]
    b: [pt]
  t2:
    PARTICLE: [[mass, laplacian]]
    b: [pt]
CLASSIFICATIONS:
  EVENT: [signal]
  t1:
    PARTICLE: [charge]
  t2:
    PARTICLE: [charge]
"""

TARGETS_AS_LIST = TARGETS_AS_MAPPING.replace("    PARTICLE:", "    - PARTICLE:").replace("    b:", "    - b:")


@pytest.mark.parametrize("text", [TARGETS_AS_MAPPING, TARGETS_AS_LIST], ids=["mapping", "list"])
def test_targets_at_event_particle_and_product_level_in_both_spellings(text: str):
    spec = parse(INPUTS + text)
    assert spec.regressions == (
        RegressionTarget("met", "gaussian"),
        RegressionTarget("log_mass", "log_gaussian"),
        RegressionTarget("mass", "laplacian", "t1", "PARTICLE"),
        RegressionTarget("pt", "gaussian", "t1", "b"),
        RegressionTarget("mass", "laplacian", "t2", "PARTICLE"),
        RegressionTarget("pt", "gaussian", "t2", "b"),
    )
    assert [t.key for t in spec.regressions][2:4] == ["t1/PARTICLE/mass", "t1/b/pt"]
    assert [t.key for t in spec.classifications] == [
        "EVENT/signal",
        "t1/PARTICLE/charge",
        "t2/PARTICLE/charge",
    ]


def test_whole_sections_may_be_lists_of_single_key_mappings_too():
    spec = parse(INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  - EVENT: [met]\n  - t:\n    - b: [pt]\n")
    assert [t.key for t in spec.regressions] == ["EVENT/met", "t/b/pt"]


def test_a_regression_written_as_a_one_name_list_is_gaussian_as_in_spanet():
    spec = parse(INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  EVENT: [[met]]\n")
    assert spec.regressions == (RegressionTarget("met", "gaussian"),)


def test_yaml_anchors_and_comments_are_fine():
    spec = parse(INPUTS + "EVENT:\n  t1: &top [b, q1, q2]  # a top\n  t2: *top\n")
    assert spec.particle("t2").product_names == ("b", "q1", "q2")


def test_input_kinds_are_read_in_any_case_as_spanet_upper_cases_them():
    spec = parse("INPUTS:\n  sequential: {Jets: {pt: none}}\n  Global: {Met: {met: none}}\nEVENT: {t: [b]}")
    assert [(i.name, i.kind) for i in (*spec.sequential, *spec.global_inputs)] == [
        ("Jets", "SEQUENTIAL"), ("Met", "GLOBAL"),
    ]  # fmt: skip


def test_feature_options_in_spanets_spellings_mean_what_they_mean_there():
    # SPANet lower-cases the option, normalises when it holds "normalize" or "true", logs for "log"
    spec = parse(
        "INPUTS:\n  SEQUENTIAL:\n    Jets: {a: Log_Normalize, b: NORMALIZE, c: None, d: Log, e: 'True', "
        "f: 'False'}\nEVENT: {t: [b]}"
    )
    assert [f.option for f in spec.sequential[0].features] == [
        "log_normalize", "normalize", "none", "log", "normalize", "none",
    ]  # fmt: skip


def test_a_key_written_over_a_merged_anchor_overrides_it_as_in_pyyaml():
    text = (
        "INPUTS:\n  SEQUENTIAL:\n    Jets: &jet\n      pt: log_normalize\n      eta: normalize\n"
        "    Leptons:\n      <<: *jet\n      eta: none\n      charge: none\nEVENT:\n  t: [b]\n"
    )
    leptons = parse(text).sequential[1]
    assert leptons.features == (
        Feature("pt", "log_normalize"), Feature("eta", "none"), Feature("charge", "none"),
    )  # fmt: skip
    assert [f.name for f in leptons.features] == list(yaml.safe_load(text)["INPUTS"]["SEQUENTIAL"]["Leptons"])


def test_an_alias_of_a_mapping_that_overrides_a_merged_key_reads_as_in_pyyaml():
    """The first build of ``Leptons`` flattened its node in place (its merge key gone), so the
    alias met it with every pair looking written and refused ``eta`` as a key written twice."""
    text = (
        "INPUTS:\n  SEQUENTIAL:\n    Jets: &jet {pt: log_normalize, eta: normalize}\n"
        "    Leptons: &lepton {<<: *jet, eta: none}\n    Muons: *lepton\nEVENT:\n  t: [b]\n"
    )
    muons = parse(text).sequential[2]
    assert muons.features == (Feature("pt", "log_normalize"), Feature("eta", "none"))
    assert [f.name for f in muons.features] == list(yaml.safe_load(text)["INPUTS"]["SEQUENTIAL"]["Muons"])


# --------------------------------------------------------------- errors, one per case
ERROR_CASES = [
    pytest.param(
        "INPUTS:\n  SEQUENTIAL: [\n  EVENT: x\n",
        "topology.yaml: line 4, column 1: expected valid YAML, got a syntax error: expected ',' or ']', "
        "but got '<stream end>' (while parsing a flow sequence started at line 2)",
        id="yaml-syntax",
    ),
    pytest.param(
        "INPUTS:\n\tSEQUENTIAL:\n",
        "topology.yaml: line 2, column 1: expected valid YAML, got a syntax error: "
        "found character '\\t' that cannot start any token",
        id="yaml-tab",
    ),
    pytest.param(
        "",
        "topology.yaml: expected an event file with INPUTS and EVENT sections, got an empty file",
        id="empty",
    ),
    pytest.param(
        "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS: expected a top-level INPUTS section, got none",
        id="no-inputs",
    ),
    pytest.param(INPUTS, "topology.yaml: EVENT: expected a top-level EVENT section, got none", id="no-event"),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nPERMUTATION:\n",
        "topology.yaml: PERMUTATION (line 13): expected a section among INPUTS, EVENT, PERMUTATIONS, "
        "REGRESSIONS, CLASSIFICATIONS, SPANET_LITE, got 'PERMUTATION' (did you mean 'PERMUTATIONS'?)",
        id="unknown-section",
    ),
    pytest.param(
        "INPUTS:\n  GLOBAL:\n    Met:\n      met: none\nEVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS (line 1): expected at least one SEQUENTIAL input "
        "(a set of objects such as jets), got none",
        id="no-sequential",
    ),
    pytest.param(
        "INPUTS:\n  SEQUENTIAL:\nEVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL (line 2): expected at least one SEQUENTIAL input "
        "(a set of objects such as jets), got none",
        id="empty-sequential",
    ),
    pytest.param(
        INPUTS.replace("eta: normalize", "eta: norm") + "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets.eta (line 5): expected a feature option, one of none, log, "
        "normalize, log_normalize, got 'norm' (did you mean 'normalize'?)",
        id="feature-option-no-substring-guessing",
    ),
    pytest.param(
        INPUTS.replace("eta: normalize", "eta: 1") + "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets.eta (line 5): expected a feature option, one of none, log, "
        "normalize, log_normalize, got 1 (a number)",
        id="feature-option-not-a-string",
    ),
    pytest.param(
        INPUTS.replace("eta: normalize", "eta:") + "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets.eta (line 5): expected a feature option, one of none, log, "
        "normalize, log_normalize, got nothing",
        id="feature-option-missing",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t:\n    - b: Jet\n",
        "topology.yaml: EVENT.t[0] (line 13): expected the name of a SEQUENTIAL input (Jets, Leptons), "
        "got 'Jet' (did you mean 'Jets'?)",
        id="product-unknown-input",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t:\n    - b: Met\n",
        "topology.yaml: EVENT.t[0] (line 13): expected a SEQUENTIAL input (Jets, Leptons): products are "
        "objects, not event vectors, got GLOBAL input 'Met'",
        id="product-global-input",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - [q1, q3]\n",
        "topology.yaml: PERMUTATIONS.t[0] (line 15): expected names among the products of t (b, q1, q2), "
        "got 'q3'",
        id="permutation-unknown-product",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t1: [b]\n  t2: [b]\nPERMUTATIONS:\n  EVENT:\n    - [t1, t3]\n",
        "topology.yaml: PERMUTATIONS.EVENT[0] (line 16): expected names among the particles (t1, t2), "
        "got 't3'",
        id="permutation-unknown-particle",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  ht: [b, q1, q2]\nPERMUTATIONS:\n  hr:\n    - [q1, q2]\n",
        "topology.yaml: PERMUTATIONS.hr (line 14): expected EVENT or a particle named in EVENT (ht), "
        "got 'hr' (did you mean 'ht'?)",
        id="permutation-unknown-particle-key",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - [[q1]]\n",
        "topology.yaml: PERMUTATIONS.t[0][0] (line 15): expected a cycle of at least two names "
        "(a 1-cycle moves nothing), got a list ['q1']",
        id="one-cycle",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - [[q1, q2], []]\n",
        "topology.yaml: PERMUTATIONS.t[0][1] (line 15): expected a cycle of at least two names "
        "(a 1-cycle moves nothing), got an empty list",
        id="empty-cycle",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - []\n",
        "topology.yaml: PERMUTATIONS.t[0] (line 15): expected a list of names [a, b] or a list of cycles "
        "[[a, b], [c, d]], got an empty list",
        id="empty-group",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - [q1]\n",
        "topology.yaml: PERMUTATIONS.t[0] (line 15): expected at least two names to permute, "
        "got a list ['q1']",
        id="one-name-group",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t: [q1, q2]\n",
        "topology.yaml: PERMUTATIONS.t (line 14): expected a list of groups, each in brackets: '- [q1, q2]', "
        "got a bare list of names ['q1', 'q2']",
        id="group-without-brackets",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - [[q1, q2], [q2, b]]\n",
        "topology.yaml: PERMUTATIONS.t[0] (line 15): expected disjoint cycles (each name at most once per "
        "generator), got a list [['q1', 'q2'], ['q2', 'b']]",
        id="cycles-not-disjoint",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q1, q2]\nPERMUTATIONS:\n  t:\n    - [q1, [q2, b]]\n",
        "topology.yaml: PERMUTATIONS.t[0] (line 15): expected either a list of names or a list of cycles, "
        "not a mix, got a list ['q1', ['q2', 'b']]",
        id="names-and-cycles-mixed",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t1: [b, q1, q2]\n  t2: [b]\nPERMUTATIONS:\n  EVENT:\n    - [t1, t2]\n",
        "topology.yaml: PERMUTATIONS.EVENT (line 15): expected EVENT-symmetric particles with equal numbers "
        "of products (t1 has 3), got t2 with 1",
        id="event-symmetric-product-counts",
    ),
    pytest.param(
        INPUTS
        + "EVENT:\n  t1: [b]\n  t2: [b]\nPERMUTATIONS:\n  EVENT:\n    - [t1, t2]\n"
        + "REGRESSIONS:\n  t1:\n    - PARTICLE: [mass]\n",
        "topology.yaml: PERMUTATIONS.EVENT (line 15): expected EVENT-symmetric t1.PARTICLE and t2.PARTICLE "
        "to declare the same regression targets, got t1.PARTICLE: mass (gaussian); t2.PARTICLE: none",
        id="event-symmetric-regressions",
    ),
    pytest.param(
        INPUTS
        + "EVENT:\n  t1: [b]\n  t2: [b]\nPERMUTATIONS:\n  EVENT:\n    - [t1, t2]\n"
        + "REGRESSIONS:\n  t1:\n    PARTICLE: [mass]\n  t2:\n    PARTICLE: [[mass, laplacian]]\n",
        "topology.yaml: PERMUTATIONS.EVENT (line 15): expected EVENT-symmetric t1.PARTICLE and t2.PARTICLE "
        "to declare the same regression targets, got t1.PARTICLE: mass (gaussian); "
        "t2.PARTICLE: mass (laplacian)",
        id="event-symmetric-regression-types",
    ),
    pytest.param(
        INPUTS
        + "EVENT:\n  t1: [b, q]\n  t2: [b, q]\nPERMUTATIONS:\n  EVENT:\n    - [t1, t2]\n"
        + "CLASSIFICATIONS:\n  t2:\n    q: [flavour]\n",
        "topology.yaml: PERMUTATIONS.EVENT (line 15): expected symmetric t1.q and t2.q to declare the same "
        "classification targets, got t1.q: none; t2.q: flavour",
        id="event-symmetric-product-classifications",
    ),
    pytest.param(
        INPUTS
        + "EVENT:\n  h: [b1, b2]\nPERMUTATIONS:\n  h:\n    - [b1, b2]\nREGRESSIONS:\n  h:\n    - b1: [pt]\n",
        "topology.yaml: PERMUTATIONS.h (line 14): expected symmetric h.b1 and h.b2 to declare the same "
        "regression targets, got h.b1: pt (gaussian); h.b2: none",
        id="symmetric-products-regressions",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t:\n    - b: Jets\n    - l: Leptons\nPERMUTATIONS:\n  t:\n    - [b, l]\n",
        "topology.yaml: PERMUTATIONS.t (line 16): expected symmetric products t.b and t.l to come from the "
        "same input, got t.b from Jets, t.l from Leptons",
        id="symmetric-products-inputs",
    ),
    pytest.param(
        INPUTS.replace("    Met:", "    Jets:") + "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.GLOBAL.Jets (line 9): expected each input name once "
        "(already defined at INPUTS.SEQUENTIAL.Jets (line 3)), got 'Jets'",
        id="duplicate-input-across-kinds",
    ),
    pytest.param(
        INPUTS.replace("    Leptons:", "    Jets:") + "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets (line 6): expected each key once in a mapping "
        "(first written at line 3), got 'Jets' again",
        id="duplicate-input",
    ),
    pytest.param(
        INPUTS.replace("eta: normalize", "pt: normalize") + "EVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets.pt (line 5): expected each key once in a mapping "
        "(first written at line 4), got 'pt' again",
        id="duplicate-feature",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\n  w: [q1, q2]\n  t: [b, q1, q2]\n",
        "topology.yaml: EVENT.t (line 14): expected each key once in a mapping (first written at line 12), "
        "got 't' again",
        id="duplicate-particle",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, q, b]\n",
        "topology.yaml: EVENT.t[2] (line 12): expected each product name once per particle "
        "(already at EVENT.t[0]), got 'b'",
        id="duplicate-product",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  EVENT:\n    - met\n    - [met, laplacian]\n",
        "topology.yaml: REGRESSIONS.EVENT[1] (line 16): expected each target once "
        "(already declared at REGRESSIONS.EVENT[0] (line 15)), got 'met'",
        id="duplicate-target",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  t:\n    - PARTICLE: [m]\n    - PARTICLE: [n]\n",
        "topology.yaml: REGRESSIONS.t[1].PARTICLE (line 16): expected each name once "
        "(already at REGRESSIONS.t[0].PARTICLE (line 15)), got 'PARTICLE'",
        id="duplicate-target-level",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t:\n    - b\n    - W:\n        - q1\n        - q2\n",
        "topology.yaml: EVENT.t[1] (line 14): expected a two-level decay tree "
        "(particle -> list of products); "
        "list the final products of intermediate particles directly under their parent, "
        "got a nested decay under 'W'",
        id="three-level-tree",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t:\n    W: [q1, q2]\n    b: Jets\n",
        "topology.yaml: EVENT.t.W (line 13): expected a two-level decay tree (particle -> list of products); "
        "list the final products of intermediate particles directly under their parent, "
        "got a nested decay under 'W'",
        id="three-level-tree-as-mapping",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  EVENT: [[met, gauss]]\n",
        "topology.yaml: REGRESSIONS.EVENT[0] (line 14): expected a regression type (gaussian, laplacian, "
        "log_gaussian), got 'gauss' (did you mean 'gaussian'?)",
        id="regression-type",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nCLASSIFICATIONS:\n  EVENT: [[signal, gaussian]]\n",
        "topology.yaml: CLASSIFICATIONS.EVENT[0] (line 14): expected a target name, "
        "got a list ['signal', 'gaussian']",
        id="classification-with-type",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  tt:\n    PARTICLE: [m]\n",
        "topology.yaml: REGRESSIONS.tt (line 14): expected EVENT or a particle named in EVENT (t), "
        "got 'tt' (did you mean 't'?)",
        id="target-unknown-particle",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b]\nREGRESSIONS:\n  t:\n    - PARTICLES: [m]\n",
        "topology.yaml: REGRESSIONS.t[0].PARTICLES (line 15): expected PARTICLE or a product of t (b), "
        "got 'PARTICLES' (did you mean 'PARTICLE'?)",
        id="target-unknown-level",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, yes]\n",
        "topology.yaml: EVENT.t[1] (line 12): expected a product name (quote it if YAML reads it as a number "
        "or boolean), got true (a boolean)",
        id="name-read-as-boolean",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b/c]\n",
        "topology.yaml: EVENT.t[0] (line 12): expected a product name without '/' "
        "(names become HDF5 dataset names), got 'b/c'",
        id="name-with-slash",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: []\n",
        "topology.yaml: EVENT.t (line 12): expected a list of decay products, e.g. [b, q1, q2], "
        "got an empty list",
        id="particle-without-products",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: !!python/object:os.system [b, q]\n",
        "topology.yaml: EVENT.t (line 12): expected a plain YAML list (no tags), got the tag "
        "!!python/object:os.system",
        id="tagged-list",
    ),
    pytest.param(
        INPUTS + "EVENT: !!omap\n  - t: [b]\n",
        "topology.yaml: EVENT (line 11): expected a plain YAML list (no tags), got the tag !!omap",
        id="tagged-mapping",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [b, MASK]\n",
        "topology.yaml: EVENT.t[1] (line 12): expected a product name other than MASK and WEIGHT "
        "(TARGETS/t/MASK is the particle's optional mask, as in SPANet), got 'MASK'",
        id="product-named-mask",
    ),
    pytest.param(
        INPUTS + "EVENT:\n  t: [WEIGHT]\n",
        "topology.yaml: EVENT.t[0] (line 12): expected a product name other than MASK and WEIGHT "
        "(TARGETS/t/WEIGHT is the particle's optional weight, as in SPANet), got 'WEIGHT'",
        id="product-named-weight",
    ),
    pytest.param(
        "INPUTS:\n  SEQUENTIAL:\n    Jets:\n      pt: none\n      MASK: none\nEVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets.MASK (line 5): expected a feature name other than MASK "
        "(INPUTS/Jets/MASK says which objects are real, as in SPANet), got 'MASK'",
        id="feature-named-mask",
    ),
    pytest.param(  # INPUTS/Jets/. is the group Jets itself: no file could ever hold this feature
        "INPUTS:\n  SEQUENTIAL:\n    Jets:\n      pt: none\n      '.': none\nEVENT:\n  t: [b]\n",
        "topology.yaml: INPUTS.SEQUENTIAL.Jets.. (line 5): expected a feature name HDF5 can hold ('.' is "
        "the group itself, and a name ends at a NUL), got '.'",
        id="feature-named-dot",
    ),
    pytest.param(  # HDF5 reads TARGETS/t/b\0 as TARGETS/t/b: two products on one dataset, unseen
        INPUTS + 'EVENT:\n  t: [b, "b\\0"]\n',
        "topology.yaml: EVENT.t[1] (line 12): expected a product name HDF5 can hold ('.' is the group "
        "itself, and a name ends at a NUL), got 'b\\x00'",
        id="name-with-nul",
    ),
    pytest.param(  # PyYAML's int() of it raised a bare ValueError: a traceback
        INPUTS + "EVENT:\n  t: [b, " + "1" * 5000 + "]\n",
        "topology.yaml: EVENT.t[1] (line 12): expected a value Python can read, got an integer of 5,000 "
        "digits (Python reads at most 4,300)",
        id="integer-too-long",
    ),
    pytest.param(  # was read as "expected YAML without self-referencing aliases": there is no alias
        "INPUTS: " + "[" * 20000 + "]" * 20000 + "\n",
        "topology.yaml: expected YAML without self-referencing aliases, nested no deeper than Python "
        "reads, got a recursive or too deeply nested structure",
        id="nested-too-deeply",
    ),
    pytest.param(  # a hex literal converts, but its repr in the message raised ValueError: a traceback
        INPUTS + "EVENT:\n  t: [b, 0x" + "f" * 5000 + "]\n",
        "topology.yaml: EVENT.t[1] (line 12): expected a product name (quote it if YAML reads it as a "
        "number or boolean), got an integer of about 6,021 digits (a number)",
        id="hex-integer-too-long-to-print",
    ),
    pytest.param(  # the same inside a list the message shows
        INPUTS + "EVENT:\n  t: [b, q]\nPERMUTATIONS:\n  t: [[b, 0b" + "1" * 20000 + "]]\n",
        "topology.yaml: PERMUTATIONS.t[0] (line 14): expected either a list of names or a list of cycles, "
        "not a mix, got a list holding an integer too long to print",
        id="binary-integer-in-a-list",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_each_mistake_gives_one_line_naming_file_place_expected_and_found(text: str, message: str):
    assert error_message(text) == message
    assert "\n" not in message


def test_missing_unreadable_and_binary_files(tmp_path: Path):
    with pytest.raises(InputError, match=r"no_such\.yaml: expected an existing event file, got no such file"):
        load_event_spec(tmp_path / "no_such.yaml")
    with pytest.raises(InputError, match="expected an event file \\(YAML\\), got a directory"):
        load_event_spec(tmp_path)
    binary = tmp_path / "events.h5"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00\x00\x00")  # an HDF5 signature, then a superblock
    with pytest.raises(InputError, match="expected a UTF-8 text event file \\(YAML\\), got binary data"):
        load_event_spec(binary)
    stray = tmp_path / "latin1.yaml"
    stray.write_bytes(b"INPUTS:\n  SEQUENTIAL:\n    Jets:\n      p\xe9t: none\n")  # one Latin-1 byte
    with pytest.raises(InputError) as raised:
        load_event_spec(stray)
    assert str(raised.value) == (f"{stray}: expected a UTF-8 text event file (YAML), got a byte that is "
                                 "not UTF-8 (0xe9) at line 4, column 8")


def test_error_names_the_file_it_was_loaded_from(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(INPUTS + "EVENT:\n  t:\n    - b: Met\n")
    with pytest.raises(InputError) as caught:
        load_event_spec(path)
    assert caught.value.path == str(path)
    assert caught.value.where == "EVENT.t[0] (line 13)"


def test_suggestions_come_from_similarity_never_from_substrings():
    from spanet_lite.config.suggest import close_match

    assert close_match("norm", ["none", "log", "normalize", "log_normalize"]) == "normalize"
    assert close_match("hr", ["ht", "lt2"]) == "ht"  # one edit away, and the only such name
    assert close_match("q3", ["b", "q1", "q2"]) is None  # one edit from two names: no guess
    assert close_match("l", ["log", "log_normalize"]) is None
    assert close_match(3, ["log"]) is None


def test_every_bundled_event_file_loads(repo_root: Path):
    paths = sorted((repo_root / "event_files").glob("*.yaml"))
    assert paths
    for path in paths:
        assert load_event_spec(path).particles


def test_event_file_examples_in_the_config_readme_load(repo_root: Path):
    import re

    text = (repo_root / "docs" / "event_and_options_files.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 2
    first, second = (parse_event_spec(block, "readme") for block in blocks)
    assert [t.key for t in first.regressions] == [
        "EVENT/neutrino_pz", "EVENT/log_mass", "ht/PARTICLE/pt", "ht/b/energy",
    ]  # fmt: skip
    assert second.event_symmetry.order == 2


@st.composite
def topologies(draw: st.DrawFn) -> dict:
    """Random valid topologies as plain data: particles, products, optional input, a symmetric subset."""
    particles = {}
    for p in range(draw(st.integers(1, 3))):
        count = draw(st.integers(1, 4))
        inputs = [draw(st.sampled_from([None, "Jets", "Leptons"])) for _ in range(count)]
        symmetric = draw(st.lists(st.integers(0, count - 1), unique=True, max_size=count))
        # exchangeable products must come from the same input: give the subset the first one's
        for i in symmetric:
            inputs[i] = inputs[symmetric[0]]
        particles[f"x{p}"] = {"inputs": inputs, "symmetric": symmetric if len(symmetric) > 1 else []}
    return particles


@settings(max_examples=40, deadline=None)
@given(topologies(), st.booleans())
def test_random_topologies_survive_a_yaml_round_trip(topology: dict, bare_names: bool):
    event = {}
    permutations = {}
    for name, info in topology.items():
        event[name] = [
            f"p{i}" if source is None and bare_names else {f"p{i}": source}
            for i, source in enumerate(info["inputs"])
        ]
        if info["symmetric"]:
            permutations[name] = [[f"p{i}" for i in info["symmetric"]]]
    data = {
        "INPUTS": {"SEQUENTIAL": {"Jets": {"pt": "log"}, "Leptons": {"pt": "none"}}, "GLOBAL": None},
        "EVENT": event,
        "PERMUTATIONS": permutations or None,
    }
    spec = parse(yaml.safe_dump(data, sort_keys=False))
    assert spec.particle_names == tuple(topology)
    for particle in spec.particles:
        info = topology[particle.name]
        assert [p.input for p in particle.products] == info["inputs"]
        assert particle.symmetry.order == math.factorial(len(info["symmetric"]) or 1)
        moved = {i for element in particle.symmetry.elements for i, j in enumerate(element) if i != j}
        assert moved == set(info["symmetric"])


def test_a_byte_order_mark_is_fine(tmp_path: Path):
    path = tmp_path / "bom.yaml"
    path.write_text(INPUTS + "EVENT:\n  t: [b]\n", encoding="utf-8-sig")
    assert load_event_spec(path).particle_names == ("t",)


def test_an_empty_event_section_declares_a_network_without_particles():
    """EVENT with no value was refused ('expected a mapping of particle names ..., got nothing'),
    so a network of regression and classification targets only, which training, spanet-test,
    spanet-predict and spanet-export support, could not be declared at all."""
    targets = "REGRESSIONS:\n  EVENT: [[mass, log_gaussian]]\nCLASSIFICATIONS:\n  EVENT: [signal]\n"
    for event in ("EVENT:\n", "EVENT: {}\n"):
        spec = parse(INPUTS + event + targets)
        assert spec.particles == () and [t.key for t in spec.regressions] == ["EVENT/mass"]
    with pytest.raises(InputError, match=r"EVENT \(line \d+\): expected particles, or REGRESSIONS or "
                       r"CLASSIFICATIONS targets for a network without particles, got nothing"):
        parse(INPUTS + "EVENT:\n")
