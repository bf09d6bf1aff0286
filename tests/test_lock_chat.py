"""`llmring lock chat`: the advisor engine (llmring.advisor) and the command, driven by the mock
provider's scripted replies (tool calls included) through the real CLI and click's CliRunner."""

import json
import os
import pty
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from clitools import runner

from llmring import advisor as adv
from llmring import init, registry
from llmring import lockfile as lf_mod
from llmring.cli import cli
from llmring.ring import Ring
from llmring.types import ToolCall
from llmring_providers import mock

LLMRING = Path(sys.executable).parent / "llmring"
HAIKU = "anthropic:claude-haiku-4-5-20251001"
MINI = "openai:gpt-4.1-mini"


@pytest.fixture(autouse=True)
def _no_python_scripts():
    yield
    mock.clear_scripts()


def call(name, arguments):
    return {"name": name, "arguments": arguments}


def bind(alias, models, profile="default", **extra):
    return {"action": "bind", "alias": alias, "models": models, "profile": profile, **extra}


def propose(*changes):
    return call("propose_changes", {"changes": list(changes)})


def write_script(tmp_path, monkeypatch, replies, name="advisor"):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({name: replies}), encoding="utf-8")
    monkeypatch.setenv(mock.SCRIPT_ENV, str(path))
    return path


def session(*proposals, done="Done."):
    """A session: search the registry, read the lockfile, then one proposal per reply."""
    replies = [{"content": "Let me check the registry.",
                "tool_calls": [call("search_registry", {"query": "haiku", "provider": "anthropic"}),
                               call("show_lockfile", {})]}]
    replies += [{"content": "Here is my proposal.", "tool_calls": [propose(*p)]} for p in proposals]
    return replies + [done]


def run_cli(*args, stdin="", env=None):
    """The installed `llmring` in a subprocess, stdin piped."""
    return subprocess.run([str(LLMRING), *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=os.getcwd())


def invoke(*args, stdin=""):
    return runner().invoke(cli, list(args), input=stdin)


def existing_lockfile(path):
    ring = Ring(lockfile_path=_touch(path))
    ring.bind_alias("assistant", ["openai:gpt-4.1", HAIKU])
    return path.read_bytes()


def _touch(path):
    lf_mod.write(lf_mod.Lockfile.new(), path)
    return path


# -- through the real CLI -------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_search_propose_yes_writes_the_binding(tmp_path, monkeypatch):
    write_script(tmp_path, monkeypatch, session([bind("summarizer", [HAIKU, MINI], description="Summaries")]))
    result = run_cli("lock", "chat", "--model", "mock:advisor", stdin="I need a summarizer\ny\n")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "Advisor: Let me check the registry." in out
    assert "+++ " in out and '+alias = "summarizer"' in out and f'+    "{HAIKU}",' in out
    assert "Apply these changes? [y/N] y" in out
    assert out.rstrip().endswith("Advisor: Done.")
    assert "searching the registry for 'haiku'" in result.stderr
    ring = Ring(lockfile_path=tmp_path / "llmring.lock")
    res = ring.resolve("summarizer")
    assert res.models == [HAIKU, MINI]
    assert res.binding.description == "Summaries"


@pytest.mark.slow
def test_cli_bundled_advisor_without_keys_fails_with_one_line(tmp_path):
    result = run_cli("lock", "chat", stdin="hello\n")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: the advisor (advisor) cannot answer")
    for ref in ("anthropic:claude-sonnet-4-5-20250929", "openai:gpt-4.1", "google:gemini-2.5-pro"):
        assert ref in line
    assert "ANTHROPIC_API_KEY" in line and "--model" in line
    assert "You:" not in result.stdout  # it failed before asking anything
    assert not (tmp_path / "llmring.lock").exists()


@pytest.mark.slow
def test_cli_ctrl_c_exits_130_without_a_traceback(tmp_path, monkeypatch):
    write_script(tmp_path, monkeypatch, ["never used"])
    # stdin a terminal, as for a person at the prompt: the chat asks with input("You: "), whose
    # prompt (on stdout, a pipe) is written just before it reads the line
    terminal, stdin = pty.openpty()
    proc = subprocess.Popen([str(LLMRING), "lock", "chat", "--model", "mock:advisor"], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    os.close(stdin)
    try:
        assert "advisor: mock:advisor" in proc.stderr.readline()
        assert proc.stdout.read(len("You: ")) == "You: "  # at the prompt
        proc.send_signal(signal.SIGINT)
        # Python only acts on a signal between its own steps: one that lands after the prompt
        # but before the read starts waits for the read to return. Enter ends that read, as a
        # person would press it; a chat that ignored Ctrl-C would then just ask again.
        os.write(terminal, b"\n")
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(terminal)
    assert proc.returncode == 130
    assert "Traceback" not in err


# -- through click's CliRunner ------------------------------------------------------------------

def test_declined_proposal_leaves_the_file_byte_for_byte(tmp_path, monkeypatch):
    path = tmp_path / "llmring.lock"
    before = existing_lockfile(path)
    write_script(tmp_path, monkeypatch, session([bind("summarizer", [HAIKU])], done="As you wish."))
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="add a summarizer\nn\n")
    assert result.exit_code == 0, result.output
    assert "Apply these changes? [y/N] n" in result.stdout
    assert "Declined; the lockfile was not changed." in result.stderr
    assert "Advisor: As you wish." in result.stdout
    assert path.read_bytes() == before


def test_invalid_proposal_is_rejected_and_nothing_is_written(tmp_path, monkeypatch):
    replies = [{"tool_calls": [propose(bind("summarizer", ["gpt-4o"]))]}, "That reference was wrong."]
    write_script(tmp_path, monkeypatch, replies)
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="bind it\n")
    assert result.exit_code == 0, result.output
    assert "Apply these changes?" not in result.stdout
    assert "propose_changes refused: change 1: model reference 'gpt-4o' has no provider" in result.stderr
    assert "Advisor: That reference was wrong." in result.stdout
    assert not (tmp_path / "llmring.lock").exists()


