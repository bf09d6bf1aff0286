"""After a provider answered: the structured output asked for, and the bookkeeping (what the
registry knows of the model, the cost). Bookkeeping never loses an answer: when prices cannot
be read or the cost cannot be computed, the answer comes back with cost None and a note why."""

from __future__ import annotations

from typing import Any, Optional

from .types import LLMRequest

Known = tuple  # (ModelInfo or None, why it is unknown or None)


def model_info(lf: Any, ref: str) -> Any:
    """What the lockfile's [providers.NAME].prices or else the registry knows of `ref`, or None.
    Raises when the lockfile's prices for it are malformed."""
    from . import registry

    prefix, _, model = ref.partition(":")
    endpoint = lf.providers.get(prefix)
    prices = endpoint.options.get("prices") if endpoint is not None else None
    if prices is not None:
        if not isinstance(prices, dict):
            raise ValueError(f"[providers.{prefix}] prices must be a table of model = {{ input, output }}, "
                             f"not {type(prices).__name__}")
        mine = prices.get(model)
        if isinstance(mine, dict):
            return registry.ModelInfo(prefix, model, input_price=_price(mine, "input", ref),
                                      output_price=_price(mine, "output", ref))
    return registry.load().find(ref)


def _price(prices: dict, side: str, ref: str) -> Optional[float]:
    value = prices.get(side)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
        return value
    raise ValueError(f"the {side} price of {ref} must be a number of USD per million tokens, not {value!r}")


def known(lf: Any, ref: str) -> Known:
    """(model_info, None), or (None, why) when looking it up failed: never raises."""
    try:
        return model_info(lf, ref), None
    except Exception as e:  # noqa: BLE001 - a bookkeeping failure must not cost the call
        return None, f"cost unknown: {_why(e)}"


def cost(found: Known, usage: Any) -> tuple:
    """(USD, None), or (None, why): never raises."""
    info, problem = found
    if problem:
        return None, problem
    from . import registry

    try:
        return registry.cost(info, usage)
    except Exception as e:  # noqa: BLE001
        return None, f"cost unknown: {_why(e)}"


def _why(e: Exception) -> str:
    return str(e) if isinstance(e, ValueError) and str(e) else f"{type(e).__name__}: {e}"


def structured(text: str, tool_calls: Any, request: LLMRequest, provider: Any) -> Any:
    """The parsed answer when structured output was asked for (None otherwise); an answer
    that does not parse or match the schema is a failure of the model ("invalid_output")."""
    fmt = request.response_format
    if not fmt or fmt.get("type") not in ("json_object", "json_schema") or tool_calls:
        return None
    from .schema import parse_structured

    try:
        return parse_structured(text, fmt)
    except ValueError as e:
        raise provider.error("invalid_output", str(e)) from None
