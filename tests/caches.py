"""Cache backends for tests: one that records what it is asked, one that always fails."""

from __future__ import annotations

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
