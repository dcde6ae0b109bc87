"""Cache backends for tests: one that records what it is asked, one that counts its requests,
one that always fails."""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.locmem import LocMemCache

calls: list[tuple[str, str, Any]] = []


class RecordingCache(LocMemCache):
    def set(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> None:
        calls.append(("set", key, timeout))
        super().set(key, value, timeout, version)

    def add(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> bool:
        calls.append(("add", key, timeout))
        return super().add(key, value, timeout, version)


class BrokenCache(LocMemCache):
    """Like a Redis that is down: every operation raises."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    get = set = add = delete = _fail


requests_made: list[tuple[int, str]] = []  # (thread id, operation), one per request


class CountingCache(LocMemCache):
    """Counts the requests a network cache would receive: ``get_many`` is one (Redis's MGET)."""

    def _count(self, operation: str) -> None:
        requests_made.append((threading.get_ident(), operation))

    def get(self, key: str, default: Any = None, version: Any = None) -> Any:
        self._count("get")
        return super().get(key, default, version)

    def get_many(self, keys: Any, version: Any = None) -> dict[str, Any]:
        self._count("get_many")
        missing = object()
        found = {key: LocMemCache.get(self, key, missing, version) for key in keys}
        return {key: value for key, value in found.items() if value is not missing}

    def add(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> bool:
        self._count("add")
        return super().add(key, value, timeout, version)

    def set(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> None:
        self._count("set")
        super().set(key, value, timeout, version)

    def delete(self, key: str, version: Any = None) -> bool:
        self._count("delete")
        return super().delete(key, version)

    def touch(self, key: str, timeout: Any = None, version: Any = None) -> bool:
        self._count("touch")
        return super().touch(key, timeout, version)


class SwitchableCache(LocMemCache):
    """Like a Redis that goes down and comes back: set ``SwitchableCache.down``."""

    down = False

    def _maybe_fail(self) -> None:
        if SwitchableCache.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    def get_many(self, keys: Any, version: Any = None) -> dict[str, Any]:
        self._maybe_fail()
        return super().get_many(keys, version)

    def get(self, key: str, default: Any = None, version: Any = None) -> Any:
        self._maybe_fail()
        return super().get(key, default, version)

    def add(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> bool:
        self._maybe_fail()
        return super().add(key, value, timeout, version)

    def set(self, key: str, value: Any, timeout: Any = None, version: Any = None) -> None:
        self._maybe_fail()
        super().set(key, value, timeout, version)
