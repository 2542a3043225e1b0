"""Restricted templates for layout rows: ``{variable}`` substitution and nothing else.

Layout templates are written by operators through the API, so they must never reach Python
objects: ``str.format`` would allow ``{x.__class__}``, ``{x[0]}``, ``{x!r}`` and ``{x:>99999}``.
This engine only knows literal text and variable names looked up in a plain mapping.

Syntax: ``{name}`` inserts a variable, ``{name|fallback}`` inserts it or, when the values hold
no such name, the literal ``fallback`` (any text without braces or ``|``, possibly empty:
``{min_upload|0}``, ``{x|}``), and ``{{`` / ``}}`` are literal braces. A name is
``[a-z][a-z0-9_]*`` or one of the custom-field forms ``custom.<key>`` / ``customer.<key>``
with ``<key>`` in ``[A-Za-z0-9_-]+``. Fallbacks are plain text, never expanded: no nesting, no
expressions. Positions in errors are 0-based offsets into the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "CUSTOM_PREFIXES",
    "MissingVariable",
    "Template",
    "TemplateError",
    "Text",
    "Variable",
    "parse_template",
]

# Prefixes of the only dotted names; the key after the dot is a custom-field key.
CUSTOM_PREFIXES = ("custom.", "customer.")

_NAME = re.compile(r"[a-z][a-z0-9_]*|(?:custom|customer)\.[A-Za-z0-9_-]+")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz")
_NAME_REST = _NAME_START | frozenset("0123456789_")
_KEY_CHARS = _NAME_REST | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ-")

# What an operator most likely meant by a character that str.format would have accepted;
# naming the feature makes the rejection understandable.
_FORBIDDEN = {
    ".": "attribute access is not allowed (only custom.<key> and customer.<key>)",
    "[": "indexing is not allowed",
    "]": "indexing is not allowed",
    "!": "conversions such as !r are not allowed",
    ":": "format specs are not allowed",
}


class TemplateError(ValueError):
    """A template that does not parse or cannot render; ``position`` is a 0-based offset."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"{reason} at position {position}")
        self.reason = reason
        self.position = position


class MissingVariable(TemplateError):
    """Rendering needed a variable the values mapping does not hold."""

    def __init__(self, name: str, position: int) -> None:
        super().__init__(f"no value for variable {name!r}", position)
        self.name = name


