"""`llmring batch` as a person runs it: rows, failures, bad lines, resume, Ctrl-C, kill -9, progress."""

import json
import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from clitools import runner
from httpfake import Reply, openai_answer, wait_for

from llmring.cli import cli

LLMRING = Path(sys.executable).parent / "llmring"


def write_lock(tmp_path, models, dev_models=None):
    def profile(name, models):
        refs = ", ".join(f'"{m}"' for m in models)
        return (f'[profiles.{name}]\nname = "{name}"\n\n'
                f'[[profiles.{name}.bindings]]\nalias = "a"\nmodels = [{refs}]\n\n')

    (tmp_path / "llmring.lock").write_text('version = "1.0"\ndefault_profile = "default"\n\n'
                                           + profile("default", models)
                                           + (profile("dev", dev_models) if dev_models else ""))


def write_input(tmp_path, lines, name="in.jsonl"):
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def rows(path):
    text = Path(path).read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def openai_reply(text, status=200):
    if status != 200:
        return Reply(status=status, json={"error": {"message": "no", "type": "invalid_request_error"}})
    return openai_answer(text, 10, 2)


@pytest.fixture
def openai(tmp_path, server, monkeypatch):
    """An alias "a" -> openai:gpt-4o-mini on the fake server, which answers each prompt upper-cased
    (401 for the prompt "deny")."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    write_lock(tmp_path, ["openai:gpt-4o-mini"])

    def reply(rec):
        prompt = rec.json()["messages"][-1]["content"]
        return openai_reply(prompt.upper(), 401 if prompt == "deny" else 200)

    server.add("POST", "/v1/chat/completions", reply)
    return server


def batch(*args):
    return runner().invoke(cli, ["batch", *args])


def asked(server):
    return [rec.json()["messages"][-1]["content"] for rec in server.requests]


def test_each_line_becomes_a_row_with_content_model_usage_and_cost(tmp_path, openai):
    source = write_input(tmp_path, [{"id": "a1", "prompt": "hello"},
                                    {"id": 2, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}])
    result = batch("a", str(source), "-o", "out.jsonl", "--concurrency", "2")
    assert result.exit_code == 0, result.stderr
    out = rows(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == ["a1", 2] and [r["content"] for r in out] == ["HELLO", "HI"]
    assert out[0]["model"] == "openai:gpt-4o-mini" and out[0]["error"] is None
    assert out[0]["usage"] == {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    assert out[0]["cost"] > 0  # gpt-4o-mini has prices in the bundled registry
    sent = {rec.json()["messages"][-1]["content"]: rec.json() for rec in openai.requests}
    assert sent["hi"]["max_tokens"] == 5 and "max_tokens" not in sent["hello"]
    assert result.stdout == ""
    assert result.stderr.startswith("Done: 2 answered, 0 failed; $0.") and "\x1b" not in result.stderr


def test_a_failed_item_is_a_row_with_its_error_kind_and_the_exit_code_says_so(tmp_path, openai):
    source = write_input(tmp_path, [{"id": 1, "prompt": "x"}, {"id": 2, "prompt": "deny"}, {"id": 3, "prompt": "z"}])
    result = batch("a", str(source), "-o", "out.jsonl")
    assert result.exit_code == 3
    out = rows(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [1, 2, 3]
    assert out[1]["content"] is None and out[1]["error"]["kind"] == "auth" and out[1]["error"]["message"]
    assert "sk-test" not in (tmp_path / "out.jsonl").read_text()
    assert "2 answered, 1 failed" in result.stderr


def test_bad_lines_are_reported_by_number_and_skipped_the_rest_answered(tmp_path, openai):
    source = write_input(tmp_path, [
        {"id": 1, "prompt": "ok"}, "not json", "[1, 2]", {"prompt": "no id"}, {"id": 1, "prompt": "again"},
        {"id": 5}, {"id": 6, "prompt": "x", "temprature": 1}, {"id": 7, "prompt": "x", "temperature": -1},
        {"id": 8, "prompt": "x", "model": "openai:gpt-4o"}, "", {"id": 9, "prompt": "last"}])
    result = batch("a", str(source), "-o", "out.jsonl")
    assert result.exit_code == 3
    reported = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith(str(source))]
    assert reported == [f"{source} line {n}" for n in (2, 3, 4, 5, 6, 7, 8, 9)]
    assert "line 5: id 1 is already on line 1" in result.stderr and "temprature" in result.stderr
    assert [r["id"] for r in rows(tmp_path / "out.jsonl")] == [1, 9]
    assert "8 bad input lines skipped" in result.stderr.splitlines()[-1]


def test_a_line_that_is_not_utf8_is_a_bad_line(tmp_path, openai):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": 1, "prompt": "\xff\xfe"}\n{"id": 2, "prompt": "ok"}\n')
    result = batch("a", str(source), "-o", "out.jsonl")
    assert result.exit_code == 3 and f"{source} line 1: it is not UTF-8 text; skipped." in result.stderr
    assert [r["id"] for r in rows(tmp_path / "out.jsonl")] == [2]


def test_a_second_run_skips_ids_already_answered(tmp_path, openai):
    source = write_input(tmp_path, [{"id": i, "prompt": f"p{i}"} for i in range(4)])
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": 0, "content": "P0"}) + "\n"
                                        + json.dumps({"id": 2, "content": "P2"}) + "\n")
    result = batch("a", str(source), "-o", "out.jsonl")
    assert result.exit_code == 0, result.stderr
    assert sorted(asked(openai)) == ["p1", "p3"]
    assert sorted(r["id"] for r in rows(tmp_path / "out.jsonl")) == [0, 1, 2, 3]
    assert "2 already in out.jsonl" in result.stderr


def test_retry_failed_asks_the_failed_items_again_and_replaces_their_rows(tmp_path, openai):
    source = write_input(tmp_path, [{"id": i, "prompt": f"p{i}"} for i in range(3)])
    out = tmp_path / "out.jsonl"
    out.write_text(json.dumps({"id": 0, "content": "P0", "error": None}) + "\n"
                   + json.dumps({"id": 1, "content": None, "error": {"kind": "server", "message": "503"}}) + "\n")
    os.chmod(out, 0o640)
    result = batch("a", str(source), "-o", "out.jsonl", "--retry-failed")
    assert result.exit_code == 0, result.stderr
    assert "Asking 1 failed item again." in result.stderr
    assert sorted(asked(openai)) == ["p1", "p2"]
    assert [(r["id"], r["error"]) for r in rows(out)] == [(0, None), (1, None), (2, None)]
    assert os.stat(out).st_mode & 0o777 == 0o640 and [p.name for p in tmp_path.glob(".llmring-batch-*")] == []


def test_an_unfinished_last_row_is_dropped_and_its_item_asked_again(tmp_path, openai):
    source = write_input(tmp_path, [{"id": i, "prompt": f"p{i}"} for i in range(3)])
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": 0, "content": "P0"}) + '\n{"id": 1, "cont')
    result = batch("a", str(source), "-o", "out.jsonl")
    assert result.exit_code == 0, result.stderr
    assert "Dropped an unfinished last line" in result.stderr
    assert sorted(asked(openai)) == ["p1", "p2"]
    assert [r["id"] for r in rows(tmp_path / "out.jsonl")] == [0, 1, 2]


def test_a_whole_last_row_that_lost_only_its_newline_is_kept(tmp_path, openai):
    source = write_input(tmp_path, [{"id": i, "prompt": f"p{i}"} for i in range(2)])
    (tmp_path / "out.jsonl").write_text(json.dumps({"id": 0, "content": "P0"}))
    assert batch("a", str(source), "-o", "out.jsonl").exit_code == 0
    assert asked(openai) == ["p1"] and [r["id"] for r in rows(tmp_path / "out.jsonl")] == [0, 1]


def test_an_output_file_that_is_not_ours_is_refused_untouched(tmp_path, openai):
    source = write_input(tmp_path, [{"id": 1, "prompt": "x"}])
    (tmp_path / "out.jsonl").write_text("hello\n" + json.dumps({"id": 0}) + "\n")
    result = batch("a", str(source), "-o", "out.jsonl")
    assert result.exit_code == 1 and "out.jsonl line 1 is not a row" in result.stderr
    assert (tmp_path / "out.jsonl").read_text().startswith("hello\n") and openai.requests == []


def test_an_unknown_alias_fails_before_touching_anything(tmp_path, openai):
    source = write_input(tmp_path, [{"id": 1, "prompt": "x"}])
    result = batch("typo", str(source), "-o", "out.jsonl")
    assert result.exit_code == 1 and result.stderr.startswith("Error:") and "typo" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_the_profile_option_and_stdin(tmp_path):
    write_lock(tmp_path, ["mock:fail-auth"], dev_models=["mock:echo"])
    result = runner().invoke(cli, ["batch", "a", "-", "-o", "out.jsonl", "--profile", "dev"],
                             input=json.dumps({"id": "x", "prompt": "from stdin"}) + "\n")
    assert result.exit_code == 0, result.stderr
    assert rows(tmp_path / "out.jsonl")[0]["content"] == "from stdin"


def test_output_and_input_must_differ(tmp_path):
    write_lock(tmp_path, ["mock:echo"])
    source = write_input(tmp_path, [{"id": 1, "prompt": "x"}])
    result = batch("a", str(source), "-o", str(source))
    assert result.exit_code == 2 and "another file" in result.stderr


def start(tmp_path, server, items, *args, stderr=subprocess.PIPE, hold=None):
    """`llmring batch` as a subprocess against a server that takes 0.2 s per answer. With
    `hold` (a threading.Event), every answer after the first four waits until it is set."""
    write_lock(tmp_path, ["openai:gpt-4o-mini"])

    def answer(rec):
        prompt = rec.json()["messages"][-1]["content"]
        if hold is not None and int(prompt[1:]) >= 4:
            hold.wait(60)
        return Reply(delay=0.2, json=openai_reply(prompt).json)

    server.add("POST", "/v1/chat/completions", answer)
    source = write_input(tmp_path, [{"id": i, "prompt": f"p{i}"} for i in range(items)])
    env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen([str(LLMRING), "batch", "a", str(source), "-o", "out.jsonl", *args],
                            stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=tmp_path)


def written(tmp_path):
    path = tmp_path / "out.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


@pytest.mark.slow
def test_ctrl_c_leaves_a_valid_file_exits_130_and_the_next_run_finishes(tmp_path, server, monkeypatch):
    held = threading.Event()  # answers after the first four wait for it: Ctrl-C lands mid-run, however slow the box
    proc = start(tmp_path, server, 40, "--concurrency", "2", hold=held)
    try:
        assert wait_for(lambda: written(tmp_path) >= 2, 60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        held.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and b"Traceback" not in err
    assert err.decode().splitlines()[-1].startswith("Interrupted: ") and b"again to resume" in err
    first = rows(tmp_path / "out.jsonl")  # every line whole
    assert 2 <= len(first) < 40
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    result = batch("a", "in.jsonl", "-o", "out.jsonl", "--concurrency", "8")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["id"] for r in rows(tmp_path / "out.jsonl")) == list(range(40))  # each exactly once


@pytest.mark.slow
def test_ctrl_c_keeps_answers_that_finished_before_a_slow_first_item(tmp_path, server):
    write_lock(tmp_path, ["openai:gpt-4o-mini"])
    server.add("POST", "/v1/chat/completions", lambda rec: Reply(
        delay=30 if rec.json()["messages"][-1]["content"] == "p0" else 0,
        json=openai_reply(rec.json()["messages"][-1]["content"]).json))
    source = write_input(tmp_path, [{"id": i, "prompt": f"p{i}"} for i in range(4)])
    env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test"}
    proc = subprocess.Popen([str(LLMRING), "batch", "a", str(source), "-o", "out.jsonl", "-c", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    try:
        # One worker hangs on p0; the other asks p1, p2, then p3: once p3 is asked, the answers
        # to p1 and p2 are in hand, waiting for p0's turn.
        assert wait_for(lambda: len(server.requests) >= 4, 60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    ids = [r["id"] for r in rows(tmp_path / "out.jsonl")]
    assert {1, 2} <= set(ids) and 0 not in ids and len(ids) == len(set(ids))
    assert all(r["content"] == f"p{r['id']}" for r in rows(tmp_path / "out.jsonl"))  # each answer under its own id


@pytest.mark.slow
def test_after_kill_9_a_rerun_completes_every_id_exactly_once(tmp_path, server, monkeypatch):
    proc = start(tmp_path, server, 30, "--concurrency", "3")
    try:
        assert wait_for(lambda: written(tmp_path) >= 3, 60)
    finally:
        proc.kill()  # SIGKILL: no clean-up at all
        proc.wait()
    with open(tmp_path / "out.jsonl", "a") as f:
        f.write('{"id": 29, "content": "half a ro')  # what a kill in the middle of a write leaves
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    result = batch("a", "in.jsonl", "-o", "out.jsonl", "--concurrency", "8")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["id"] for r in rows(tmp_path / "out.jsonl")) == list(range(30))


@pytest.mark.slow
def test_a_terminal_shows_a_progress_bar_on_stderr(tmp_path, server):
    reader, writer = pty.openpty()
    proc = start(tmp_path, server, 12, "--concurrency", "2", stderr=writer)
    os.close(writer)
    seen = b""
    try:
        while True:
            try:
                data = os.read(reader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            seen += data
        proc.wait(timeout=60)
    finally:
        os.close(reader)
        if proc.poll() is None:
            proc.kill()
    text = seen.decode()
    assert proc.returncode == 0
    assert "/12 done · 0 failed · $" in text and "/s · ETA " in text
    assert text.rstrip().splitlines()[-1].split("\x1b[K")[-1].startswith("Done: 12 answered")
