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


def test_requests_settings_and_the_registry_load_without_the_models():
    """A request is validated before any model loads: its modules must not import torch, open_clip or faiss."""
    import subprocess
    import sys

    code = ("import sys, retrieval.query.request, retrieval.settings, retrieval.rerank.methods, retrieval.errors; "
            "print(sorted(m for m in ('torch', 'open_clip', 'faiss', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_and_status_load_without_torch():
    """`gridrank --help` and `gridrank status` must not wait for torch, open_clip or transformers."""
    import subprocess
    import sys

    code = ("import sys, app.cli, retrieval.store.index_rebuild, retrieval.store.index_store; "
            "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'gradio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_search_a_server_answers_loads_no_search_stack():
    """The CLI module and the server link (what `gridrank search` runs when a server answers) import neither
    numpy, faiss nor pydantic-settings: that path is the startup of Python and typer."""
    import subprocess
    import sys

    code = ("import sys, app.cli, app.serve_link, app.render; "
            "print(sorted(m for m in ('numpy', 'faiss', 'pydantic_settings', 'torch', 'gradio') if m in sys.modules))")
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


def test_eval_on_precomputed_scores_loads_no_model_code():
    """`gridrank eval --sims` is a numpy job: torch, open_clip and transformers stay out."""
    import subprocess
    import sys

    code = ("import sys, app.cli, retrieval.evaluation.precomputed, retrieval.evaluation.runner, "
            "retrieval.evaluation.report, retrieval.evaluation.plan; "
            "print(sorted(m for m in ('torch', 'open_clip', 'transformers', 'faiss') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_status_reads_the_catalog_without_faiss():
    """`gridrank status` answers from the catalog: at 10M vectors the FAISS files are gigabytes."""
    import subprocess
    import sys

    code = ("import sys, app.cli, app.index_report, retrieval.store.index_meta, retrieval.store.index_choice, "
            "retrieval.settings; print(sorted(m for m in ('numpy', 'faiss', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
