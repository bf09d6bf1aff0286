"""Build time only: turn a registry CSV export into the bundled snapshot.

    python -m llmring.registry build registry-facts.csv > llmring/data/registry.json

The editorial knowledge about vendors' models (successors of deprecated models, which names
are embedding, audio, ... models) is data, in llmring/data/curation.json; this code names no
vendor and no model.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Optional

from .registry import ModelInfo, Registry, _impossible

CURATION = Path(__file__).parent / "data" / "curation.json"
_CAPABILITY_COLUMNS = (("tools", "supports_function_calling"), ("vision", "supports_vision"),
                       ("json_mode", "supports_json_mode"), ("json_schema", "supports_json_schema"),
                       ("streaming", "supports_streaming"), ("caching", "supports_caching"),
                       ("reasoning", "is_reasoning_model"), ("thinking", "supports_thinking"),
                       ("temperature", "supports_temperature"))


def curate(rows: list, version: str, editorial: Optional[dict] = None) -> dict:
    """Turn registry CSV rows into a snapshot: drop upper-case duplicates of real names,
    placeholder rows and rows with impossible values; zero context windows become unknown."""
    editorial = editorial if editorial is not None else json.loads(CURATION.read_text(encoding="utf-8"))
    successors, rules = editorial.get("successors", {}), editorial.get("modes", [])
    names = {(r["provider"], r["model_name"]) for r in rows}
    out = []
    for r in rows:
        provider, name = r["provider"].strip(), r["model_name"].strip()
        if name != name.lower() and (provider, name.lower()) in names:
            continue  # "GPT-4o" beside "gpt-4o": a noisy duplicate
        if name.endswith("-deprecated"):
            continue  # placeholders, not model IDs
        info = ModelInfo(
            provider=provider, name=name, display_name=r.get("display_name") or name,
            aliases=[a for a in (r.get("model_aliases") or "").split(";") if a and a != name],
            input_price=_num(r, "dollars_per_million_tokens_input"),
            output_price=_num(r, "dollars_per_million_tokens_output"),
            cache_read_price=_num(r, "dollars_per_million_tokens_cache_read"),
            cache_write_price=_num(r, "dollars_per_million_tokens_cache_write_5m"),
            context_window=_count(r, "max_input_tokens"), max_output=_count(r, "max_output_tokens"),
            capabilities=[c for c, col in _CAPABILITY_COLUMNS if r.get(col) == "True"],
            family=r.get("model_family") or None, mode=mode(name, rules),
            release_date=r.get("release_date") or None, deprecation_date=r.get("deprecated_date") or None,
            active=r.get("is_active", "True") == "True", successor=successors.get(f"{provider}:{name}"))
        if _impossible(info):
            continue
        out.append(info)
    return Registry(version, out).to_json()


def mode(name: str, rules: list) -> str:
    """The mode of the first rule matching `name` (exact `names`, `ends_with`, `contains`); chat if none."""
    for rule in rules:
        if (name in rule.get("names", ()) or ("ends_with" in rule and name.endswith(rule["ends_with"]))
                or ("contains" in rule and rule["contains"] in name)):
            return rule["mode"]
    return "chat"


def _num(row: dict, key: str) -> Optional[float]:
    value = (row.get(key) or "").strip()
    return float(value) if value else None


def _count(row: dict, key: str) -> Optional[int]:
    value = (row.get(key) or "").strip()
    return int(value) if value and int(value) > 0 else None


def main(argv: list) -> None:
    if len(argv) < 2 or argv[0] != "build":
        sys.exit("usage: python -m llmring.registry build FILE.csv [VERSION]")
    with open(argv[1], newline="") as f:
        snapshot = curate(list(csv.DictReader(f)), argv[2] if len(argv) > 2 else "2026-08")
    json.dump(snapshot, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
