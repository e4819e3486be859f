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

from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.text import one_line
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import YamlLimitError, YamlSubsetError

# Without PyYAML the name ``_pyyaml`` stays unbound: every use is behind HAS_PYYAML.
try:
    import yaml as _pyyaml
except ImportError:  # pragma: no cover - depends on the node
    HAS_PYYAML = False
else:
    HAS_PYYAML = True

# Kubeconfigs and kubelet configs are a few levels deep and a few hundred nodes large.
# The limits refuse what only an attacker writes: deep nesting (recursion in every reader
# and comparison after it) and aliases that repeat a subtree until the document is
# billions of nodes large ("billion laughs"), which is cheap to parse and explodes when
# anything walks, copies or compares the result.
MAX_DEPTH = 64
MAX_NODES = 50_000       # after alias expansion: an alias counts as the nodes it repeats
MAX_INT_DIGITS = 64      # int() of a long digit string is quadratic on Python < 3.11
_KEY = re.compile(
    # A plain key is runs of non-blank characters with blanks between them. Each blank run
    # can only be followed by a non-blank, so the pattern is unambiguous and a long line
    # without ": " costs linear time (the lazy ``[^:#]*?\s*:`` it replaces was quadratic).
    r"""^(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"{\[](?:\s*[^\s:#])*)\s*:(?:\s+(?P<value>.*)|$)""")
_INTEGER = re.compile(r"[-+]?[0-9]+")


def load(text: str, use_pyyaml: bool = True) -> t.Any:
    """Parses JSON or YAML text. Raises ValueError (never anything else) on bad input:
    YamlLimitError for input beyond the depth and size limits, otherwise a ValueError
    whose message starts "not valid YAML: " and quotes none of the text."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        pass
    else:
        check_bounds(value)
        return value
    if use_pyyaml and HAS_PYYAML:
        try:
            return _pyyaml.load(text, Loader=_FAST_LOADER)
        except YamlLimitError:
            raise
        except Exception as exc:  # PyYAML raises many classes; all mean "not YAML"
            raise ValueError(f"not valid YAML: {yaml_problem(exc)}") from None
    try:
        value = _SubsetParser(text).parse()
    except RecursionError:
        raise YamlLimitError(f"the document is nested deeper than {MAX_DEPTH} levels") from None
    except YamlSubsetError as exc:
        raise YamlSubsetError(f"not valid YAML: {exc}") from None
    check_bounds(value)
    return value


def yaml_problem(exc: BaseException) -> str:
    """One line saying what is wrong and where, without the snippet of the document that
    PyYAML quotes (it may be a secret that redaction could not recognise)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if problem is None:
        problem = str(exc).split("\n", 1)[0]
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return one_line(f"{problem}{where}")


