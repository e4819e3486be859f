"""The YAML readers against hostile text: long lines, billion laughs, deep nesting.

Every reader (the node's subset reader, PyYAML through libyaml, PyYAML in pure Python for
in-place edits, JSON) must answer within a second with data or a one-line ValueError,
never a traceback, a hang or a crashed process.
"""
from __future__ import annotations

import json

import isolated
import pytest
import yaml

from ansible_collections.kubecerts.kubelet.plugins.module_utils.node import yaml_subset
from ansible_collections.kubecerts.kubelet.plugins.module_utils.common.errors import YamlLimitError

MIB = 1024 * 1024
SECOND = 1.0



def _exact(text: str) -> object:
    """The pure-Python reader behind kubeconfig_ca's in-place edits, its YAML errors turned
    into ValueError the way kubeconfig_ca reports them."""
    try:
        return yaml_subset.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(yaml_subset.yaml_problem(exc)) from None


READERS = {
    "subset": lambda text: yaml_subset.load(text, use_pyyaml=False),
    "libyaml": lambda text: yaml_subset.load(text),
    "exact": _exact,
}


def billion_laughs(levels: int = 9, where: str = "") -> str:
    """``levels`` anchors, each a list of nine aliases of the one before: 9**levels leaves."""
    lines = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        lines.append(f"lol{level}: &lol{level} [" + ", ".join([f"*lol{level - 1}"] * 9) + "]")
    if where:
        lines.append(f"{where}: *lol{levels - 1}")
    return "\n".join(lines) + "\n"


# Each has ``depth`` collections on its deepest path, then one scalar.
def nested_flow_sequences(depth: int) -> str:
    return "[" * depth + "x" + "]" * depth + "\n"


def nested_flow_mappings(depth: int) -> str:
    return "{a: " * depth + "x" + "}" * depth + "\n"


def nested_block_mappings(depth: int) -> str:
    return "".join(" " * level + "a:\n" for level in range(depth - 1)) + " " * (depth - 1) + "b: x\n"


def nested_block_sequences(depth: int) -> str:
    return "".join(" " * level + "-\n" for level in range(depth)) + " " * depth + "x\n"


NESTINGS = [nested_flow_sequences, nested_flow_mappings, nested_block_mappings, nested_block_sequences]
NESTING_IDS = ["flow-sequences", "flow-mappings", "block-mappings", "block-sequences"]


def timed_load(reader: str, text: str) -> str:
    try:
        READERS[reader](text)
        return "parsed"
    except ValueError as exc:
        assert "\n" not in str(exc)
        return f"refused: {exc}"


