"""Structured output: parse a model's JSON answer and check it against the requested schema.

A small JSON Schema checker (type, properties, required, additionalProperties, items, enum,
const, anyOf/oneOf/allOf, local $ref, string/number/array bounds): enough to catch a model
that answered in the wrong shape, without a dependency."""

from __future__ import annotations

import json
from typing import Any, Optional

_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def parse_structured(content: str, response_format: dict) -> Any:
    """The parsed answer; ValueError saying what is wrong when it does not parse or match."""
    text = (content or "").strip()
    if text.startswith("```"):  # some models fence JSON even when asked not to
        text = text.strip("`")
        text = text[4:] if text.lower().startswith("json") else text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"the answer is not valid JSON ({e.msg} at character {e.pos})") from None
    except RecursionError:
        raise ValueError("the answer is JSON nested too deeply to read") from None
    schema = schema_of(response_format)
    if schema is not None:
        problem = check(value, schema, schema)
        if problem:
            raise ValueError(f"the answer does not match the schema: {problem}")
    elif not isinstance(value, dict):
        raise ValueError("the answer is valid JSON but not an object, as json_object asks")
    return value


def schema_of(response_format: dict) -> Optional[dict]:
    if response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    return spec.get("schema") if isinstance(spec.get("schema"), dict) else None


def check(value: Any, schema: Any, root: dict, path: str = "$") -> str:
    """"" when `value` matches `schema`, else what is wrong and where."""
    if schema is True or not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        try:
            target = resolve_ref(root, schema["$ref"])
        except ValueError:
            return ""  # a remote or dangling reference is not followed: accept
        return check(value, target, root, path)
    if "const" in schema and value != schema["const"]:
        return f"{path} must be {schema['const']!r}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path} must be one of {schema['enum']!r}, not {value!r}"
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_is(value, t) for t in names):
            return f"{path} must be {' or '.join(names)}, not {type(value).__name__}"
    for sub in schema.get("allOf", []):
        problem = check(value, sub, root, path)
        if problem:
            return problem
    for key in ("anyOf", "oneOf"):
        if key in schema and all(check(value, s, root, path) for s in schema[key]):
            return f"{path} matches none of the {key} choices"
    if isinstance(value, dict):
        return _check_object(value, schema, root, path)
    if isinstance(value, list):
        return _check_array(value, schema, root, path)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{path} is shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{path} is longer than {schema['maxLength']} characters"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path} is below the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path} is above the maximum {schema['maximum']}"
    return ""


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, object))


def _check_object(value: dict, schema: dict, root: dict, path: str) -> str:
    for key in schema.get("required", []):
        if key not in value:
            return f"{path} lacks the required property {key!r}"
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            problem = check(item, props[key], root, f"{path}.{key}")
        elif extra is False:
            problem = f"{path} has a property {key!r} the schema does not allow"
        else:
            problem = check(item, extra, root, f"{path}.{key}")
        if problem:
            return problem
    return ""


def _check_array(value: list, schema: dict, root: dict, path: str) -> str:
    if len(value) < schema.get("minItems", 0):
        return f"{path} has fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"{path} has more than {schema['maxItems']} items"
    items = schema.get("items")
    for i, item in enumerate(value):
        problem = check(item, items, root, f"{path}[{i}]")
        if problem:
            return problem
    return ""


def resolve_ref(root: Any, ref: Any) -> Any:
    """The part of `root` a local `$ref` ("#/$defs/Item", "#") points to; ValueError saying
    why for a remote reference or one that points nowhere. The one resolver of the library."""
    pointer = ref[1:] if isinstance(ref, str) and ref.startswith("#") else None
    if pointer is None or (pointer and not pointer.startswith("/")):
        raise ValueError(f"only local $refs such as '#/$defs/Name' can be followed, not {ref!r}")
    node = root
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise ValueError(f"the schema's $ref {ref!r} points nowhere")
    return node
