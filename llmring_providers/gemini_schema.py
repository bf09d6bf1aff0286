"""JSON Schema -> the OpenAPI 3.0 subset Gemini's responseSchema and function parameters take."""

from __future__ import annotations

import json
from typing import Any

from llmring.provider import unsupported
from llmring.schema import resolve_ref

_COPIED = ("title", "description", "minItems", "maxItems", "minProperties", "maxProperties", "minLength",
           "maxLength", "pattern", "minimum", "maximum", "example", "default", "required", "propertyOrdering")
# Formats Gemini acts on; others are hints some endpoints reject, so they are dropped.
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}


def gemini_schema(schema: dict) -> dict:
    """Translate a JSON Schema into the schema Gemini's responseSchema and function parameters
    take: local $refs inlined, allOf merged, oneOf read as anyOf, `type: [x, "null"]` and null
    branches turned into `nullable`, const into enum, keywords Gemini lacks
    (additionalProperties, $schema, $defs, ...) dropped. Recursive schemas cannot be inlined."""
    return _SchemaConverter(schema).convert(schema)


class _SchemaConverter:
    def __init__(self, root: dict) -> None:
        self.root = root
        self.expanding: list = []  # $refs being inlined, to refuse recursion

    def convert(self, node: Any) -> dict:
        if node is True:
            return {}
        if not isinstance(node, dict):
            raise unsupported(f"the schema {node!r} cannot be expressed for Gemini")
        if "$ref" in node:
            return self._inline(node)
        if "allOf" in node:
            rest = {k: v for k, v in node.items() if k != "allOf"}
            return _merge_schemas([self.convert(s) for s in node["allOf"]] + [self.convert(rest)])
        node = dict(node)
        if "oneOf" in node:
            node["anyOf"] = node.get("anyOf", []) + node.pop("oneOf")
        if "const" in node:
            node["enum"] = [node.pop("const")]
        types = node.get("type")
        if isinstance(types, list) and len([t for t in types if t != "null"]) > 1:
            return self.convert(_split_union(node))
        out = {k: node[k] for k in _COPIED if k in node}
        nullable = bool(node.get("nullable"))
        nullable |= self._set_type(node, out)
        if "properties" in node:
            out["properties"] = {k: self.convert(v) for k, v in node["properties"].items()}
            # Gemini orders keys alphabetically unless told; keep the schema's order.
            out.setdefault("propertyOrdering", list(node["properties"]))
        if "items" in node:
            items = node["items"]
            out["items"] = self.convert({"anyOf": items} if isinstance(items, list) else items)
        if "enum" in node:
            nullable |= self._set_enum(node["enum"], out)
        if node.get("format") in _FORMATS.get(out.get("type"), ()):
            out["format"] = node["format"]
        if "anyOf" in node:
            out, null_branch = self._any_of(node["anyOf"], out)
            nullable |= null_branch
        if nullable:
            out["nullable"] = True
        return out

    def _inline(self, node: dict) -> dict:
        ref = node["$ref"]
        if ref in self.expanding:
            raise unsupported(f"the schema is recursive ({ref}); Gemini's response schema cannot express that")
        self.expanding.append(ref)
        try:
            return self.convert({**self._resolve(ref), **{k: v for k, v in node.items() if k != "$ref"}})
        finally:
            self.expanding.pop()

    def _resolve(self, ref: str) -> dict:
        try:
            return resolve_ref(self.root, ref)
        except ValueError as e:
            raise unsupported(str(e)) from None

    @staticmethod
    def _set_type(node: dict, out: dict) -> bool:
        """Copy `type` (upper case, as the API reference writes it); True if it allows null."""
        types = node.get("type")
        if isinstance(types, str):
            out["type"] = types.upper()
        if not isinstance(types, list):
            return False
        real = [t for t in types if t != "null"]
        if real:
            out["type"] = real[0].upper()
        return len(real) < len(types)

    @staticmethod
    def _set_enum(values: list, out: dict) -> bool:
        # Gemini's enum is a list of strings; other types use format "enum".
        out["enum"] = [v if isinstance(v, str) else json.dumps(v) for v in values if v is not None]
        out.setdefault("type", "STRING")
        if out["type"] != "STRING":
            out["format"] = "enum"
        return None in values

    def _any_of(self, branches: list, out: dict) -> tuple:
        real = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if len(real) == 1:  # "X or null": X itself, made nullable
            return {**self.convert(real[0]), **out}, len(real) < len(branches)
        out["anyOf"] = [self.convert(b) for b in real]
        return out, len(real) < len(branches)


def _split_union(node: dict) -> dict:
    """`type: [a, b, ...]` -> anyOf with one branch per type (descriptive keys stay outside)."""
    outer = ("title", "description", "default")
    rest = {k: v for k, v in node.items() if k not in outer + ("type",)}
    return {**{k: node[k] for k in outer if k in node}, "anyOf": [{**rest, "type": t} for t in node["type"]]}


def _merge_schemas(schemas: list) -> dict:
    out: dict = {}
    for schema in schemas:
        for key, value in schema.items():
            if key == "properties":
                out["properties"] = {**out.get("properties", {}), **value}
            elif key in ("required", "propertyOrdering"):
                out[key] = out.get(key, []) + [v for v in value if v not in out.get(key, [])]
            else:
                out[key] = value
    return out
