"""`llmring usage` as a person runs it: tables, --by, --json, --csv, --prune, bad input."""

import csv
import io
import json
import time

import pytest
from clitools import runner
from lockfiles import one_alias
from usagefix import rec, rows

from llmring import usage
from llmring.cli import cli
from llmring.types import Attempt
from llmring.usage import db, writer

NOW = time.time()
DAY = 86400


def run(*args):
    return runner().invoke(cli, ["usage", *args])


@pytest.fixture
def logged():
    """Three days of calls: a summarizer with prices, a failed call, an unpriced local model."""
    w = writer.writer()
    for r in (
        rec("summarizer", 1.00, NOW - 2 * DAY, model="openai:gpt-4o", input_tokens=100, output_tokens=10, elapsed=0.2),
        rec("summarizer", 0.50, NOW - 2 * DAY, model="anthropic:claude", input_tokens=50, output_tokens=5,
            elapsed=0.4, attempts=(Attempt("openai:gpt-4o", "server"), Attempt("anthropic:claude"))),
        rec("summarizer", None, NOW - DAY, model=None, error_kind="auth", elapsed=0.05,
            attempts=(Attempt("openai:gpt-4o", "auth"),)),
        rec("local", None, NOW - 60, model="ollama:llama3", input_tokens=7, output_tokens=3, elapsed=2.5),
        rec("ancient", 9.0, NOW - 400 * DAY, model="openai:gpt-4o"),
    ):
        w.put(db.path(), r)
    assert usage.flush()


def test_by_alias_shows_calls_failures_failovers_tokens_cost_and_latency(logged):
    result = run()
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Usage since ") and "by alias" in lines[0]
    assert lines[1].split()[:4] == ["alias", "calls", "failed", "failovers"]
    summarizer = next(line for line in lines if line.startswith("summarizer"))
    assert summarizer.split()[1:6] == ["3", "1", "2", "150", "15"] and "$1.50" in summarizer
    local = next(line for line in lines if line.startswith("local"))
    assert "unknown (1 unpriced)" in local and "2.5 s" in local  # never shown as $0
    total = lines[-1]
    assert total.startswith("total") and "$1.50 + 1 unpriced" in total
    assert "ancient" not in result.stdout  # older than the default 30 days


def test_json_has_exactly_the_documented_keys(logged):
    result = run("--json", "--since", "500d")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"rows", "total"}
    keys = {"key", "calls", "failed", "failovers", "input_tokens", "output_tokens", "cost", "latency_p50",
            "latency_p95", "unpriced_calls"}
    assert all(set(row) == keys for row in data["rows"]) and set(data["total"]) == keys - {"key"}
    by_key = {row["key"]: row for row in data["rows"]}
    assert by_key["summarizer"]["cost"] == 1.5 and by_key["summarizer"]["failed"] == 1
    assert by_key["summarizer"]["latency_p50"] == 0.2 and by_key["summarizer"]["latency_p95"] == 0.4
    assert by_key["local"]["cost"] is None and by_key["local"]["unpriced_calls"] == 1
    assert data["total"]["calls"] == 5 and data["total"]["cost"] == 10.5 and data["total"]["unpriced_calls"] == 1


def test_by_model_provider_profile_and_alias_filter(logged):
    data = json.loads(run("--json", "--by", "model", "--alias", "summarizer").stdout)
    assert {r["key"]: r["calls"] for r in data["rows"]} == {"openai:gpt-4o": 1, "anthropic:claude": 1,
                                                            "(none answered)": 1}
    data = json.loads(run("--json", "--by", "provider").stdout)
    assert {r["key"] for r in data["rows"]} == {"openai", "anthropic", "ollama", "(none answered)"}
    data = json.loads(run("--json", "--by", "profile").stdout)
    assert [(r["key"], r["calls"]) for r in data["rows"]] == [("default", 4)]


def test_by_day_draws_cost_per_day(logged):
    result = run("--by", "day", "--since", "3d")
    assert result.exit_code == 0, result.stderr
    chart = result.stdout.split("Cost per day\n")[1].splitlines()
    assert len(chart) == 3
    assert "█" * 40 in chart[0] and "$1.50" in chart[0]  # the dearest day fills the width
    assert "█" not in chart[2] and "unknown (1 unpriced)" in chart[2]


def test_until_and_dates(logged):
    data = json.loads(run("--json", "--since", "3d", "--until", "1.5d").stdout)
    assert data["total"]["calls"] == 2
    today = time.strftime("%Y-%m-%d")
    data = json.loads(run("--json", "--since", today, "--until", today).stdout)
    assert data["total"]["calls"] == (1 if time.localtime(NOW - 60).tm_mday == time.localtime(NOW).tm_mday else 0)


def test_csv_has_a_header_the_groups_and_the_total(logged):
    result = run("--csv")
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["key"] for r in table][-1] == "total" and len(table) == 3
    assert table[-1]["calls"] == "4" and table[1]["cost"] == ""  # unknown cost is empty, not 0


@pytest.mark.parametrize("args, says", [
    (["--since", "yesterday"], "'yesterday' is neither an age like 7d"),
    (["--until", "2026-13-01"], "'2026-13-01' is neither"),
    (["--since", "1d", "--until", "2d"], "--until (2d) is not after --since (1d)"),
    (["--prune", "soon"], "'soon' is neither"),
])
def test_bad_times_are_one_line_and_exit_2(args, says):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr and "Traceback" not in result.stderr


def test_a_bad_by_is_refused_by_click():
    assert run("--by", "week").exit_code == 2


def test_no_db_yet_is_a_friendly_message():
    result = run()
    assert result.exit_code == 0 and "No usage recorded yet" in result.stdout and not db.path().exists()
    data = json.loads(run("--json").stdout)
    assert data["rows"] == [] and data["total"]["calls"] == 0


def test_a_corrupt_db_is_one_line_and_exit_1():
    db.path().write_bytes(b"\0junk" * 4000)
    result = run()
    assert result.exit_code == 1 and "cannot be read" in result.stderr and "Traceback" not in result.stderr


def test_prune_deletes_older_rows_only(logged):
    result = run("--prune", "90d")
    assert result.exit_code == 0 and result.stdout.startswith("Deleted 1 call from before ")
    assert sorted(r["alias"] for r in rows(db.path())) == ["local", "summarizer", "summarizer", "summarizer"]


def test_batch_rows_appear_in_the_log(tmp_path):
    one_alias(tmp_path, ["mock:echo"])
    (tmp_path / "in.jsonl").write_text('{"id": 1, "prompt": "one"}\n{"id": 2, "prompt": "two words"}\n')
    result = runner().invoke(cli, ["batch", "a", "in.jsonl", "-o", "out.jsonl"])
    assert result.exit_code == 0, result.stderr
    usage.flush()
    assert sorted(r["input_tokens"] for r in rows(db.path())) == [1, 2]
    data = json.loads(run("--json").stdout)
    assert data["rows"][0]["key"] == "a" and data["rows"][0]["calls"] == 2
