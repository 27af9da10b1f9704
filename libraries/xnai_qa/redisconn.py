"""One Redis connection built from the target's variables (URL, Secret password, CA file)."""

from __future__ import annotations

import redis

from . import targetconfig


class RedisConfigError(ValueError):
    pass


def connect(get_var) -> tuple[redis.Redis, str]:
    """``get_var(name, default)`` reads the variables; returns (client, url)."""
    url = get_var("REDIS_URL", None)
    if url is None:
        raise RedisConfigError("${REDIS_URL} is not defined: import resources/xnai.resource.")
    password = get_var("REDIS_PASSWORD", None)
    secret = getattr(password, "value", None)
    if password is not None and secret is None:
        raise RedisConfigError("${REDIS_PASSWORD} must be a Secret, not a plain string: read it from an "
                               "environment variable.")
    try:
        targetconfig.check_url(url, get_var("ALLOWED_HOSTS", []))
    except targetconfig.TargetConfigError as err:
        raise RedisConfigError(str(err)) from None
    kwargs = {"password": secret or None, "socket_timeout": 5, "socket_connect_timeout": 5, "decode_responses": True}
    ca_file = get_var("REDIS_CA_FILE", "")
    if url.startswith("rediss://") and ca_file:
        kwargs["ssl_ca_certs"] = ca_file
    return redis.Redis.from_url(url, **kwargs), url


def ttl_problem(ttl: int, key: str, seconds: float) -> str | None:
    """Why a key's TTL (as Redis returns it: -2 absent, -1 no expiry) is not an expiry of at most ``seconds``."""
    if ttl == -2:
        return f"Redis key '{key}' does not exist."
    if ttl == -1:
        return f"Redis key '{key}' has no expiry (TTL missing): it would outlive what it describes."
    if ttl > float(seconds):
        return f"Redis key '{key}' expires in {ttl} s, more than {seconds} s."
    return None
