"""The engine behind `llmring lock chat`: a model that configures the user's lockfile through
tools. It searches the registry, reads the lockfile, and proposes changes that the user sees
as a diff and confirms before anything is written.

No click here: the terminal side is a `UI` (text, end_reply, notice, confirm) that the CLI
implements and tests replace.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Optional, Protocol

import attrs

from . import lockfile as lf_mod
from .exceptions import AllModelsFailedError, ConfigurationError, ProviderNotFoundError, all_failed
from .failover import AVAILABILITY
from .lockfile import Binding, Lockfile
from .refs import alias_problem, is_ref, ref_problem, split_refs
from .ring import Ring
from .types import Attempt, Message, ToolCall

ADVISOR_ALIAS = "advisor"
MAX_ROUNDS = 8  # model replies per user turn, so a model stuck calling tools cannot loop forever
SEARCH_LIMIT = 25


class UI(Protocol):
    """What the advisor shows and asks; the CLI prints to the terminal, tests record."""

    def text(self, delta: str) -> None: ...  # a piece of the advisor's streamed reply

    def end_reply(self) -> None: ...  # the streamed reply is complete

    def notice(self, line: str) -> None: ...  # tool activity and outcomes

    def confirm(self, plan: Plan) -> bool: ...  # show a proposal, ask "Apply these changes? [y/N]"


class ToolError(ConfigurationError):
    """A tool call the advisor cannot carry out (a bad argument, an invalid proposal); its
    message goes back to the model as the tool's result."""


@attrs.define
class Change:
    action: str  # "bind" or "unbind"
    alias: str
    profile: str
    models: list = attrs.field(factory=list)
    description: Optional[str] = None

    def describe(self) -> str:
        if self.action == "unbind":
            return f"unbind {self.alias}  [profile {self.profile}]"
        return f"bind {self.alias} → {', '.join(self.models)}  [profile {self.profile}]"


@attrs.define
class Plan:
    """A checked proposal: the changes, the file before and after, and what to warn about."""

    path: Path
    changes: list
    before: Optional[str]  # the file's text now; None when it does not exist yet
    after: str  # the text the changes would write
    warnings: list = attrs.field(factory=list)
    new_profiles: list = attrs.field(factory=list)

    @property
    def creates_file(self) -> bool:
        return self.before is None

    @property
    def diff(self) -> str:
        old = "/dev/null" if self.creates_file else f"{self.path} (now)"
        lines = difflib.unified_diff(_lines(self.before or ""), _lines(self.after), old, f"{self.path} (proposed)")
        return "".join(lines)

    def summary(self) -> str:
        where = f"{self.path} (a new file)" if self.creates_file else str(self.path)
        out = [f"Proposed changes to {where}:"]
        out += [f"  {c.describe()}" for c in self.changes]
        out += [f"  new profile: {name}" for name in self.new_profiles]
        out += [f"  {w}" for w in self.warnings]
        return "\n".join(out)


def _text(path: Path) -> Optional[str]:
    return path.read_text(encoding="utf-8") if path.exists() else None


def _lines(text: str) -> list:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


# -- the model, the lockfile ---------------------------------------------------------------------

def lockfile_target(file: Optional[str] = None, env: Optional[Mapping] = None) -> Path:
    """The lockfile to edit: --file, else $LLMRING_LOCKFILE_PATH, else ./llmring.lock. It need
    not exist: it is created when the first change is applied."""
    from .store import write_target

    path = write_target(file, env)
    if path.exists():
        lf_mod.read(path)  # a broken file cannot be edited: say so before the conversation starts
    return path


