"""Edits keep the rest of the file as its author wrote it: comments, spacing, layout."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lockfile import NAMES, REFS, SEED_EXAMPLES, lockfiles

from llmring import Ring
from llmring.lockfile import Binding, dumps, edit, parse
from llmring.lockwrite import key, value

COMMENTED = '''\
# Models for the billing service. Ask #ml-platform before changing prod.
version = "1.0"
default_profile = "default"
updated_at = "2026-01-01T00:00:00Z"  # bumped by llmring

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini"]   # cheap

# the analyzer needs long context
[[profiles.default.bindings]]
alias = "analyzer"
models = [
"anthropic:claude-sonnet-4-5-20250929", # Primary
"openai:gpt-4o", # Fallback
]

[profiles.default.bindings.params]
temperature = 0.1

[profiles.prod]
name = "prod"

[[profiles.prod.bindings]]
alias = "assistant"
models = ["anthropic:claude-opus-4-5-20251101"]  # best quality
'''


def write(tmp_path, text):
    path = tmp_path / "llmring.lock"
    path.write_text(text)
    return path


def test_binding_a_new_alias_keeps_every_comment(tmp_path):
    path = write(tmp_path, COMMENTED)
    Ring(path).bind_alias("extractor", "openai:gpt-4.1-mini,google:gemini-2.5-flash")
    text = path.read_text()
    for line in COMMENTED.splitlines():
        if line.startswith("updated_at"):
            continue
        assert line in text.splitlines(), line
    assert parse(text).profiles["default"].get("extractor").models == ["openai:gpt-4.1-mini",
                                                                       "google:gemini-2.5-flash"]
    assert parse(text).profiles["default"].get("analyzer").params == {"temperature": 0.1}


def test_the_updated_at_line_is_updated_in_place_with_its_comment(tmp_path):
    path = write(tmp_path, COMMENTED)
    Ring(path).bind_alias("x", "mock:echo")
    stamp = next(ln for ln in path.read_text().splitlines() if ln.startswith("updated_at"))
    assert stamp.endswith("  # bumped by llmring") and "2026-01-01" not in stamp
    assert path.read_text().splitlines()[:3] == COMMENTED.splitlines()[:3]


def test_rebinding_keeps_the_comment_above_it(tmp_path):
    path = write(tmp_path, COMMENTED)
    Ring(path).bind_alias("analyzer", "openai:gpt-4.1")
    expected = ('# the analyzer needs long context\n[[profiles.default.bindings]]\nalias = "analyzer"\n'
                'models = ["openai:gpt-4.1"]')
    assert expected in path.read_text()


def test_rebinding_rewrites_only_that_binding(tmp_path):
    path = write(tmp_path, COMMENTED)
    Ring(path).bind_alias("summarizer", "openai:gpt-4.1-mini")
    text = path.read_text()
    assert "# cheap" not in text  # that binding's own line was replaced
    assert '"openai:gpt-4o", # Fallback' in text and "# the analyzer needs long context" in text
    assert "# best quality" in text and "temperature = 0.1" in text
    assert parse(text).profiles["default"].get("summarizer").models == ["openai:gpt-4.1-mini"]


def test_unbinding_removes_the_binding_and_the_comment_above_it(tmp_path):
    path = write(tmp_path, COMMENTED)
    Ring(path).unbind_alias("analyzer")
    text = path.read_text()
    assert "analyzer" not in text and "# the analyzer needs long context" not in text
    assert "temperature" not in text  # its params table went with it
    assert "# cheap" in text and "# best quality" in text
    assert [b.alias for b in parse(text).profiles["default"].bindings] == ["summarizer"]


def test_a_new_profile_is_written_in_the_normal_form(tmp_path):
    path = write(tmp_path, COMMENTED)
    Ring(path).bind_alias("assistant", "openai:gpt-4o-mini", profile="staging")
    text = path.read_text()
    assert '[profiles.staging]\nname = "staging"\n\n[[profiles.staging.bindings]]' in text
    assert "# Models for the billing service." in text


@pytest.mark.parametrize("example", sorted(SEED_EXAMPLES))
def test_every_seed_example_survives_edits_with_its_comments(tmp_path, example):
    original = SEED_EXAMPLES[example]
    path = write(tmp_path, original)
    lf = parse(original)
    profile = next(iter(lf.profiles))
    ring = Ring(path)
    ring.bind_alias("added", "mock:echo", profile=profile)
    first = lf.profiles[profile].bindings[0].alias
    ring.bind_alias(first, "mock:echo", profile=profile)
    text = path.read_text()
    comments = [ln.split("#", 1)[1] for ln in original.splitlines() if "#" in ln]
    kept = [c for c in comments if c in text]
    # Only the rebound binding's own lines' comments may go (the one above its table stays).
    rest = original.split(f'alias = "{first}"', 1)[1].splitlines()
    rebound = next((rest[:i] for i, ln in enumerate(rest) if ln.lstrip().startswith("[")), rest)
    assert set(comments) - set(kept) <= {ln.split("#", 1)[1] for ln in rebound if "#" in ln}
    after = parse(text)
    assert after.profiles[profile].get("added").models == ["mock:echo"]
    assert after.profiles[profile].get(first).models == ["mock:echo"]
    for name, p in lf.profiles.items():
        for b in p.bindings:
            if (name, b.alias) != (profile, first):
                assert after.profiles[name].get(b.alias) == b


@pytest.mark.parametrize("layout", [
    'version = "1.0"\nprofiles.default.bindings = [{ alias = "a", models = ["mock:echo"] }]  # dotted\n',
    'version = "1.0"\n[profiles]\ndefault = { bindings = [{ alias = "a", models = ["mock:echo"] }] }\n',
])
def test_layouts_it_cannot_follow_fall_back_to_the_normal_form(tmp_path, layout):
    path = write(tmp_path, layout)
    Ring(path).bind_alias("b", "mock:echo", profile="default")
    after = parse(path.read_text())
    assert [b.alias for b in after.profiles["default"].bindings] == ["a", "b"]
    assert "[[profiles.default.bindings]]" in path.read_text()


def test_a_binding_changed_in_place_is_not_kept_stale(tmp_path):
    path = write(tmp_path, COMMENTED)

    def mutate(lf):  # edits through the object model, not bind/unbind: the result must still be right
        lf.profiles["default"].bindings[0].models.append("google:gemini-2.5-flash")
        lf.profiles["default"].bindings.insert(0, Binding("first", ["mock:echo"]))

    edit(path, mutate)
    after = parse(path.read_text())
    assert [b.alias for b in after.profiles["default"].bindings] == ["first", "summarizer", "analyzer"]
    assert after.profiles["default"].get("summarizer").models == ["openai:gpt-4o-mini", "google:gemini-2.5-flash"]


# Issue 9 item 13: the cases that lost comments.
MULTILINE = '''\
version = "1.0"

[profiles.default]
name = "default"

# writes summaries
[[profiles.default.bindings]]
alias = "summarizer"
models = ["openai:gpt-4o-mini"]  # cheap
description = """
Summaries for the support team.
# not a comment: part of the description
[not.a.header]
"""

[[profiles.default.bindings]]
alias = "other"
models = ["mock:echo"]  # stays
'''


def test_a_multi_line_description_does_not_make_edits_drop_comments(tmp_path):
    path = write(tmp_path, MULTILINE)
    Ring(path).bind_alias("new", "mock:echo")
    text = path.read_text()
    for line in ("# writes summaries", '["openai:gpt-4o-mini"]  # cheap', "# not a comment: part of the description",
                 "[not.a.header]", '["mock:echo"]  # stays'):
        assert line in text
    assert parse(text).profiles["default"].get("summarizer").description == parse(MULTILINE).profiles[
        "default"].get("summarizer").description


def test_a_nan_elsewhere_in_the_file_does_not_make_edits_drop_comments(tmp_path):
    path = write(tmp_path, 'version = "1.0"\n\n[metadata]\nscore = nan  # not measured yet\n\n' + COMMENTED[
        COMMENTED.index("[profiles.default]"):])
    Ring(path).bind_alias("x", "mock:echo")
    text = path.read_text()
    assert "score = nan  # not measured yet" in text and "# the analyzer needs long context" in text


SPACED = '''\
version = "1.0"

[profiles.default]
name = "default"

[[profiles.default.bindings]]
alias = "first"
models = ["mock:echo"]

# --- the writers (a section comment, a blank line below it) ---

[[profiles.default.bindings]]
alias = "second"
models = ["mock:echo"]

[[profiles.default.bindings]]
alias = "last"
models = ["mock:echo"]

# end of file: keep this
'''


@pytest.mark.parametrize("edit_first", ["rebind", "unbind"])
def test_a_comment_set_apart_by_a_blank_line_survives_edits_of_the_binding_above(tmp_path, edit_first):
    path = write(tmp_path, SPACED)
    ring = Ring(path)
    if edit_first == "rebind":
        ring.bind_alias("first", "mock:echo2")
    else:
        ring.unbind_alias("first")
    text = path.read_text()
    assert "# --- the writers (a section comment, a blank line below it) ---" in text
    assert text.index("# --- the writers") < text.index('alias = "second"')
    assert text.rstrip().endswith("# end of file: keep this")


def test_the_end_of_file_comment_survives_unbinding_the_last_binding(tmp_path):
    path = write(tmp_path, SPACED)
    Ring(path).unbind_alias("last")
    text = path.read_text()
    assert text.rstrip().endswith("# end of file: keep this")
    assert [b.alias for b in parse(text).profiles["default"].bindings] == ["first", "second"]


def test_unbinding_the_binding_under_a_section_comment_keeps_the_section_comment(tmp_path):
    path = write(tmp_path, SPACED)
    Ring(path).unbind_alias("second")
    text = path.read_text()
    assert "# --- the writers" in text and text.index("# --- the writers") < text.index('alias = "last"')


def test_crlf_files_stay_crlf_and_keep_their_comments(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_bytes(COMMENTED.replace("\n", "\r\n").encode())
    Ring(path).bind_alias("x", "mock:echo")
    data = path.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n")
    assert b"# the analyzer needs long context\r\n" in data
    assert parse(data.decode()).profiles["default"].get("x").models == ["mock:echo"]


def test_a_byte_order_mark_is_read_and_kept(tmp_path):
    path = tmp_path / "llmring.lock"
    path.write_bytes(b"\xef\xbb\xbf" + COMMENTED.encode())
    ring = Ring(path)
    assert ring.resolve("summarizer").models == ["openai:gpt-4o-mini"]
    ring.bind_alias("x", "mock:echo")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf# Models for the billing service.") and data.count(b"\xef\xbb\xbf") == 1
    assert "# cheap" in data.decode("utf-8-sig")


# -- the property: any lockfile, comments everywhere, any edit ------------------------------

def _commented(text):
    """`text` (the normal form) with comments at every place a person puts them: a free-standing
    one after a blank line above each table, one right above its header, one at the end of the
    header's line, and one at the end of the file. Returns (text, {block: its comments})."""
    lines, out, owners, block = text.split("\n"), [], {}, None
    for i, line in enumerate(lines):
        if line.startswith("["):
            alias = lines[i + 1].partition(" = ")[2] if line.startswith("[[") else None
            block = (line, alias, i)
            n = len(owners)
            owners[block] = {"free": f"# free {n}", "above": f"# above {n}", "inline": f"# inline {n}"}
            out += ["", owners[block]["free"], "", owners[block]["above"], f"{line}  {owners[block]['inline']}"]
        else:
            out.append(line)
    return "\n".join(out).rstrip("\n") + "\n\n# end of file\n", owners


