"""Property-based tests past validation: random valid data through every transfer model, and
random mutations of saved model files through ``load``.

For any valid log-normalised AnnData (random shape, labels, sparsity, some genes constant), every
registered model that follows the transfer contract either fits and predicts finite profiles of
the right shape without touching its input, or refuses with a transferome error that carries a
message. A saved model whose ``model.json`` or ``weights.safetensors`` is mutated at random loads
to identical predictions or fails with a named error: never a traceback, never NaN. A random
change to one field of the built-in run configuration is accepted or refused with a
``ConfigError``.
"""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata import AnnData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferome.data.schema import Schema
from transferome.errors import TransferomeError
from transferome.models import available_models, get_model

SCHEMA = Schema(species_key=None, dose_key=None, sample_key=None)
# every single-dataset transfer model (uge, trained across species, has its own save/load tests
# and shares the model-file code checked here)
TRANSFER = sorted(
    name
    for name in available_models()
    if "schema" in inspect.signature(get_model(name).fit).parameters and name != "uge"
)
NEURAL = {"xtransfer", "fe"}
CHEAP = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _params(name: str) -> dict:
    cls = get_model(name)
    params = dict(getattr(cls, "fast_params", {}) or {})
    if name in NEURAL:
        params.update(max_epochs=1)
    if name == "stacked":
        params.update(max_pseudo_targets=20)
    return params


@st.composite
def transfer_data(draw) -> AnnData:
    n_contexts = draw(st.integers(2, 4))
    n_perts = draw(st.integers(1, 3))
    n_genes = draw(st.integers(3, 25))
    reps = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    contexts = [f"ctx {i}" for i in range(n_contexts)]
    perts = ["control"] + [f"drug-{i}" for i in range(n_perts)]
    rows = [(c, p) for c in contexts for p in perts for _ in range(reps)]
    base = rng.gamma(1.0, 1.0, size=(n_contexts, n_genes))
    effect = rng.normal(0.0, 0.5, size=(len(perts), n_genes))
    effect[0] = 0.0
    x = np.stack(
        [
            np.maximum(base[contexts.index(c)] + effect[perts.index(p)], 0.0)
            + rng.gamma(1.0, 0.05, n_genes)
            for c, p in rows
        ]
    )
    x = np.log1p(x).astype(np.float32)
    if draw(st.booleans()):
        x[:, : draw(st.integers(0, n_genes))] = 0.0  # some genes never expressed
    if draw(st.booleans()):
        x[rng.random(x.shape) < 0.3] = 0.0
    obs = pd.DataFrame(
        {"context": [c for c, _ in rows], "perturbation": [p for _, p in rows]},
        index=[f"o{i}" for i in range(len(rows))],
    )
    matrix = sp.csr_matrix(x) if draw(st.booleans()) else x
    return AnnData(matrix, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def _named(error: TransferomeError) -> None:
    message = str(error)
    assert message.strip(), "a transferome error must carry a message"


def _dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


@pytest.mark.parametrize("name", TRANSFER)
@CHEAP
@given(adata=transfer_data())
def test_every_model_fits_random_valid_data_or_says_why(name: str, adata: AnnData) -> None:
    before = _dense(adata.X).copy()
    obs_before = adata.obs.copy()
    contexts = sorted(set(adata.obs["context"]))
    perts = sorted(set(adata.obs["perturbation"]) - {"control"})
    target = (contexts[0], perts[0])
    held = (adata.obs["context"] == target[0]) & (adata.obs["perturbation"] == target[1])
    train = adata[~held.to_numpy()].copy()
    train_before = _dense(train.X).copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = get_model(name)(**_params(name)).fit(train, schema=SCHEMA)
            pred = model.predict(train, [target])
    except TransferomeError as exc:
        _named(exc)
        return
    values = _dense(pred.X)
    assert values.shape == (1, adata.n_vars)
    assert np.isfinite(values).all()
    assert list(pred.var_names) == list(adata.var_names)
    np.testing.assert_array_equal(_dense(train.X), train_before)
    np.testing.assert_array_equal(_dense(adata.X), before)
    pd.testing.assert_frame_equal(adata.obs, obs_before)


_FITTED: dict = {}


def _fitted(name: str, tmp_path_factory):
    """A model fitted once per test session, and a fresh copy of its folder."""
    import shutil

    if name not in _FITTED:
        _FITTED[name] = _fit_once(name, tmp_path_factory)
    train, folder, expected = _FITTED[name]
    copy = tmp_path_factory.mktemp(f"copy_{name}")
    shutil.copytree(folder, copy, dirs_exist_ok=True)
    return train, copy, expected


def _fit_once(name: str, tmp_path_factory):
    rng = np.random.default_rng(0)
    contexts, perts = ["a", "b", "c"], ["control", "d1", "d2"]
    rows = [(c, p) for c in contexts for p in perts for _ in range(3)]
    x = np.log1p(rng.gamma(2.0, 1.0, size=(len(rows), 12))).astype(np.float32)
    obs = pd.DataFrame(
        {"context": [c for c, _ in rows], "perturbation": [p for _, p in rows]},
        index=[f"o{i}" for i in range(len(rows))],
    )
    adata = AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(12)]))
    held = ((adata.obs["context"] == "a") & (adata.obs["perturbation"] == "d1")).to_numpy()
    train = adata[~held].copy()
    model = get_model(name)(**_params(name)).fit(train, schema=SCHEMA)
    folder = tmp_path_factory.mktemp(f"model_{name}")
    model.save(folder)
    return train, folder, _dense(model.predict(train, [("a", "d1")]).X)


