"""The library's three rooms and the direction of their imports, read from the source."""

import ast
import re
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "src" / "structural_dropout"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (relative imports resolved), at any depth of the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module
            found.add(target)
            # `from . import x` / `from .pkg import mod` may name a submodule
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    name: {m for m in imports_of(path) if m in MODULES and m != name}
    for name, path in MODULES.items()
}


def room(name: str) -> str:
    for part in ("baselines", "lab"):
        if name.startswith(f"structural_dropout.{part}"):
            return part
    return "core"


@pytest.mark.parametrize("name", [n for n in MODULES if room(n) != "lab"])
def test_core_and_baselines_import_torch_only(name):
    outside = {
        m.split(".")[0] for m in imports_of(MODULES[name]) if not m.startswith("structural_dropout")
    }
    assert outside <= STDLIB | {"torch"}, outside - STDLIB


@pytest.mark.parametrize("name", MODULES)
def test_imports_point_one_way(name):
    """core <- baselines <- lab: a room never imports a later one."""
    order = {"core": 0, "baselines": 1, "lab": 2}
    later = [m for m in GRAPH[name] if order[room(m)] > order[room(name)]]
    assert not later, f"{name} imports {later}"
    assert not any(m.startswith(("experiments", "benchmarks")) for m in imports_of(MODULES[name]))


def test_hydra_is_imported_in_the_lab_only():
    users = {n for n, p in MODULES.items() if any(m.startswith("hydra") for m in imports_of(p))}
    assert users and all(room(n) == "lab" for n in users), users


def test_no_import_cycles():
    """Every module's imports (within the package, ignoring packages importing their own
    children) form a graph without cycles."""
    edges = {n: {m for m in deps if not m.startswith(f"{n}.")} for n, deps in GRAPH.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [])


def test_experiments_never_import_each_other():
    for folder in sorted((REPO / "experiments").iterdir()):
        if not folder.is_dir() or folder.name.startswith("_"):
            continue
        for path in folder.glob("*.py"):
            tree = ast.parse(path.read_text())
            named = {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.Import)
                for alias in node.names
            } | {
                node.module or ""
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and not node.level
            }
            siblings = {
                m
                for m in named
                if m.startswith("experiments.") and not m.startswith(f"experiments.{folder.name}")
            }
            assert not siblings, f"{path} imports {siblings}"


NOTES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *(REPO / "results").rglob("*.md"),
]


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("note", NOTES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_of_the_notes_exists(note):
    links = re.findall(r"\]\(([^)\s]+)\)", note.read_text())
    missing = [
        link
        for link in links
        if not link.startswith(("http://", "https://", "#"))
        and not (note.parent / link.split("#")[0]).exists()
    ]
    assert not missing, missing


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces
    as hyphens (``## No `width/c` rescaling`` -> ``no-widthc-rescaling``)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("note", NOTES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_anchor_of_the_notes_names_a_heading(note):
    links = re.findall(r"\]\(([^)\s]*#[^)\s]+)\)", note.read_text())
    broken = []
    for link in links:
        path, anchor = link.split("#", 1)
        if path.startswith(("http://", "https://")):
            continue
        target = note.parent / path if path else note
        if anchor not in heading_anchors(target.read_text()):
            broken.append(link)
    assert not broken, broken


def test_the_readme_code_example_runs():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Using the layer in your own model") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("```\n", 12)]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["small"][0].out_features == 64  # the exported MLP kept 64 units
    assert namespace["block"].attention.kept(200) == 2
