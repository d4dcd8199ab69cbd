"""The trust boundary in the layout: graders/child/ (what runs in the sandbox) imports nothing of the parent side.

Only graders/child/ and the wire format (graders/wire.py) are bound into the sandbox, so a child module that
imported, say, graders.problem would fail in every sandboxed grading (and would put parent code next to the
submission). Every import statement counts, the ones inside functions too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from graders import sandbox

GRADERS = Path(sandbox.GRADERS_DIR)
CHILD_FILES = [*sorted((GRADERS / "child").glob("*.py")), GRADERS / "wire.py"]
THIRD_PARTY = {"numpy", "jax", "jaxlib", "flax", "optax", "ml_dtypes"}
SHARED = {"graders", "graders.wire"}  # the package marker and the wire format


def _imported(tree: ast.AST) -> list[str]:
    """Every module an import statement names (for `from a import b`, `a.b` too: b may be a module)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports hide what crosses the boundary"
            assert node.module is not None
            names.append(node.module)
            if node.module.startswith("graders"):
                names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _allowed(name: str) -> bool:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__" or top in THIRD_PARTY:
        return True
    return name in SHARED or name == "graders.child" or name.startswith("graders.child.")


def test_child_code_imports_only_stdlib_libraries_and_itself() -> None:
    assert len(CHILD_FILES) >= 7  # harness, zygote, seccomp, nsutil, model_probe, profile_replay, wire
    offenders = {
        path.relative_to(GRADERS.parent).as_posix(): bad
        for path in CHILD_FILES
        if (bad := [n for n in _imported(ast.parse(path.read_text(), str(path))) if not _allowed(n)])
    }
    assert offenders == {}
    # The check itself sees a parent-side import, inside a function or at the top.
    assert not _allowed("graders.problem") and not _allowed("graders.compile_profile")
    assert "graders.dtypes" in _imported(ast.parse("def f():\n    from graders import dtypes\n"))


def test_only_the_child_package_and_the_wire_format_are_bound_into_the_sandbox() -> None:
    argv = sandbox.bwrap_argv(sandbox.SandboxLimits(), 3, ["true"])
    sources = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--ro-bind"]
    ours = sorted(Path(src).relative_to(GRADERS).as_posix() for src in sources
                  if Path(src) == GRADERS or GRADERS in Path(src).parents)
    assert ours == ["__init__.py", "child", "wire.py"]
