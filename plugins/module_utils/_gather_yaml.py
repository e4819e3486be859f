# Copyright (c) kubecerts.kubelet contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading kubeconfigs and kubelet configs on nodes that may lack PyYAML.

The node only needs a few references out of these files (which certificate, key and CA
files they name), so when PyYAML is not installed a small reader of the block-style YAML
subset that kubeadm, k3s and friends write is enough. The controller re-parses the
(redacted) text with PyYAML and is the authority on whether a file is valid YAML.
Standard library only.
"""
from __future__ import annotations

import json
import re
import typing as t

try:
    import yaml as _pyyaml
    HAS_PYYAML = True
except ImportError:  # pragma: no cover - depends on the node
    _pyyaml = None
    HAS_PYYAML = False

_MAX_DEPTH = 64
_KEY = re.compile(r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{\[][^:#]*?|[^\s#'"{\[])\s*:(?:\s+(?P<value>.*)|$)""")


class YamlSubsetError(ValueError):
    pass


def load(text: str, use_pyyaml: bool = True) -> t.Any:
    """Parses JSON or YAML text. Raises ValueError (never anything else) on bad input."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    if use_pyyaml and HAS_PYYAML:
        try:
            return _pyyaml.safe_load(text)
        except Exception as exc:  # PyYAML raises many classes; all mean "not YAML"
            raise ValueError(f"not valid YAML: {' '.join(str(exc).split())[:160]}") from None
    try:
        return _SubsetParser(text).parse()
    except RecursionError:
        raise YamlSubsetError("nested too deeply") from None


class _Line(t.NamedTuple):
    indent: int
    text: str        # content without indentation and trailing comment
    number: int


def _strip_comment(text: str) -> str:
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and (index == 0 or text[index - 1] in " :-[{,"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t"):
            return text[:index].rstrip()
    return text.rstrip()


class _SubsetParser:
    """Block mappings, block sequences, plain/quoted scalars, block scalars (| and >),
    and one-line flow collections of scalars. Anchors, tags and multi-documents are not
    supported (kubeconfigs do not use them) and raise YamlSubsetError."""

    def __init__(self, text: str) -> None:
        self.raw = text.replace("\r\n", "\n").split("\n")
        self.lines: list[_Line] = []
        for number, raw in enumerate(self.raw):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlSubsetError(f"line {number + 1}: tab indentation")
            stripped = raw.strip()
            if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
                continue
            body = _strip_comment(raw.lstrip())
            if body:
                self.lines.append(_Line(len(raw) - len(raw.lstrip()), body, number))
        self.pos = 0

    def parse(self) -> t.Any:
        if not self.lines:
            return None
        value = self._block(self.lines[0].indent, 0)
        if self.pos < len(self.lines):
            raise YamlSubsetError(f"line {self.lines[self.pos].number + 1}: unexpected indentation")
        return value

    def _block(self, indent: int, depth: int) -> t.Any:
        if depth > _MAX_DEPTH:
            raise YamlSubsetError("nested too deeply")
        line = self.lines[self.pos]
        if line.text == "-" or line.text.startswith("- "):
            return self._sequence(indent, depth)
        if _KEY.match(line.text):
            return self._mapping(indent, depth)
        self.pos += 1
        return self._scalar_with_continuation(line.text, indent)

    def _sequence(self, indent: int, depth: int) -> list[t.Any]:
        items: list[t.Any] = []
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if line.indent != indent or not (line.text == "-" or line.text.startswith("- ")):
                if line.indent > indent:
                    raise YamlSubsetError(f"line {line.number + 1}: unexpected indentation")
                break
            rest = line.text[1:].lstrip()
            if not rest:
                self.pos += 1
                items.append(self._nested(indent, depth))
                continue
            # "- key: value" starts a mapping whose keys sit at the column of "key".
            column = indent + len(line.text) - len(rest)
            self.lines[self.pos] = _Line(column, rest, line.number)
            items.append(self._block(column, depth + 1))
        return items

    def _mapping(self, indent: int, depth: int) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {}
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            if line.indent != indent:
                if line.indent > indent:
                    raise YamlSubsetError(f"line {line.number + 1}: unexpected indentation")
                break
            match = _KEY.match(line.text)
            if not match:
                if line.text.startswith("- "):
                    break
                raise YamlSubsetError(f"line {line.number + 1}: expected 'key: value'")
            key = _scalar(match.group("key").strip())
            value = (match.group("value") or "").strip()
            self.pos += 1
            if not value:
                result[str(key)] = self._nested(indent, depth, allow_same_indent_sequence=True)
            elif value[0] in "|>":
                result[str(key)] = self._block_scalar(line, value)
            else:
                result[str(key)] = self._scalar_with_continuation(value, indent)
        return result

    def _nested(self, indent: int, depth: int, allow_same_indent_sequence: bool = False) -> t.Any:
        if self.pos >= len(self.lines):
            return None
        following = self.lines[self.pos]
        if following.indent > indent:
            return self._block(following.indent, depth + 1)
        if allow_same_indent_sequence and following.indent == indent and \
                (following.text == "-" or following.text.startswith("- ")):
            return self._sequence(indent, depth + 1)
        return None

    def _scalar_with_continuation(self, text: str, indent: int) -> t.Any:
        # A plain scalar may continue on more-indented lines (folded with spaces).
        parts = [text]
        while self.pos < len(self.lines) and self.lines[self.pos].indent > indent \
                and not _KEY.match(self.lines[self.pos].text) and text[:1] not in "[{":
            parts.append(self.lines[self.pos].text)
            self.pos += 1
        return _scalar(" ".join(parts))

    def _block_scalar(self, line: _Line, header: str) -> str:
        collected: list[str] = []
        number = line.number + 1
        while number < len(self.raw):
            raw = self.raw[number]
            if raw.strip() and len(raw) - len(raw.lstrip()) <= line.indent:
                break
            collected.append(raw)
            number += 1
        while self.pos < len(self.lines) and self.lines[self.pos].number < number:
            self.pos += 1
        widths = [len(r) - len(r.lstrip()) for r in collected if r.strip()]
        cut = min(widths) if widths else 0
        body = [r[cut:] for r in collected]
        while body and not body[-1].strip():
            body.pop()
        joiner = "\n" if header[0] == "|" else " "
        return joiner.join(body) + ("" if "-" in header else "\n")


def _scalar(text: str) -> t.Any:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(part.strip()) for part in inner.split(",")] if inner else []
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1].strip()
        result = {}
        for part in inner.split(",") if inner else []:
            key, _sep, value = part.partition(":")
            result[str(_scalar(key.strip()))] = _scalar(value.strip())
        return result
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", ""):
        return None
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return text