def test_new_profile_is_created(tmp_path, monkeypatch):
    path = tmp_path / "llmring.lock"
    existing_lockfile(path)
    write_script(tmp_path, monkeypatch, session([bind("assistant", [MINI, HAIKU], profile="dev")]))
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="cheaper assistant for dev\ny\n")
    assert result.exit_code == 0, result.output
    assert "new profile: dev" in result.stdout
    assert "+[profiles.dev]" in result.stdout
    ring = Ring(lockfile_path=path)
    assert ring.resolve("assistant", profile="dev").models == [MINI, HAIKU]
    assert ring.resolve("assistant").models == ["openai:gpt-4.1", HAIKU]  # default profile untouched


def test_file_option_creates_the_file_only_when_applied(tmp_path, monkeypatch):
    target = tmp_path / "conf" / "app.lock"
    write_script(tmp_path, monkeypatch, session([bind("extractor", [MINI])]))
    result = invoke("lock", "chat", "--model", "mock:advisor", "--file", str(target), stdin="an extractor\nn\n")
    assert result.exit_code == 0, result.output
    assert f"No lockfile at {target} yet" in result.stderr
    assert not target.exists()
    write_script(tmp_path, monkeypatch, session([bind("extractor", [MINI])]))
    result = invoke("lock", "chat", "--model", "mock:advisor", "--file", str(target), stdin="an extractor\ny\n")
    assert result.exit_code == 0, result.output
    assert Ring(lockfile_path=target).resolve("extractor").models == [MINI]
    assert not (tmp_path / "llmring.lock").exists()


def test_env_lockfile_path_is_the_file_edited(tmp_path, monkeypatch):
    target = tmp_path / "from-env.lock"
    monkeypatch.setenv(lf_mod.ENV_PATH, str(target))
    write_script(tmp_path, monkeypatch, session([bind("extractor", [MINI])]))
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="an extractor\ny\n")
    assert result.exit_code == 0, result.output
    assert Ring(lockfile_path=target).resolve("extractor").models == [MINI]
    assert not (tmp_path / "llmring.lock").exists()


def test_model_option_uses_an_alias_of_the_users_lockfile(tmp_path, monkeypatch):
    path = tmp_path / "llmring.lock"
    existing_lockfile(path)
    Ring(lockfile_path=path).bind_alias("my-advisor", "mock:advisor")
    write_script(tmp_path, monkeypatch, ["Hello from your own alias."])
    result = invoke("lock", "chat", "--model", "my-advisor", stdin="hi\n")
    assert result.exit_code == 0, result.output
    assert "advisor: my-advisor → mock:advisor" in result.stderr
    assert "Advisor: Hello from your own alias." in result.stdout


def test_unknown_model_alias_is_one_error_line(tmp_path):
    result = invoke("lock", "chat", "--model", "nobody", stdin="hi\n")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "Error: --model 'nobody' is not an alias" in result.stderr


