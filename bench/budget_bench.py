"""budget: what an alias's budget (issue 12) costs a call, next to the same alias without one:
in the process (a dictionary look-up and an addition per call) and with the Redis state (one
GET before the call and one INCRBYFLOAT script after it). The budget is never reached, so both
sides send the same requests. Needs redis-server on PATH and redis-py, as `state` does."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path

from server import serve
from state_bench import redis_server
from timing import MODEL, PROMPT, Result, Row, Scale, interleaved, lockfile_text, median, openai_env

AIM = 1.02  # in-process; with Redis, two more round trips per call, see the `state` rows for one


def measure_budget(scale: Scale) -> Result:
    from llmring import Ring

    result = Result("budget")
    calls = scale(600, 40)
    os.environ["LLMRING_USAGE"] = "off"  # the log's own cost is its bench; this one is the budget's
    with tempfile.TemporaryDirectory() as folder, redis_server(folder) as url, serve(0) as server, \
            openai_env(server):
        lock = Path(folder) / "llmring.lock"
        text = lockfile_text({"plain": [f"openai:{MODEL}"], "budgeted": [f"openai:{MODEL}"]})
        lock.write_text(text.replace('alias = "budgeted"', 'alias = "budgeted"\nbudget = { usd_per_day = 1e9 }'),
                        encoding="utf-8")
        for label, state_url in (("in-process", None), ("Redis", url)):
            ring = Ring(lock, state_url=state_url)
            for _ in range(scale(50, 5)):  # warm: the provider, the connection, the period, the scripts
                ring.chat("plain", PROMPT)
                ring.chat("budgeted", PROMPT)
            wall_b, wall_p, *_, per_block = interleaved(partial(ring.chat, "budgeted", PROMPT),
                                                        partial(ring.chat, "plain", PROMPT), calls, 10)
            ring.close()
            ratios = [a / b for a, b in zip(wall_b, wall_p) if b > 0]
            b_us, p_us = median(wall_b) / per_block * 1e6, median(wall_p) / per_block * 1e6
            aim = f"aim <= {AIM}; " if state_url is None else ""
            result.rows.append(Row(f"chat with a budget, {label} state", b_us, p_us, "us",
                                   f"{aim}{b_us - p_us:+.0f} us per call; block ratios "
                                   f"{min(ratios):.2f}..{max(ratios):.2f}", paired_ratio=median(ratios)))
    result.details.append(f"the budget's own work per call, in-process (gate, check, charge; no HTTP): "
                          f"{_own_us(scale(100_000, 1000)):.1f} us")
    return result


def _own_us(n: int) -> float:
    """What a budget adds to one call with the in-process state, without the call around it."""
    import time

    from llmring import budget
    from llmring.lockmodel import Binding, Budget
    from llmring.registry import ModelInfo
    from llmring.resolve import Resolution
    from llmring.state import MemoryState

    binding = Binding("a", ["openai:m"], budget=Budget(usd_per_day=1e9))
    res = Resolution("a", binding.models, "default", "a", binding, Path("llmring.lock"))
    budgets = budget.Budgets(MemoryState(), log=lambda *_: 0.0)
    info = ModelInfo("openai", "m", input_price=0.15, output_price=0.6)
    start = time.perf_counter()
    for _ in range(n):
        budget.gate(budgets, res).holds_back(info)
        budget.charge(budgets, res, 0.0001)
    return (time.perf_counter() - start) / n * 1e6
