"""Profiles that extend: `[profiles.prod] extends = "staging"` looks an alias up in prod, then up
its chain, then in the default profile; cycles and unknown parents are refused at read time
with the file and line; edits keep `extends` and its comments."""

import json

import pytest
from clitools import runner

from llmring import Ring
from llmring import lockfile as lf_mod
from llmring.cli import cli
from llmring.exceptions import AliasNotFoundError, LockfileError, MissingAliasesError

CHAIN = '''version = "1.0"
default_profile = "default"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["mock:default"]

[[profiles.default.bindings]]
alias = "fast"
models = ["mock:fast"]

[profiles.staging]
name = "staging"
extends = "default"

[[profiles.staging.bindings]]
alias = "summarizer"
models = ["mock:staging"]

[[profiles.staging.bindings]]
alias = "writer"
models = ["mock:echo", "mock:writer-backup"]

# prod is staging plus its own summarizer
[profiles.prod]
name = "prod"
extends = "staging"  # reviewed in PR 12

[[profiles.prod.bindings]]
alias = "summarizer"
models = ["mock:prod"]
'''


@pytest.fixture
def chained(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(CHAIN)
    return path


def profiles_text(extends: dict) -> str:
    """A lockfile whose profiles extend as `extends` says (name -> parent or None)."""
    text = 'version = "1.0"\n'
    for name, parent in extends.items():
        text += f'\n[profiles.{name}]\nname = "{name}"\n' + (f'extends = "{parent}"\n' if parent else "")
        text += f'\n[[profiles.{name}.bindings]]\nalias = "a-{name}"\nmodels = ["mock:{name}"]\n'
    return text


def test_an_alias_is_looked_up_in_the_profile_then_up_its_chain_then_in_the_default(chained):
    ring = Ring()
    assert ring.resolve_alias("summarizer", profile="prod") == "mock:prod"
    writer = ring.resolve("writer", profile="prod")
    assert (writer.models, writer.profile, writer.chain) == (
        ["mock:echo", "mock:writer-backup"], "staging", ("prod", "staging", "default"))
    assert writer.inherited
    fast = ring.resolve("fast", profile="prod")
    assert (fast.models, fast.profile) == (["mock:fast"], "default")
    own = ring.resolve("summarizer", profile="staging")
    assert (own.profile, own.chain, own.inherited) == ("staging", ("staging", "default"), False)
    assert ring.resolve("summarizer").chain == ("default",)


def test_list_has_and_require_aliases_honour_the_chain(chained):
    ring = Ring(profile="prod")
    assert ring.list_aliases() == {"summarizer": "mock:prod", "fast": "mock:fast", "writer": "mock:echo"}
    assert ring.list_aliases(profile="default") == {"summarizer": "mock:default", "fast": "mock:fast"}
    assert ring.has_alias("writer") and not ring.has_alias("writer", profile="default")
    ring.require_aliases(["writer", "fast", "summarizer"], context="my-library")
    with pytest.raises(MissingAliasesError) as e:
        ring.require_aliases(["writer", "missing"], profile="default")
    assert e.value.missing == ["writer", "missing"]


def test_a_call_through_an_inherited_alias_says_which_profile_its_binding_came_from(chained):
    response = Ring(profile="prod").chat("writer", "Hello")
    assert (response.content, response.model, response.profile) == ("Hello", "mock:echo", "staging")


def test_an_alias_bound_nowhere_in_the_chain_is_not_found_with_a_hint(chained):
    with pytest.raises(AliasNotFoundError, match=r"'writr' is not bound in profile 'prod'.*Did you mean 'writer'"):
        Ring().resolve("writr", profile="prod")


@pytest.mark.parametrize("extends, loop", [
    ({"a": "b", "b": "a"}, "a -> b -> a"),
    ({"a": "a"}, "a -> a"),
    ({"default": None, "x": "y", "y": "z", "z": "x"}, "x -> y -> z -> x"),
])
def test_a_cycle_is_refused_naming_it_with_the_file_and_line(tmp_path, extends, loop):
    path = tmp_path / "llmring.lock"
    path.write_text(profiles_text(extends))
    first = next(name for name, parent in extends.items() if parent)
    with pytest.raises(LockfileError) as e:
        lf_mod.read(path)
    assert f"cycle ({loop})" in str(e.value) and "remove one of their extends" in str(e.value)
    assert e.value.key == f"profiles.{first}.extends"
    lines = path.read_text().splitlines()
    assert lines[e.value.line - 1] == f'extends = "{extends[first]}"'
    assert str(e.value).startswith(f"{path}:{e.value.line}: ")


def test_extending_a_profile_that_is_not_there_is_refused_naming_the_profiles(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(profiles_text({"default": None, "prod": "stagin"}))
    with pytest.raises(LockfileError) as e:
        lf_mod.read(path)
    assert "profile 'prod' extends 'stagin', which is not a profile; the profiles are default, prod" in str(e.value)
    assert path.read_text().splitlines()[e.value.line - 1] == 'extends = "stagin"'


@pytest.mark.parametrize("value, shown", [("3", "int 3"), ('""', "an empty string"), ('["a"]', "list")])
def test_extends_must_be_a_profile_name(tmp_path, value, shown):
    path = tmp_path / "llmring.lock"
    path.write_text(profiles_text({"default": None, "prod": None}).replace(
        'name = "prod"\n', f'name = "prod"\nextends = {value}\n'))
    with pytest.raises(LockfileError, match=f"profiles.prod.extends must be a non-empty string, not {shown}"):
        lf_mod.read(path)


def test_lock_validate_reports_a_cycle_in_one_line(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text(profiles_text({"default": None, "a": "b", "b": "a"}))
    result = runner().invoke(cli, ["lock", "validate"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {path}:12: profiles extend each other in a cycle (a -> b -> a); remove one of their extends"]
    assert "Traceback" not in result.stderr


def test_bind_and_unbind_keep_extends_and_its_comments(chained):
    ring = Ring()
    ring.bind_alias("extra", "mock:x", profile="prod")
    ring.unbind_alias("summarizer", profile="prod")
    ring.bind_alias("writer", "mock:w2", profile="staging")
    text = chained.read_text()
    assert 'extends = "staging"  # reviewed in PR 12' in text
    assert "# prod is staging plus its own summarizer" in text
    assert 'extends = "default"' in text
    lf = lf_mod.read(chained)
    assert (lf.profiles["prod"].extends, lf.profiles["staging"].extends) == ("staging", "default")
    assert ring.resolve("summarizer", profile="prod").profile == "staging"


def test_extends_set_through_the_api_is_written_and_read_back(chained):
    def change(lf):
        lf.profiles["prod"].extends = None
        lf.profile("canary", create=True).extends = "prod"

    lf_mod.edit(chained, change)
    lf = lf_mod.read(chained)
    assert (lf.profiles["prod"].extends, lf.profiles["canary"].extends) == (None, "prod")
    assert lf.chain("canary") == ["canary", "prod", "default"]
    assert lf_mod.parse(lf_mod.dumps(lf)) == lf


def test_aliases_verbose_and_json_say_where_each_binding_comes_from(chained):
    result = runner().invoke(cli, ["aliases", "--verbose", "--profile", "prod"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "summarizer → mock:prod"
    assert lines[1] == "fast       → mock:fast  [from default]"
    assert lines[2] == "writer     → mock:echo, mock:writer-backup  [from staging]"
    data = json.loads(runner().invoke(cli, ["aliases", "--json", "-p", "prod"]).stdout)
    assert {a["alias"]: a["profile"] for a in data["aliases"]} == {
        "summarizer": "prod", "fast": "default", "writer": "staging"}


def test_changing_extends_rewrites_only_its_line_and_every_comment_stays(chained):
    lf_mod.edit(chained, lambda lf: setattr(lf.profiles["prod"], "extends", "default"))
    lines = chained.read_text().splitlines()
    assert lines[2].startswith("updated_at = ")
    assert "\n".join(lines[:2] + lines[3:]) + "\n" == CHAIN.replace(
        'extends = "staging"  # reviewed in PR 12', 'extends = "default"')
    assert lf_mod.read(chained).profiles["prod"].extends == "default"


def test_extends_added_to_a_profile_without_a_header_gets_one_and_the_comments_stay(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_text('version = "1.0"\n\n[profiles.default]\nname = "default"\n\n'
                    '# the dev binding, kept by hand\n[[profiles.dev.bindings]]\nalias = "a"\nmodels = ["mock:echo"]\n')
    lf_mod.edit(path, lambda lf: setattr(lf.profiles["dev"], "extends", "default"))
    text = path.read_text()
    assert "# the dev binding, kept by hand\n[[profiles.dev.bindings]]" in text
    assert '[profiles.dev]\nname = "dev"\nextends = "default"\n' in text
    assert lf_mod.read(path).chain("dev") == ["dev", "default"]
