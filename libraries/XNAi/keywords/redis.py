"""Keywords for the stack's Redis: keys, TTLs and values, with password and TLS.

The connection comes from ``${REDIS_URL}`` (``redis://`` or ``rediss://``),
``${REDIS_PASSWORD}`` (a ``Secret``, never logged) and ``${REDIS_CA_FILE}``.
robotframework-redislibrary's ``Connect To Redis`` takes the password as a plain keyword
argument, which Robot would print in log.html: here ``Get Redis Connection`` opens the
connection and RedisLibrary's other keywords take it, so its familiar keywords work
without the password ever being an argument.
"""

from __future__ import annotations

import json

import redis
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure, SkipExecution
from xnai_qa import redisconn

from ..base import Context, LibraryComponent


class RedisKeywords(LibraryComponent):
    """Reads and checks keys in the target's Redis."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._client: redis.Redis | None = None
        self._url: str | None = None
        self._planted: list[str] = []

    def _redis(self) -> redis.Redis:
        url = self._var("REDIS_URL")
        if self._client is not None and url == self._url:
            return self._client
        try:
            self._client, self._url = redisconn.connect(self._var)
        except redisconn.RedisConfigError as err:
            raise Failure(str(err)) from None
        return self._client

    @keyword
    def get_redis_connection(self) -> redis.Redis:
        """The target's Redis connection, for the keywords of robotframework-redislibrary (each takes
        the connection as its first argument). It is opened here, from ``${REDIS_URL}``, the ``Secret``
        ``${REDIS_PASSWORD}`` and ``${REDIS_CA_FILE}``: the password is never a keyword argument, so it
        never reaches log.html (RedisLibrary's own ``Connect To Redis`` takes it in plain text).

        Example:
        | ${redis}= | Get Redis Connection |
        | Set To Redis | ${redis} | my:key | value | expire_time=60 |
        | ${value}= | Get From Redis | ${redis} | my:key |
        """
        return self._redis()

    @keyword
    def redis_should_answer_ping(self) -> None:
        """Sends PING with the configured password; fails naming the error (refused, auth, TLS).

        Example:
        | Redis Should Answer Ping |
        """
        try:
            self._redis().ping()
        except redis.RedisError as err:
            raise Failure(f"Redis did not answer PING: {type(err).__name__}: {err}") from None

    @keyword
    def delete_redis_key(self, key: str) -> None:
        """Deletes ``key`` (no error if absent).

        Example:
        | Delete Redis Key | ${HEALTH_CHECK_KEY} |
        """
        self._redis().delete(key)

    @keyword
    def redis_key_should_exist(self, key: str) -> None:
        """Fails if ``key`` does not exist.

        Example:
        | Redis Key Should Exist | xnai_health_check |
        """
        if not self._redis().exists(key):
            raise Failure(f"Redis key '{key}' does not exist.")

    @keyword
    def redis_key_should_expire_within(self, key: str, seconds: float) -> int:
        """Fails unless ``key`` exists with a TTL set and at most ``seconds``; returns the TTL.

        Example:
        | Redis Key Should Expire Within | xnai_health_check | 10 |
        """
        ttl = self._redis().ttl(key)
        problem = redisconn.ttl_problem(ttl, key, seconds)
        if problem:
            raise Failure(problem)
        logger.info(f"{key}: TTL {ttl} s")
        return ttl

    @keyword
    def count_redis_keys(self, pattern: str, limit: int = 100000) -> int:
        """The number of keys matching ``pattern`` (SCAN, never KEYS), counting at most ``limit``.

        Example:
        | ${cached}= | Count Redis Keys | query:* |
        """
        count = len(self.redis_keys_matching(pattern, limit))
        logger.info(f"{count} key(s) match {pattern}")
        return count

    @keyword
    def redis_keys_matching(self, pattern: str, limit: int = 10000) -> list:
        """The keys matching ``pattern`` (SCAN, never KEYS), at most ``limit`` of them.

        Example:
        | ${known}= | Redis Keys Matching | query:* |
        """
        keys: list[str] = []
        for key in self._redis().scan_iter(match=pattern, count=1000):
            if len(keys) >= int(limit):
                break
            keys.append(_text(key))
        return keys

    @keyword
    def plant_an_answer_in_the_cache(self, answer: str, planted: str, pattern: str = "query:*",
                                     known: list | None = None) -> str:
        """Finds the query cache entry written since ``known`` was taken (a key matching ``pattern`` and
        not in ``known``, see `Redis Keys Matching`) whose cached ``response`` is ``answer``, and replaces
        that text with ``planted``, keeping the entry's expiry; returns the key.  The question asked in
        between is then answered ``planted`` exactly when the API reads its cache.

        Skips where no new entry holds the answer (the stack cached nothing: reported, as a failure, by
        RAG's 'A Query Is Cached Once And Served Faster On Repeat') or the entries are not JSON answers.

        Example:
        | ${known}= | Redis Keys Matching | ${QUERY_CACHE_PATTERN} |
        | ${reply}= | Ask The RAG API | ${question} |
        | Plant An Answer In The Cache | ${reply}[answer][response] | fake | ${QUERY_CACHE_PATTERN} | known=${known} |
        """
        client = self._redis()
        skip = set(known or ())
        unreadable = []
        for key in self.redis_keys_matching(pattern):
            if key in skip:
                continue
            raw = client.get(key)
            try:
                entry = json.loads(raw) if raw else None
            except (ValueError, UnicodeDecodeError):
                unreadable.append(key)
                continue
            if isinstance(entry, dict) and entry.get("response") == answer:
                entry["response"] = planted
                client.set(key, json.dumps(entry), keepttl=True)
                self._planted.append(key)
                logger.info(f"{key}: response replaced by {planted!r} (expiry kept)")
                return key
        if unreadable:
            raise SkipExecution(f"The query cache's entries ({', '.join(unreadable[:3])}) are not JSON answers "
                                "this test can change.")
        raise SkipExecution(f"No new query cache entry ({pattern}) holds the answer: the stack cached nothing. "
                            "Reported, as a failure, by RAG 'A Query Is Cached Once And Served Faster On Repeat'.")

    @keyword
    def remove_the_planted_answers(self) -> None:
        """Deletes the cache entries `Plant An Answer In The Cache` changed (a teardown: the stack's cache
        keeps no answer the suite wrote).

        Example:
        | [Teardown] | Remove The Planted Answers |
        """
        if self._planted:
            self._redis().delete(*self._planted)
            logger.info(f"planted cache entries deleted: {', '.join(self._planted)}")
        self._planted.clear()

    @keyword
    def mark_redis_stream(self, key: str) -> str:
        """The id of the newest entry of stream ``key`` ("0-0" if empty or absent): a mark for
        `Redis Stream Entries Since`.

        Example:
        | ${mark}= | Mark Redis Stream | xnai_queries |
        """
        newest = self._redis().xrevrange(key, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    @keyword
    def redis_stream_entries_since(self, key: str, mark: str, limit: int = 1000, field: str | None = None) -> list:
        """The entries of stream ``key`` added after ``mark`` (each a dictionary of its fields plus ``id``),
        oldest first; with ``field``, only that field of each entry (``None`` where an entry lacks it).

        Example:
        | ${entries}= | Redis Stream Entries Since | xnai_queries | ${mark} |
        | ${ids}= | Redis Stream Entries Since | xnai_queries | ${mark} | field=txn_id |
        """
        entries = self._redis().xrange(key, min=f"({mark}", count=int(limit)) or []
        out = [{"id": _text(eid), **{_text(k): _text(v) for k, v in (fields or {}).items()}} for eid, fields in entries]
        logger.info(f"{len(out)} entries in {key} after {mark}")
        return out if field is None else [entry.get(field) for entry in out]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
