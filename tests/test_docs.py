"""docs/reference_tables.py: the settings and check references are the code's own tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def reference_tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "reference_tables", ROOT / "docs/reference_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_markdown_table_keeps_one_line_per_row_and_pipes_as_text() -> None:
    table = reference_tables().markdown_table(
        ("key", "meaning"), [("`VERIFY`", "`True` | `False`\n or a path")]
    )
    assert table.splitlines() == [
        "| key | meaning |",
        "| --- | --- |",
        "| `VERIFY` | `True` \\| `False` or a path |",
    ]


def test_code_spans_survive_backticks() -> None:
    code = reference_tables().code
    assert code("(5, 10)") == "`(5, 10)`"
    assert code("`x`") == "`` `x` ``"
