"""`llmring chat` as a person uses it: streaming by default, Ctrl-C, failures."""

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from httpfake import Reply, sse
from lockfiles import one_alias

LLMRING = Path(sys.executable).parent / "llmring"


def write_lock(tmp_path, models):
    one_alias(tmp_path, models, alias="assistant")


def chunk(text, finish=None):
    return {"id": "c", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}


@contextmanager
def chatting(tmp_path, server, frames, delay):
    """`llmring chat "Hi"` as a subprocess, against an OpenAI server streaming `frames`."""
    server.add("POST", "/v1/chat/completions", Reply(chunks=frames, chunk_delay=delay))
    write_lock(tmp_path, ["openai:gpt-4o-mini"])
    env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test"}
    proc = subprocess.Popen([str(LLMRING), "chat", "Hi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=tmp_path)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_chat_prints_the_answer_as_it_arrives(tmp_path, server):
    rest = threading.Event()  # the server holds the rest of the answer back until this is set
    frames = sse(chunk("first "), chunk("second"), chunk(None, "stop"), "[DONE]")
    with chatting(tmp_path, server, [frames[0], rest, *frames[1:]], delay=0) as proc:
        try:
            first = proc.stdout.read(6)  # printed while the rest of the answer is still to come
            done_before = proc.poll()
        finally:
            rest.set()
        out, err = proc.communicate(timeout=30)
    assert first == b"first " and done_before is None
    assert (first + out).decode() == "first second\n"  # one clean newline at the end
    assert proc.returncode == 0 and b"Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_during_an_answer_exits_130_without_a_traceback(tmp_path, server):
    frames = sse(*[chunk("tick ") for _ in range(30)], chunk(None, "stop"), "[DONE]")
    with chatting(tmp_path, server, frames, delay=0.5) as proc:
        assert proc.stdout.read(5) == b"tick "
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"Traceback" not in err


def test_a_failed_chat_lists_each_attempt_and_exits_1(tmp_path):
    write_lock(tmp_path, ["mock:fail-auth", "mock:fail-not_found"])
    result = subprocess.run([str(LLMRING), "chat", "Hi"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "Error: no model could answer for 'assistant':"
    assert lines[1].startswith("  - mock:fail-auth: auth 401") and lines[2].startswith("  - mock:fail-not_found")
    assert "Traceback" not in result.stderr


def test_chat_reads_the_prompt_from_stdin(tmp_path):
    write_lock(tmp_path, ["mock:echo"])
    result = subprocess.run([str(LLMRING), "chat", "-", "--no-stream"], input="from a pipe", capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "from a pipe\n"


def test_json_output_names_the_answering_model_and_attempts(tmp_path):
    import json

    write_lock(tmp_path, ["mock:fail-overloaded", "mock:echo"])
    result = subprocess.run([str(LLMRING), "chat", "ping", "--json"], capture_output=True, text=True, cwd=tmp_path)
    data = json.loads(result.stdout)
    assert data["content"] == "ping" and data["model"] == "mock:echo" and data["alias"] == "assistant"
    assert [a["kind"] for a in data["attempts"]][-1] is None and data["attempts"][0]["kind"] == "overloaded"
    assert data["usage"]["output_tokens"] == 1
