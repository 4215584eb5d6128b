"""workloads.yamlio parses with libyaml when it can: the result must equal the pure-Python
parser's on every YAML file the project ships and on generated documents, and the limits
(depth, recursive aliases, alias expansion) must hold on both paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads import yamlio
from workloads.yamlio import InputError, parse_yaml_text

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for d in ("specs", "components", "workloads", "tests/data") for p in (ROOT / d).rglob("*.yaml"))

pytestmark = pytest.mark.skipif(yamlio._CSafeLoaderWithTags is None, reason="PyYAML without libyaml")


def _pure(text: str):
    loader = yamlio._SafeLoaderWithTags(text)
    try:
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def test_the_project_ships_yaml_files() -> None:
    assert len(SHIPPED) >= 50


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_equals_the_pure_parser_on_shipped_files(path: Path) -> None:
    text = path.read_text()
    try:
        want = _pure(text)
    except yaml.YAMLError:
        pytest.skip("not a single YAML document")
    assert yamlio._parse_with_libyaml(text) == want


scalars = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.none(), st.text("abc-_ :#'\"!xyz09.", max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text("abkey_-", min_size=1, max_size=5), inner, max_size=4)),
                         max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from([{"default_flow_style": False}, {"default_flow_style": True}]))
def test_libyaml_equals_the_pure_parser_on_generated_documents(data, style: dict) -> None:
    text = yaml.safe_dump(data, **style)
    assert yamlio._parse_with_libyaml(text) == _pure(text) == data


@pytest.mark.parametrize("text, message", [
    ("[" * 150 + "]" * 150, "nested deeper than 100 levels"),
    ("- " * 150 + "x\n", "nested deeper than 100 levels"),
    ("a: &x {b: *x}\n", "recursive alias *x"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7)),
     "expands to more than 2,000,000 nodes"),
])
def test_limits_hold_with_libyaml(text: str, message: str) -> None:
    with pytest.raises(yamlio._YamlLimit):
        yamlio._parse_with_libyaml(text)
    with pytest.raises(InputError) as info:
        parse_yaml_text(text, "doc.yaml")
    assert message in str(info.value) and str(info.value).startswith("doc.yaml: YAML at line")


def test_a_document_libyaml_refuses_gets_the_pure_parsers_message() -> None:
    with pytest.raises(InputError) as info:
        parse_yaml_text("a: b: c\n", "doc.yaml")
    assert str(info.value) == "doc.yaml: invalid YAML at line 1, column 5: mapping values are not allowed here"


@pytest.mark.parametrize("depth", [yamlio.MAX_YAML_DEPTH, yamlio.MAX_YAML_DEPTH + 1])
@pytest.mark.parametrize("leaf", ["", "1"])
def test_both_parsers_draw_the_depth_limit_at_the_same_node(depth: int, leaf: str) -> None:
    """``depth`` nodes on the deepest path (the leaf scalar counts as one): the limit is allowed."""
    n = depth - 1 if leaf else depth
    text = "[" * n + leaf + "]" * n
    outcomes = []
    for parse in (yamlio._parse_with_libyaml, lambda t: yamlio._SafeLoaderWithTags(t).get_single_data()):
        try:
            parse(text)
            outcomes.append("parsed")
        except yamlio._YamlLimit:
            outcomes.append("refused")
    assert outcomes == ["parsed" if depth <= yamlio.MAX_YAML_DEPTH else "refused"] * 2