@st.composite
def edits(draw, lf):
    profile = draw(st.sampled_from(sorted(lf.profiles)))
    aliases = [b.alias for b in lf.profiles[profile].bindings]
    action = draw(st.sampled_from(["bind", "rebind", "unbind"] if aliases else ["bind"]))
    alias = draw(st.sampled_from(aliases)) if action != "bind" else draw(NAMES.filter(lambda a: a not in aliases))
    return action, profile, alias, draw(st.lists(REFS, min_size=1, max_size=3, unique=True))


def _apply(lf, edit_):
    action, profile, alias, models = edit_
    if action == "unbind":
        lf.profiles[profile].unbind(alias)
    else:
        lf.profiles[profile].rebind(alias, models)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_edit_of_any_commented_lockfile_keeps_the_data_and_every_comment_it_should(tmp_path_factory, data):
    lf = data.draw(lockfiles())
    text, owners = _commented(dumps(lf))
    edit_ = data.draw(edits(parse(text)))
    path = tmp_path_factory.mktemp("prop") / "llmring.lock"
    path.write_text(text)
    edit(path, lambda f: _apply(f, edit_))
    after_text = path.read_text()

    expected = parse(text)
    _apply(expected, edit_)
    after = parse(after_text)
    after.updated_at = expected.updated_at
    assert after == expected

    action, profile, alias, _ = edit_
    header = f"[[profiles.{key(profile)}.bindings]]"
    lost: set = set()
    for (line, owner_alias, _i), marks in owners.items():
        if line == header and owner_alias == value(alias) and action == "unbind":
            lost |= {marks["inline"], marks["above"]}  # a rebound binding keeps its header line
    wanted = {m for marks in owners.values() for m in marks.values()} - lost | {"# end of file"}
    lines = [ln.rstrip() for ln in after_text.splitlines()]
    missing = [m for m in wanted if not any(ln.endswith(m) for ln in lines)]
    assert not missing
    assert after_text.rstrip().endswith("# end of file")