def advisor_ring(model: Optional[str], user_path: Path) -> tuple:
    """(Ring, target) for the advisor's model: --model resolved against the user's lockfile first
    (its aliases and [providers] endpoints), else llmring's bundled `advisor` alias."""
    bundled = Ring(lockfile_path=lf_mod.BUNDLED, profile="default")
    if not model:
        return bundled, ADVISOR_ALIAS
    if user_path.exists():
        user = Ring(lockfile_path=user_path)
        serves = model.partition(":")[0] in user.lockfile.providers if is_ref(model) else user.has_alias(model)
        if serves:
            return user, model
    if is_ref(model) or bundled.has_alias(model):
        return bundled, model
    raise ConfigurationError(f"--model {model!r} is not an alias of {user_path} (nor llmring's bundled lockfile); "
                             "give one of your aliases or a provider:model reference such as openai:gpt-4.1.")


def preflight(ring: Ring, target: str) -> None:
    """Raise AllModelsFailedError at once when no model of `target` has what it needs (e.g. a key),
    rather than after the user typed a question."""
    attempts = []
    for ref in ring.resolve(target).models:
        try:
            problem = ring.provider(ref.partition(":")[0]).configuration_problem()
        except ProviderNotFoundError as e:
            problem = str(e)
        if not problem:
            return
        attempts.append(Attempt(ref, "not_configured", message=problem))
    raise all_failed(target, attempts)


def unavailable_message(error: AllModelsFailedError) -> str:
    """One line: which models were tried, why each failed, and what to do."""
    tried = "; ".join(" ".join(a.describe().split()).rstrip(".") for a in error.attempts) or "no models"
    kinds = {a.kind for a in error.attempts}
    if kinds == {"not_configured"}:
        todo = "Set the API key of one of them, or pass"
    elif kinds & AVAILABILITY:
        todo = "Try again in a while, or pass"
    else:
        todo = "Pass"
    return (f"the advisor ({error.target}) cannot answer: {tried}. {todo} --model ALIAS_OR_REF "
            "(an alias of your lockfile or a provider:model you have a key for).")


# -- the prompt and the tools ----------------------------------------------------------------

def system_prompt(path: Path, exists: bool, registry_version: str, keys: list, today: date,
                  keyless: tuple = ()) -> str:
    where = f"{path}" if exists else f"{path} (it does not exist yet; the first applied change creates it)"
    return f"""You are llmring's configuration advisor. You configure the user's lockfile, {where}, which maps \
semantic aliases to ordered lists of provider:model references (primary first, then fallbacks).
Today is {today.isoformat()}. Model registry version: {registry_version}. Provider API keys set: \
{', '.join(keys) or 'none'}{f"; needing no key: {', '.join(keyless)}" if keyless else ""}.

How to advise:
- Name aliases after the task they do (summarizer, code-reviewer, extractor, sql-generator), never after \
speed or size ("fast", "deep", "cheap", "balanced").
- Give each alias fallbacks on other providers, so an outage or rate limit does not stop it; prefer providers \
whose keys are set.
- Use profiles for environments (e.g. dev with cheaper models, prod with stronger ones); an alias missing \
from a profile comes from the default profile.
- Model names and prices change: always call search_registry for current names and prices before you \
recommend a model, and never recommend deprecated or inactive ones.
- Explain cost trade-offs in $ per million input/output tokens.
- Call show_lockfile before changing anything. Change the lockfile only through propose_changes: the user \
sees a diff and confirms. Never say a change was made unless its result says applied.
- Be concise."""


def _function(name: str, description: str, properties: dict, required: list) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}}}


def tool_definitions() -> list:
    from .registry import CAPABILITIES

    return [
        _function("search_registry", "Search the model registry: current model names, prices (USD per million "
                  "tokens), context windows, capabilities and deprecations.", {
                      "query": {"type": "string", "description": "Words to match in model names, families or "
                                "capabilities, e.g. 'haiku', 'gpt-4.1', 'gemini flash'; empty lists all."},
                      "provider": {"type": "string", "description": "Only this provider, e.g. openai."},
                      "capability": {"type": "string", "enum": list(CAPABILITIES),
                                     "description": "Only models with this capability."},
                      "max_input_price": {"type": "number", "description": "Only models whose input price is at "
                                          "most this many USD per million tokens."},
                  }, ["query"]),
        _function("show_lockfile", "Show the user's lockfile: its profiles and bindings, and problems "
                  "`llmring lock validate` would report.", {}, []),
        _function("propose_changes", "Propose lockfile changes. The user sees a diff and is asked to confirm; "
                  "the result says whether they were applied.", {
                      "changes": {"type": "array", "items": {"type": "object", "properties": {
                          "action": {"type": "string", "enum": ["bind", "unbind"]},
                          "alias": {"type": "string", "description": "A task name, e.g. summarizer."},
                          "models": {"type": "array", "items": {"type": "string"},
                                     "description": "bind only: provider:model references, primary first."},
                          "profile": {"type": "string", "description": "Profile to change; a new one is created."},
                          "description": {"type": "string", "description": "What the alias is for."},
                      }, "required": ["action", "alias", "profile"]}},
                  }, ["changes"]),
    ]


