"""The YAML files gradax reads (problems, courses, assignments): parsing, and errors located by file, line, field.

One reader for all of them, so a problem file and a course file report a broken file the same way:
`path:line: field.path: message`, every error of the file in one round.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Loc = tuple[int | str, ...]


class FileErrors(Exception):
    """A file that cannot be used, with every reason located by file, line and field."""

    def __init__(self, path: Path, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__("\n".join(errors))


# Files come from instructors' uploads too, so their shape is bounded before anything builds them: libyaml's composer
# recurses in C (100,000 nested brackets crash the process), and an alias repeats its anchor's whole value (ten
# lines of `&a [*b, *b, ...]` make a test array of 10^8 numbers that takes minutes and gigabytes to build).
MAX_NESTING = 64
MAX_VALUES = 1_000_000


class Refused(Exception):
    """A document gradax will not build: nested too deep, or too big once its aliases are expanded."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def compose_mapping(text: str, path: Path, error: type[FileErrors],
                    not_a_mapping: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The file's node tree (for locating errors) and its data, which must be a mapping; else raise `error`."""
    try:
        root, data = _compose_and_construct(text)
    except Refused as exc:
        raise error(path, [f"{path}:{exc.line}: {exc}"]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise error(path, [f"{path}{line}: not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise error(path, [f"{path}:1: {not_a_mapping}"])
    return root, data


def data_or_none(text: str) -> Any:
    """The document's data, built under the same bounds as every file gradax reads; None when it cannot be."""
    try:
        return _compose_and_construct(text)[1]
    except (yaml.YAMLError, Refused):
        return None


# libyaml's parser when PyYAML has it (its wheels do): 18x faster than the pure-Python one on the bank, which every
# `gradax` command, server start and reload parses. The constructor is the same SafeConstructor either way.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (with line marks) and the data safe_load would give, from one parse."""
    try:
        return _parse(_LOADER, text)
    except yaml.YAMLError:
        if _LOADER is yaml.SafeLoader:
            raise
        # A broken file: the pure parser's error quotes the line and points at the column; libyaml's does not.
        return _parse(yaml.SafeLoader, text)


def _parse(loader_type: type[yaml.SafeLoader], text: str) -> tuple[yaml.Node | None, Any]:
    _check_nesting(loader_type, text)
    loader = loader_type(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_expanded_size(root)
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def _check_nesting(loader_type: type[yaml.SafeLoader], text: str) -> None:
    """Refuse collections nested deeper than MAX_NESTING, from the parser's events (iterative, and stopped at the
    first level too deep) before the composer recurses into them."""
    depth = 0
    for event in yaml.parse(text, Loader=loader_type):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                mark = event.start_mark
                raise Refused(f"lists and mappings are nested more than {MAX_NESTING} levels deep",
                              mark.line + 1 if mark is not None else 1)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    """A collection's items (a mapping's keys and values alike); none for a scalar."""
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a document that holds more than MAX_VALUES values once every alias is replaced by its anchor's value,
    or an anchor that contains an alias of itself; said at the smallest collection too big."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    # Recursion depth: the nesting of the text (_check_nesting), as an anchor comes before its aliases in document
    # order, so this walk (in document order) has sized it before it meets an alias of it: one memoized step.
    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise Refused("an anchor (&name) contains an alias (*name) of itself", node.start_mark.line + 1)
        open_nodes.add(key)
        total = 1
        for child in _children(node):
            total += size(child)
            if total > MAX_VALUES:
                break
        open_nodes.discard(key)
        sizes[key] = total
        return total

    if size(root) <= MAX_VALUES:
        return
    node = root
    while True:  # down to the smallest collection over the limit: where the repetition is
        bigger = [c for c in _children(node) if sizes.get(id(c), 0) > MAX_VALUES]
        if not bigger:
            break
        node = bigger[0]
    raise Refused(f"more than {MAX_VALUES:,} values once its aliases (*name) are expanded",
                  node.start_mark.line + 1)


def validation_errors(exc: ValidationError) -> list[tuple[Loc, str]]:
    """pydantic's errors as (location, message) pairs."""
    return [(tuple(p for p in err["loc"] if isinstance(p, int | str)), err["msg"]) for err in exc.errors()]


def _node_at(node: yaml.Node | None, loc: Iterable[int | str]) -> yaml.Node | None:
    """Walk a composed YAML node along a pydantic error location, stopping where the path ends."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == key:
                    nxt = v
                    break
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def node_line(root: yaml.Node | None, loc: Loc) -> int:
    """The line of a field in a composed file (1 when it cannot be found)."""
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else 1


def line_of(text: str, loc: Loc) -> int:
    """The line of a field in a file's text (1 when it cannot be found), for located messages."""
    try:
        return node_line(yaml.compose(text, Loader=_LOADER), loc)
    except yaml.YAMLError:
        return 1


def locate(root: yaml.Node | None, path: Path, loc: Loc, msg: str) -> str:
    """`path:line: field.path: msg`."""
    # pydantic adds union member names (e.g. 'list[any]') to the location; keep real keys only.
    name = ".".join(str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p[:1].isupper())))
    return f"{path}:{node_line(root, loc)}: {name or '(top level)'}: {msg}"
