"""Rewriting a lockfile while keeping the user's comments and layout.

An edit (bind, unbind, the advisor) changes a binding or two; everything else in the file
should stay as its author wrote it, comments included. The old text is cut into blocks at
its table headers; each block whose content did not change is copied verbatim, and only
changed or new tables are written in the normal form. A layout this does not follow (dotted
keys, inline tables for profiles, ...) gives None, and the caller writes the normal form.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from .lockfile import Lockfile, _binding_toml, _key, _value, endpoint_toml, head_toml, profile_toml, table_toml

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*(\]\]?)\s*(#.*)?$")
_UPDATED = re.compile(r"^(\s*updated_at\s*=\s*)(\"[^\"]*\"|'[^']*'|[0-9TZ:.+-]+)(\s*(#.*)?)$", re.M)


def rewrite(old_text: str, old: Lockfile, new: Lockfile) -> Optional[str]:
    """`new` as TOML, reusing `old_text` for every table that did not change."""
    blocks = _blocks(old_text)
    if blocks is None or not _bindings_line_up(blocks, old):
        return None
    parts = [_head(blocks, old, new)]
    if new.metadata:
        kept = [b["text"] for b in blocks if b["kind"] == "metadata"]
        parts += kept if old.metadata == new.metadata and kept else [table_toml({"metadata": new.metadata})]
    for name, endpoint in new.providers.items():
        kept = [b["text"] for b in blocks if b["kind"] == "provider" and b["name"] == name]
        if kept and old.providers.get(name) == endpoint:
            parts += kept
        else:
            parts.append(endpoint_toml(name, endpoint))
    for name, profile in new.profiles.items():
        before = old.profiles.get(name)
        header = next((b for b in blocks if b["kind"] == "profile" and b["name"] == name), None)
        if header is not None and before is not None and before.registry_versions == profile.registry_versions:
            parts.append(header["text"])
        elif header is not None or before is None or profile.registry_versions or not profile.bindings:
            parts.append(profile_toml(name, profile))  # else the old file had no header here either
        old_blocks = {b["alias"]: b for b in blocks if b["kind"] == "binding" and b["name"] == name}
        for binding in profile.bindings:
            kept = old_blocks.get(binding.alias)
            if kept is not None and before is not None and before.get(binding.alias) == binding:
                parts.append(kept["text"])
            else:  # rewritten, under the comment that introduced it
                lead = "\n".join(kept["lead"]) + "\n" if kept is not None and kept["lead"] else ""
                parts.append(lead + _binding_toml(_key(name), binding))
    return "\n\n".join(p.rstrip("\n") for p in parts if p.strip()) + "\n"


def _blocks(text: str) -> Optional[list]:
    """The text cut at its table headers: [{kind, name, text, ...}] in order, or None."""
    blocks: list = [{"kind": "head", "name": None, "lines": [], "lead": []}]
    counts: dict = {}
    for line in text.splitlines():
        m = _HEADER.match(line)
        if not m:
            blocks[-1]["lines"].append(line)
            continue
        path = _path(m.group(1), m.group(2), m.group(3))
        if path is None:
            return None
        array = m.group(1) == "[["
        if path[:1] == ("metadata",):
            block = {"kind": "metadata", "name": None}
        elif path[:1] == ("providers",) and len(path) >= 2:
            if len(path) > 2:  # a sub-table of an endpoint (e.g. prices): part of its block
                blocks[-1]["lines"].append(line)
                continue
            block = {"kind": "provider", "name": path[1]}
        elif path[:1] == ("profiles",) and len(path) == 2 and not array:
            block = {"kind": "profile", "name": path[1]}
        elif path[:1] == ("profiles",) and len(path) == 3 and path[2] == "bindings" and array:
            index = counts.get(path[1], 0)
            counts[path[1]] = index + 1
            block = {"kind": "binding", "name": path[1], "index": index}
        elif path[:1] == ("profiles",) and len(path) > 3 and blocks[-1]["kind"] == "binding":
            blocks[-1]["lines"].append(line)  # e.g. [profiles.x.bindings.params]
            continue
        else:
            return None
        block["lead"] = _leading_comments(blocks[-1]["lines"])
        block["lines"] = block["lead"] + [line]
        blocks.append(block)
    for b in blocks:
        b["text"] = "\n".join(b.pop("lines"))
    return blocks


def _leading_comments(lines: list) -> list:
    """Take the comment lines right above a header (no blank line between) off the block
    before it: they describe the table below them, and go where it goes."""
    n = len(lines)
    while n and lines[n - 1].lstrip().startswith("#"):
        n -= 1
    taken = lines[n:]
    del lines[n:]
    return taken


def _path(open_: str, inner: str, close: str) -> Optional[tuple]:
    """The key path of a table header, read by the TOML parser itself."""
    from .lockfile import _toml_loads

    if len(open_) != len(close):
        return None
    try:
        node: Any = _toml_loads(f"{open_}{inner}{close}\n")
    except Exception:  # noqa: BLE001 - not a header we can follow
        return None
    path = []
    while isinstance(node, (dict, list)) and node:
        if isinstance(node, list):
            node = node[-1]
            continue
        (key, node), = node.items()
        path.append(key)
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


def _head(blocks: list, old: Lockfile, new: Lockfile) -> str:
    head = blocks[0]["text"]
    same = all(getattr(old, k) == getattr(new, k) for k in ("version", "default_profile", "created_at"))
    if not same:
        return head_toml(new)
    if new.updated_at is None:
        return head
    stamp = _value(new.updated_at)
    if _UPDATED.search(head):
        return _UPDATED.sub(lambda m: f"{m.group(1)}{stamp}{m.group(3)}", head, count=1)
    lines = head.rstrip("\n").split("\n") if head.strip() else []
    return "\n".join(lines + [f"updated_at = {stamp}"])