# -- the conversation ------------------------------------------------------------------------

class Advisor:
    """One conversation: `ask(text)` runs a user turn, streaming replies and running tools until
    the model answers without tool calls (at most `max_rounds` replies)."""

    def __init__(self, ring: Ring, target: str, path: Path, ui: UI, *, env: Optional[Mapping] = None,
                 today: Optional[date] = None, max_rounds: int = MAX_ROUNDS) -> None:
        from . import registry
        from .init import providers_with_keys, providers_without_keys

        self.ring, self.target, self.path, self.ui = ring, target, Path(path), ui
        self.env = os.environ if env is None else env
        self.max_rounds = max_rounds
        self.tools = tool_definitions()
        prompt = system_prompt(self.path, self.path.exists(), registry.load().version,
                               providers_with_keys(self.env), today or date.today(), tuple(providers_without_keys()))
        self.messages: list = [Message(role="system", content=prompt)]

    def ask(self, text: str) -> str:
        """One user turn; returns the advisor's final answer."""
        self.messages.append(Message(role="user", content=text))
        for _ in range(self.max_rounds):
            reply, calls = self._reply()
            self.messages.append(Message(role="assistant", content=reply, tool_calls=calls or None))
            if not calls:
                return reply
            for call in calls:
                self.messages.append(Message(role="tool", tool_call_id=call.id, name=call.name,
                                             content=self.run_tool(call)))
        self.ui.notice(f"The advisor used tools {self.max_rounds} times without answering; ask again or rephrase.")
        return ""

    def _reply(self) -> tuple:
        parts: list = []
        calls = None
        for chunk in self.ring.stream(self.target, self.messages, tools=self.tools):
            if chunk.delta:
                parts.append(chunk.delta)
                self.ui.text(chunk.delta)
            if chunk.finish_reason is not None:
                calls = chunk.tool_calls
        if parts:
            self.ui.end_reply()
        return "".join(parts), calls

    # -- tools ---------------------------------------------------------------------------------
    def run_tool(self, call: ToolCall) -> str:
        """Run one tool call; the result (or the error) is JSON text for the model."""
        tools = {"search_registry": self.search_registry, "show_lockfile": self.show_lockfile,
                 "propose_changes": self.propose_changes}
        tool = tools.get(call.name)
        if tool is None:
            return _result({"error": f"there is no tool {call.name!r}; use {', '.join(tools)}"})
        if call.raw_arguments is not None:
            return _result({"error": f"the arguments of {call.name} are not valid JSON: {call.raw_arguments[:200]}"})
        try:
            return _result(tool(**_arguments(call.name, call.arguments, tool)))
        except ConfigurationError as e:  # LockfileError and ToolError too
            self.ui.notice(f"{call.name} refused: {e}")
            return _result({"error": str(e)})

    def search_registry(self, query: str = "", provider: Optional[str] = None, capability: Optional[str] = None,
                        max_input_price: Optional[float] = None) -> dict:
        from . import registry

        reg = registry.load()
        self.ui.notice(f"searching the registry for {query!r}" + (f" ({provider})" if provider else ""))
        if provider and provider not in reg.providers():
            raise ToolError(f"the registry knows no provider {provider!r}; it has {', '.join(reg.providers())}")
        if capability and capability not in registry.CAPABILITIES:
            raise ToolError(f"{capability!r} is not a capability; use {', '.join(registry.CAPABILITIES)}")
        if max_input_price is not None and not isinstance(max_input_price, (int, float)):
            raise ToolError("max_input_price must be a number of USD per million tokens")
        rows = [m for m in reg.for_provider(provider) if m.mode == "chat"
                and (not capability or m.has(capability))
                and (max_input_price is None or (m.input_price is not None and m.input_price <= max_input_price))]
        words = str(query or "").lower().split()
        if words:
            scored = [(sum(w in _haystack(m) for w in words), m) for m in rows]
            rows = [m for score, m in sorted(scored, key=lambda s: -s[0]) if score]
        return {"registry": reg.version, "prices": "USD per million tokens", "matches": len(rows),
                "models": [_model_row(m) for m in rows[:SEARCH_LIMIT]]}

    def show_lockfile(self) -> dict:
        from .checks import check

        self.ui.notice(f"reading {self.path}")
        if not self.path.exists():
            return {"lockfile": str(self.path), "exists": False,
                    "note": "no lockfile yet; the first applied change creates it with a default profile"}
        lf = lf_mod.read(self.path)
        return {"lockfile": str(self.path), "exists": True, "default_profile": lf.default_profile,
                "profiles": {name: [_binding_row(b) for b in p.bindings] for name, p in lf.profiles.items()},
                "providers": {name: {"type": e.type, "base_url": e.base_url} for name, e in lf.providers.items()},
                "findings": [str(f) for f in check(lf, self.env)]}

    def propose_changes(self, changes: Any) -> dict:
        plan = self.plan(changes)
        if plan.before == plan.after:
            return {"applied": False, "note": "nothing to change: the lockfile already says this"}
        if not self.ui.confirm(plan):
            self.ui.notice("Declined; the lockfile was not changed.")
            return {"applied": False, "declined": True,
                    "note": "the user declined; nothing was written. Ask what they would like instead."}
        try:
            self.apply(plan)
        except (ConfigurationError, OSError) as e:
            self.ui.notice(f"Not applied: {e}")
            return {"applied": False, "error": f"could not write the lockfile: {e}"}
        self.ui.notice(f"Applied: {self.path} updated.")
        return {"applied": True, "lockfile": str(self.path), "changes": [c.describe() for c in plan.changes],
                "warnings": plan.warnings}

    # -- proposals -----------------------------------------------------------------------------
    def plan(self, raw_changes: Any) -> Plan:
        """Check a proposal and work out the file it would write; ToolError says what is wrong."""
        from .checks import check

        before = _text(self.path)
        current = Lockfile.new(self.path) if before is None else lf_mod.read(self.path)
        after = copy.deepcopy(current)  # updated_at stays: the diff shows the change, not the timestamp
        changes = parse_changes(raw_changes, lf_mod.choose_profile(current, env=self.env))
        apply_changes(after, changes)
        text = after.to_toml()
        lf_mod.parse(text, self.path)  # what edit() would refuse, refuse now
        known = {str(f) for f in check(current, self.env)}
        findings = [f for f in check(after, self.env) if str(f) not in known]
        errors = [str(f) for f in findings if f.level == "error"]
        if errors:
            raise ToolError("the proposal was not applied: " + "; ".join(errors))
        return Plan(self.path, changes, before, text, [str(f) for f in findings],
                    [name for name in after.profiles if name not in current.profiles])

    def apply(self, plan: Plan) -> None:
        """Write the plan atomically under the lockfile's lock, unless the file changed meanwhile."""
        def change(lf: Lockfile) -> None:
            if _text(self.path) != plan.before:
                raise ToolError(f"{self.path} changed since the proposal; show it again and re-propose")
            apply_changes(lf, plan.changes)

        lf_mod.edit(self.path, change, create=True)