def test_advisor_failing_mid_session_is_one_error_line(tmp_path, monkeypatch):
    write_script(tmp_path, monkeypatch, [{"error": "server"}])
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="hi\n")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "mock:advisor: server 503" in errors[0] and "Try again in a while" in errors[0]


def test_exit_and_empty_line_end_the_session(tmp_path, monkeypatch):
    write_script(tmp_path, monkeypatch, ["First answer.", "Second answer."])
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="one\nexit\ntwo\n")
    assert result.exit_code == 0
    assert "First answer." in result.stdout and "Second answer." not in result.stdout
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="\nignored\n")
    assert result.exit_code == 0 and "Advisor:" not in result.stdout


def test_broken_user_lockfile_is_reported_before_the_session(tmp_path):
    (tmp_path / "llmring.lock").write_text("version = \n", encoding="utf-8")
    result = invoke("lock", "chat", "--model", "mock:advisor", stdin="hi\n")
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "llmring.lock" in result.stderr and "TOML" in result.stderr


# -- the engine ---------------------------------------------------------------------------------

class FakeUI:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.deltas, self.notices, self.plans = [], [], []
        self.replies = 0

    def text(self, delta):
        self.deltas.append(delta)

    def end_reply(self):
        self.replies += 1

    def notice(self, line):
        self.notices.append(line)

    def confirm(self, plan):
        self.plans.append(plan)
        return self.answers.pop(0)


def make_advisor(tmp_path, replies=(), answers=(), env=None, **kw):
    mock.script("unit", list(replies) or ["unused"])
    ui = FakeUI(*answers)
    ring = Ring(lockfile_path=lf_mod.BUNDLED, profile="default")
    return adv.Advisor(ring, "mock:unit", tmp_path / "llmring.lock", ui, env=env or {}, **kw), ui


def tool_results(advisor):
    return [json.loads(m.content) for m in advisor.messages if m.role == "tool"]


def test_tool_loop_streams_runs_tools_and_feeds_results_back(tmp_path):
    advisor, ui = make_advisor(tmp_path, session([bind("summarizer", [HAIKU, MINI])]), answers=[True])
    final = advisor.ask("a summarizer please")
    assert final == "Done."
    assert len(ui.deltas) > 3  # streamed word by word, not all at once
    assert "".join(ui.deltas).startswith("Let me check the registry.")
    assert ui.replies == 3
    roles = [m.role for m in advisor.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "assistant", "tool", "assistant"]
    calls = advisor.messages[2].tool_calls
    assert [c.name for c in calls] == ["search_registry", "show_lockfile"]
    assert [m.tool_call_id for m in advisor.messages[3:5]] == [c.id for c in calls]
    search, shown, proposed = tool_results(advisor)
    assert search["models"] and all(r["ref"].startswith("anthropic:") and "haiku" in r["ref"]
                                    for r in search["models"])
    assert shown["exists"] is False
    assert proposed["applied"] is True
    assert Ring(lockfile_path=tmp_path / "llmring.lock").resolve("summarizer").models == [HAIKU, MINI]


def test_declined_result_tells_the_model(tmp_path):
    advisor, ui = make_advisor(tmp_path, [{"tool_calls": [propose(bind("summarizer", [HAIKU]))]}, "OK."],
                               answers=[False])
    advisor.ask("x")
    assert tool_results(advisor) == [{"applied": False, "declined": True, "note": (
        "the user declined; nothing was written. Ask what they would like instead.")}]
    assert not (tmp_path / "llmring.lock").exists()


def test_tool_rounds_are_capped_per_turn(tmp_path):
    looping = [{"tool_calls": [call("show_lockfile", {})]}] * 3
    advisor, ui = make_advisor(tmp_path, looping, max_rounds=2)
    assert advisor.ask("x") == ""
    assert sum(m.role == "tool" for m in advisor.messages) == 2
    assert "used tools 2 times without answering" in ui.notices[-1]


def test_system_prompt_has_date_registry_and_keys(tmp_path):
    advisor, _ = make_advisor(tmp_path, env={"OPENAI_API_KEY": "k", "GEMINI_API_KEY": "g"}, today=date(2031, 2, 3))
    prompt = advisor.messages[0].content
    assert "Today is 2031-02-03." in prompt
    assert f"Model registry version: {registry.load().version}." in prompt
    keyless = init.providers_without_keys()  # from each provider's key_envs, not named in the core
    assert "ollama" in keyless and "mock" not in keyless  # the mock is an offline stand-in, not a model
    assert f"Provider API keys set: google, openai; needing no key: {', '.join(keyless)}." in prompt
    assert "does not exist yet" in prompt
    assert "propose_changes" in prompt and "search_registry" in prompt and '"fast"' in prompt


