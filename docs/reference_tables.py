"""The settings and system-check references as Markdown tables, generated from the code's own
tables (``SETTINGS_REFERENCE`` and ``CHECKS_REFERENCE`` in ``keycloak_jwt_auth.settings``) so that
the docs cannot drift from the code. conf.py's ``reference-table`` directive puts them in a page."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; a cell is one line, and a ``|`` in it stays text."""

    def line(cells: Sequence[str]) -> str:
        escaped = (" ".join(str(cell).split()).replace("|", "\\|") for cell in cells)
        return f"| {' | '.join(escaped)} |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)]) + "\n"


def code(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def settings_table() -> str:
    from keycloak_jwt_auth.settings import SETTINGS_REFERENCE

    rows = [(code(key), code(default), text) for key, default, text in SETTINGS_REFERENCE]
    return markdown_table(("key", "default", "meaning"), rows)


def checks_table() -> str:
    from keycloak_jwt_auth.settings import CHECKS_REFERENCE

    rows = [(code(check_id), level, summary) for check_id, level, summary in CHECKS_REFERENCE]
    return markdown_table(("id", "level", "problem"), rows)


TABLES: dict[str, Callable[[], str]] = {"settings": settings_table, "checks": checks_table}
