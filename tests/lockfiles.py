"""The lockfile most tests need: one alias bound to some models in the default profile."""


def one_alias(tmp_path, models, *, alias="a", head="", tail=""):
    """Write ./llmring.lock in `tmp_path` binding `alias` to `models` (primary first); `head` goes
    before the profile (e.g. [limits.*] tables), `tail` after the binding ([providers.*])."""
    refs = ", ".join(f'"{m}"' for m in models)
    path = tmp_path / "llmring.lock"
    path.write_text(f'version = "1.0"\ndefault_profile = "default"\n\n{head}\n[profiles.default]\nname = "default"\n\n'
                    f'[[profiles.default.bindings]]\nalias = "{alias}"\nmodels = [{refs}]\n\n{tail}')
    return path
