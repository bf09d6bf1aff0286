"""State shared through Redis: the circuit breaker, client-side limits and cool-downs of every
process and machine that uses the same Redis (see state.State for the contract).

Every update that reads and then writes is one Lua script (redis-py's `register_script`:
EVALSHA, re-sent on NOSCRIPT), so two workers never both take the last room; times inside the
scripts come from Redis' own clock (TIME), so workers need not agree on theirs. redis-py is
imported here only, when a Redis state is made (`pip install "llmring[redis]"`)."""

from __future__ import annotations

import time
import uuid
from typing import Callable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .state import Limit, State, pace_cap

SOCKET_TIMEOUT = 0.5  # a dead or stalled Redis costs a call at most this, then the fallback takes over
FAILURES_TTL = 3600  # breaker counts of a model nobody calls any more fade away
POLL = 0.1  # full concurrency: room may come back any moment (a release), so ask again this soon
FRESH = 0.05  # seconds a worker acts on what Redis last said of a model's health (see RedisState)

# KEYS: window (sorted set of "id:tokens" scored by admission time, ms), in flight (sorted set
# of the same members scored by lease end, ms), tokens (the window's total, kept as it changes:
# a busy minute holds thousands of calls, too many to add up on each one), last second (the
# same members scored by admission time: an rpm is also paced, see State.admit). ARGV: rpm,
# tpm, concurrency (0: none), tokens, lease ms, a fresh id, poll ms, calls a second (0: not
# paced). Returns {"0", ticket} or {ms to wait}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rpm, tpm, conc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
local WINDOW, POLL = 60000, tonumber(ARGV[7])
local function tok(member) return tonumber(string.match(member, ':(%d+)$')) end
local wait, used = 0, 0
if rpm > 0 or tpm > 0 then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
  if #gone > 0 then
    local freed = 0
    for i = 1, #gone do freed = freed + tok(gone[i]) end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
    redis.call('DECRBY', KEYS[3], freed)
  end
  if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end  -- never drifts past empty
  used = tonumber(redis.call('GET', KEYS[3]) or '0')
end
if rpm > 0 then
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then  -- room when all but rpm - 1 of them have left the window
    local s = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    wait = math.max(wait, tonumber(s[2]) + WINDOW - now)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 1000)
  local b, cap = redis.call('ZCARD', KEYS[4]), tonumber(ARGV[8])
  if cap > 0 and b >= cap then  -- room when all but cap - 1 of them are over a second old
    local s = redis.call('ZRANGE', KEYS[4], b - cap, b - cap, 'WITHSCORES')
    wait = math.max(wait, tonumber(s[2]) + 1000 - now)
  end
end
if tpm > 0 and used > 0 and used + tokens > tpm then  -- an empty window admits even an oversized call
  local all, freed = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), 0
  for i = 1, #all, 2 do  -- room when enough of the oldest have left
    freed = freed + tok(all[i])
    if used - freed + tokens <= tpm or i + 1 == #all then
      wait = math.max(wait, tonumber(all[i + 1]) + WINDOW - now)
      break
    end
  end
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= conc then
    local s = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    wait = math.max(wait, math.min(tonumber(s[2]) - now, POLL))
  end
end
if wait > 0 then return {tostring(wait)} end
local ticket = ARGV[6] .. ':' .. ARGV[4]
if rpm > 0 or tpm > 0 then
  redis.call('ZADD', KEYS[1], now, ticket)
  redis.call('INCRBY', KEYS[3], tokens)
  redis.call('PEXPIRE', KEYS[1], WINDOW + 1000)
  redis.call('PEXPIRE', KEYS[3], WINDOW + 1000)
end
if rpm > 0 then
  redis.call('ZADD', KEYS[4], now, ticket)
  redis.call('PEXPIRE', KEYS[4], 2000)
end
if conc > 0 then
  redis.call('ZADD', KEYS[2], now + lease, ticket)
  if redis.call('PTTL', KEYS[2]) < lease + 1000 then redis.call('PEXPIRE', KEYS[2], math.ceil(lease) + 1000) end
