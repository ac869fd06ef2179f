"""The package's layout: stages as subpackages, imports one way (command line down to inputs), no circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audioset_downloader"
NAME = PACKAGE.name

# Lower first. A module may import its own stage or any stage below it, never one above.
STAGES = ("", "inputs", "fetch", "pacing", "outputs", "engine", "cli")
LEAVES = {NAME, f"{NAME}.errors", f"{NAME}.atomic", f"{NAME}.redact", f"{NAME}.processes",  # every stage shares them
          f"{NAME}.filesystems"}
COMMAND_LINE = {f"{NAME}.cli", f"{NAME}.doctor", f"{NAME}.finished", f"{NAME}.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> int:
    if module in LEAVES:
        return 0
    if module in COMMAND_LINE:
        return STAGES.index("cli")
    return STAGES.index(module.split(".")[1])


def imports_of(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in it (function bodies and TYPE_CHECKING too)."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate == NAME or candidate.startswith(NAME + "."):
                if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).is_file() or candidate in LEAVES:
                    found.add(candidate)
                elif (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").is_file():
                    found.add(candidate)
    found.discard(own)
    return found


GRAPH = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_top_level_holds_at_most_twelve_modules_and_every_stage_says_what_it_owns() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    for stage in STAGES[1:-1]:
        init = PACKAGE / stage / "__init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring) > 40, f"{init} has no docstring saying what the stage owns"
    assert set(GRAPH) - LEAVES - COMMAND_LINE, "the walk found no module"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_run_from_the_command_line_down_to_inputs(module: str) -> None:
    upward = sorted(target for target in GRAPH[module] if stage_of(target) > stage_of(module))
    assert not upward, f"{module} (stage {STAGES[stage_of(module)] or 'leaf'}) imports a higher stage: {upward}"


def test_no_import_circle() -> None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        for target in GRAPH.get(module, ()):
            visit(target, [*path, module])
        done.add(module)

    for module in GRAPH:
        visit(module, [])
