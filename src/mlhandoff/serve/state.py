"""The little shared state a server has: idempotency records and rate-limit counters.

In the process by default; in Redis (``--redis redis://...``) so that replicas behind a load
balancer share one idempotency key space and one rate limit. Both stores speak the same three
operations, so the server code does not know which it has.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Protocol

from mlhandoff.errors import InputError


class StateStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, ttl_s: float) -> int: ...

    async def close(self) -> None: ...


class MemoryStore:
    """Per-process store with expiry and bounds on entries and on bytes (keys and values):
    oldest entries are evicted first, so no client can grow it past ``max_bytes``."""

    def __init__(self, max_entries: int = 100_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._data: OrderedDict[str, tuple[float, bytes | int]] = OrderedDict()
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    def _live(self, key: str) -> bytes | int | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._drop(key)
            return None
        return item[1]

    @staticmethod
    def _size(key: str, value: bytes | int) -> int:
        return len(key) + (len(value) if isinstance(value, bytes) else 8)

    def _drop(self, key: str) -> None:
        item = self._data.pop(key, None)
        if item is not None:
            self._bytes -= self._size(key, item[1])

    def _put(self, key: str, value: bytes | int, ttl_s: float) -> None:
        self._drop(key)
        self._data[key] = (time.monotonic() + ttl_s, value)
        self._bytes += self._size(key, value)
        while len(self._data) > self._max or (
            self._bytes > self._max_bytes and len(self._data) > 1
        ):
            oldest = next(iter(self._data))
            self._drop(oldest)

    @property
    def bytes_held(self) -> int:
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        if self._live(key) is not None:
            return False
        self._put(key, value, ttl_s)
        return True

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._put(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        self._drop(key)

    async def incr(self, key: str, ttl_s: float) -> int:
        current = self._live(key)
        count = (current if isinstance(current, int) else 0) + 1
        if current is None:
            self._put(key, count, ttl_s)
        else:
            self._data[key] = (self._data[key][0], count)
        return count

    async def close(self) -> None:
        self._data.clear()
        self._bytes = 0


class RedisStore:
    """Shared store in Redis; keys are namespaced by the bundle so models never collide."""

    def __init__(self, url: str, namespace: str) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - redis is a core dependency
            raise InputError("--redis needs the 'redis' package: pip install redis") from exc
        self._client = aioredis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._ns = f"mlhandoff:{namespace}:"

    async def ping(self) -> None:
        await self._client.ping()

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._ns + key)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set_if_absent(self, key: str, value: bytes, ttl_s: float) -> bool:
        return bool(await self._client.set(self._ns + key, value, nx=True, px=int(ttl_s * 1000)))

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._client.set(self._ns + key, value, px=int(ttl_s * 1000))

    async def delete(self, key: str) -> None:
        await self._client.delete(self._ns + key)

    async def incr(self, key: str, ttl_s: float) -> int:
        pipe = self._client.pipeline()
        pipe.incr(self._ns + key)
        pipe.pexpire(self._ns + key, int(ttl_s * 1000), nx=True)
        count, _ = await pipe.execute()
        return int(count)

    async def close(self) -> None:
        await self._client.aclose()


class RateLimiter:
    """Fixed one-second windows per client: simple, and exact across replicas sharing Redis."""

    def __init__(self, store: StateStore, per_second: float) -> None:
        self._store = store
        self._limit = per_second

    async def check(self, client: str) -> float | None:
        """None when allowed, else the seconds to wait before retrying."""
        now = time.time()
        window = int(now)
        count = await self._store.incr(f"rl:{client}:{window}", ttl_s=2.0)
        if count <= self._limit:
            return None
        return max(0.001, window + 1 - now)


async def ping_store(store: StateStore, timeout_s: float = 3.0) -> None:
    """Fail fast at start-up when Redis is configured but unreachable."""
    ping = getattr(store, "ping", None)
    if ping is None:
        return
    try:
        await asyncio.wait_for(ping(), timeout_s)
    except Exception as exc:
        raise InputError(
            f"cannot reach Redis for shared state: {type(exc).__name__}: {exc}"
        ) from exc


def check_redis(url: str, timeout_s: float = 3.0) -> None:
    """Start-up check from the CLI: refuse to serve when the configured Redis is unreachable."""
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        client.ping()
        client.close()
    except (redis.RedisError, ValueError) as exc:
        raise InputError(f"cannot reach Redis at {url} for shared state: {exc}") from exc
