"""Reading YAML safely.

No anchors or aliases (an alias bomb expands to gigabytes) and no duplicate keys (YAML would
silently keep the last one). Numbers in exponent notation without a point (``1e-3``, as YAML
1.2 and Python write them) are floats, not strings.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml", "short_repr", "yaml_problem"]


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing anchors, aliases and duplicate mapping keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "anchors and aliases (&name, *name) are not accepted; write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    # PyYAML's signature: the base constructor and its callers name ``deep``.
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: FBT001, FBT002
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"duplicate key {short_repr(key)} (first on line {first.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads 1e-3 as a string; a learning rate is written that way
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789")
)


def load_yaml(text: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, refusing aliases and duplicate keys.

    Raises
    ------
    yaml.YAMLError
        The text is not valid YAML, uses an anchor or alias, or repeats a key (the message
        names the line).
    """
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message must not print a huge value)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text)} characters)"


def yaml_problem(error: yaml.YAMLError) -> str:
    """Say what is wrong in one line, with the line and column where the text has several.

    A YAML error's own text spans several lines: the marks, the offending line and a caret.
    """
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    mark = getattr(error, "problem_mark", None)
    if mark is not None and mark.line > 0:
        text += f" (line {mark.line + 1}, column {mark.column + 1})"
    return text
