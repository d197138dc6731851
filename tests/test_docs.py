"""The documentation: the site builds without a warning (broken links, images and anchors are
warnings, see mkdocs.yml), the CLI reference covers every command, and the links of the
top-level Markdown files point at files and headings that exist."""

from __future__ import annotations

import argparse
import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Files read on GitHub rather than on the site; the site's pages are checked by MkDocs.
TOP_LEVEL = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+).+?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """``mkdocs build --strict`` of the repository into a temporary folder."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed; install the test extra: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's banner about MkDocs 2
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    return result, out


def test_site_builds_strict(site: tuple[subprocess.CompletedProcess, Path]) -> None:
    result, out = site
    assert result.returncode == 0, result.stderr
    assert (out / "index.html").is_file()


def _page_text(path: Path) -> str:
    """The text of an HTML page, tags removed and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def test_cli_reference_lists_every_command(site: tuple[subprocess.CompletedProcess, Path]) -> None:
    from transferome.cli import build_parser

    result, out = site
    assert result.returncode == 0, result.stderr
    source = (out / "cli" / "index.html").read_text(encoding="utf-8")
    page = _page_text(out / "cli" / "index.html")
    subparsers = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert subparsers, "the parser has no sub-commands"
    commands = subparsers[0].choices
    for name, parser in commands.items():
        has_section = f'id="transferome-{name}"' in source
        assert has_section, f"the CLI reference has no section {name!r}"
        has_help = f"usage: transferome {name}" in page
        assert has_help, f"the CLI reference lacks the help of {name!r}"
        options = [s for action in parser._actions for s in action.option_strings]
        missing = [option for option in options if option not in page]
        assert not missing, f"the CLI reference of {name!r} lacks {missing}"


def _outside_code(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks, code spans blanked."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, _CODE_SPAN.sub("", line)))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, formatting and punctuation dropped,
    lower case, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """GitHub anchors of the headings of a Markdown file (repeats get -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    """Relative links of a Markdown file whose file or heading does not exist."""
    problems = []
    for number, line in _outside_code(path.read_text(encoding="utf-8")):
        for target in _LINK.findall(line):
            if _SCHEME.match(target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.name}:{number}: {target}"
            if not linked.exists():
                problems.append(f"{where} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{where} (no such heading)")
    return problems


def test_slugs_follow_github() -> None:
    assert github_slug("Where the models stand (honestly)") == "where-the-models-stand-honestly"
    assert github_slug("`stacked`: transferome's transfer predictor") == (
        "stacked-transferomes-transfer-predictor"
    )
    assert github_slug("transferome run") == "transferome-run"


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("# Page\n\n## A section\n", encoding="utf-8")
    text = (
        "# Top\n[ok](page.md) [ok](page.md#a-section) [ok](#top) [web](https://example.org)\n"
        "[missing](nothing.md) [no heading](page.md#b-section) [no anchor](#bottom)\n"
        "```\n[in code](nothing.md)\n```\n`[in a span](nothing.md)`\n"
    )
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    problems = broken_links(tmp_path / "README.md")
    assert [problem.split(": ", 1)[1] for problem in problems] == [
        "nothing.md (no such file)",
        "page.md#b-section (no such heading)",
        "#bottom (no such heading)",
    ]


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_links_resolve(name: str) -> None:
    problems = broken_links(ROOT / name)
    assert not problems, "\n".join(problems)