@dataclass(frozen=True, slots=True)
class Text:
    """Text copied as is (braces already unescaped)."""

    text: str


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``{name}`` or ``{name|fallback}`` placeholder; ``position`` is the offset of its ``{``.

    ``fallback`` is None when the variable is required; ``""`` is an empty fallback.
    """

    name: str
    position: int
    fallback: str | None = None


@dataclass(frozen=True)
class Template:
    """A compiled template: literal and variable parts in order. Build it with parse_template."""

    source: str
    parts: tuple[Text | Variable, ...]
    # Every name used, with or without a fallback: what the lint checks against the catalogue.
    variables: frozenset[str] = field(init=False, compare=False)
    # Names without a fallback: the ones whose absence makes render() raise MissingVariable.
    required: frozenset[str] = field(init=False, compare=False)
    # (is_variable, text or name, fallback) triples so render() does no isinstance checks on
    # the hot path; fallback None marks a required variable.
    _ops: tuple[tuple[bool, str, str | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ops = tuple(
            (True, p.name, p.fallback) if isinstance(p, Variable) else (False, p.text, None)
            for p in self.parts
        )
        object.__setattr__(self, "_ops", ops)
        names = [p for p in self.parts if isinstance(p, Variable)]
        object.__setattr__(self, "variables", frozenset(p.name for p in names))
        required = frozenset(p.name for p in names if p.fallback is None)
        object.__setattr__(self, "required", required)

    def render(self, values: Mapping[str, str]) -> str:
        """Substitute ``values``; raises MissingVariable for a required name it does not hold."""
        try:
            return "".join(
                [
                    (values[text] if fallback is None else values.get(text, fallback))
                    if is_var
                    else text
                    for is_var, text, fallback in self._ops
                ]
            )
        except KeyError:
            raise self._missing(values) from None

    def _missing(self, values: Mapping[str, str]) -> MissingVariable:
        for part in self.parts:
            if isinstance(part, Variable) and part.fallback is None and part.name not in values:
                return MissingVariable(part.name, part.position)
        # Only reachable if the mapping raised KeyError for a key it claims to contain.
        raise AssertionError("KeyError without a missing variable")


@lru_cache(maxsize=4096)
def parse_template(text: str) -> Template:
    """Compile ``text``; raises TemplateError naming the offending position.

    Cached because the Access-Accept path renders the same few layout templates for every
    request; Template is immutable, so sharing one instance is safe.
    """
    parts: list[Text | Variable] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        brace = _next_brace(text, i)
        if brace > i:
            literal.append(text[i:brace])
            i = brace
            continue
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(text[i])
            i += 2
            continue
        if text[i] == "}":
            raise TemplateError("unbalanced '}'", i)
        close = text.find("}", i + 1)
        inner = text.find("{", i + 1, close if close >= 0 else n)
        if inner >= 0 and text.find("|", i + 1, inner) >= 0:
            # "{min_upload|{max_upload}}": a fallback is text, so say so rather than "unbalanced".
            raise TemplateError("a fallback is literal text: no braces, no nesting", inner)
        # "{max_upload/{max_download}": the first '{' is the one left open, so report it.
        if close < 0 or inner >= 0:
            raise TemplateError("unbalanced '{'", i)
        name, bar, fallback = text[i + 1 : close].partition("|")
        _check_name(name, i + 1, fallback=bool(bar))
        if bar and "|" in fallback:
            raise TemplateError(
                "a fallback is literal text: no second '|'", i + 2 + len(name) + fallback.index("|")
            )
        if literal:
            parts.append(Text("".join(literal)))
            literal.clear()
        parts.append(Variable(name, i, fallback if bar else None))
        i = close + 1
    if literal:
        parts.append(Text("".join(literal)))
    return Template(text, tuple(parts))


def _next_brace(text: str, start: int) -> int:
    """Offset of the next '{' or '}' at or after ``start``, or len(text)."""
    ends = [p for p in (text.find("{", start), text.find("}", start)) if p >= 0]
    return min(ends, default=len(text))


def _check_name(name: str, offset: int, *, fallback: bool = False) -> None:
    """Raise TemplateError unless ``name`` (found at ``offset``) is a valid variable name."""
    if _NAME.fullmatch(name):
        return
    if not name:
        if fallback:
            raise TemplateError("missing variable name before '|'", offset)
        raise TemplateError("empty '{}'", offset - 1)
    for prefix in CUSTOM_PREFIXES:
        if name.startswith(prefix):
            key_at = offset + len(prefix)
            key = name[len(prefix) :]
            if not key:
                raise TemplateError(f"missing custom field key after {prefix!r}", key_at)
            bad = next(j for j, ch in enumerate(key) if ch not in _KEY_CHARS)
            raise _bad_char(key[bad], key_at + bad, "custom field keys use A-Z a-z 0-9 _ -")
    if name[0] not in _NAME_START:
        raise _bad_char(name[0], offset, "variable names start with a lowercase letter")
    bad = next(j for j, ch in enumerate(name) if ch not in _NAME_REST)
    raise _bad_char(name[bad], offset + bad, "variable names use a-z 0-9 _")


def _bad_char(ch: str, position: int, rule: str) -> TemplateError:
    if ch.isspace():
        return TemplateError("spaces are not allowed inside '{...}'", position)
    if ch in _FORBIDDEN:
        return TemplateError(_FORBIDDEN[ch], position)
    return TemplateError(f"unexpected {ch!r}: {rule}", position)
