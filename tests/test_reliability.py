"""Reliability: signals, concurrent outputs, hostile labels and configs, non-finite values."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_counts_adata


def _start(args: list[str], cwd: Path, stderr: Path) -> subprocess.Popen[bytes]:
    """``python -m transferome.cli ARGS`` with SIGINT at its default (a background shell
    would otherwise hand the child an ignored SIGINT)."""
    with stderr.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "transferome.cli", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def _wait_for(condition, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            process.wait()
            pytest.fail(f"the command ended (exit {process.returncode}) before it was signalled")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail("the command did not start in time")
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)],
    ids=["SIGTERM", "SIGINT", "SIGHUP"],
)
def test_signal_during_training_exits_128_plus_signal(
    tmp_path: Path, signum: int, code: int
) -> None:
    make_counts_adata().write_h5ad(tmp_path / "d.h5ad")
    log = tmp_path / "stderr.txt"
    args = ["fit", "d.h5ad", "--model", "xtransfer", "--preset", "fast", "--values", "log"]
    args += ["--param", "max_epochs=1000000", "--out", "model"]
    process = _start(args, tmp_path, log)
    time.sleep(6.0)  # past the imports and the reading: training (a signal earlier counts too)
    assert process.poll() is None, log.read_text()
    process.send_signal(signum)
    try:
        rc = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the command did not stop on the signal")
    assert rc == code
    assert log.read_text().strip().splitlines()[-1] == "interrupted, nothing written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5ad", "stderr.txt"]


def test_sigterm_during_run_leaves_no_partial_folder(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    process = _start(["-q", "run", "--quick", "--out", "res"], tmp_path, log)
    _wait_for(lambda: any(tmp_path.glob(".res.*.partial")), process, timeout=120)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    try:
        rc = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the run did not stop on SIGTERM")
    assert rc == 143
    assert "interrupted, nothing written" in log.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.txt"]


def _finished_results(folder: Path) -> None:
    folder.mkdir()
    for name in ("versions.json", "config.yaml", "report.html"):
        (folder / name).write_text(name)


def test_publish_refuses_a_folder_that_appeared_meanwhile(tmp_path: Path) -> None:
    from transferome.pipeline.run import _publish, prepare_output

    final = tmp_path / "res"
    tmp = prepare_output(final, overwrite=False)
    (tmp / "report.html").write_text("second run")
    _finished_results(final)  # a first run with the same --out finished in the meantime
    with pytest.raises(FileExistsError, match="appeared while this run was working"):
        _publish(tmp, final, overwrite=False)
    assert (final / "report.html").read_text() == "report.html"
    # an empty folder made meanwhile is simply filled
    empty = tmp_path / "empty"
    tmp = prepare_output(empty, overwrite=False)
    (tmp / "report.html").write_text("run")
    empty.mkdir()
    _publish(tmp, empty, overwrite=False)
    assert (empty / "report.html").read_text() == "run"


def test_overwrite_refuses_a_folder_of_other_files(tmp_path: Path) -> None:
    from transferome.cli import main
    from transferome.pipeline.run import _publish, prepare_output

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("years of work")
    with pytest.raises(FileExistsError, match="does not look like transferome results"):
        prepare_output(mine, overwrite=True)
    assert main(["run", "--quick", "--out", str(mine), "--overwrite"]) == 2
    # and at the final rename, if the files appeared after the check
    final = tmp_path / "res"
    tmp = prepare_output(final, overwrite=True)
    final.mkdir()
    (final / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="does not look like transferome results"):
        _publish(tmp, final, overwrite=True)
    assert (final / "notes.txt").read_text() == "mine"
    tmp.rmdir()  # run_pipeline removes its temporary folder on any error
    # results of a run are replaced
    results = tmp_path / "results"
    _finished_results(results)
    tmp = prepare_output(results, overwrite=True)
    (tmp / "report.html").write_text("new")
    _publish(tmp, results, overwrite=True)
    assert sorted(p.name for p in results.iterdir()) == ["report.html"]
    assert not list(tmp_path.glob(".*"))


def test_outputs_honour_the_umask(tmp_path: Path) -> None:
    from transferome.data import atomic_write_text
    from transferome.pipeline.run import prepare_output

    previous = os.umask(0o022)
    try:
        written = atomic_write_text(tmp_path / "a.txt", "x")
        folder = prepare_output(tmp_path / "res", overwrite=False)
    finally:
        os.umask(previous)
    assert written.stat().st_mode & 0o777 == 0o644
    assert folder.stat().st_mode & 0o777 == 0o755


DOLLAR = r"PBMC$\foo$"


def _draw(fig) -> None:
    """Render ``fig``: mathtext is parsed here (``PBMC$\\foo$`` raised)."""
    import io

    fig.savefig(io.BytesIO(), format="png")


def test_dollar_labels_are_drawn_verbatim_in_every_figure() -> None:
    import numpy as np
    import pandas as pd
    from matplotlib.cbook import is_math_text
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from transferome import plotting

    labels = [DOLLAR, "$x$", "a$b"]
    profile = pd.DataFrame(
        {
            "perturbation": labels * 2,
            "gene": ["g1"] * 6,
            "observed_change": np.arange(6.0),
            "predicted_change": np.arange(6.0) ** 0.5,
        }
    )
    models = pd.DataFrame({"model": labels, "mean": [0.1, 0.2, 0.3], "median": [0.1, 0.2, 0.3]})
    annotation = pd.DataFrame(
        {"context": labels, "n": [3, 3, 3], "accuracy": [0.5] * 3, "chance": [0.3] * 3}
    )
    mapping = pd.DataFrame([[0.5, 0.4]], index=[DOLLAR], columns=["all", "$1:1$"])
    latent = pd.DataFrame({"umap_1": [0.0, 1, 2], "umap_2": [1.0, 0, 2], "label": labels})
    acquisition = pd.DataFrame(
        {
            "strategy": [DOLLAR, DOLLAR, "$random$", "$random$"],
            "measured": [0, 1, 0, 1],
            "mean": [1.0, 0.5, 1.0, 0.8],
            "sd": [0.0, 0.1, 0.0, 0.1],
            "seeds": 2,
        }
    )
    draws = [
        lambda ax: plotting.plot_profile_scatter(profile, ax, title=DOLLAR),
        lambda ax: plotting.plot_models(models, ax, metric="$m$"),
        lambda ax: plotting.plot_annotation(annotation, ax),
        lambda ax: plotting.plot_mapping(mapping, ax, metric="$p$"),
        lambda ax: plotting.plot_latent(latent, ax, title=DOLLAR),
        lambda ax: plotting.plot_acquisition(acquisition, ax),
    ]
    for draw in draws:
        fig = Figure()
        ax = fig.subplots()
        draw(ax)
        ax.legend()  # legends built from the labels
        _draw(fig)
        shown = [t.get_text() for t in fig.findobj(Text) if "$" in t.get_text()]
        # every label holding a $ reaches matplotlib escaped, so no mathtext is parsed
        assert shown
        assert not any(is_math_text(text) for text in shown), shown
    assert plotting.plain_text(DOLLAR) == r"PBMC\$\foo\$"


BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
seed: *i
"""


