"""The shape the architecture promises (docs/architecture.md), measured on the code itself:
few of our own frames between a caller and the socket, and no import cycle in the package."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

import responses

from keycloak_jwt_auth import get_access_token

from .conftest import TOKEN_URL, token_body

PACKAGE = Path(__file__).parents[1] / "keycloak_jwt_auth"


def test_a_cold_token_request_runs_through_at_most_five_of_our_functions(
    mocked: responses.RequestsMock,
) -> None:
    ours: list[str] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        for frame in inspect.stack()[1:]:
            if Path(frame.filename).is_relative_to(PACKAGE):
                ours.append(frame.function)
        return 200, {}, json.dumps(token_body())

    mocked.add_callback(responses.POST, TOKEN_URL, callback=answer)
    get_access_token()
    # Innermost first: the policy, the driver, the manager's two steps, the public function.
    assert ours == ["exchange", "run_flow", "_obtain", "get_token", "get_access_token"]


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The package modules ``path`` imports, at any depth of the file (a function-level
    import closes a cycle just the same)."""
    found: set[str] = set()
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("keycloak_jwt_auth.")}


def test_no_import_cycle_between_modules() -> None:
    modules = {module_of(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: imported(name, path, modules) for name, path in modules.items()}
    done: set[str] = set()

    def cycle_from(name: str, trail: list[str]) -> list[str] | None:
        for target in sorted(graph[name]):
            if target in trail:
                return [*trail[trail.index(target) :], target]
            if target not in done:
                found = cycle_from(target, [*trail, target])
                if found:
                    return found
        done.add(name)
        return None

    assert [cycle_from(name, [name]) for name in sorted(graph)] == [None] * len(graph)


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that importing ``name`` runs: each one it imports, and the
    sub-packages' ``__init__`` on the way (not the root's, which Python has loaded first)."""
    targets: set[str] = set()
    for module in imports(path):
        parts = module.split(".")
        targets.update(".".join(parts[:n]) for n in range(2, len(parts) + 1))
    return {t for t in targets if t in modules and t != name and not name.startswith(f"{t}.")}
