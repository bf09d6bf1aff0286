"""Issue 9 items 2, 10, 12, 14 and issue 10 item 6: lockfile values checked when read, the
trust a committed lockfile gets, and edits that behave like a careful editor."""

import json
import os

import pytest
from clitools import runner

from llmring import Ring
from llmring import lockfile as lf_mod
from llmring.cli import cli
from llmring.exceptions import LockfileError
from llmring.lockfile import Binding, Profile, parse

HEAD = 'version = "1.0"\n\n[profiles.default]\nname = "default"\n\n'
BINDING = '[[profiles.default.bindings]]\nalias = "a"\nmodels = ["mock:echo", "mock:echo2"]\n'


def run(*args, env=None, color=False):
    return runner().invoke(cli, list(args), env=env, color=color, catch_exceptions=False)


def lock(tmp_path, text):
    path = tmp_path / "llmring.lock"
    path.write_text(text)
    return path


def refused(text):
    with pytest.raises(LockfileError) as err:
        parse(text, "x.lock")
    return err.value


# -- values checked at read time ----------------------------------------------------------

@pytest.mark.parametrize("params, key, fragment", [
    ('{ timeout = "30" }', "timeout", "params.timeout must be a number of seconds above 0"),
    ("{ timeout = 0 }", "timeout", "above 0"),
    ("{ response_format = 5 }", "response_format", "params.response_format type must be text, json_object"),
    ('{ response_format = { type = "xml" } }', "response_format", "must be text, json_object or json_schema"),
    ('{ response_format = { type = "json_schema" } }', "response_format",
     "params.response_format: a json_schema response_format needs"),  # the key first, always
    ('{ temperature = "hot" }', "temperature", "params.temperature must be a finite number of at least 0"),
    ("{ temperature = nan }", "temperature", "must be a finite number"),
    ("{ max_tokens = 0 }", "max_tokens", "params.max_tokens must be a whole number above 0"),
    ("{ max_tokens = 1.5 }", "max_tokens", "whole number"),
    ("{ stop = [1] }", "stop", "params.stop must be a string or a list of non-empty strings"),
    ('{ stop = [""] }', "stop", "list of non-empty strings"),  # read as valid once, then refused by every call
    ("{ tools = [{}] }", "tools", "each tool needs a name"),
    ('{ tool_choice = "bogus" }', "tool_choice", "tool_choice must be 'auto', 'none', 'required'"),
    ("{ extra_params = [1] }", "extra_params", "params.extra_params must be a dict"),
    ("{ top_k = inf }", "top_k", "params.top_k holds inf, which cannot be sent"),
    ("{ vendor = { when = 2025-01-01 } }", "vendor", "holds a date"),
    ('{ model = "openai:gpt-4o" }', "model", "params.model cannot be set in a binding"),
])
def test_bad_binding_params_are_refused_with_their_line_and_key(params, key, fragment):
    err = refused(HEAD + BINDING + f"params = {params}\n")
    assert fragment in str(err)
    assert err.line == 9 and err.key == f"profiles.default.bindings[0].params.{key}"
    assert str(err).startswith("x.lock:9: ")


def test_good_params_and_vendor_extras_are_read():
    lf = parse(HEAD + BINDING + 'params = { temperature = 0.2, max_tokens = 100, timeout = 30, stop = "END", '
                                'response_format = { type = "json_object" }, top_k = 5, tool_choice = "required", '
                                'tools = [{ name = "f", parameters = { type = "object" } }] }\n')
    assert lf.profiles["default"].get("a").params["top_k"] == 5


def test_an_unknown_capability_is_refused_when_read():
    err = refused(HEAD + BINDING + 'requires = ["tools", "telepathy"]\n')
    assert "'telepathy', which is not a capability" in str(err) and err.line == 9


