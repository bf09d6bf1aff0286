"""What start-up loads: the budget in DESIGN.md is kept by not importing heavy modules early.
(Times are measured in bench/; these tests check the module sets, which do not vary.)"""

import json
import subprocess
import sys

import pytest

HEAVY = ("requests", "urllib3", "cattrs", "pluggy", "backoff", "click", "asyncio", "importlib.metadata",
         "llmring_providers")


def loaded_after(code):
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def heavy_in(modules):
    return sorted(m for m in modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY} and
                  any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_import_llmring_loads_nothing_else():
    modules = loaded_after("import llmring")
    assert heavy_in(modules) == []
    assert not any(m == "attr" or m.startswith(("attr.", "attrs")) for m in modules)


def test_the_common_names_load_only_attrs():
    modules = loaded_after("from llmring import Ring, LLMRequest, Message")
    assert heavy_in(modules) == []
    assert "attrs" in modules
    # The lockfile machinery (model classes, TOML, refs) loads when a Ring is made.
    assert not {"llmring.lockfile", "llmring.store", "llmring.resolve", "llmring.refs"} & modules


def test_building_a_ring_and_resolving_loads_no_network_stack(tmp_path):
    lock = tmp_path / "llmring.lock"
    lock.write_text('version = "1.0"\n\n[profiles.default]\n\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["mock:echo"]\n')
    modules = loaded_after(f"from llmring import Ring\nRing({str(lock)!r}).resolve_alias('a')")
    assert heavy_in(modules) == []


@pytest.mark.slow
def test_the_aliases_command_loads_no_network_stack_or_plugins(tmp_path):
    lock = tmp_path / "llmring.lock"
    lock.write_text('version = "1.0"\n\n[profiles.default]\n\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["mock:echo"]\n')
    code = (f"import sys; sys.argv = ['llmring', 'aliases', '--file', {str(lock)!r}]\n"
            "from llmring.cli import cli\ntry:\n    cli.main(standalone_mode=False)\nexcept SystemExit:\n    pass")
    modules = loaded_after(code)
    assert [m for m in heavy_in(modules) if not m.startswith("click")] == []


def test_a_first_chat_does_not_load_cattrs(tmp_path):
    lock = tmp_path / "llmring.lock"
    lock.write_text('version = "1.0"\n\n[profiles.default]\n\n[[profiles.default.bindings]]\n'
                    'alias = "a"\nmodels = ["mock:echo"]\n')
    modules = loaded_after(f"from llmring import Ring\nr = Ring({str(lock)!r}).chat('a', 'hi')\n"
                           "assert r.content == 'hi' and r.cost is None")
    assert "cattrs" not in modules