def test_tool_definitions_are_openai_functions():
    tools = adv.tool_definitions()
    assert [t["function"]["name"] for t in tools] == ["search_registry", "show_lockfile", "propose_changes"]
    for t in tools:
        assert t["type"] == "function" and t["function"]["parameters"]["type"] == "object"
    change = tools[2]["function"]["parameters"]["properties"]["changes"]["items"]
    assert change["properties"]["action"]["enum"] == ["bind", "unbind"]


def run(advisor, name, **arguments):
    return json.loads(advisor.run_tool(ToolCall(id="c1", name=name, arguments=arguments)))


def test_search_registry_filters(tmp_path):
    advisor, _ = make_advisor(tmp_path)
    reg = registry.load()
    cheap = run(advisor, "search_registry", query="", max_input_price=0.5)
    assert cheap["models"] and all(r["input"] is not None and r["input"] <= 0.5 for r in cheap["models"])
    expected = [m.ref for m in reg.models if m.mode == "chat" and m.input_price is not None and m.input_price <= 0.5]
    assert cheap["matches"] == len(expected)
    vision = run(advisor, "search_registry", query="gemini", provider="google", capability="vision")
    assert vision["models"]
    for row in vision["models"]:
        assert row["ref"].startswith("google:gemini") and "vision" in row["capabilities"]
        assert reg.find(row["ref"]).input_price == row["input"]
    assert run(advisor, "search_registry", query="no-such-model-anywhere")["models"] == []


def test_search_registry_reports_deprecation_and_successor(tmp_path):
    advisor, _ = make_advisor(tmp_path)
    rows = run(advisor, "search_registry", query="claude-3-5-haiku")["models"]
    row = next(r for r in rows if r["ref"] == "anthropic:claude-3-5-haiku-20241022")
    assert row["successor"] == HAIKU
    assert row["status"] in ("deprecated 2026-02-19", "deprecation scheduled 2026-02-19")
    current = next(r for r in run(advisor, "search_registry", query="haiku-4-5")["models"] if r["ref"] == HAIKU)
    assert current["status"] == "active" and "successor" not in current


def test_search_registry_bad_arguments_are_errors(tmp_path):
    advisor, _ = make_advisor(tmp_path)
    assert "knows no provider 'acme'" in run(advisor, "search_registry", query="", provider="acme")["error"]
    assert "not a capability" in run(advisor, "search_registry", query="", capability="telepathy")["error"]
    assert "not colour" in run(advisor, "search_registry", query="", colour="red")["error"]


def test_unknown_tool_and_malformed_arguments(tmp_path):
    advisor, _ = make_advisor(tmp_path)
    assert "no tool 'rm_rf'" in json.loads(advisor.run_tool(ToolCall("c", "rm_rf", {})))["error"]
    bad = ToolCall("c", "show_lockfile", raw_arguments="{not json")
    assert "not valid JSON" in json.loads(advisor.run_tool(bad))["error"]
    assert "needs changes" in run(advisor, "propose_changes")["error"]


def test_show_lockfile_lists_bindings_and_findings(tmp_path):
    path = tmp_path / "llmring.lock"
    existing_lockfile(path)
    Ring(lockfile_path=path).bind_alias("solo", "openai:gpt-4.1", profile="dev")
    advisor, ui = make_advisor(tmp_path)
    shown = run(advisor, "show_lockfile")
    assert shown["exists"] is True and shown["default_profile"] == "default"
    assert shown["profiles"]["default"] == [{"alias": "assistant", "models": ["openai:gpt-4.1", HAIKU]}]
    assert shown["profiles"]["dev"] == [{"alias": "solo", "models": ["openai:gpt-4.1"]}]
    assert "warning: dev/solo: has no fallback model" in " ".join(shown["findings"])
    assert any("OPENAI_API_KEY" in f for f in shown["findings"])  # env={} : no keys
    assert ui.notices == [f"reading {path}"]