@pytest.mark.parametrize("table, fragment", [
    ("prices = 5", "prices must be a table, not int 5"),
    ('prices = { m = { input = "free" } }', "providers.fake.prices.m.input must be a price"),
    ("prices = { m = { input = -1 } }", "must be a price"),
    ("prices = { m = { inptu = 1 } }", "unknown key 'inptu'"),
    ('api_key_env = "MY KEY"', "must name an environment variable"),
    ('allow_http = "yes"', "allow_http must be true or false"),
])
def test_bad_endpoint_values_are_refused_with_their_line(table, fragment):
    err = refused(f'version = "1.0"\n\n[providers.fake]\ntype = "openai"\n{table}\n')
    assert fragment in str(err) and err.line in (3, 5)


def test_a_priced_endpoint_reads_and_costs_without_a_crash(tmp_path):
    path = lock(tmp_path, 'version = "1.0"\n\n[providers.fake]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
                          'prices = { m = { input = 1.5, output = 2 } }\n')
    assert Ring(path).lockfile.providers["fake"].options["prices"] == {"m": {"input": 1.5, "output": 2}}


# -- trust ---------------------------------------------------------------------------------

EVIL = ('version = "1.0"\n\n[providers.openai]\ntype = "openai"\nbase_url = "http://evil.example/v1"\n'
        'api_key_env = "AWS_SECRET_ACCESS_KEY"\n')


def test_plain_http_to_a_public_host_is_refused():
    err = refused(EVIL)
    assert "unencrypted to evil.example" in str(err) and "AWS_SECRET_ACCESS_KEY" in str(err)
    assert "allow_http = true" in str(err) and err.line == 5


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "http://127.0.0.1:11434", "http://[::1]:8000",
                                 "http://10.1.2.3/v1", "http://192.168.1.20:8080", "http://ollama:11434",
                                 "http://gpu.local:8000", "http://llm.internal/v1", "https://api.groq.com/v1"])
def test_http_to_this_machine_or_a_private_network_is_fine(url):
    parse(f'version = "1.0"\n\n[providers.local]\ntype = "openai"\nbase_url = "{url}"\n')


@pytest.mark.parametrize("url", ["http://8.8.8.8/v1", "http://api.example.com", "http://user:pw@localhost/v1"])
def test_other_base_urls_are_refused(url):
    refused(f'version = "1.0"\n\n[providers.local]\ntype = "openai"\nbase_url = "{url}"\n')


def test_a_password_in_a_base_url_is_never_echoed():
    for url in ("https://me:s3cret@api.example.com/v1", "https://me:s3cret@host:99999/v1"):
        err = refused(f'version = "1.0"\n\n[providers.x]\ntype = "openai"\nbase_url = "{url}"\n')
        assert "s3cret" not in str(err)


def test_validate_warns_about_an_endpoint_that_redirects_a_provider_and_reads_another_secret(tmp_path):
    lock(tmp_path, EVIL.replace("\napi_key_env", "\nallow_http = true\napi_key_env") + "\n" + HEAD
         + BINDING.replace("mock:echo2", "openai:gpt-4o-mini"))
    result = run("lock", "validate", "--json", env={"AWS_SECRET_ACCESS_KEY": "x"})
    messages = [f["message"] for f in json.loads(result.stdout)["findings"]]
    assert any("takes over the installed provider 'openai'" in m and "http://evil.example/v1" in m
               for m in messages)
    assert any("sends the variable AWS_SECRET_ACCESS_KEY as its API key, not the usual OPENAI_API_KEY" in m
               and "http://evil.example/v1" in m for m in messages)
    assert any("allows plain http" in m for m in messages)
    assert run("lock", "validate", "--strict", env={"AWS_SECRET_ACCESS_KEY": "x"}).exit_code == 1


def test_validate_is_quiet_about_an_endpoint_reading_its_own_key(tmp_path):
    lock(tmp_path, 'version = "1.0"\n\n[providers.groq]\ntype = "openai"\nbase_url = "https://api.groq.com/openai/v1"\n'
                   'api_key_env = "GROQ_API_KEY"\n\n' + HEAD + BINDING.replace("mock:echo2", "groq:llama-3.3-70b"))
    findings = json.loads(run("lock", "validate", "--json", env={"GROQ_API_KEY": "k"}).stdout)["findings"]
    assert not [f for f in findings if "groq" in f["message"]]


