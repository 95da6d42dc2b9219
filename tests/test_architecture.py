"""The tree's promises, checked on the source: who may import whom, and no import cycles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "indexer", "retrieval")

# retrieval's rooms, and the rooms each may import (besides itself and retrieval's top-level modules).
# store is the bottom: its ids (media kinds, frames per item) bound what media decodes and what rerank shows.
ROOMS_MAY_IMPORT = {
    "store": set(),
    "media": {"store"},
    "models": set(),
    "rerank": {"media", "models", "store"},
    "query": {"store", "media", "models", "rerank"},
    "datasets": set(),
    "evaluation": {"datasets", "media", "models", "query", "rerank", "store"},
}
TOP_LEVEL = {"errors", "settings", "vectors"}  # retrieval's shared modules, imported from any room


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every project module and the project modules it imports, at any depth of its code."""
    modules = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


GRAPH = _imports()


def test_the_graph_sees_the_project():
    assert "retrieval.query.service" in GRAPH and "retrieval.store.catalog" in GRAPH["retrieval.query.search"] | {
        m for dep in GRAPH["retrieval.query.search"] for m in GRAPH[dep]}


def test_dependency_direction_between_top_level_packages():
    wrong = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() for b in deps
                   if (a.startswith("retrieval") and b.split(".")[0] in ("indexer", "app"))
                   or (a.startswith("indexer") and b.startswith("app")))
    assert wrong == []


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "retrieval" and len(parts) > 2 else None


@pytest.mark.parametrize("room", sorted(ROOMS_MAY_IMPORT))
def test_each_room_imports_only_the_rooms_below_it(room):
    wrong = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() if _room(a) == room for b in deps
                   if b.startswith("retrieval.") and _room(b) not in (room, None, *ROOMS_MAY_IMPORT[room]))
    assert wrong == []


def test_top_level_retrieval_modules_are_the_shared_ones():
    top = {m.split(".")[1] for m in GRAPH if m.startswith("retrieval.") and _room(m) is None}
    assert top - set(ROOMS_MAY_IMPORT) == TOP_LEVEL


def test_no_import_cycles():
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_readme_and_docs_link_nothing_outside_the_repository():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    outside = [f"{page.name}: {link}" for page in pages
               for link in re.findall(r"\]\(([^)]+)\)", page.read_text(encoding="utf-8"))
               if link.startswith("../") or "/shared/" in link]
    assert outside == []


# What each entry point imports, and what it must leave out (heavy imports cost seconds at startup).
LIGHT_PATHS = [
    pytest.param(["retrieval.query.request", "retrieval.settings", "retrieval.rerank.methods", "retrieval.errors"],
                 ["torch", "open_clip", "faiss", "transformers"], id="a request is validated before any model loads"),
    pytest.param(["app.cli", "retrieval.store.index_rebuild", "retrieval.store.index_store"],
                 ["torch", "open_clip", "transformers", "gradio"], id="gridrank --help"),
    pytest.param(["app.cli", "app.serve_link", "app.render"], ["numpy", "faiss", "pydantic_settings", "torch", "gradio"],
                 id="a search a running server answers: Python and typer only"),
    pytest.param(["app.cli", "app.index_report", "retrieval.store.index_meta", "retrieval.store.index_choice",
                  "retrieval.settings"], ["numpy", "faiss", "torch"],
                 id="gridrank status: the catalog alone, never gigabytes of FAISS files"),
    pytest.param(["app.cli", "retrieval.evaluation.precomputed", "retrieval.evaluation.runner",
                  "retrieval.evaluation.report", "retrieval.evaluation.plan"],
                 ["torch", "open_clip", "transformers", "faiss"], id="gridrank eval --sims: a numpy job"),
]


@pytest.mark.parametrize("modules, left_out", LIGHT_PATHS)
def test_entry_points_import_only_what_they_need(modules, left_out):
    import subprocess
    import sys

    code = (f"import sys, {', '.join(modules)}; "
            f"print(sorted(m for m in {tuple(left_out)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_readme_has_a_cpu_only_install_line_with_the_pinned_torch():
    import tomllib

    pins = [p for p in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
            if p.startswith(("torch==", "torchvision=="))]
    lines = [line for line in (ROOT / "README.md").read_text().splitlines()
             if "download.pytorch.org/whl/cpu" in line and line.startswith("pip install")]
    assert lines, "no CPU-only install line"
    assert all(pin in lines[0] for pin in pins), (pins, lines[0])