def test_plan_diff_shows_only_the_change(tmp_path):
    path = tmp_path / "llmring.lock"
    before = existing_lockfile(path).decode()
    advisor, _ = make_advisor(tmp_path)
    plan = advisor.plan([bind("summarizer", [HAIKU], description="Short summaries")])
    assert plan.before == before
    added = [line for line in plan.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    removed = [line for line in plan.diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert added == ["+", "+[[profiles.default.bindings]]", '+alias = "summarizer"', f'+models = ["{HAIKU}"]',
                     '+description = "Short summaries"']
    assert removed == []
    assert plan.diff.startswith(f"--- {path} (now)\n+++ {path} (proposed)\n")
    assert path.read_text() == before  # planning writes nothing
    assert "bind summarizer → " + HAIKU in plan.summary()


def test_plan_for_a_new_file_diffs_against_nothing(tmp_path):
    advisor, _ = make_advisor(tmp_path)
    plan = advisor.plan([bind("summarizer", [HAIKU, MINI])])
    assert plan.creates_file and plan.diff.startswith("--- /dev/null\n")
    assert "(a new file)" in plan.summary()
    assert lf_mod.parse(plan.after).profiles["default"].bindings[0].models == [HAIKU, MINI]


def test_an_empty_existing_file_is_edited_not_created(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text("", encoding="utf-8")
    advisor, _ = make_advisor(tmp_path)
    plan = advisor.plan([bind("summarizer", [HAIKU])])
    assert not plan.creates_file and plan.diff.startswith(f"--- {path} (now)")
    advisor.apply(plan)
    assert Ring(lockfile_path=path).resolve("summarizer").models == [HAIKU]


def test_registry_unknown_model_is_a_warning_not_an_error(tmp_path):
    advisor, ui = make_advisor(tmp_path, [{"tool_calls": [propose(bind("summarizer", ["openai:gpt-4.1-minii"]))]},
                                          "ok"], answers=[True])
    advisor.ask("x")
    plan = ui.plans[0]
    warning = next(w for w in plan.warnings if "not in the model registry" in w)
    assert "did you mean openai:gpt-4.1-mini" in warning
    assert warning in plan.summary()
    result = tool_results(advisor)[0]
    assert result["applied"] is True and warning in result["warnings"]


@pytest.mark.parametrize("changes, message", [
    ([], "non-empty list"),
    ("bind x", "non-empty list"),
    (["bind"], "change 1 must be an object"),
    ([{"action": "rename", "alias": "x", "profile": "default"}], "action must be 'bind' or 'unbind'"),
    ([bind("fast:er", [HAIKU])], "contains a colon"),
    ([bind("x", [])], "bind needs models"),
    ([bind("x", ["gpt-4o"])], "has no provider"),
    ([bind("x", [HAIKU, HAIKU])], "listed twice"),
    ([bind("x", [HAIKU], priority=1)], "unknown key(s) priority"),
    ([bind("x", [HAIKU], profile="has space")], "profile 'has space' is not a valid name"),
    ([bind("x", [HAIKU]), {"action": "unbind", "alias": "ghost", "profile": "default"}],
     "'ghost' is not bound in profile 'default'"),
    ([bind("x", [HAIKU], requires=["tools"])], "unknown key(s) requires"),
    ([bind("x", ["nosuchprovider:model"])], "is not installed"),
])
def test_invalid_proposals_are_errors_and_never_written(tmp_path, changes, message):
    advisor, ui = make_advisor(tmp_path)
    result = run(advisor, "propose_changes", changes=changes)
    assert message in result["error"]
    assert ui.notices[-1] == f"propose_changes refused: {result['error']}"
    assert ui.plans == [] and not (tmp_path / "llmring.lock").exists()


def test_unbind_is_applied(tmp_path):
    path = tmp_path / "llmring.lock"
    existing_lockfile(path)
    Ring(lockfile_path=path).bind_alias("old", HAIKU)
    advisor, ui = make_advisor(tmp_path, answers=[True])
    result = run(advisor, "propose_changes", changes=[{"action": "unbind", "alias": "old", "profile": "default"}])
    assert result["applied"] is True
    assert '-alias = "old"' in ui.plans[0].diff
    assert not Ring(lockfile_path=path).has_alias("old")


def test_rebinding_keeps_params_and_requires(tmp_path):
    path = tmp_path / "llmring.lock"
    existing_lockfile(path)
    Ring(lockfile_path=path).bind_alias("extractor", MINI, params={"temperature": 0}, requires=["json_schema"],
                                        description="JSON out")
    advisor, _ = make_advisor(tmp_path, answers=[True])
    assert run(advisor, "propose_changes", changes=[bind("extractor", [MINI, HAIKU])])["applied"] is True
    b = Ring(lockfile_path=path).resolve("extractor").binding
    assert (b.models, b.params, b.requires, b.description) == ([MINI, HAIKU], {"temperature": 0},
                                                               ["json_schema"], "JSON out")


def test_same_binding_again_is_no_change(tmp_path):
    path = tmp_path / "llmring.lock"
    before = existing_lockfile(path)
    advisor, ui = make_advisor(tmp_path)
    result = run(advisor, "propose_changes", changes=[bind("assistant", ["openai:gpt-4.1", HAIKU])])
    assert result == {"applied": False, "note": "nothing to change: the lockfile already says this"}
    assert ui.plans == [] and path.read_bytes() == before


def test_apply_refuses_when_the_file_changed_since_the_proposal(tmp_path):
    path = tmp_path / "llmring.lock"
    existing_lockfile(path)
    advisor, _ = make_advisor(tmp_path)
    plan = advisor.plan([bind("summarizer", [HAIKU])])
    Ring(lockfile_path=path).bind_alias("meanwhile", MINI)
    changed = path.read_bytes()
    with pytest.raises(adv.ToolError, match="changed since the proposal"):
        advisor.apply(plan)
    assert path.read_bytes() == changed


def test_preflight_names_every_model_and_its_problem():
    ring = Ring(lockfile_path=lf_mod.BUNDLED, profile="default")
    with pytest.raises(adv.AllModelsFailedError) as info:
        adv.preflight(ring, "advisor")
    message = adv.unavailable_message(info.value)
    assert "\n" not in message
    assert message.count("not_configured") == 3 and "Set the API key of one of them" in message
    adv.preflight(ring, "mock:echo")  # no key needed: no error


def test_preflight_passes_when_one_model_has_a_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    adv.preflight(Ring(lockfile_path=lf_mod.BUNDLED, profile="default"), "advisor")


def test_advisor_ring_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMRING_PROFILE", "prod")  # the bundled lockfile has no such profile
    path = tmp_path / "llmring.lock"
    ring, target = adv.advisor_ring(None, path)
    assert (target, ring.lockfile_source) == ("advisor", "explicit")
    assert ring.resolve(target).models[0] == "anthropic:claude-sonnet-4-5-20250929"
    ring, target = adv.advisor_ring("mock:advisor", path)
    assert ring.lockfile_path == lf_mod.BUNDLED
    _touch(path)
    path.write_text(path.read_text() + '\n[providers.local]\ntype = "openai"\nbase_url = "http://127.0.0.1:1"\n')
    ring, target = adv.advisor_ring("local:qwen", path)
    assert ring.lockfile_path == path and target == "local:qwen"


def test_lockfile_target_order(tmp_path, monkeypatch):
    assert adv.lockfile_target() == tmp_path / "llmring.lock"
    monkeypatch.setenv(lf_mod.ENV_PATH, str(tmp_path / "env.lock"))
    assert adv.lockfile_target() == tmp_path / "env.lock"
    assert adv.lockfile_target(str(tmp_path / "given.lock")) == tmp_path / "given.lock"
    with pytest.raises(lf_mod.LockfileError, match="is a directory"):
        adv.lockfile_target(str(tmp_path))


@pytest.mark.slow
def test_cli_interactive_session_on_a_terminal(tmp_path, monkeypatch):
    """stdin a real terminal (a pty): "You: " prompts, the confirmation, and quit."""
    import pty

    write_script(tmp_path, monkeypatch, session([bind("summarizer", [HAIKU, MINI])]))
    main, sub = pty.openpty()
    proc = subprocess.Popen([str(LLMRING), "lock", "chat", "--model", "mock:advisor"], stdin=sub, stdout=sub,
                            stderr=sub, env=dict(os.environ), close_fds=True)
    os.close(sub)
    seen = b""

    def until(marker, count=1):
        nonlocal seen
        deadline = time.monotonic() + 30
        while seen.count(marker) < count:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            seen += os.read(main, 4096)

    try:
        until(b"You: ")
        os.write(main, b"a summarizer please\n")
        until(b"Apply these changes? [y/N] ")
        os.write(main, b"y\n")
        until(b"Done.")
        until(b"You: ", count=2)
        os.write(main, b"quit\n")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert Ring(lockfile_path=tmp_path / "llmring.lock").resolve("summarizer").models == [HAIKU, MINI]
