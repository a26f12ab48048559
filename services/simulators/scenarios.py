"""Reading and setting simulator scenarios (Redis keys, expire after a day)."""

from __future__ import annotations

from redis.asyncio import Redis


async def get(redis: Redis, system: str, subject: str, default: str = "ok") -> str:
    value = await redis.get(f"sim:{system}:{subject}")
    if not value:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


async def set_scenario(redis: Redis, system: str, subject: str, scenario: str) -> None:
    await redis.set(f"sim:{system}:{subject}", scenario, ex=86_400)


async def clear_scenario(redis: Redis, system: str, subject: str) -> None:
    """Back to the default, call counter included (a test leaves no scenario behind)."""
    await redis.delete(f"sim:{system}:{subject}", f"sim:{system}:{subject}:calls")


async def bump(redis: Redis, system: str, subject: str) -> int:
    """Counts calls per subject (e.g. attempts), to play 'fail N times then succeed'."""
    key = f"sim:{system}:{subject}:calls"
    count = await redis.incr(key)
    await redis.expire(key, 86_400)
    return int(count)
