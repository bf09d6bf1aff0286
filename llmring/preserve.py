"""Rewriting a lockfile while keeping the user's comments and layout.

An edit (bind, unbind, the advisor) changes a binding or two; everything else in the file
should stay as its author wrote it, comments included. The old text is cut into blocks at
its table headers; each block whose content did not change is copied verbatim, and only
changed or new tables are written in the normal form (by lockwrite). Comments right above a
header belong to that table and go where it goes; other comments (after a blank line, at the
end of the file) stay where they are whatever happens to the tables around them. A layout
this does not follow (dotted keys, inline tables for profiles, ...) gives None, and the
caller writes the normal form.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .lockmodel import Lockfile
from .lockread import toml_loads
from .lockwrite import (
    binding_keys,
    binding_toml,
    endpoint_toml,
    head_toml,
    key,
    limit_toml,
    profile_toml,
    table_toml,
    value,
)

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*(\]\]?)\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_BARE_PATH = re.compile(r"[A-Za-z0-9_-]+(?:[ \t]*\.[ \t]*[A-Za-z0-9_-]+)*")
_UPDATED = re.compile(r"^(\s*updated_at\s*=\s*)(\"[^\"]*\"|'[^']*'|[0-9TZ:.+-]+)(\s*(#.*)?)$", re.M)


def rewrite(old_text: str, old: Lockfile, new: Lockfile) -> Optional[str]:
    """`new` as TOML, reusing `old_text` for every table that did not change."""
    cut = _blocks(old_text)
    if cut is None:
        return None
    blocks, tail = cut
    if not _bindings_line_up(blocks, old):
        return None
    if {b["name"] for b in blocks if b["kind"] == "limit"} != set(old.limits):
        return None  # limits written another way (inline, under [limits]): the normal form
    tail = _move_free_comments(blocks, new) + tail
    by_key: dict = {}
    for b in blocks[1:]:
        by_key.setdefault((b["kind"], b["name"], b.get("alias")), b)
    out = _Output()
    out.add(_head(blocks[0], old, new))
    if new.metadata:
        kept = by_key.get(("metadata", None, None))
        out.add(kept if kept and old.metadata == new.metadata else table_toml(("metadata",), new.metadata), kept)
    for name, endpoint in new.providers.items():
        kept = by_key.get(("provider", name, None))
        out.add(kept if kept and old.providers.get(name) == endpoint else endpoint_toml(name, endpoint), kept)
    for name, limit in new.limits.items():
        kept = by_key.get(("limit", name, None))
        out.add(kept if kept and old.limits.get(name) == limit else limit_toml(name, limit), kept)
    for name, profile in new.profiles.items():
        before = old.profiles.get(name)
        header = by_key.get(("profile", name, None))
        if header is not None and before is not None and _same_header(before, profile):
            out.add(header)
        elif header is not None or before is None or profile.registry_versions or profile.extends \
                or not profile.bindings:
            out.add(profile_toml(name, profile), header)  # else the old file had no header here either
        for binding in profile.bindings:
            kept = by_key.get(("binding", name, binding.alias))
            if kept is None or before is None:
                out.add(binding_toml(key(name), binding))
            elif before.get(binding.alias) == binding:
                out.add(kept)
            else:
                out.add(_patched(kept, before.get(binding.alias), binding) or binding_toml(key(name), binding), kept)
    out.finish(tail)
    return out.text()


def _same_header(old: Any, new: Any) -> bool:
    """Whether a profile's own keys (what its [profiles.X] header holds) are unchanged."""
    return old.registry_versions == new.registry_versions and old.extends == new.extends


def _line_kind(line: str, free: bool) -> Optional[str]:
    """The key a line opens; "" for the file's own comments, blank lines and headers; None
    for a line inside a multi-line value."""
    if not free:
        return None
    m = _KEY.match(line)
    return m.group(1) if m else ""