@st.composite
def json_mutation(draw):
    kind = draw(st.sampled_from(["drop", "number", "string", "list", "null", "nest"]))
    return kind, draw(st.integers(0, 10_000)), draw(st.integers(-5, 10**6))


def _mutate(value, kind: str, pick: int, number: int):
    """One random change somewhere in a JSON value (a dict, list or scalar)."""
    if isinstance(value, dict) and value:
        key = sorted(value)[pick % len(value)]
        if kind == "drop" and pick % 3 == 0:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _mutate(value[key], kind, pick // 7, number)}
    if isinstance(value, list) and value:
        i = pick % len(value)
        if kind == "drop":
            return value[:i] + value[i + 1 :]
        return [*value[:i], _mutate(value[i], kind, pick // 7, number), *value[i + 1 :]]
    return {
        "drop": None,
        "number": number,
        "string": "x" * (number % 5),
        "list": [number],
        "null": None,
        "nest": {"a": [number]},
    }[kind]


SAVED = sorted(name for name in TRANSFER if name not in {"control"})


@pytest.mark.parametrize("name", SAVED)
@CHEAP
@given(mutation=json_mutation(), flip=st.integers(0, 2**31))
def test_mutated_model_files_load_identically_or_fail_by_name(
    name: str, mutation, flip: int, tmp_path_factory
) -> None:
    train, folder, expected = _fitted(name, tmp_path_factory)
    kind, pick, number = mutation
    path = folder / "model.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(_mutate(config, kind, pick, number)))
    weights = folder / "weights.safetensors"
    if weights.exists() and flip % 2:
        data = bytearray(weights.read_bytes())
        data[flip % len(data)] ^= 1 << (flip % 8)
        weights.write_bytes(bytes(data))
    cls = get_model(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = cls.load(folder)
            values = _dense(loaded.predict(train, [("a", "d1")]).X)
    except TransferomeError as exc:
        _named(exc)
        return
    assert np.isfinite(values).all(), "a mutated model file must not give NaN predictions"
    # the checksums in the weights' header catch every change that loads: what loads predicts
    # exactly what the saved model did
    assert values.shape == expected.shape
    np.testing.assert_array_equal(values, expected)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-3, 100), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 5), max_size=2),
)


def _paths(value, prefix=()):
    """Every (path, value) of a nested configuration."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))


def _set(config, path, value):
    if not path:
        return value
    out = dict(config)
    out[path[0]] = _set(config[path[0]], path[1:], value) if len(path) > 1 else value
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 10**6), value=VALUES, drop=st.booleans())
def test_random_configs_are_valid_or_refused_naming_a_field(
    pick: int, value, *, drop: bool
) -> None:
    """One field of the built-in configuration set to a random value (or dropped): the check
    accepts it or raises ConfigError with a message; never another error."""
    import copy

    from transferome.pipeline import validate_config
    from transferome.pipeline.config import default_config

    config = copy.deepcopy(default_config(quick=True))
    paths = [p for p, _ in _paths(config) if p]
    path = paths[pick % len(paths)]
    if drop:
        mutated = copy.deepcopy(config)
        node = mutated
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    else:
        mutated = _set(config, path, value)
    try:
        validate_config(mutated)
    except TransferomeError as exc:
        _named(exc)