end
return {'0', ticket}
"""

# KEYS: as _ADMIT's. ARGV: ticket, tokens used ('' : keep the estimate).
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '0' then redis.call('ZREM', KEYS[4], ARGV[1]) end  -- never made: not in the last second either
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then  -- still in the window
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local id, estimate = string.match(ARGV[1], '^(.*):(%d+)$')
  local used = ARGV[2] == '' and tonumber(estimate) or tonumber(ARGV[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('INCRBY', KEYS[3], used - tonumber(estimate))
  if ARGV[2] ~= '0' then  -- 0: never made, forgotten; else counted from its end (State.release)
    redis.call('ZADD', KEYS[1], now, id .. ':' .. used)
    redis.call('PEXPIRE', KEYS[1], 61000)
    redis.call('PEXPIRE', KEYS[3], 61000)
  end
end
return 0
"""

# KEYS: counter. ARGV: ttl s. One more failure in a row; the count fades if nobody calls again.
_FAILURE = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
"""

# KEYS: cool-down. ARGV: ms. The longest "not before" any worker was told wins.
_COOL = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""


# Spend against budgets (budget.py): a float per alias+profile+period, expiring after it.
# KEYS: the spend. ARGV: USD, ttl s. Seeds the count unless a worker did first; returns it.
_SEED = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
return redis.call('GET', KEYS[1])
"""