def test_yaml_alias_bomb_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transferome.cli import main

    config = tmp_path / "bomb.yaml"
    config.write_text(BOMB)
    started = time.perf_counter()
    assert main(["run", "--config", str(config), "--check"]) == 2
    assert time.perf_counter() - started < 5
    err = capsys.readouterr().err
    assert "aliases" in err
    assert len(err) < 2000


def test_yaml_duplicate_key_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transferome.cli import main
    from transferome.pipeline import load_config

    config = tmp_path / "dup.yaml"
    config.write_text("seed: 1\ntasks:\n  transfer: {}\nseed: 2\n")
    assert main(["run", "--config", str(config), "--check"]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'seed'" in err
    assert "line 4" in err
    assert "line 1" in err
    with pytest.raises(Exception, match="duplicate key 'seed'"):
        load_config(config)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 1e-3), ("-2.5E+3", -2500.0), ("1.0e-3", 1e-3), ("1e", "1e"), ("12", 12)],
)
def test_yaml_reads_exponent_notation_as_a_number(text: str, value: object) -> None:
    """PyYAML (YAML 1.1) leaves ``1e-3`` a string; a learning rate is written that way."""
    from transferome.pipeline._yaml import load_yaml

    got = load_yaml(text)
    assert got == value
    assert type(got) is type(value)
    assert load_yaml(f"training: {{lr: {text}}}") == {"training": {"lr": value}}


