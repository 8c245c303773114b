"""Cache backends for the tests: one that fails on demand."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.cache.backends.locmem import LocMemCache


class CacheDown(ConnectionError):
    """What the failing cache raises (its text must never reach a log)."""


class SwitchableCache(LocMemCache):
    """A locmem cache that raises `CacheDown` on every call while `broken`."""

    broken: ClassVar[bool] = False

    def _check(self) -> None:
        if type(self).broken:
            raise CacheDown("redis://:cache-password@cache.internal:6379/0 is gone")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().get(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> None:
        self._check()
        super().set(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> bool:
        self._check()
        return super().add(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> bool:
        self._check()
        return super().delete(*args, **kwargs)
