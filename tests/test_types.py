"""``src/`` passes the type checker (mypy, configured in ``pyproject.toml``).

Every module is checked: ``pyproject.toml`` exempts none. Should a module ever be exempted
(``ignore_errors`` in a ``[[tool.mypy.overrides]]``), the list may only shrink: a listed module
that has become clean fails here so that it is taken off the list and stays checked.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def _mypy(*options: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed; install the test extra: pip install -e '.[test]'")
    return subprocess.run(
        [sys.executable, "-m", "mypy", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _listed() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    overrides = config["tool"]["mypy"].get("overrides", [])
    return [m for o in overrides if o.get("ignore_errors") for m in o["module"]]


def test_src_passes_mypy() -> None:
    result = _mypy("--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_not_yet_clean_are_still_not_clean(tmp_path) -> None:
    """Checking every module without the exemptions: each exempted one must still fail."""
    listed = _listed()
    if not listed:
        pytest.skip("no module is exempt")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    plain = tmp_path / "mypy.ini"
    plain.write_text(
        f"[mypy]\npython_version = {config['python_version']}\nignore_missing_imports = True\n"
    )
    result = _mypy("--config-file", str(plain), "--no-incremental", "src/transferome")
    failing = set()
    for path in re.findall(r"^src/(\S+?)\.py:\d+: error", result.stdout, flags=re.M):
        failing.add(path.replace("/", ".").removesuffix(".__init__"))
    clean = sorted(set(listed) - failing)
    assert not clean, f"now clean, take them off [[tool.mypy.overrides]]: {clean}"
