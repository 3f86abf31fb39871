"""Strict YAML reading: nodes with positions, duplicate keys rejected.

YAML's own loaders keep the *last* of two equal mapping keys without a word,
which in a policy silently drops a zone or a rule.  Two ways are offered here:

* ``compose(text, path) -> (node | None, [Problem])`` parses one document into
  PyYAML nodes (every node keeps its ``start_mark``) and reports each duplicate
  key with both lines; the policy loader walks these nodes to validate.
* ``StrictSafeLoader``: a ``yaml.SafeLoader`` whose mappings raise
  ``DuplicateKeyError`` (a ``yaml.MarkedYAMLError``, line shown) on a duplicate
  key, for code that wants plain Python data (``yaml.load(text, StrictSafeLoader)``).

Bounds: a file larger than ``MAX_BYTES`` or a document with more than
``MAX_NODES`` nodes (aliases counted each time they are used, so an alias bomb
stops early) is refused with a problem, never a hang.
"""
from __future__ import annotations

import yaml

from .errors import Problem

MAX_BYTES = 4 * 1024 * 1024
"""A plant policy is kilobytes; a suggested one for a large site stays well below this."""
MAX_NODES = 200_000
"""Nodes visited when validating (aliases re-counted): bounds the alias-bomb case."""

try:   # the C parser is ~10x faster; the node tree and marks are the same
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Base = yaml.SafeLoader


def _mark(node_or_mark) -> tuple[int, int]:
    m = getattr(node_or_mark, "start_mark", node_or_mark)
    return (m.line + 1, m.column + 1) if m is not None else (1, 1)


def key_text(node) -> str:
    """A mapping key as written (scalars), for messages and comparisons."""
    if isinstance(node, yaml.ScalarNode):
        return node.value
    return f"<{node.id}>"


def duplicate_keys(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """(first key node, duplicate key node) pairs of one mapping."""
    seen: dict = {}
    dups = []
    for k, _v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            continue
        ident = (k.tag, k.value)
        if ident in seen:
            dups.append((seen[ident], k))
        else:
            seen[ident] = k
    return dups


EMPTY = "empty file: a policy needs at least `version` and `zones`"


def compose(text: str, path: str = "", max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES,
            empty: str = EMPTY) -> tuple[yaml.Node | None, list[Problem]]:
    """Parse one YAML document into nodes; syntax errors and duplicate keys as problems.

    The bounds and the empty-file message are the policy's by default; the baseline
    (sensor/baseline/yamlio.py) passes its own."""
    problems: list[Problem] = []
    if len(text) > max_bytes:
        return None, [Problem(1, 1, f"file larger than {max_bytes} bytes", path, "too-large")]
    loader = _Base(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line, col = _mark(exc.problem_mark or exc.context_mark)
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return None, [Problem(line, col, f"YAML syntax: {what}", path, "yaml-syntax")]
    except yaml.YAMLError as exc:
        return None, [Problem(1, 1, f"YAML: {exc}", path, "yaml-syntax")]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem(1, 1, empty, path, "empty-file")]
    # duplicate keys anywhere in the tree (each mapping node once, even if aliased)
    stack, seen, count = [node], set(), 0
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        count += 1
        if count > max_nodes:
            problems.append(Problem(1, 1, f"document has more than {max_nodes} nodes", path, "too-many-nodes"))
            return None, problems
        if isinstance(n, yaml.MappingNode):
            for first, dup in duplicate_keys(n):
                fl, _ = _mark(first)
                line, col = _mark(dup)
                problems.append(Problem(line, col, f"duplicate key {dup.value!r} (first at line {fl}); "
                                                   "YAML would silently keep only the last one", path, "duplicate-key"))
            for k, v in n.value:
                stack.append(k)
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return node, problems


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key (marked with the duplicate's position)."""


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            dups = duplicate_keys(node)     # before merge keys (<<) are flattened: an override is not a duplicate
            if dups:
                first, dup = dups[0]
                raise DuplicateKeyError("while constructing a mapping", node.start_mark,
                                        f"found duplicate key {dup.value!r} (first at line "
                                        f"{first.start_mark.line + 1})", dup.start_mark)
        return super().construct_mapping(node, deep=deep)



def position(node) -> tuple[int, int]:
    """(line, column), 1-based, of a node."""
    return _mark(node)


__all__ = ["compose", "StrictSafeLoader", "DuplicateKeyError", "duplicate_keys", "key_text", "position",
           "MAX_BYTES", "MAX_NODES"]