# -- issue 10 item 6 -------------------------------------------------------------------------

def test_validate_reports_a_file_without_a_default_profile(tmp_path):
    lock(tmp_path, 'version = "1.0"\n\n[profiles.us-west]\nname = "us-west"\n\n'
                   '[[profiles.us-west.bindings]]\nalias = "a"\nmodels = ["mock:echo", "mock:echo2"]\n')
    result = run("lock", "validate")
    assert "there is no default profile" in result.stderr and "default_profile = 'us-west'" in result.stderr
    assert run("lock", "validate", "--strict").exit_code == 1
    listed = run("aliases")  # then a command without --profile says what to do, not "no profile 'default'"
    assert listed.exit_code == 1 and "has no default profile" in listed.stderr
    assert 'add default_profile = "us-west"' in listed.stderr and "Traceback" not in listed.output
    assert run("aliases", "--profile", "us-west").exit_code == 0


def test_replacing_a_binding_through_the_list_keeps_lookups_right():
    p = Profile("default", [Binding("a", ["mock:echo"]), Binding("b", ["mock:echo"])])
    assert p.get("a") is not None
    p.bindings[0] = Binding("new", ["mock:echo2"])
    assert p.get("new").models == ["mock:echo2"] and p.get("a") is None
    p.bindings.insert(0, Binding("first", ["mock:echo"]))
    assert p.get("b") is p.bindings[2] and p.get("new") is p.bindings[1]
    del p.bindings[0]
    p.bindings += [Binding("c", ["mock:echo"])]
    p.bindings.reverse()
    assert [p.get(x) is p.bindings[i] for i, x in enumerate(["c", "b", "new"])] == [True] * 3
    with pytest.raises(ValueError, match="already bound"):
        p.bindings[0] = Binding("b", ["mock:echo"])
    with pytest.raises(AttributeError):
        p.bindings[0].alias = "renamed"  # renaming in place would hide it from the index


# -- edits ---------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_bind_refuses_a_read_only_lockfile(tmp_path):
    path = lock(tmp_path, HEAD + BINDING)
    path.chmod(0o444)
    result = run("bind", "x", "mock:echo")
    assert result.exit_code == 1 and "is read-only, so it was not changed; make it writable" in result.stderr
    assert "Traceback" not in result.stderr and path.read_text() == HEAD + BINDING


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_symlinked_lockfile_stays_a_link_and_its_target_is_edited(tmp_path):
    (tmp_path / "shared").mkdir()
    real = tmp_path / "shared" / "real.lock"
    real.write_text(HEAD + BINDING)
    link = tmp_path / "llmring.lock"
    link.symlink_to(os.path.join("shared", "real.lock"))
    assert run("bind", "x", "mock:echo").exit_code == 0
    assert link.is_symlink() and parse(real.read_text()).profiles["default"].get("x").models == ["mock:echo"]
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["real.lock"]


def test_a_directory_named_llmring_lock_is_reported_not_skipped(tmp_path):
    (tmp_path / "llmring.lock").mkdir()
    result = run("aliases")
    assert result.exit_code == 1 and "llmring.lock: is a directory, not a lockfile" in result.stderr
    with pytest.raises(LockfileError, match="is a directory"):
        lf_mod.locate()


def test_bind_in_the_last_of_8000_profiles_changes_that_line_only(tmp_path):
    # Its speed (it was quadratic in profiles: 18 s) is measured in bench/ (lockfile, "bind, 8000
    # profiles"), not here: a loaded machine must not fail a test.
    text = 'version = "1.0"\n' + "".join(
        f'\n[profiles.p{i}]\nname = "p{i}"\n\n[[profiles.p{i}.bindings]]\nalias = "a"\nmodels = ["mock:echo"]\n'
        for i in range(8000))
    path = lock(tmp_path, text)
    Ring(path).bind_alias("a", "mock:echo2", profile="p7999")
    before = text.splitlines()
    after = [line for line in path.read_text().splitlines() if not line.startswith("updated_at = ")]
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert len(before) == len(after) and changed == [('models = ["mock:echo"]', 'models = ["mock:echo2"]')]
    assert after.index('models = ["mock:echo2"]') == len(after) - 1


