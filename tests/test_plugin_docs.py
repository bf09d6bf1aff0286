"""docs/plugins.md's worked HTTP provider (llmring-acme) runs as written: its module and its
test files are taken from the page and its own tests are run against it."""

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
# A file's name in backquotes at the start of a line, then (after its caption) a python block.
_FILE_BLOCK = re.compile(r"^`((?:tests/)?\w+\.py)`(?:(?!```).)*?```python\n(.*?)\n```", re.MULTILINE | re.DOTALL)


def test_the_worked_provider_and_its_tests_run_as_written(tmp_path):
    files = dict(_FILE_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    assert {"llmring_acme.py", "tests/loopback.py", "tests/conftest.py", "tests/test_acme.py",
            "tests/test_ring.py"} <= set(files), sorted(files)
    for name, code in files.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(code + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=tmp_path,
                          env={**_env(), "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b1[0-9] passed\b", done.stdout), done.stdout[-500:]


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
