"""Shared fixtures: the real datasets in ../shared/data and small synthetic AnnData objects."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from hypothesis import settings

# CI replays the same examples every run (a red build is then reproducible); elsewhere
# hypothesis explores new examples each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRANSFEROME_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests (``pytestmark = pytest.mark.usefixtures(
    "one_thread")``): on a shared 2-core machine two OpenMP threads mostly spin, and tiny
    networks train fastest and steadiest on one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real datasets; required in CI, skipped elsewhere when absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real datasets not found at {SHARED_DATA}")
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


def make_counts_adata(
    n_per_group: int = 5,
    contexts: tuple[str, ...] = ("liver", "kidney", "heart"),
    perturbations: tuple[str, ...] = ("control", "drug_a", "drug_b"),
    n_genes: int = 20,
    seed: int = 0,
) -> AnnData:
    """Tiny counts AnnData with every (context, perturbation) group filled."""
    rng = np.random.default_rng(seed)
    rows = [
        (c, p, f"{c}-{p}-{i}") for c in contexts for p in perturbations for i in range(n_per_group)
    ]
    obs = pd.DataFrame(rows, columns=["context", "perturbation", "name"]).set_index("name")
    obs["sample"] = [f"animal{i % 3}" for i in range(len(obs))]
    obs.index.name = None
    counts = rng.poisson(5.0, size=(len(obs), n_genes)).astype(np.float32)
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    return AnnData(X=counts, obs=obs, var=var)


@pytest.fixture
def counts_adata() -> AnnData:
    return make_counts_adata()
