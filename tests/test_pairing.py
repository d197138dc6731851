"""Pairing of XTransferCDR training profiles: invariants and the single-perturbation case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferome.data.pairing import make_pairs, split_perturbations
from transferome.errors import DataValidationError


def _labels(n_contexts: int, perts: list[str], n_cells: int, seed: int):
    rng = np.random.default_rng(seed)
    contexts, perturbations = [], []
    for c in range(n_contexts):
        for p in ["control", *perts]:
            k = int(rng.integers(1, n_cells + 1))
            contexts += [f"ctx{c}"] * k
            perturbations += [p] * k
    order = rng.permutation(len(contexts))
    return np.array(contexts)[order], np.array(perturbations)[order]


@settings(max_examples=40, deadline=None)
@given(
    n_contexts=st.integers(1, 4),
    n_perts=st.integers(1, 6),
    n_cells=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_pair_invariants(n_contexts, n_perts, n_cells, seed):
    perts = [f"drug{i}" for i in range(n_perts)]
    contexts, perturbations = _labels(n_contexts, perts, n_cells, seed)
    pairs = make_pairs(contexts, perturbations, random_state=seed)
    # never the same perturbation twice in a pair; always one context
    assert np.all(perturbations[pairs.a] != perturbations[pairs.b])
    for idx in (pairs.b, pairs.control_a, pairs.control_b):
        assert np.array_equal(contexts[pairs.a], contexts[idx])
    assert np.all(perturbations[pairs.control_a] == "control")
    assert np.all(perturbations[pairs.control_b] == "control")
    assert np.all(perturbations[pairs.a] != "control")
    # every perturbed cell is used at least once
    used = set(pairs.a) | set(pairs.b)
    assert set(np.flatnonzero(perturbations != "control")) <= used
    if n_perts == 1:
        assert pairs.degenerate.all()
        assert np.all(perturbations[pairs.b] == "control")
    else:
        assert not pairs.degenerate.any()
        # a perturbation sits on one side of the split only: no pair in both orders
        sides = {
            (perturbations[i], perturbations[j]) for i, j in zip(pairs.a, pairs.b, strict=True)
        }
        assert not any((q, p) in sides for p, q in sides)


def test_pairs_are_seeded():
    contexts, perturbations = _labels(3, ["a", "b", "c"], 5, seed=1)
    first = make_pairs(contexts, perturbations, random_state=7)
    again = make_pairs(contexts, perturbations, random_state=7)
    other = make_pairs(contexts, perturbations, random_state=8)
    assert np.array_equal(first.a, again.a)
    assert np.array_equal(first.control_b, again.control_b)
    assert not (np.array_equal(first.a, other.a) and np.array_equal(first.b, other.b))


def test_kang_like_degenerate_pairs_use_controls_as_second_member():
    contexts = np.array(["B"] * 3 + ["B"] * 5 + ["T"] * 4 + ["T"] * 2)
    perturbations = np.array(["control"] * 3 + ["stim"] * 5 + ["control"] * 4 + ["stim"] * 2)
    pairs = make_pairs(contexts, perturbations)
    assert pairs.degenerate.all()
    assert np.all(perturbations[pairs.a] == "stim")
    assert np.all(perturbations[pairs.b] == "control")
    # the larger side of each context is covered exactly once: 5 in B, 4 controls in T
    assert len(pairs) == 5 + 4


def test_split_sizes_are_balanced():
    a, b = split_perturbations(["x", "y", "z", "x", "w", "v"], np.random.default_rng(0))
    assert len(a) == 3
    assert len(b) == 2
    assert not a & b
    assert a | b == {"v", "w", "x", "y", "z"}


def test_context_with_one_global_group_is_split_locally():
    # with two perturbations the global split puts them on opposite sides; a context that
    # holds only one side's perturbations plus another is split on its own
    contexts = np.array(["c1"] * 6 + ["c2"] * 6)
    perturbations = np.array(["control", "p", "q", "r", "s", "t"] * 2)
    pairs = make_pairs(contexts, perturbations, random_state=3)
    assert not pairs.degenerate.any()
    assert np.all(perturbations[pairs.a] != perturbations[pairs.b])
    assert set(contexts[pairs.a]) == {"c1", "c2"}


def test_errors_name_the_problem():
    with pytest.raises(DataValidationError, match="'ctx' has perturbed cells but no 'control'"):
        make_pairs(["ctx", "ctx"], ["a", "b"])
    with pytest.raises(DataValidationError, match="no perturbed observations"):
        make_pairs(["ctx"], ["control"])
    with pytest.raises(DataValidationError, match="same length"):
        make_pairs(["ctx"], ["control", "a"])


def test_take_selects_pairs():
    contexts, perturbations = _labels(2, ["a", "b"], 4, seed=2)
    pairs = make_pairs(contexts, perturbations)
    index = np.array([len(pairs) - 1, 0])
    part = pairs.take(index)
    assert len(part) == 2
    assert np.array_equal(part.a, pairs.a[index])
    assert np.array_equal(part.control_b, pairs.control_b[index])