def check_bounds(value: t.Any) -> None:
    """Raises YamlLimitError when a parsed value (without shared parts: JSON or the subset
    reader) is deeper or larger than the limits. Iterative, so depth cannot overflow it."""
    stack = [(value, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise YamlLimitError(f"the document has more than {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"the document is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, (dict, list)):
            children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def compose_and_load(text: str) -> tuple[t.Any, t.Any]:
    """The composed node graph (with exact character offsets, for editing in place) and the
    loaded data of one YAML document, within the limits. Needs PyYAML. Raises YamlLimitError,
    or PyYAML's YAMLError subclasses for text that is not YAML."""
    if not HAS_PYYAML:
        raise YamlSubsetError("composing YAML needs PyYAML")
    loader = _ExactLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except (ValueError, OverflowError) as exc:
        if isinstance(exc, YamlLimitError):
            raise
        # Constructors raise plain Python errors for a few bad scalars (an int of 5000
        # digits, an impossible date); for the caller these are "not YAML" as well.
        raise _pyyaml.YAMLError(one_line(exc)) from None
    finally:
        loader.dispose()
    return root, data


def safe_load(text: str) -> t.Any:
    """``yaml.safe_load`` within the limits (PyYAML's pure-Python loader)."""
    return compose_and_load(text)[1]


if HAS_PYYAML:
    class _BoundedComposer(_pyyaml.composer.Composer):
        """Counts depth while composing and, for every node, its size and height as the
        constructed data will have them (an alias adding the whole subtree it repeats)."""

        # Given by the parser this composer is mixed with (PyYAML's Parser or libyaml's CParser).
        check_event: t.Callable[..., bool]
        peek_event: t.Callable[[], t.Any]

        def __init__(self) -> None:
            super().__init__()
            self.kubecerts_depth = 0
            self.kubecerts_total = 0

        def compose_node(self, parent: t.Any, index: t.Any) -> t.Any:
            if self.check_event(_pyyaml.events.AliasEvent):
                anchored = self.anchors.get(self.peek_event().anchor)
                if anchored is not None and not hasattr(anchored, "kubecerts_size"):
                    raise YamlLimitError("the document has an alias inside the node it refers to (a recursive structure)")
                # Any: a PyYAML node that carries our two attributes, kubecerts_size and kubecerts_height.
                node: t.Any = super().compose_node(parent, index)
                self._count(node.kubecerts_size)
                return node
            self._count(1)
            depth = self.kubecerts_depth + 1
            if depth > MAX_DEPTH:
                raise YamlLimitError(f"the document is nested deeper than {MAX_DEPTH} levels")
            self.kubecerts_depth = depth
            try:
                node = super().compose_node(parent, index)
            finally:
                self.kubecerts_depth = depth - 1
            if isinstance(node, _pyyaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            elif isinstance(node, _pyyaml.SequenceNode):
                children = node.value
            else:
                children = []
            node.kubecerts_size = 1 + sum(child.kubecerts_size for child in children)
            node.kubecerts_height = 1 + max((child.kubecerts_height for child in children), default=0)
            if node.kubecerts_height > MAX_DEPTH:
                raise YamlLimitError(f"the document is nested deeper than {MAX_DEPTH} levels once its aliases are expanded")
            return node

        def _count(self, nodes: int) -> None:
            # The running total of the document so far, aliases expanded: refused as soon
            # as it passes the limit, not after composing the rest.
            self.kubecerts_total += nodes
            if self.kubecerts_total > MAX_NODES:
                raise YamlLimitError(f"the document has more than {MAX_NODES} nodes (an alias counts as the nodes it repeats)")

    class _BoundedConstructor(_pyyaml.constructor.SafeConstructor):
        def construct_yaml_int(self, node: t.Any) -> t.Any:
            if len(str(node.value)) > MAX_INT_DIGITS:
                raise YamlLimitError(f"the document has an integer of more than {MAX_INT_DIGITS} digits")
            return super().construct_yaml_int(node)

    # types-PyYAML types a constructor's first argument as one of PyYAML's own loaders; ours is
    # called with our loader, which this constructor is a base of.
    _BoundedConstructor.add_constructor(  # type: ignore[type-var]
        "tag:yaml.org,2002:int", _BoundedConstructor.construct_yaml_int)

    class _ExactLoader(_pyyaml.reader.Reader, _pyyaml.scanner.Scanner, _pyyaml.parser.Parser,
                       _BoundedComposer, _BoundedConstructor, _pyyaml.resolver.Resolver):
        """Pure Python: its marks count characters, which in-place edits rely on."""

        def __init__(self, stream: str) -> None:
            _pyyaml.reader.Reader.__init__(self, stream)
            _pyyaml.scanner.Scanner.__init__(self)
            _pyyaml.parser.Parser.__init__(self)
            _BoundedComposer.__init__(self)
            _BoundedConstructor.__init__(self)
            _pyyaml.resolver.Resolver.__init__(self)

    _FAST_LOADER: t.Any = _ExactLoader
    if getattr(_pyyaml, "__with_libyaml__", False):
        class _FastLoader(_pyyaml._yaml.CParser, _BoundedComposer, _BoundedConstructor, _pyyaml.resolver.Resolver):
            """libyaml scans and parses; composing stays in Python, where the limits are
            counted (libyaml's own composer recurses without limit and crashes the process
            on deep nesting)."""

            def __init__(self, stream: str) -> None:
                _pyyaml._yaml.CParser.__init__(self, stream)
                _BoundedComposer.__init__(self)
                _BoundedConstructor.__init__(self)
                _pyyaml.resolver.Resolver.__init__(self)

            # CParser brings its own (unbounded) composer: use the bounded one.
            check_node = _BoundedComposer.check_node
            get_node = _BoundedComposer.get_node
            get_single_node = _BoundedComposer.get_single_node
            compose_document = _BoundedComposer.compose_document

        _FAST_LOADER = _FastLoader


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
    and one-line flow collections of scalars. Anchors, aliases and tags are not supported
    (kubeconfigs do not use them): they stay part of the scalar text, so nothing is ever
    expanded."""

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
        if depth > MAX_DEPTH:
            raise YamlLimitError(f"the document is nested deeper than {MAX_DEPTH} levels")
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


def _scalar(text: str, depth: int = 0) -> t.Any:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if (text.startswith("[") and text.endswith("]")) or (text.startswith("{") and text.endswith("}")):
        if depth >= MAX_DEPTH:
            raise YamlLimitError(f"the document is nested deeper than {MAX_DEPTH} levels")
        inner = text[1:-1].strip()
        parts = [part.strip() for part in inner.split(",")] if inner else []
        if text[0] == "[":
            return [_scalar(part, depth + 1) for part in parts]
        result = {}
        for part in parts:
            key, _sep, value = part.partition(":")
            result[str(_scalar(key.strip(), depth + 1))] = _scalar(value.strip(), depth + 1)
        return result
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", ""):
        return None
    if len(text) <= MAX_INT_DIGITS and _INTEGER.fullmatch(text):
        return int(text)
    return text