def test_config_type_error_does_not_print_a_huge_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transferome.cli import main

    config = tmp_path / "big.yaml"
    config.write_text("seed: [" + ", ".join(["1234567890"] * 20000) + "]\n")
    assert main(["run", "--config", str(config), "--check"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err
    assert len(err) < 2000


@pytest.fixture
def fitted(tmp_path: Path) -> tuple[Path, Path]:
    """A log-valued training file without liver/drug_a and an additive model fitted on it."""
    import numpy as np

    from transferome.cli import main

    adata = make_counts_adata()
    adata.X = np.log1p(adata.X)
    keep = ~((adata.obs["context"] == "liver") & (adata.obs["perturbation"] == "drug_a"))
    train = tmp_path / "train.h5ad"
    adata[keep.to_numpy()].copy().write_h5ad(train)
    model = tmp_path / "model"
    args = ["fit", str(train), "--model", "additive", "--values", "log", "--out", str(model)]
    assert main(args) == 0
    assert (model / "model.json").is_file()
    return train, model


def _predict(model: Path, data: Path, out: Path) -> int:
    from transferome.cli import main

    args = ["predict", str(model), str(data), "--target", "liver:drug_a", "--values", "log"]
    return main([*args, "--out", str(out)])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_predict_refuses_non_finite_input(
    tmp_path: Path, fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str], bad: float
) -> None:
    import anndata as ad

    train, model = fitted
    adata = ad.read_h5ad(train)
    adata.X[0, 0] = bad
    poisoned = tmp_path / "poisoned.h5ad"
    adata.write_h5ad(poisoned)
    assert _predict(model, poisoned, tmp_path / "pred.h5ad") == 2
    assert "infinite entries" in capsys.readouterr().err
    assert not (tmp_path / "pred.h5ad").exists()


def test_flipped_weight_bytes_are_a_model_file_error(
    tmp_path: Path, fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import struct

    from transferome.errors import ModelFileError
    from transferome.models._persist import read_model_files

    train, model = fitted
    weights = model / "weights.safetensors"
    raw = bytearray(weights.read_bytes())
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    name, entry = next((k, v) for k, v in header.items() if v.get("dtype", "").startswith("F"))
    start = 8 + size + entry["data_offsets"][0]
    raw[start : start + 8] = b"\xff" * 8  # a NaN in float32 or float64
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=f"array '{name}' holds"):
        read_model_files(model)
    assert _predict(model, train, tmp_path / "pred.h5ad") == 2
    assert "corrupt" in capsys.readouterr().err


def test_model_arrays_saved_with_nan_still_load(tmp_path: Path) -> None:
    import numpy as np

    from transferome.models._persist import read_model_files, write_model_files

    table = np.array([1.0, np.nan])
    write_model_files(
        tmp_path / "m", model_class="X", params={}, arrays={"t": table}, var_names=["g"]
    )
    _, arrays = read_model_files(tmp_path / "m")
    assert np.isnan(arrays["t"][1])


def test_evaluate_refuses_an_all_nan_prediction(
    tmp_path: Path, fitted: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import anndata as ad
    import numpy as np

    from transferome.cli import main

    train, model = fitted
    pred = tmp_path / "pred.h5ad"
    assert _predict(model, train, pred) == 0
    layout = ad.read_h5ad(pred)
    layout.X = np.full(layout.shape, np.nan, dtype=np.float32)
    layout.write_h5ad(pred)
    truth = tmp_path / "truth.h5ad"
    full = make_counts_adata()
    full.X = np.log1p(full.X)
    full.write_h5ad(truth)
    args = ["evaluate", str(pred), str(truth), "--values", "log", "--out", str(tmp_path / "m.csv")]
    assert main(args) == 2
    assert "NaN" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_signature_predictions_refuse_only_an_entirely_nan_group() -> None:
    import numpy as np
    from anndata import AnnData

    from transferome.cli._common import check_finite
    from transferome.errors import DataValidationError

    adata = make_counts_adata(n_per_group=1, n_genes=4)
    adata.X = adata.X - 5.0
    adata.X[0, 1] = np.nan  # one gene not measured: fine for signatures
    check_finite(adata, "p", allow_nan=True, group_keys=("context", "perturbation"))
    with pytest.raises(DataValidationError, match="NaN and 0 infinite"):
        check_finite(adata, "p", group_keys=("context", "perturbation"))
    adata.X[0, :] = np.nan
    with pytest.raises(DataValidationError, match="liver / control are NaN everywhere"):
        check_finite(adata, "p", allow_nan=True, group_keys=("context", "perturbation"))
    adata.X[0, 0] = np.inf
    with pytest.raises(DataValidationError, match="1 infinite"):
        check_finite(AnnData(adata.X), "p", allow_nan=True)


def test_benchmark_refuses_an_existing_folder_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transferome.cli import main

    data = tmp_path / "data.h5ad"
    make_counts_adata().write_h5ad(data)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("earlier results\n")
    args = ["-q", "benchmark", "transfer", "--data", str(data), "--models", "control"]
    args += ["--preset", "fast", "--out", str(out)]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "results.csv").read_text() == "earlier results\n"
    (out / "notes.txt").write_text("mine")
    assert main([*args, "--overwrite"]) == 0
    assert (out / "results.csv").read_text() != "earlier results\n"
    assert (out / "notes.txt").read_text() == "mine"


def test_spreadsheet_safe_quotes_formula_labels() -> None:
    import pandas as pd

    from transferome.data._spreadsheet import spreadsheet_safe

    frame = pd.DataFrame(
        {"context": ["=1+1", "+A1", "-cmd", "@SUM(A1)", "liver"], "value": [-0.5, 1, 2, 3, 4]},
        index=pd.Index(["=x", "a", "b", "c", "d"]),
    )
    frame["perturbation"] = pd.Categorical(["-a", "b", "c", "d", "e"])
    frame["=col"] = 1
    safe = spreadsheet_safe(frame)
    assert list(safe["context"]) == ["'=1+1", "'+A1", "'-cmd", "'@SUM(A1)", "liver"]
    assert list(safe["value"]) == [-0.5, 1, 2, 3, 4]
    assert safe["perturbation"].iloc[0] == "'-a"
    assert list(safe.columns)[-1] == "'=col"
    assert safe.index[0] == "'=x"
    assert frame["context"].iloc[0] == "=1+1"  # the input is left as it was


def test_benchmark_csvs_quote_formula_labels(tmp_path: Path) -> None:
    import pandas as pd

    from transferome.cli import main

    adata = make_counts_adata(contexts=("=HYPERLINK(1)", "kidney", "heart"))
    adata.obs["perturbation"] = adata.obs["perturbation"].replace({"drug_a": "@drug"})
    data = tmp_path / "data.h5ad"
    adata.write_h5ad(data)
    out = tmp_path / "out"
    args = ["-q", "benchmark", "transfer", "--data", str(data), "--models", "control"]
    assert main([*args, "--out", str(out)]) == 0
    for name in ("results.csv", "summary.csv", "timings.csv"):
        text = (out / name).read_text()
        for line in text.splitlines():
            for cell in line.split(","):
                assert not cell.strip('"').startswith(("=", "+", "@")), (name, line)
    results = pd.read_csv(out / "results.csv")
    assert "'=HYPERLINK(1)" in set(results["context"])
    assert "'@drug" in set(results["perturbation"])


def test_interrupted_model_save_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from transferome.models import _persist

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_persist, "atomic_write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _persist.write_model_files(
            tmp_path / "m", model_class="X", params={}, arrays={"t": np.ones(2)}, var_names=["g"]
        )
    assert list(tmp_path.iterdir()) == []