# KEYS: the spend. ARGV: USD. Adds to a seeded count (nil when unseeded: seed it first).
_SPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
"""

# KEYS: failures, rest, cool of one model. What a worker needs to know of it before a try.
_PEEK = """
return {tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[3])}
"""

# KEYS: failures, rest, cool of one model. It answered: forget its failures and rest; say
# whether it is cooling (a success does not end a provider's "not before").
_SUCCESS = """
redis.call('DEL', KEYS[1], KEYS[2])
return redis.call('PTTL', KEYS[3])
"""


class RedisState(State):
    """The State of everyone using the Redis at `url` (redis://, rediss:// or unix://). Keys
    start with `llmring:NAMESPACE:` (the URL's `?namespace=`, else "default"), so several apps
    can share one Redis. Nothing connects until the first call; errors are redis-py's own
    (RedisError), which FallbackState turns into in-process state and one warning.

    A healthy model costs no round trip: what Redis said of a model's health (failures in a
    row, rest, cool-down) is trusted for `fresh` seconds, so back-to-back calls neither ask
    before a try nor clear anything after it; a worker asks again once that word is older.
    So another worker's rest or cool-down is seen here at most `fresh` seconds late (a round
    trip costs ~50 us, a call at least a millisecond: asking more often than every `fresh`
    would cost more than it saves), while this process's own changes are seen at once.
    Admitting under limits always asks Redis: that must be exact."""

    def __init__(self, url: str, *, socket_timeout: float = SOCKET_TIMEOUT, fresh: float = FRESH,
                 clock: Callable[[], float] = time.monotonic, pace: bool = True) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url, self.socket_timeout = url, socket_timeout
        address, namespace = _split_namespace(url)
        self.prefix = f"llmring:{namespace}:"
        self.client = redis.Redis.from_url(address, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout, retry=Retry(NoBackoff(), 0))
        self._admit, self._release = self.client.register_script(_ADMIT), self.client.register_script(_RELEASE)
        self._failure, self._cool = self.client.register_script(_FAILURE), self.client.register_script(_COOL)
        self._peek, self._success = self.client.register_script(_PEEK), self.client.register_script(_SUCCESS)
        self._seed, self._spend = self.client.register_script(_SEED), self.client.register_script(_SPEND)
        self.fresh, self.clock, self.pace = fresh, clock, pace  # pace: see State.admit
        self._seen: dict = {}  # ref -> (when asked, failures, rest ends, cool-down ends), this clock

    def _key(self, kind: str, name: str) -> str:
        # The braces keep one name's keys in one slot of a Redis Cluster (scripts need that).
        return f"{self.prefix}{{{name}}}:{kind}"

    def _limit_keys(self, key: str) -> list:
        return [self._key(kind, key) for kind in ("window", "inflight", "tokens", "second")]

    def _health_keys(self, ref: str) -> list:
        return [self._key("failures", ref), self._key("rest", ref), self._key("cool", ref)]

    def _known(self, ref: str) -> tuple:
        """What Redis said of `ref` less than `fresh` seconds ago, else what it says now."""
        asked = self.clock()
        seen = self._seen.get(ref)
        if seen is None or asked - seen[0] >= self.fresh:
            failures, rest, cool = self._peek(keys=self._health_keys(ref))
            now = self.clock()
            seen = self._seen[ref] = (asked, int(failures), now + max(0, rest) / 1000, now + max(0, cool) / 1000)
        return seen

    # -- circuit breaker ------------------------------------------------------------------------
    def failure(self, ref: str) -> int:
        self._seen.pop(ref, None)
        return int(self._failure(keys=[self._key("failures", ref)], args=[FAILURES_TTL]))

    def success(self, ref: str) -> None:
        seen, now = self._seen.get(ref), self.clock()
        if seen is not None and now - seen[0] < self.fresh and seen[1] == 0 and seen[2] <= now:
            return  # nothing to forget, as far as Redis said a moment ago
        cool = self._success(keys=self._health_keys(ref))
        self._seen[ref] = (now, 0, now, self.clock() + max(0, cool) / 1000)

    def rest(self, ref: str, seconds: float) -> None:
        self._seen.pop(ref, None)
        ms = int(seconds * 1000)
        if ms > 0:
            self.client.set(self._key("rest", ref), b"1", px=ms)
        else:
            self.client.delete(self._key("rest", ref))

    def resting(self, ref: str) -> float:
        return max(0.0, self._known(ref)[2] - self.clock())

    # -- limits and cool-downs ------------------------------------------------------------------
    def admit(self, key: str, limit: Limit, tokens: int, lease: float) -> tuple:
        args = [limit.rpm or 0, limit.tpm or 0, limit.concurrency or 0, max(0, int(tokens)),
                max(1, int(lease * 1000)), uuid.uuid4().hex, POLL * 1000,
                pace_cap(limit.rpm) if self.pace and limit.rpm else 0]
        got = self._admit(keys=self._limit_keys(key), args=args)
        if len(got) == 2:  # bytes, or str when the URL asks for decode_responses
            return 0.0, got[1] if isinstance(got[1], str) else got[1].decode()
        return float(got[0]) / 1000, None

    def release(self, key: str, ticket: str, tokens_used: Optional[int]) -> None:
        used = "" if tokens_used is None else str(max(0, int(tokens_used)))
        self._release(keys=self._limit_keys(key), args=[ticket, used])

    def cool(self, key: str, seconds: float) -> None:
        self._seen.pop(key, None)
        ms = int(seconds * 1000)
        if ms > 0:
            self._cool(keys=[self._key("cool", key)], args=[ms])

    def cooling(self, key: str) -> float:
        return max(0.0, self._known(key)[3] - self.clock())

    # -- spend against budgets -------------------------------------------------------------------
    def spent(self, key: str) -> Optional[float]:
        got = self.client.get(self._key("spend", key))
        return None if got is None else float(got)

    def seed(self, key: str, usd: float, ttl: float) -> float:
        return float(self._seed(keys=[self._key("spend", key)], args=[repr(usd), max(1, int(ttl))]))

    def spend(self, key: str, usd: float) -> Optional[float]:
        got = self._spend(keys=[self._key("spend", key)], args=[repr(usd)])
        return None if got is None else float(got)

    # -- helpers --------------------------------------------------------------------------------
    def close(self) -> None:
        self.client.close()

    def __reduce__(self) -> tuple:  # a process it is shipped to makes its own connections
        return _remade, (self.url, self.socket_timeout)

    def __repr__(self) -> str:
        return f"<RedisState {where(self.url)} prefix={self.prefix!r}>"


def _remade(url: str, socket_timeout: float) -> RedisState:
    return RedisState(url, socket_timeout=socket_timeout)


def where(url: str) -> str:
    """The URL without user, password or query: safe for messages and logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _split_namespace(url: str) -> tuple:
    """(the URL redis-py is given, the namespace): redis-py refuses query options it does not know."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    namespace = next((v for k, v in query if k == "namespace"), "") or "default"
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    return urlunsplit(parts._replace(query=rest)), namespace