def test_a_rebound_multi_line_description_stays_multi_line(tmp_path):
    path = write(tmp_path, MULTILINE)
    Ring(path).bind_alias("summarizer", "mock:echo")
    text = path.read_text()
    assert 'description = """\nSummaries for the support team.\n# not a comment' in text
    assert parse(text).profiles["default"].get("summarizer").description == parse(MULTILINE).profiles[
        "default"].get("summarizer").description


def test_rebinding_keeps_the_lines_of_the_keys_it_did_not_change(tmp_path):
    path = write(tmp_path, '''\
version = "1.0"

[profiles.default]
name = "default"

[[profiles.default.bindings]]  # the support bot
alias = "support"
# who asked for it: #help-desk
description = "Answers tickets"  # keep it short
models = ["mock:echo"]  # was cheaper
requires = ["tools"]  # it looks up orders
''')
    Ring(path).bind_alias("support", "mock:echo2,mock:echo")
    text = path.read_text()
    for kept in ("[[profiles.default.bindings]]  # the support bot", "# who asked for it: #help-desk",
                 'description = "Answers tickets"  # keep it short', 'requires = ["tools"]  # it looks up orders'):
        assert kept in text
    assert "# was cheaper" not in text  # that line's value changed
    assert parse(text).profiles["default"].get("support").models == ["mock:echo2", "mock:echo"]
