"""Multi-process data-parallel training: two CPU processes (gloo) match one process.

``strategy="ddp"`` is launched the way users launch it: a script run with ``python``, which
Lightning starts once more per extra device (the same code path ``torchrun`` and SLURM use).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from tests.test_training import AutoEncoder, make_adata, small_config, weights
from transferome.training import AnnDataRows, fit_module

SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    sys.path.insert(0, {root!r})

    from tests.test_training import AutoEncoder, make_adata, small_config
    from transferome.training import AnnDataRows, fit_module

    adata = make_adata(n_obs=96)
    module = AutoEncoder()
    config = small_config(
        max_epochs=4, batch_size=8, strategy="ddp", devices=2, lr_step_size=2
    )
    result = fit_module(
        module, AnnDataRows(adata[:64]), AnnDataRows(adata[64:]), config=config
    )
    if result.global_rank == 0:  # every process returns; one writes
        state = {{k: v.tolist() for k, v in module.state_dict().items()}}
        payload = {{
            "history": result.history.drop(columns="seconds").to_dict(orient="list"),
            "best_epoch": result.best_epoch,
            "weights": state,
        }}
        with open(sys.argv[1], "w") as handle:
            json.dump(payload, handle)
    """
)


@pytest.mark.slow
def test_two_ddp_processes_match_one_process_with_the_same_global_batch(tmp_path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    output = tmp_path / "ddp.json"
    env = {k: v for k, v in os.environ.items() if k not in {"LOCAL_RANK", "WORLD_SIZE", "RANK"}}
    env["PYTHONWARNINGS"] = "ignore"  # child processes; the engine's own behaviour is checked
    completed = subprocess.run(
        [sys.executable, str(script), str(output)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    ddp = json.loads(output.read_text())

    adata = make_adata(n_obs=96)
    module = AutoEncoder()
    single = fit_module(
        module,
        AnnDataRows(adata[:64]),
        AnnDataRows(adata[64:]),
        config=small_config(max_epochs=4, batch_size=16, lr_step_size=2),
    )
    for column in ("train_loss", "val_loss", "train_reco", "lr"):
        np.testing.assert_allclose(ddp["history"][column], single.history[column], rtol=1e-4)
    assert ddp["best_epoch"] == single.best_epoch
    for key, value in weights(module).items():
        np.testing.assert_allclose(np.asarray(ddp["weights"][key]), value.numpy(), atol=1e-5)
    assert not torch.equal(
        weights(module)["encoder.weight"], weights(AutoEncoder())["encoder.weight"]
    )