def parse_changes(raw: Any, default_profile: str) -> list:
    """Validate the model's change list into Changes; ToolError names the bad one."""
    if not isinstance(raw, list) or not raw:
        raise ToolError("changes must be a non-empty list of {action, alias, models, profile} objects")
    return [_parse_change(i + 1, item, default_profile) for i, item in enumerate(raw)]


def _parse_change(n: int, raw: Any, default_profile: str) -> Change:
    where = f"change {n}"
    if not isinstance(raw, dict):
        raise ToolError(f"{where} must be an object, not {type(raw).__name__}")
    unknown = sorted(set(raw) - {"action", "alias", "models", "profile", "description"})
    if unknown:
        raise ToolError(f"{where} has unknown key(s) {', '.join(unknown)}; "
                        "use action, alias, models, profile, description")
    action = raw.get("action")
    if action not in ("bind", "unbind"):
        raise ToolError(f"{where}: action must be 'bind' or 'unbind', not {action!r}")
    alias = raw.get("alias")
    problem = alias_problem(alias)
    if problem:
        raise ToolError(f"{where}: {problem}")
    profile = raw.get("profile") or default_profile
    problem = alias_problem(profile)  # a profile name follows the same rules as an alias
    if problem:
        raise ToolError(f"{where}: profile {profile!r} is not a valid name")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise ToolError(f"{where}: description must be text")
    if action == "unbind":
        return Change(action, alias, profile)
    try:
        models = split_refs(raw.get("models") or [])
    except TypeError as e:
        raise ToolError(f"{where}: {e}") from None
    if not models:
        raise ToolError(f"{where}: bind needs models, e.g. [\"openai:gpt-4.1-mini\"]")
    for ref in models:
        problem = ref_problem(ref)
        if problem:
            raise ToolError(f"{where}: {problem}")
    dupes = sorted({m for m in models if models.count(m) > 1})
    if dupes:
        raise ToolError(f"{where}: {', '.join(dupes)} is listed twice")
    return Change(action, alias, profile, models, description or None)


