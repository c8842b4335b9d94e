"""Permutation groups: generators from PERMUTATIONS, closure to the full group, orbits."""

from __future__ import annotations

import itertools
import math
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spanet_lite.config import parse_event_spec
from spanet_lite.config.symmetry import (
    PermutationGroup,
    closure,
    compose,
    cycles_to_permutation,
    identity,
    symmetric_group_generators,
)
from spanet_lite.errors import InputError


def test_a_cycle_moves_each_item_to_the_next_position():
    # (0 1 2): the item at 0 goes to 1, the item at 1 to 2, the item at 2 back to 0
    perm = cycles_to_permutation([[0, 1, 2]], 3)
    assert PermutationGroup.trivial("abc").apply(perm, ["a", "b", "c"]) == ("c", "a", "b")


def test_disjoint_cycles_form_one_generator():
    assert cycles_to_permutation([[0, 1], [2, 3]], 5) == (1, 0, 3, 2, 4)


def test_complete_groups_have_factorial_order_and_start_with_identity():
    for n in (2, 3, 4):
        elements = closure(symmetric_group_generators(list(range(n)), n), n)
        assert elements[0] == identity(n)
        assert len(elements) == math.factorial(n)
        assert set(elements) == set(itertools.permutations(range(n)))


def test_complete_group_on_some_positions_fixes_the_others():
    elements = closure(symmetric_group_generators([1, 3], 4), 4)
    assert set(elements) == {(0, 1, 2, 3), (0, 3, 2, 1)}


def test_a_three_cycle_generates_the_cyclic_group_of_order_three():
    group = PermutationGroup.generated_by("abc", [cycles_to_permutation([[0, 1, 2]], 3)])
    assert set(group.elements) == {(0, 1, 2), (2, 0, 1), (1, 2, 0)}


def test_orbits_are_the_sets_a_group_can_exchange():
    swap_pairs = cycles_to_permutation([[0, 1], [2, 3]], 5)
    group = PermutationGroup.generated_by("abcde", [swap_pairs])
    assert group.orbits() == [(0, 1), (2, 3), (4,)]
    assert PermutationGroup.trivial("ab").orbits() == [(0,), (1,)]
    assert PermutationGroup.trivial("ab").is_trivial


@st.composite
def generator_sets(draw: st.DrawFn) -> tuple[int, list[tuple[int, ...]]]:
    n = draw(st.integers(1, 5))
    perms = st.permutations(list(range(n))).map(tuple)
    return n, draw(st.lists(perms, max_size=3))


@settings(max_examples=60, deadline=None)
@given(generator_sets())
def test_closure_is_a_group(case: tuple[int, list[tuple[int, ...]]]):
    n, generators = case
    elements = closure(generators, n)
    members = set(elements)
    assert elements[0] == identity(n)
    assert len(members) == len(elements)
    assert math.factorial(n) % len(elements) == 0  # Lagrange: the order divides n!
    assert set(generators) <= members
    for a in elements:
        inverse = tuple(sorted(range(n), key=lambda i: a[i]))
        assert inverse in members
        for b in elements:
            assert compose(a, b) in members


# -------------------------------------------------------------- from event files
INPUTS = """\
INPUTS:
  SEQUENTIAL:
    Jets:
      pt: log_normalize
"""


def spec_with(event: str, permutations: str):
    return parse_event_spec(INPUTS + dedent(event) + dedent(permutations), "groups.yaml")


def test_flat_lists_are_complete_groups_of_orders_6_and_24():
    spec = spec_with(
        """\
        EVENT:
          a: [p1, p2, p3, p4, p5]
          b: [q1, q2, q3, q4]
        """,
        """\
        PERMUTATIONS:
          a:
            - [p1, p2, p3]
          b:
            - [q1, q2, q3, q4]
        """,
    )
    a, b = spec.particles
    assert a.symmetry.order == 6
    assert {element[3:] for element in a.symmetry.elements} == {(3, 4)}  # p4, p5 stay put
    assert b.symmetry.order == 24


def test_several_flat_lists_give_the_product_of_independent_groups():
    spec = spec_with(
        "EVENT:\n  a: [p1, p2, p3, p4]\n",
        "PERMUTATIONS:\n  a:\n    - [p1, p2]\n    - [p3, p4]\n",
    )
    assert set(spec.particles[0].symmetry.elements) == {
        (0, 1, 2, 3),
        (1, 0, 2, 3),
        (0, 1, 3, 2),
        (1, 0, 3, 2),
    }


def test_list_of_cycles_is_one_generator_of_order_two():
    spec = spec_with(
        "EVENT:\n  a: [p1, p2, p3, p4]\n",
        "PERMUTATIONS:\n  a:\n    - [[p1, p2], [p3, p4]]\n",
    )
    assert spec.particles[0].symmetry.elements == ((0, 1, 2, 3), (1, 0, 3, 2))


def test_explicit_cycles_at_event_level_permute_particles_together():
    spec = spec_with(
        """\
        EVENT:
          t1: [b]
          t2: [b]
          t3: [b]
          t4: [b]
        """,
        "PERMUTATIONS:\n  EVENT:\n    - [[t1, t2], [t3, t4]]\n",
    )
    assert spec.event_symmetry.names == ("t1", "t2", "t3", "t4")
    assert spec.event_symmetry.elements == ((0, 1, 2, 3), (1, 0, 3, 2))


def test_event_level_three_cycle_and_complete_group():
    event = "EVENT:\n  t1: [b]\n  t2: [b]\n  t3: [b]\n"
    cyclic = spec_with(event, "PERMUTATIONS:\n  EVENT:\n    - [[t1, t2, t3]]\n")
    assert cyclic.event_symmetry.order == 3
    complete = spec_with(event, "PERMUTATIONS:\n  EVENT:\n    - [t1, t2, t3]\n")
    assert complete.event_symmetry.order == 6


def test_generators_from_several_entries_close_to_the_full_group():
    # (p1 p2) and (p2 p3) given separately generate all 6 orderings of p1, p2, p3
    spec = spec_with(
        "EVENT:\n  a: [p1, p2, p3]\n",
        "PERMUTATIONS:\n  a:\n    - [[p1, p2]]\n    - [[p2, p3]]\n",
    )
    assert spec.particles[0].symmetry.order == 6


def test_eight_interchangeable_names_are_allowed_and_nine_are_one_line():
    """Every element is enumerated; 12 interchangeable products hung every command."""
    def interchangeable(count: int):
        names = ", ".join(f"p{i}" for i in range(1, count + 1))
        return spec_with(f"EVENT:\n  a: [{names}]\n", f"PERMUTATIONS:\n  a:\n    - [{names}]\n")

    assert interchangeable(8).particles[0].symmetry.order == math.factorial(8)
    with pytest.raises(InputError) as raised:
        interchangeable(9)
    assert str(raised.value) == (
        "groups.yaml: PERMUTATIONS.a (line 8): expected symmetries of at most 40,320 permutations "
        "(all orderings of 8 names), got more than 40,320 permutations"
    )
