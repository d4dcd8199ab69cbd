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


def compose_mapping(text: str, path: Path, error: type[FileErrors],
                    not_a_mapping: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The file's node tree (for locating errors) and its data, which must be a mapping; else raise `error`."""
    try:
        root, data = _compose_and_construct(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise error(path, [f"{path}{line}: not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise error(path, [f"{path}:1: {not_a_mapping}"])
    return root, data


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
    loader = loader_type(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


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
