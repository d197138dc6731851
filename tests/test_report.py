"""The HTML report: self-contained, every user label escaped, renders in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from transferome.pipeline.run import RunResult
from transferome.pipeline.stages import StageResult
from transferome.report import summary_table, write_report

EVIL = '<script>alert("x")</script>'
EVIL_DRUG = "drug&<img src=x onerror=alert(1)>"
TRANSFER = "Perturbation transfer across organs"


def _transfer_tables(rng, *, ceiling: float = 0.9, undefined: int = 0) -> dict[str, pd.DataFrame]:
    models = ["control", "additive", "xtransfer"]
    contexts = [EVIL, "liver"]
    rows = []
    for model, score in zip(models, [np.nan, 0.5, 0.7], strict=True):
        for metric in ("pearson_delta", "r2", "r2_deg"):
            value = score if metric == "pearson_delta" else 0.6
            rows.append((model, metric, value, value, 2, 0))
        scaled = (score - 0.5) / (ceiling - 0.5)
        rows.append((model, "scaled_pearson_delta", scaled, scaled, 2 - undefined, undefined))
    # the noise ceiling scores best but is a bound, not a model: never the winner
    value = ceiling if undefined < 2 else np.nan
    for metric in ("pearson_delta", "pearson_delta_deg"):
        rows.append(("ceiling", metric, value, value, 2 - undefined, undefined))
    summary = pd.DataFrame(rows, columns=["model", "metric", "mean", "median", "n", "n_nan"])
    genes = [f"g{i}" for i in range(30)]
    profiles = []
    for context in contexts:
        control = rng.uniform(0, 3, 30)
        observed = control + rng.normal(0, 1, 30)
        profiles.append(
            pd.DataFrame(
                {
                    "model": "xtransfer",
                    "context": context,
                    "perturbation": EVIL_DRUG,
                    "gene": genes,
                    "control": control,
                    "observed": observed,
                    "predicted": observed + rng.normal(0, 0.3, 30),
                }
            )
        )
    return {"summary": summary, "profiles": pd.concat(profiles, ignore_index=True)}


def _result(tmp_path) -> RunResult:
    rng = np.random.default_rng(0)
    accuracy = pd.DataFrame(
        {
            "context": [EVIL, "liver", "all"],
            "n": [5, 5, 10],
            "accuracy": [0.8, 0.6, 0.7],
            "chance": [0.5, 0.5, 0.5],
            "ortholog_logistic": [0.7, 0.5, 0.6],
        }
    )
    precision = pd.DataFrame(
        {
            "group": ["all", "one-to-one", "diverged"] * 2,
            "n_genes": [10, 8, 2] * 2,
            "precision_at_1": [0.9, 1.0, 0.5, 0.95, 1.0, 0.75],
            "precision_at_5": [1.0] * 6,
            "mrr": [0.9] * 6,
            "method": ["ortholog"] * 3 + ["reactome"] * 3,
        }
    )
    curve = pd.DataFrame(
        {
            "strategy": ["suggested"] * 3 + ["random"] * 3,
            "seed": 0,
            "measured": [4, 5, 6] * 2,
            "error": [1.0, 0.7, 0.5, 1.0, 0.9, 0.8],
        }
    )
    latent = pd.DataFrame(
        {
            "species": ["mouse", "rat"] * 10,
            "context": [EVIL, "liver"] * 10,
            "perturbation": "control",
            "umap_1": rng.normal(size=20),
            "umap_2": rng.normal(size=20),
        }
    )
    species = _transfer_tables(rng, undefined=2)
    species["latent"] = latent
    stages = {
        "transfer": StageResult(tables=_transfer_tables(rng), title=TRANSFER),
        "species_transfer": StageResult(tables=species, title="Across species"),
        "annotation": StageResult(tables={"accuracy": accuracy}, title="Organ annotation"),
        "gene_mapping": StageResult(
            tables={"precision": precision, "mappings": pd.DataFrame()}, title="Gene mapping"
        ),
        "design": StageResult(tables={"curve": curve}, title=EVIL),
    }
    timings = pd.DataFrame({"stage": list(stages), "estimate_s": 1.0, "seconds": 2.0})
    return RunResult(out=tmp_path, stages=stages, skipped={"combination": EVIL}, timings=timings)


@pytest.fixture
def report(tmp_path):
    config = SimpleNamespace(seed=7, raw={"seed": 7, "data": {"path": EVIL}})
    data = SimpleNamespace(origin=f"file {EVIL}")
    path = write_report(
        tmp_path, _result(tmp_path), config=config, data=data, versions={"x": "1"}, seconds=3.0
    )
    return path


def test_report_is_self_contained_and_escaped(report):
    text = report.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "http://" not in text
    assert "https://" not in text
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', text)
    assert len(images) == 8
    figures = report.parent / "figures"
    assert {p.suffix for p in figures.iterdir()} == {".png", ".svg"}
    assert len(list(figures.glob("*.png"))) == 8
    for section in ("summary", "transfer", "species_transfer", "annotation", "gene_mapping"):
        assert f'<section id="{section}">' in text
    assert "Tasks not run" in text


def test_summary_names_winner_and_margin(tmp_path):
    summary = summary_table(_result(tmp_path).stages).set_index("task")
    transfer = summary.loc[TRANSFER]
    assert transfer["winner"] == "xtransfer"
    assert transfer["baseline"] == "additive"
    assert transfer["margin"] == pytest.approx(0.2)
    assert transfer["ceiling"] == pytest.approx(0.9)
    assert (transfer["ceiling_undefined"], transfer["n_groups"]) == (0, 2)
    assert transfer["scaled"] == pytest.approx(0.5)
    assert transfer["baseline_scaled"] == pytest.approx(0.0)
    species = summary.loc["Across species"]
    assert np.isnan(species["ceiling"])
    assert (species["ceiling_undefined"], species["n_groups"]) == (2, 2)
    mapping = summary.loc["Gene mapping"]
    assert mapping["model"] == "reactome"
    assert mapping["margin"] == pytest.approx(0.05)
    annotation = summary.loc["Organ annotation"]
    # against the strongest baseline: the ortholog-mapped classifier, not chance
    assert annotation["baseline"] == "ortholog_logistic"
    assert annotation["margin"] == pytest.approx(0.1)
    assert annotation["n_groups"] == 0


def test_strongest_baseline_includes_similar_and_collaborative(tmp_path):
    rows = [
        ("control", np.nan),
        ("additive", 0.50),
        ("linear", 0.55),
        ("similar", 0.62),
        ("collaborative", 0.60),
        ("xtransfer", 0.58),
        ("ceiling", 0.95),
    ]
    summary = pd.DataFrame(
        [(m, "pearson_delta", v, v, 3, 0) for m, v in rows],
        columns=["model", "metric", "mean", "median", "n", "n_nan"],
    )
    table = summary_table({"transfer": StageResult(tables={"summary": summary})}).iloc[0]
    assert table["task"] == "transfer"
    assert table["winner"] == "similar"
    assert (table["model"], table["baseline"]) == ("xtransfer", "similar")
    assert table["margin"] == pytest.approx(-0.04)
    assert table["ceiling"] == pytest.approx(0.95)


def test_simulator_truth_is_a_bound_not_a_winner(tmp_path):
    rows = [
        ("additive", 0.50),
        ("similar", 0.62),
        ("stacked", 0.70),
        ("ceiling", 0.95),
        ("truth", 0.93),
    ]
    summary = pd.DataFrame(
        [(m, "pearson_delta", v, v, 3, 0) for m, v in rows],
        columns=["model", "metric", "mean", "median", "n", "n_nan"],
    )
    stages = {"transfer": StageResult(tables={"summary": summary})}
    table = summary_table(stages).iloc[0]
    assert (table["winner"], table["model"], table["baseline"]) == ("stacked", "stacked", "similar")
    assert table["truth"] == pytest.approx(0.93)
    timings = pd.DataFrame({"stage": ["transfer"], "estimate_s": 1.0, "seconds": 1.0})
    path = write_report(
        tmp_path,
        RunResult(out=tmp_path, stages=stages, skipped={}, timings=timings),
        config=SimpleNamespace(seed=0, raw={"seed": 0}),
        data=SimpleNamespace(origin="built-in atlas"),
        versions={"x": "1"},
        seconds=1.0,
    )
    text = path.read_text(encoding="utf-8")
    assert "0.950; truth 0.930*" in text
    assert "noise-free profiles scored as a prediction" in text


def test_report_shows_ceiling_and_scaled_scores(report):
    text = report.read_text(encoding="utf-8")
    assert "strongest baseline" in text
    assert "<th>noise ceiling</th>" in text
    assert "xtransfer: 0.700, scaled 0.500" in text
    assert "n/a (undefined in all 2 groups)" in text
    assert "<th>scaled_pearson_delta</th>" in text
    assert "defined in 2 of 2 held-out groups, mean 0.900" in text
    transfer = text.split('<section id="transfer">')[1].split("</section>")[0]
    rows = re.findall(r"<tr>\s*<td>([^<]*)</td>", transfer)
    assert rows == ["xtransfer", "additive", "control", "ceiling"]


def test_report_does_not_import_the_pipeline():
    code = (
        "import sys, transferome.report; "
        "print([m for m in sys.modules if m.startswith('transferome.pipeline')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI (apt-get install -y chromium)")
    pytest.skip("chromium not installed (apt-get install -y chromium)")
    raise AssertionError  # unreachable


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    url = report.resolve().as_uri()
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>transferome report</h1>" in dom.stdout
    assert dom.stdout.count("<img") == 8
    assert "<script" not in dom.stdout.lower()
    assert "&lt;script&gt;" in dom.stdout
    errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert errors == []
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,3000", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000
