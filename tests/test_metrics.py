"""OpenTelemetry metrics, read with the SDK's InMemoryMetricReader; and the package without them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from keycloak_jwt_auth import (
    KeycloakAdmin,
    aget_access_token,
    get_access_token,
    get_token_manager,
)
from keycloak_jwt_auth.exceptions import AdminForbiddenError, KeycloakJWTAuthError
from keycloak_jwt_auth.metrics import use_meter_provider

from .conftest import ADMIN_URL, TOKEN_URL, token_body
from .test_manager import other_process

Points = dict[tuple[tuple[str, str], ...], Any]  # sorted attributes -> value (or histogram point)


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    use_meter_provider(provider)
    yield reader
    use_meter_provider()
    provider.shutdown()


def points(reader: InMemoryMetricReader, name: str) -> Points:
    data = reader.get_metrics_data()
    found: Points = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "keycloak_jwt_auth"
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        key = tuple(
                            sorted((k, str(v)) for k, v in (point.attributes or {}).items())
                        )
                        found[key] = getattr(point, "value", point)
    return found


def served(client: str, source: str) -> tuple[tuple[str, str], ...]:
    return (("client", client), ("source", source))


def test_tokens_served_by_source(token_endpoint: Any, reader: InMemoryMetricReader) -> None:
    token_endpoint(token_body("t"))
    for _ in range(4):
        get_access_token()
    other = other_process()  # another worker: its first token comes from the shared cache
    other.get_token()
    other.get_token()
    got = points(reader, "keycloak_jwt_auth.token.served")
    assert got[served("default", "fetch")] == 1
    assert got[served("default", "memory")] == 3
    assert got[served("default", "cache")] == 0  # `other` is not a registered manager
    assert (other.stats.cache, other.stats.memory) == (1, 1)
    assert "'served': {'memory': 3, 'cache': 0, 'fetch': 1}" in repr(get_token_manager().stats)


def test_token_requests_and_their_duration_by_outcome(
    mocked: responses.RequestsMock, reader: InMemoryMetricReader, settings: Any
) -> None:
    settings.KEYCLOAK_JWT_AUTH = {**settings.KEYCLOAK_JWT_AUTH, "RETRIES": 0}
    mocked.post(TOKEN_URL, json=token_body())
    mocked.post(TOKEN_URL, json={"error": "invalid_client"}, status=401)
    mocked.post(TOKEN_URL, body=requests.ConnectionError("refused"))
    get_access_token()
    for _ in range(2):
        with pytest.raises(KeycloakJWTAuthError):
            get_access_token(force_refresh=True)
    # The histogram first: opentelemetry-sdk 1.20 (the otel extra's lowest API) reports a
    # cumulative histogram only at the first collection after a measurement.
    durations = points(reader, "keycloak_jwt_auth.token.request.duration")
    requests_ = points(reader, "keycloak_jwt_auth.token.requests")
    assert requests_ == {
        (("client", "default"), ("outcome", outcome)): 1
        for outcome in ("success", "refused", "unavailable")
    }
    success = durations[(("client", "default"), ("outcome", "success"))]
    assert success.count == 1 and 0 <= success.sum < 5
    stats = get_token_manager().stats.as_dict()
    assert (stats["token_requests"], stats["token_request_failures"]) == (3, 2)


def test_admin_requests_by_status(token_endpoint: Any, reader: InMemoryMetricReader) -> None:
    mocked = token_endpoint(token_body())
    mocked.get(f"{ADMIN_URL}/users", json=[])
    mocked.get(f"{ADMIN_URL}/groups", json={"error": "forbidden"}, status=403)
    admin = KeycloakAdmin()
    admin.users()
    admin.users()
    with pytest.raises(AdminForbiddenError):
        admin.groups()
    got = points(reader, "keycloak_jwt_auth.admin.requests")
    key = (("client", "default"), ("method", "GET"))
    assert got == {(*key, ("status", "200")): 2, (*key, ("status", "403")): 1}


def test_async_callers_are_counted_too(token_endpoint: Any, reader: InMemoryMetricReader) -> None:
    token_endpoint(token_body("a"))

    async def main() -> None:
        await asyncio.gather(*(aget_access_token() for _ in range(5)))
        await aget_access_token()

    asyncio.run(main())
    got = points(reader, "keycloak_jwt_auth.token.served")
    # Five tasks shared one fetch (each was served by it); the sixth read memory.
    assert got[served("default", "fetch")] == 5
    assert got[served("default", "memory")] == 1


def test_the_package_works_without_opentelemetry() -> None:
    script = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed: importing it raises ImportError
import django
django.setup()
from keycloak_jwt_auth import metrics
from keycloak_jwt_auth.clients import get_token_manager
assert metrics.otel is None and metrics._instruments is None
metrics.use_meter_provider()
metrics.record_admin_request("default", "GET", 200)
manager = get_token_manager()
metrics.record_token_request(
    "default", manager.stats, duration=0.1, error=None, renewal=False
)
print(manager.stats.as_dict()["token_requests"])
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