def apply_changes(lf: Lockfile, changes: list) -> None:
    """Apply changes in order, as Ring.bind_alias / unbind_alias would (a rebind keeps the
    binding's params and requires, and its description unless a new one is given)."""
    for c in changes:
        if c.action == "unbind":
            profile = lf.profiles.get(c.profile)
            if profile is None or not profile.unbind(c.alias):
                raise ToolError(f"{c.alias!r} is not bound in profile {c.profile!r}; nothing to unbind")
            continue
        lf.profile(c.profile, create=True).rebind(c.alias, c.models, c.description or None)


# -- rows for the model ----------------------------------------------------------------------

def _haystack(m: Any) -> str:
    return " ".join([m.ref, m.display_name, m.family or "", *m.aliases, *m.capabilities]).lower()


def _model_row(m: Any) -> dict:
    if m.deprecated():
        status = f"deprecated {m.deprecation_date}"
    elif m.deprecation_date:
        status = f"deprecation scheduled {m.deprecation_date}"
    else:
        status = "active" if m.active else "inactive"
    row = {"ref": m.ref, "input": m.input_price, "output": m.output_price, "context": m.context_window,
           "capabilities": m.capabilities, "status": status}
    if m.successor and (m.deprecation_date or not m.active):
        row["successor"] = m.successor
    if m.release_date:
        row["released"] = m.release_date
    return row


def _binding_row(b: Binding) -> dict:
    row: dict = {"alias": b.alias, "models": b.models}
    row.update({k: v for k, v in (("description", b.description), ("requires", b.requires),
                                  ("params", b.params)) if v})
    return row


def _arguments(name: str, args: dict, tool: Any) -> dict:
    """The call's arguments, checked against the tool's signature."""
    import inspect

    params = inspect.signature(tool).parameters
    unknown = sorted(set(args) - set(params))
    if unknown:
        raise ToolError(f"{name} takes {', '.join(params) or 'no arguments'}, not {', '.join(unknown)}")
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in args]
    if missing:
        raise ToolError(f"{name} needs {', '.join(missing)}")
    return args


def _result(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