# ---- long lines -----------------------------------------------------------------------------------
LONG_LINES = {
    "blanks": "a" + " " * MIB + "b",
    "words": "a " * (MIB // 2),
    "words-then-colon": "k" + " b" * (MIB // 2) + ": c",
    "tabs": "a" + "\t " * (MIB // 2),
    "colons": "a:b" * (MIB // 3),
    "flow-sequence": "[" + "a, " * (MIB // 3) + "]",
    "flow-mapping": "{" + "a: b, " * (MIB // 6) + "}",
    # Nesting on one line: without its own depth limit the subset reader recursed until
    # Python's recursion limit, copying the line at every level.
    "nested-sequences": "[" * (MIB // 2) + "]" * (MIB // 2),
    "nested-mappings": "{a: " * (MIB // 8) + "}" * (MIB // 8),
}


@pytest.mark.parametrize("reader", ["subset", "libyaml"])
@pytest.mark.parametrize("shape", sorted(LONG_LINES))
def test_a_one_mebibyte_line_is_read_within_a_second(reader, shape):
    # The subset reader's key pattern used to backtrack quadratically: 80,000 blanks took
    # 26 s, so a 1 MiB line hung cert_info on nodes without PyYAML.
    outcome, seconds = isolated.run(timed_load, reader, LONG_LINES[shape])
    assert seconds < SECOND, f"{shape} took {seconds:.2f} s with the {reader} reader ({outcome})"


def test_long_line_shapes_still_parse_as_before():
    assert yaml_subset.load("key with blanks  : value", use_pyyaml=False) == {"key with blanks": "value"}
    assert yaml_subset.load("a b c", use_pyyaml=False) == "a b c"
    assert yaml_subset.load("url: http://h:1/p", use_pyyaml=False) == {"url": "http://h:1/p"}


# ---- aliases ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reader", ["libyaml", "exact"])
def test_billion_laughs_is_refused_at_once(reader):
    outcome, seconds = isolated.run(timed_load, reader, billion_laughs(9, "users"))
    assert outcome.startswith("refused: ") and "more than" in outcome
    assert seconds < SECOND


def test_billion_laughs_without_pyyaml_expands_nothing():
    doc = yaml_subset.load(billion_laughs(9, "users"), use_pyyaml=False)
    assert doc["users"] == "*lol8"          # aliases are text to the subset reader


@pytest.mark.parametrize("reader", ["libyaml", "exact"])
def test_aliases_below_the_limit_still_load(reader):
    text = "base: &base {server: https://a, insecure: false}\nc1: {<<: *base, name: one}\nc2: *base\n"
    assert READERS[reader](text) == yaml.safe_load(text)
    leaves = yaml_subset.MAX_NODES // 10 - 20
    many = "a: &a [" + ", ".join(["x"] * 9) + "]\nb: [" + ", ".join(["*a"] * leaves) + "]\n"
    assert len(READERS[reader](many)["b"]) == leaves


@pytest.mark.parametrize("reader", ["libyaml", "exact"])
def test_node_count_counts_expanded_aliases(reader):
    leaves = yaml_subset.MAX_NODES // 10 + 10
    many = "a: &a [" + ", ".join(["x"] * 9) + "]\nb: [" + ", ".join(["*a"] * leaves) + "]\n"
    with pytest.raises(YamlLimitError, match="more than"):
        READERS[reader](many)


@pytest.mark.parametrize("reader", ["libyaml", "exact"])
def test_alias_inside_its_own_anchor_is_refused(reader):
    # PyYAML builds a list that contains itself; every walk of it recurses forever.
    with pytest.raises(YamlLimitError, match="recursive"):
        READERS[reader]("a: &a [x, *a]\n")


@pytest.mark.parametrize("reader", ["libyaml", "exact"])
def test_aliases_cannot_stack_depth_beyond_the_limit(reader):
    half = yaml_subset.MAX_DEPTH // 2 + 2
    text = "a: &a " + "[" * half + "x" + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    with pytest.raises(YamlLimitError, match="nested deeper"):
        READERS[reader](text)


# ---- nesting -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("nesting", NESTINGS, ids=NESTING_IDS)
def test_ten_thousand_levels_are_refused_in_one_line(reader, nesting):
    outcome, seconds = isolated.run(timed_load, reader, nesting(10_000))
    assert outcome.startswith("refused: ") and "nested deeper" in outcome, outcome
    assert seconds < SECOND


def test_libyaml_deep_nesting_does_not_crash_the_process():
    # libyaml's own composer recursed until the controller's process died (SIGSEGV at
    # 100,000 levels): composing stays in the bounded Python composer.
    outcome, _seconds = isolated.run(timed_load, "libyaml", nested_flow_sequences(100_000))
    assert "nested deeper" in outcome


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("nesting", NESTINGS, ids=NESTING_IDS)
def test_depth_limit_is_exact(reader, nesting):
    # The collections plus the scalar are the nodes on the deepest path.
    deepest_allowed = yaml_subset.MAX_DEPTH - 1
    assert READERS[reader](nesting(deepest_allowed)) is not None
    with pytest.raises(YamlLimitError):
        READERS[reader](nesting(deepest_allowed + 1))


def test_json_is_bounded_too():
    assert yaml_subset.load(json.dumps({"a": [1, 2]})) == {"a": [1, 2]}
    with pytest.raises(YamlLimitError, match="nested deeper"):
        yaml_subset.load("[" * 500 + "]" * 500)
    with pytest.raises(YamlLimitError, match="more than"):
        yaml_subset.load(json.dumps(list(range(yaml_subset.MAX_NODES + 1))))


# ---- scalars and messages ---------------------------------------------------------------------------
@pytest.mark.parametrize("reader", ["libyaml", "exact"])
def test_huge_integers_are_refused(reader):
    # int() of a long digit string is quadratic on the Pythons older nodes run.
    with pytest.raises(YamlLimitError, match="digits"):
        READERS[reader]("port: " + "9" * 5000 + "\n")
    assert READERS[reader]("port: 6443\n") == {"port": 6443}


def test_subset_reader_keeps_huge_integers_as_text():
    assert yaml_subset.load("port: " + "9" * 5000, use_pyyaml=False) == {"port": "9" * 5000}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_errors_quote_no_text(reader):
    text = "users: []\n\ttoken: hunter2-secret-value\n"
    with pytest.raises(ValueError) as caught:
        READERS[reader](text)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)

