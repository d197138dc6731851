"""MkDocs hooks: pages made from the code and the README when the site is built.

- ``index.md``: the home page is ``README.md``, its ``docs/...`` links made relative to the site;
- ``cli.md``: one section per sub-command of ``transferome.cli.build_parser()``, its
  description and its ``--help``, so the reference cannot drift from the parser;
- ``api.md``: one mkdocstrings entry per model of the registry (``transferome.models``),
  wherever the class is defined.

Each page holds a marker comment that the hook replaces; nothing generated is committed.
The package is imported from this repository's ``src/``; ``mkdocs serve`` reads the parser
and the registry once, so restart it to see a changed command.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
README = ROOT / "README.md"

HOME_MARKER = "<!-- home: README.md -->"
CLI_MARKER = "<!-- cli-reference -->"
MODELS_MARKER = "<!-- registered-models -->"

# Help text is wrapped at a fixed width, whatever the terminal of the build.
HELP_WIDTH = 100

_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _from_source() -> None:
    """Import ``transferome`` from this repository's ``src/`` (MkDocs restores ``sys.path``
    after loading the hook, so this runs before each import)."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the marker of the home page, the CLI reference and the API reference."""
    if HOME_MARKER in markdown:
        return home_markdown(README.read_text(encoding="utf-8"))
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    if MODELS_MARKER in markdown:
        markdown = markdown.replace(MODELS_MARKER, models_markdown())
    return markdown


def home_markdown(readme: str) -> str:
    """The README with its links read from ``docs/``: ``docs/x.md`` becomes ``x.md``; a link
    to another file of the repository (outside the site) keeps its text only."""

    def relink(match: re.Match[str]) -> str:
        bang, text, target = match.groups()
        if _SCHEME.match(target) or target.startswith("#"):
            return match.group(0)
        if target.startswith("docs/"):
            return f"{bang}[{text}]({target.removeprefix('docs/')})"
        return text

    return _LINK.sub(relink, readme)


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every sub-command, in the order ``--help`` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _help(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` at :data:`HELP_WIDTH` columns, without colour and without the
    description (the page shows it above the help)."""
    parser.formatter_class = functools.partial(parser.formatter_class, width=HELP_WIDTH)
    parser.description = None
    if hasattr(parser, "color"):  # Python 3.14 colours help on a terminal
        parser.color = False
    return parser.format_help().rstrip()


def cli_markdown() -> str:
    """Sections of the CLI reference: the top-level command, then each sub-command."""
    _from_source()
    from transferome.cli import build_parser

    parser = build_parser()
    parts = [
        "## `transferome`",
        "",
        (parser.description or "").strip(),
        "",
        "```text",
        _help(parser),
        "```",
    ]
    for name, summary, sub in _subcommands(parser):
        parts += [
            "",
            f"## `transferome {name}`",
            "",
            (sub.description or summary).strip(),
            "",
            "```text",
            _help(sub),
            "```",
        ]
    return "\n".join(parts) + "\n"


def models_markdown() -> str:
    """A mkdocstrings entry per registered model, at the path where its class is defined."""
    _from_source()
    from transferome.models import available_models, get_model

    parts = []
    for name in available_models():
        cls = get_model(name)
        parts += [
            f"### `{name}`: `{cls.__name__}`",
            "",
            f'`get_model("{name}")` returns this class.',
            "",
            f"::: {cls.__module__}.{cls.__qualname__}",
            "    options:",
            "      show_root_heading: false",
            "      heading_level: 4",
            "",
        ]
    return "\n".join(parts)