def _patched(block: dict, old: Any, new: Any) -> Optional[str]:
    """A changed binding's block with only the keys that changed rewritten: the header, the
    comments and the unchanged keys keep their text. None when the block has a sub-table."""
    kinds = block["keys"]
    if any(k == "" and _HEADER.match(line) for line, k in zip(block["lines"][1:], kinds[1:])):
        return None
    keys = binding_keys(new)
    out: list = []
    same = True  # whether the key whose value this line continues is unchanged
    for line, k in zip(block["lines"], kinds):
        if k:
            same = getattr(old, k, None) == getattr(new, k, None)
            text = line if same else keys.get(k)
            keys.pop(k, None)
            if text is not None:
                out.append(text)
        elif k == "" or same:
            out.append(line)
    return "\n".join(out + list(keys.values()))


def _move_free_comments(blocks: list, new: Lockfile) -> list:
    """A block that goes away takes the comments right above it along, but leaves its
    free-standing ones to the next block that stays; returns those left at the end."""
    carry: list = []
    for b in blocks[1:]:
        if _removed(b, new):
            carry += b["free"]
        else:
            b["free"], carry = carry + b["free"], []
    return carry


def _removed(block: dict, new: Lockfile) -> bool:
    kind, name = block["kind"], block["name"]
    if kind == "metadata":
        return not new.metadata
    if kind == "provider":
        return name not in new.providers
    if kind == "limit":
        return name not in new.limits
    profile = new.profiles.get(name)
    return profile is None or (kind == "binding" and profile.get(block["alias"]) is None)


class _Output:
    """The new file's parts in order."""

    def __init__(self) -> None:
        self.parts: list = []

    def add(self, part: Any, old: Optional[dict] = None) -> None:
        """`part` is an old block kept verbatim, or new text replacing the block `old`."""
        block = part if isinstance(part, dict) else old
        if block is not None:
            self.parts += block["free"]
        if isinstance(part, dict):
            self.parts.append("\n".join(part["lead"] + part["lines"]))
        else:
            lead = "\n".join(old["lead"]) + "\n" if old is not None and old["lead"] else ""
            self.parts.append(lead + part)

    def finish(self, tail: list) -> None:
        self.parts += tail

    def text(self) -> str:
        return "\n\n".join(p.strip("\n") for p in self.parts if p.strip()) + "\n"


def _blocks(text: str) -> Optional[tuple]:
    """([{kind, name, lead, lines, free, ...}] in file order, comments at the end), or None.
    `lead` are the comment lines right above the block's header, `free` the comment groups
    before those that a blank line separates from it."""
    blocks: list = [{"kind": "head", "name": None, "lines": [], "lead": [], "free": []}]
    counts: dict = {}
    paths: dict = {}  # header text -> key path: thousands of bindings share a few headers
    for line, free in _scan(text):
        m = _HEADER.match(line) if free else None
        if not m:
            blocks[-1]["lines"].append((line, free))
            continue
        header = m.group(1, 2, 3)
        if header not in paths:
            paths[header] = _path(*header)
        path = paths[header]
        if path is None:
            return None
        block = _classify(path, m.group(1) == "[[", blocks[-1], counts)
        if block is None:
            return None
        if block == "inner":  # a sub-table of the block above (e.g. an endpoint's prices)
            blocks[-1]["lines"].append((line, free))
            continue
        block["free"], block["lead"] = _trailing_comments(blocks[-1]["lines"])
        block["lines"] = [(line, free)]
        blocks.append(block)
    free_tail, lead_tail = _trailing_comments(blocks[-1]["lines"])
    for b in blocks:
        b["keys"] = [_line_kind(line, free) for line, free in b["lines"]]
        b["lines"] = [line for line, _ in b["lines"]]
    return blocks, free_tail + (["\n".join(lead_tail)] if lead_tail else [])


def _classify(path: tuple, array: bool, previous: dict, counts: dict) -> Any:
    if path[:1] == ("metadata",):
        return {"kind": "metadata", "name": None} if len(path) == 1 or previous["kind"] != "metadata" else "inner"
    if path[:1] == ("providers",) and len(path) >= 2:
        return "inner" if len(path) > 2 else {"kind": "provider", "name": path[1]}
    if path[:1] == ("limits",):
        return {"kind": "limit", "name": path[1]} if len(path) == 2 and not array else None
    if path[:1] == ("profiles",) and len(path) == 2 and not array:
        return {"kind": "profile", "name": path[1]}
    if path[:1] == ("profiles",) and len(path) == 3 and path[2] == "bindings" and array:
        index = counts.get(path[1], 0)
        counts[path[1]] = index + 1
        return {"kind": "binding", "name": path[1], "index": index}
    if path[:1] == ("profiles",) and len(path) > 3 and previous["kind"] == "binding":
        return "inner"  # e.g. [profiles.x.bindings.params]
    return None


