"""The layout's rules (docs/ARCHITECTURE.md), read from the source: what `lib` and `ui` may import."""

from __future__ import annotations

import ast
import pathlib

import pytest

from tests.conftest import REPO_ROOT

LIB_MODULES = sorted((REPO_ROOT / "lib").glob("*.py"))
PLAIN_UI_MODULES = [REPO_ROOT / "ui" / "keys.py", REPO_ROOT / "ui" / "page_data.py"]


def imported_packages(path: pathlib.Path) -> set[str]:
    """The top-level package of every import in a module, at any depth (imports inside functions too)."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            packages.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            packages.add(node.module.partition(".")[0])
    return packages


@pytest.mark.parametrize("path", LIB_MODULES, ids=lambda path: path.name)
def test_lib_imports_neither_streamlit_nor_ui(path):
    assert not imported_packages(path) & {"streamlit", "ui"}


@pytest.mark.parametrize("path", LIB_MODULES, ids=lambda path: path.name)
def test_only_the_chart_modules_import_altair(path):
    is_chart_module = path.name == "charts.py" or path.name.endswith("_charts.py")
    assert ("altair" in imported_packages(path)) == is_chart_module


@pytest.mark.parametrize("path", PLAIN_UI_MODULES, ids=lambda path: path.name)
def test_the_pages_plain_helpers_need_no_streamlit(path):
    assert "streamlit" not in imported_packages(path)


def test_every_module_has_its_line_in_the_architecture_map():
    architecture = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    modules = [*LIB_MODULES, *sorted((REPO_ROOT / "ui").glob("*.py")), *sorted((REPO_ROOT / "app_pages").glob("*.py"))]
    missing = [
        str(path.relative_to(REPO_ROOT))
        for path in modules
        if path.name != "__init__.py" and f"\n{path.relative_to(REPO_ROOT)} " not in architecture
    ]
    assert missing == []
