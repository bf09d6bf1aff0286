"""The docs site builds with `mkdocs build --strict`, as .ci/run builds it; its generated
references cover every click command and every public name; a broken link, anchor or API
reference fails the build (the strictness is real); the landing page's first chat runs as
written. The build tests skip only where mkdocs is not installed (`pip install -e ".[docs]"`);
.ci/run installs it."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["index", "guide", "cli", "plugins", "security", "scaling", "scaling-redis", "reference/cli",
         "reference/ring", "reference/types", "reference/errors", "reference/failover", "reference/plugins"]
needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                  reason='mkdocs is not installed: pip install -e ".[docs]"')


def _build(project: Path, out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "LLMRING_"))}
    # The build must need no network: anything it tried to fetch would meet a closed port.
    closed = "http://127.0.0.1:9"
    env.update(NO_MKDOCS_2_WARNING="1", HTTP_PROXY=closed, HTTPS_PROXY=closed, ALL_PROXY=closed,
               http_proxy=closed, https_proxy=closed, NO_PROXY="", no_proxy="")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml"),
                           "-d", str(out)], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = _build(ROOT, out)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _ids(site: Path, page: str) -> set:
    return set(re.findall(r'\bid="([^"]+)"', (site / page / "index.html").read_text(encoding="utf-8")))


def _commands(command: click.Command, path: str):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


@needs_mkdocs
def test_the_site_builds_strictly_with_every_page(site):
    missing = [page for page in PAGES if not (site / page.replace("index", "") / "index.html").is_file()]
    assert not missing, missing


@needs_mkdocs
def test_the_cli_reference_has_every_command_and_option(site):
    from llmring.cli import cli

    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    ids = _ids(site, "reference/cli")
    # mkdocs-click's table style shows click 8.3's unset defaults as "Sentinel.UNSET"
    assert "Sentinel" not in page
    for path, command in _commands(cli, "llmring"):
        assert path.replace(" ", "-") in ids, f"{path!r} has no section in the CLI reference"
        for param in command.params:
            for opt in param.opts if isinstance(param, click.Option) else []:
                assert opt in page, f"{path} {opt} is not in the CLI reference"


@needs_mkdocs
def test_the_api_reference_has_every_public_name(site):
    import llmring

    ids = set().union(*(_ids(site, page) for page in PAGES if page.startswith("reference/")))
    documented = {anchor.rsplit(".", 1)[-1] for anchor in ids if anchor.startswith("llmring")}
    public = set(llmring.__all__) - {"__version__", "LLMRing"}  # LLMRing is AsyncRing by another name
    public |= {"Provider", "ProviderSettings", "CallRecord", "hookimpl"} | _hooks()
    assert not public - documented, sorted(public - documented)


def test_every_field_of_a_documented_type_is_in_its_docstring():
    """The reference shows an attrs class's fields from its docstring's Attributes section
    (mkdocstrings does not read attrs fields), so a new field must be described there too."""
    import attrs

    from llmring import Attempt, LLMRequest, LLMResponse, Message, RetryPolicy, StreamChunk, ToolCall, Usage
    from llmring.provider import ProviderSettings
    from llmring.record import CallRecord
    from llmring.types import ToolCallDelta

    for cls in (Attempt, LLMRequest, LLMResponse, Message, RetryPolicy, StreamChunk, ToolCall, ToolCallDelta, Usage,
                ProviderSettings, CallRecord):
        section = cls.__doc__.split("Attributes:", 1)[1] if "Attributes:" in cls.__doc__ else ""
        described = set(re.findall(r"^ {8}(\w+)(?: \([^)]*\))?:", section, re.MULTILINE))
        fields = {f.name for f in attrs.fields(cls)}
        assert described == fields, f"{cls.__name__}: undescribed {sorted(fields - described)}, " \
                                    f"no such field {sorted(described - fields)}"


def _hooks() -> set:
    from llmring import hookspecs

    return {name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")}


# (what is broken, the file it goes in, the text appended, what the failed build names)
BREAKAGES = [
    ("a link to no page", "security.md", "[gone](no-such-page.md)", "no-such-page.md"),
    ("an anchor the page lacks", "security.md", "[gone](guide.md#no-such-section)", "no-such-section"),
    ("an anchor on its own page", "cli.md", "[gone](#no-such-command)", "no-such-command"),
    ("an API name that does not exist", "reference/ring.md", "::: llmring.NoSuchThing", "NoSuchThing"),
    ("a cross-reference to no object", "index.md", "[Ring][llmring.NoSuchRing]", "llmring.NoSuchRing"),
]


@needs_mkdocs
@pytest.mark.parametrize("what, page, text, named", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_a_broken_reference_fails_the_strict_build(tmp_path, what, page, text, named):
    project = _copy_of_the_docs(tmp_path)
    with open(project / "docs" / page, "a", encoding="utf-8") as f:
        f.write(f"\n\n{text}\n")
    done = _build(project, tmp_path / "site")
    assert done.returncode != 0, f"the strict build passed with {what}"
    assert named in done.stderr, done.stderr[-3000:]


@needs_mkdocs
def test_an_unbroken_copy_builds(tmp_path):
    """The copy the breakage tests change builds as it is, so only the breakage fails them."""
    done = _build(_copy_of_the_docs(tmp_path), tmp_path / "site")
    assert done.returncode == 0, done.stderr[-4000:]


def _copy_of_the_docs(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project)
    for package in ("llmring", "llmring_providers"):  # mkdocstrings reads the source beside mkdocs.yml
        (project / package).symlink_to(ROOT / package, target_is_directory=True)
    return project


def test_the_landing_pages_first_chat_runs_as_written(tmp_path):
    text = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    section = text.split("## A first chat", 1)[1].split("\n## ", 1)[0]
    shell, python = re.findall(r"```(?:bash|python)\n(.*?)```", section, re.DOTALL)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in shell.splitlines():
        command, _, comment = line.partition("#")
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        if "prints:" in comment:
            assert done.stdout.strip() == comment.split("prints:", 1)[1].strip()
    lines = python.splitlines()
    code = "\n".join(line for line in lines if not line.startswith("#"))
    # What it prints: the comments on its print lines, then the comment lines after the code.
    expected = [line.split("# ", 1)[1] for line in lines if line.lstrip().startswith("print(") and "# " in line]
    expected += [line[2:] for line in lines if line.startswith("# ")]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    got = re.sub(r"\(\d+ ms\)", "(0 ms)", done.stdout)  # the echo's own time, which the page shows as 0
    assert got.splitlines() == expected