def _trailing_comments(lines: list) -> tuple:
    """Take the comments and blank lines after a block's last key off it: (free-standing
    comment groups, the comment lines right above the next header)."""
    n = len(lines)
    while n and lines[n - 1][1] and (not lines[n - 1][0].strip() or lines[n - 1][0].lstrip().startswith("#")):
        n -= 1
    trailing = [line for line, _ in lines[n:]]
    del lines[n:]
    groups: list = [[]]
    for line in trailing:
        if line.strip():
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    if not trailing or not trailing[-1].strip():  # a blank line above the header: nothing is its own
        return ["\n".join(g) for g in groups if g], []
    return ["\n".join(g) for g in groups[:-1] if g], groups[-1]


# What matters to the scan, in one regex so that strings are skipped in C: a string (whose
# brackets and # mean nothing), a comment, a bracket.
_TOKEN = re.compile(r'''"""|\'\'\'|"(?:[^"\\]|\\.)*"?|'[^']*'?|#|[\[\]{}]''')
_CLOSE = {'"""': re.compile(r'(?<!\\)(?:\\\\)*"""("{0,2})'), "'''": re.compile(r"'''('{0,2})")}


def _scan(text: str) -> list:
    """[(line, free)]: `free` when the line starts outside any multi-line string or array,
    so that it can be a header, a comment or a blank line of the file's own."""
    out = []
    in_string: Optional[str] = None
    depth = 0
    for line in text.split("\n"):
        out.append((line, in_string is None and depth == 0))
        i = 0
        while True:
            if in_string:
                end = _CLOSE[in_string].search(line, i)
                if end is None:
                    break
                in_string, i = None, end.end()
            m = _TOKEN.search(line, i)
            if m is None:
                break
            token, i = m.group(), m.end()
            if token == "#":
                break
            if token in ('"""', "'''"):
                in_string = token
            elif token in "[{":
                depth += 1
            elif token in "]}":
                depth -= 1
    if text.endswith("\n"):
        out.pop()  # the empty piece after the last newline
    return out


def _path(open_: str, inner: str, close: str) -> Optional[tuple]:
    """The key path of a table header, read by the TOML parser itself."""
    if len(open_) != len(close):
        return None
    if _BARE_PATH.fullmatch(inner):  # the usual header: no need to ask the parser
        return tuple(part.strip() for part in inner.split("."))
    try:
        node: Any = toml_loads(f"{open_}{inner}{close}\n")
    except Exception:  # noqa: BLE001 - not a header we can follow
        return None
    path = []
    while isinstance(node, (dict, list)) and node:
        if isinstance(node, list):
            node = node[-1]
            continue
        (k, node), = node.items()
        path.append(k)
    return tuple(path)


def _bindings_line_up(blocks: list, old: Lockfile) -> bool:
    """Give each binding block its alias: the n-th [[profiles.X.bindings]] is the n-th binding."""
    for b in blocks:
        if b["kind"] != "binding":
            continue
        profile = old.profiles.get(b["name"])
        if profile is None or b["index"] >= len(profile.bindings):
            return False
        b["alias"] = profile.bindings[b["index"]].alias
    counted = sum(b["kind"] == "binding" for b in blocks)
    return counted == sum(len(p.bindings) for p in old.profiles.values())


def _head(block: dict, old: Lockfile, new: Lockfile) -> str:
    head = "\n".join(block["lines"])
    same = all(getattr(old, k) == getattr(new, k) for k in ("version", "default_profile", "created_at"))
    if not same:
        return head_toml(new)
    if new.updated_at is None:
        return head
    stamp = value(new.updated_at)
    if _UPDATED.search(head):
        return _UPDATED.sub(lambda m: f"{m.group(1)}{stamp}{m.group(3)}", head, count=1)
    lines = head.rstrip("\n").split("\n") if head.strip() else []
    return "\n".join(lines + [f"updated_at = {stamp}"])
