"""click's CliRunner with stderr kept apart, on every click version we support."""

from click.testing import CliRunner


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2 (Python 3.9)
    except TypeError:
        return CliRunner()  # click >= 8.2 always keeps stderr apart
