"""Usage-log test helpers: CallRecords made by hand, and reading the rows back."""

import sqlite3

from llmring.record import CallRecord
from llmring.types import Attempt


def rec(alias="a", cost=None, at=1_000.0, profile="default", model="mock:echo", **kw):
    """A finished call that `model` answered (None: no model did), as the Ring would record it."""
    attempts = kw.pop("attempts", (Attempt(model),) if model else ())
    return CallRecord(at, kw.pop("elapsed", 0.5), alias, profile, "llmring.lock", kw.pop("stream", False), model,
                      attempts, cost=cost, **kw)


def rows(path, sql="SELECT * FROM calls ORDER BY id"):
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()