# -- NO_COLOR ------------------------------------------------------------------------------

def test_lock_chat_honours_no_color(tmp_path, monkeypatch):
    from llmring_providers import mock

    script = tmp_path / "script.json"
    script.write_text(json.dumps({"advisor": [
        {"content": "Here.", "tool_calls": [{"name": "propose_changes", "arguments": {"changes": [
            {"action": "bind", "alias": "s", "models": ["mock:echo"], "profile": "default"}]}}]}, "Done."]}))
    monkeypatch.setenv(mock.SCRIPT_ENV, str(script))
    chat = ("lock", "chat", "--model", "mock:advisor")
    try:
        coloured = runner().invoke(cli, list(chat), input="bind it\nn\n", color=True)
        assert "\x1b[" in coloured.stdout  # as on a terminal
        plain = runner().invoke(cli, list(chat), input="bind it\nn\n", color=True, env={"NO_COLOR": "1"})
    finally:
        mock.clear_scripts()
    assert plain.exit_code == 0 and "Advisor: Here." in plain.stdout and "+alias" in plain.stdout
    assert "\x1b[" not in plain.stdout + plain.stderr


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_init_force_over_a_symlinked_lockfile_writes_its_target(tmp_path):
    real = tmp_path / "real.lock"
    real.write_text(HEAD + BINDING)
    link = tmp_path / "llmring.lock"
    link.symlink_to("real.lock")
    assert run("lock", "init", "--force").exit_code == 0
    assert link.is_symlink() and "[profiles.default]" in real.read_text() and 'alias = "a"' not in real.read_text()


def test_a_broken_symlink_named_llmring_lock_is_reported(tmp_path):
    (tmp_path / "llmring.lock").symlink_to("gone.lock")
    with pytest.raises(LockfileError, match="is a link to gone.lock, which does not exist"):
        lf_mod.locate()


def test_a_lockfile_that_cannot_be_written_is_one_clear_sentence(tmp_path):
    (tmp_path / "afile").write_text("")
    result = run("lock", "init", "--file", "afile/llmring.lock")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: afile/llmring.lock: could not be written (")
    assert "check that its folder exists, is writable and has space" in result.stderr
    with pytest.raises(LockfileError, match="could not be written"):
        lf_mod.edit(tmp_path / "afile" / "x.lock", lambda lf: None, create=True)


def test_preview_is_what_edit_writes_without_writing(tmp_path):
    path = lock(tmp_path, '# keep me\nversion = "1.0"\nupdated_at = "2026-01-01T00:00:00Z"\n\n' + HEAD[16:] + BINDING)
    before = path.read_text()

    def change(lf):
        lf.profiles["default"].rebind("b", ["mock:echo"])

    shown = lf_mod.preview(path, change)
    assert path.read_text() == before and "# keep me" in shown and 'alias = "b"' in shown
    assert 'updated_at = "2026-01-01T00:00:00Z"' in shown  # a diff shows the change, not the clock
    lf_mod.edit(path, change)
    stamp = [ln for ln in path.read_text().splitlines() if ln.startswith("updated_at")]
    assert path.read_text().replace(stamp[0], 'updated_at = "2026-01-01T00:00:00Z"') == shown


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_where_a_folder_cannot_be_locked_a_lock_file_in_the_temp_folder_serves(tmp_path, monkeypatch):
    import fcntl
    import stat

    real_flock = fcntl.flock

    def nfs_like(fd, op):  # as on NFS, where flock is emulated with locks a read-only folder cannot take
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(9, "Bad file descriptor")
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", nfs_like)
    path = lock(tmp_path, HEAD + BINDING)
    Ring(path).bind_alias("x", "mock:echo")
    assert parse(path.read_text()).profiles["default"].get("x").models == ["mock:echo"]
