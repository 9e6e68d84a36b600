"""An IAM identity-policy evaluator and the response builder behind iam:SimulatePrincipalPolicy.

moto has no SimulatePrincipalPolicy, and the product's IAM preflight depends on it, so the sandbox answers
it with this evaluator. It is pure Python (no moto, no boto3) so that it can be tested exhaustively on its
own and so that the HTTP glue stays thin.

Public API (stable: the sandbox's IAM handler imports it)
--------------------------------------------------------
``SourcePolicy(id, document, type=IAM_POLICY)``
    One identity policy to evaluate. ``document`` is a dict, a JSON string, or URL-encoded JSON (as IAM
    stores it). Constructors for the usual sources: ``SourcePolicy.inline(name, doc)`` (id = policy name),
    ``SourcePolicy.managed(arn, doc)`` (id = the policy's name, as AWS reports attached managed policies) and
    ``SourcePolicy.custom(n, doc)`` (id = ``PolicyInputList.n``, 1-based, as SimulateCustomPolicy reports it).
    ``type`` is the ``SourcePolicyType`` reported for matched statements; real AWS answers ``"IAM Policy"``
    for both inline and attached identity policies, so that is the default. The documented enum values
    (``user``, ``group``, ``role``, ``aws-managed``, ``user-managed``, ``resource``, ``none``) are accepted.
``ContextEntry(name, values, type="string")`` / ``ContextEntry.from_request(mapping)``
    One ``ContextEntries`` member; ``from_request`` takes AWS's shape (``ContextKeyName``,
    ``ContextKeyValues``, ``ContextKeyType``). Anywhere a ContextEntry is accepted, that mapping is too.
``simulate(policies, actions, resources=None, context=(), *, boundary=()) -> list[EvaluationResult]``
    One result per (action, resource) pair, actions outer, resources inner, in request order. ``resources``
    ``None`` (or empty) means AWS's default ``"*"``. ``boundary``: the principal's permissions boundary (one
    managed policy, or the request's ``PermissionsBoundaryPolicyInputList``), empty when it has none.
``simulate_response(policies, actions, resources=None, context=(), *, max_items=None, marker=None)``
    The ``SimulatePrincipalPolicyResult`` (same shape as ``SimulateCustomPolicyResult``):
    ``EvaluationResults``, ``IsTruncated`` and ``Marker`` (only when truncated). ``max_items`` defaults to
    100 (AWS's default) and must be 1..1000. Markers are opaque, stable for the same request, and refused
    for another request. ``iter_pages(...)`` follows the markers and yields every page.
``evaluate(policies, action, resource, context=()) -> EvaluationResult``  one pair.
``parse_policy(document, policy_id="policy") -> Policy``  validation only (e.g. for PutRolePolicy).
``PolicyError``  a malformed policy document (serve it as ``MalformedPolicyDocument``).
``InvalidInputError``  a bad request parameter: action name, resource, context entry, MaxItems, Marker
(serve it as ``InvalidInput``).

Evaluation (IAM User Guide, "Policy evaluation logic", for identity policies and a boundary in one account)
--------------------------------------------------------------------------------------------------------
A statement applies to a request when its Action (or NotAction) matches the action, its Resource (or
NotResource) matches the resource, and every condition holds. Any applying Deny (identity policy or
permissions boundary) gives ``explicitDeny``; else an applying identity Allow gives ``allowed`` when the
principal has no boundary or its boundary has an applying Allow too; else ``implicitDeny``.
``MatchedStatements`` lists the statements that decided (the Denies, or the identity Allows; none for an
implicit deny). With a boundary, every result (and resource-specific result) carries
``PermissionsBoundaryDecisionDetail.AllowedByPermissionsBoundary`` (botocore's iam model: true when the
boundary has an applying Allow and no applying Deny).

Actions match case-insensitively; resources case-sensitively; ``*`` and ``?`` are globs. In resource ARNs a
glob stays within one colon-separated segment, except a ``*`` that ends a segment, which may run past colons
(IAM User Guide, Resource element, "Including wildcard characters in the resource ARN"). ArnLike/ArnEquals
instead cut both ARNs into their six colon-delimited components and match each on its own (the sixth runs to
the end, colons included), so no glob ever crosses a component (IAM User Guide, ARN condition operators, with
its ``arn:aws:someservice:*:111122223333:finance/*`` example). A request for resource ``"*"`` is matched as
the literal string ``*``: only statements whose Resource
matches ``*`` (i.e. ``"*"``) apply, as in AWS's simulator.

Conditions: String*, Numeric*, Date*, Bool, BinaryEquals, IpAddress/NotIpAddress, Arn*, Null, each with
``...IfExists`` and ``ForAnyValue:``/``ForAllValues:``. Operators AND together, keys AND, values OR (negated
operators: the value matches none). Keys are matched case-insensitively against the context. A key the
context lacks makes its condition false, so its statement does not apply, and it is reported in
``MissingContextValues``; the documented exceptions hold (IAM User Guide, Condition operators, "Important"):
a negated operator (``StringNotEquals``, ``StringNotLike``, ``ArnNotLike``, ``NotIpAddress``,
``NumericNotEquals``, ``DateNotEquals``...) is true for an absent key, ``...IfExists`` and ``ForAllValues:`` are
true for an absent key, ``ForAnyValue:`` is false, and ``Null`` tests absence. Keys that hold by absence are
not reported missing. Policy variables (``${aws:username}``, Version 2012-10-17 only) in Resource and condition
values are substituted from a single-valued context entry; without one the statement does not apply and the
key is reported as missing. ``${*}``, ``${?}``, ``${$}`` and ``${key, 'default'}`` follow AWS.

Positions: ``StartPosition`` is the 1-based line and column of the statement's ``{`` in the document text,
``EndPosition`` the column just past its ``}`` (as AWS reports ends). A dict document is rendered with
``json.dumps(doc, indent=4)`` first. ``EvalDecisionDetails`` is ``{}``: AWS fills it only for cross-account
simulations. ``ResourceSpecificResults`` (one entry, the result's resource) is present when the caller gave
resources, as AWS does. SCPs, resource-based and session policies are not evaluated (the sandbox's account is
in no organisation and no ``ResourcePolicy`` is accepted), so ``OrganizationsDecisionDetail`` is never set.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import ipaddress
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, Literal

__all__ = [
    "CONTEXT_KEY_TYPES",
    "DEFAULT_MAX_ITEMS",
    "IAM_POLICY",
    "SOURCE_POLICY_TYPES",
    "ContextEntry",
    "EvaluationResult",
    "InvalidInputError",
    "MatchedStatement",
    "Policy",
    "PolicyError",
    "Position",
    "SourcePolicy",
    "Statement",
    "evaluate",
    "glob_match",
    "iter_pages",
    "parse_policy",
    "simulate",
    "simulate_response",
]

Decision = Literal["allowed", "explicitDeny", "implicitDeny"]

IAM_POLICY: Final = "IAM Policy"
SOURCE_POLICY_TYPES: Final = frozenset(
    {IAM_POLICY, "user", "group", "role", "aws-managed", "user-managed", "resource", "none"}
)
CONTEXT_KEY_TYPES: Final = frozenset(
    f"{base}{suffix}" for base in ("string", "numeric", "boolean", "ip", "binary", "date") for suffix in ("", "List")
)
DEFAULT_MAX_ITEMS: Final = 100
MAX_ITEMS_LIMIT: Final = 1000
VERSION_2012: Final = "2012-10-17"
VERSION_2008: Final = "2008-10-17"


class PolicyError(ValueError):
    """A policy document that IAM would refuse (MalformedPolicyDocument)."""


class InvalidInputError(ValueError):
    """A simulation request parameter that IAM would refuse (InvalidInput)."""


# --------------------------------------------------------------------------------------------------- globs
# Patterns compile to small token tuples matched by an NFA walk: linear in pattern x text, no regex
# backtracking, and literal '*' from ${*} stays literal.

_LIT, _STAR, _ONE = 0, 1, 2
Token = tuple[int, str, bool]  # (kind, literal char, may cross ':')
Mode = Literal["action", "string", "arn"]


def _tokens(text: str, mode: Mode) -> tuple[Token, ...]:
    """Tokenise a glob: '*' any run, '?' one char; in 'arn' mode only a segment-final '*' crosses ':'."""
    out: list[Token] = []
    for i, ch in enumerate(text):
        if ch == "*":
            crosses = mode != "arn" or i + 1 == len(text) or text[i + 1] == ":"
            out.append((_STAR, "", crosses))
        elif ch == "?":
            out.append((_ONE, "", mode != "arn"))
        else:
            out.append((_LIT, ch.lower() if mode == "action" else ch, True))
    return tuple(out)


def _closure(tokens: Sequence[Token], states: Iterable[int]) -> set[int]:
    out: set[int] = set()
    for state in states:
        s = state
        out.add(s)
        while s < len(tokens) and tokens[s][0] == _STAR:  # a star may match nothing
            s += 1
            out.add(s)
    return out


def _match_tokens(tokens: Sequence[Token], text: str) -> bool:
    states = _closure(tokens, (0,))
    end = len(tokens)
    for ch in text:
        nxt: set[int] = set()
        for s in states:
            if s == end:
                continue
            kind, lit, crosses = tokens[s]
            if kind == _STAR:
                if crosses or ch != ":":
                    nxt.add(s)
            elif kind == _ONE:
                if crosses or ch != ":":
                    nxt.add(s + 1)
            elif lit == ch:
                nxt.add(s + 1)
        if not nxt:
            return False
        states = _closure(tokens, nxt)
    return end in states


@lru_cache(maxsize=4096)
def _compiled(pattern: str, mode: Mode) -> tuple[Token, ...]:
    return _tokens(pattern, mode)


def glob_match(pattern: str, text: str, mode: Mode) -> bool:
    """Match ``text`` against an IAM glob; 'action' mode is case-insensitive, the others are not."""
    if mode == "action":
        text = text.lower()
    return _match_tokens(_compiled(pattern, mode), text)


# ------------------------------------------------------------------------------------------- templates
# A policy string in Version 2012-10-17 may hold ${variables}; parts are ("text", s), ("lit", c) for
# ${*} ${?} ${$}, and ("var", key, default-or-"") with has_default tracked by the tuple length.

Part = tuple[str, ...]
_VAR = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")


@dataclass(frozen=True)
class Template:
    """A Resource or condition value, split into text, literal characters and policy variables."""

    raw: str
    parts: tuple[Part, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(p[1] for p in self.parts if p[0] == "var")

    @classmethod
    def parse(cls, raw: str, version: str) -> Template:
        if version != VERSION_2012 or "${" not in raw:
            return cls(raw, (("text", raw),))
        parts: list[Part] = []
        pos = 0
        for m in _VAR.finditer(raw):
            if m.start() > pos:
                parts.append(("text", raw[pos : m.start()]))
            body = m.group(1).strip()
            if body in ("*", "?", "$"):
                parts.append(("lit", body))
            elif (d := _DEFAULT.match(body)) is not None:
                parts.append(("var", d.group(1), d.group(2)))
            else:
                parts.append(("var", body))
            pos = m.end()
        if pos < len(raw):
            parts.append(("text", raw[pos:]))
        return cls(raw, tuple(parts))

    def resolve(self, ctx: _Context, missing: list[str]) -> list[tuple[str, bool]] | None:
        """Substitute variables: a list of (text, is_glob) chunks, or None (keys appended to ``missing``)."""
        chunks: list[tuple[str, bool]] = []
        ok = True
        for part in self.parts:
            if part[0] == "text":
                chunks.append((part[1], True))
            elif part[0] == "lit":
                chunks.append((part[1], False))
            else:
                values = ctx.get(part[1])
                if values is not None and len(values) == 1:
                    chunks.append((values[0], False))
                elif values is None and len(part) == 3:
                    chunks.append((part[2], False))
                else:
                    missing.append(part[1])
                    ok = False
        return chunks if ok else None


def _chunk_tokens(chunks: Sequence[tuple[str, bool]], mode: Mode) -> tuple[Token, ...]:
    """Tokens for resolved chunks; ARN segment boundaries are judged on the whole joined text."""
    joined = "".join(c for c, _ in chunks)
    out: list[Token] = []
    i = 0
    for text, is_glob in chunks:
        for ch in text:
            if is_glob and ch in "*?":
                nxt = joined[i + 1] if i + 1 < len(joined) else ":"
                crosses = mode != "arn" or (ch == "*" and nxt == ":")
                out.append((_STAR if ch == "*" else _ONE, "", crosses))
            else:
                out.append((_LIT, ch, True))
            i += 1
    return tuple(out)


def _template_glob(tpl: Template, text: str, mode: Mode, ctx: _Context, missing: list[str]) -> bool | None:
    """Glob-match a template: True/False, or None when a variable has no value in the context."""
    if len(tpl.parts) == 1 and tpl.parts[0][0] == "text":
        return glob_match(tpl.raw, text, mode)
    chunks = tpl.resolve(ctx, missing)
    if chunks is None:
        return None
    return _match_tokens(_chunk_tokens(chunks, mode), text)


def _template_text(tpl: Template, ctx: _Context, missing: list[str]) -> str | None:
    chunks = tpl.resolve(ctx, missing)
    return None if chunks is None else "".join(c for c, _ in chunks)


# ---------------------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class ContextEntry:
    """One ContextEntries member: a key, its values (always a tuple of strings) and its declared type."""

    name: str
    values: tuple[str, ...]
    type: str = "string"

    @classmethod
    def from_request(cls, entry: Mapping[str, Any]) -> ContextEntry:
        """Build from AWS's shape: ContextKeyName, ContextKeyValues (list), ContextKeyType."""
        name = entry.get("ContextKeyName")
        raw_values = entry.get("ContextKeyValues", [])
        ctype = entry.get("ContextKeyType", "string")
        if isinstance(raw_values, str | int | float | bool):
            raw_values = [raw_values]
        if not isinstance(name, str) or not isinstance(raw_values, list | tuple):
            raise InvalidInputError(f"Invalid context entry {dict(entry)!r}: need ContextKeyName and a list")
        values = tuple(_scalar_text(v) for v in raw_values)
        return cls(name, values, str(ctype))


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidInputError(f"Context value {value!r} is not a string")


class _Context:
    """Context entries by lower-cased key, validated against their declared ContextKeyType."""

    def __init__(self, entries: Sequence[ContextEntry | Mapping[str, Any]]) -> None:
        self._values: dict[str, tuple[str, ...]] = {}
        for raw in entries:
            entry = raw if isinstance(raw, ContextEntry) else ContextEntry.from_request(raw)
            _validate_entry(entry)
            key = entry.name.lower()
            if key in self._values:
                raise InvalidInputError(f"Context key {entry.name} is given more than once")
            self._values[key] = entry.values

    def get(self, key: str) -> tuple[str, ...] | None:
        return self._values.get(key.lower())


def _validate_entry(entry: ContextEntry) -> None:
    if not (5 <= len(entry.name) <= 256) or ":" not in entry.name:
        raise InvalidInputError(f"Invalid context key name {entry.name!r}: expected e.g. aws:SourceIp")
    if entry.type not in CONTEXT_KEY_TYPES:
        raise InvalidInputError(
            f"Invalid ContextKeyType {entry.type!r} for {entry.name}: one of {sorted(CONTEXT_KEY_TYPES)}"
        )
    base = entry.type.removesuffix("List")
    if base == entry.type and len(entry.values) > 1:
        raise InvalidInputError(f"Context key {entry.name} has type {entry.type} but several values")
    check: Callable[[str], object] | None = {
        "numeric": _number,
        "boolean": _boolean,
        "date": _date,
        "ip": _ip_network,
    }.get(base)
    for value in entry.values:
        if check is not None and check(value) is None:
            raise InvalidInputError(f"Context value {value!r} of {entry.name} is not a valid {base}")


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _boolean(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


def _date(text: str) -> dt.datetime | None:
    text = text.strip()
    number = _number(text)
    if number is not None:
        try:
            return dt.datetime.fromtimestamp(float(number), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _ip_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------- conditions

Compare = Callable[[str, str], bool]


def _cmp_number(op: Callable[[Decimal, Decimal], bool]) -> Compare:
    def compare(ctx_value: str, policy_value: str) -> bool:
        a, b = _number(ctx_value), _number(policy_value)
        return a is not None and b is not None and op(a, b)

    return compare


def _cmp_date(op: Callable[[dt.datetime, dt.datetime], bool]) -> Compare:
    def compare(ctx_value: str, policy_value: str) -> bool:
        a, b = _date(ctx_value), _date(policy_value)
        return a is not None and b is not None and op(a, b)

    return compare


def _cmp_ip(ctx_value: str, policy_value: str) -> bool:
    a, b = _ip_network(ctx_value), _ip_network(policy_value)
    if isinstance(a, ipaddress.IPv4Network) and isinstance(b, ipaddress.IPv4Network):
        return a.subnet_of(b)
    if isinstance(a, ipaddress.IPv6Network) and isinstance(b, ipaddress.IPv6Network):
        return a.subnet_of(b)
    return False


def _cmp_bool(ctx_value: str, policy_value: str) -> bool:
    a, b = _boolean(ctx_value), _boolean(policy_value)
    return a is not None and a == b


@dataclass(frozen=True)
class _Operator:
    name: str  # canonical, e.g. "StringLike"
    kind: Literal["equal", "glob", "arn", "typed"]
    negated: bool
    compare: Compare | None = None  # for "typed"
    ignore_case: bool = False
    check: Callable[[str], object] | None = None  # validates policy values


def _operators() -> dict[str, _Operator]:
    ops = [
        _Operator("StringEquals", "equal", False),
        _Operator("StringNotEquals", "equal", True),
        _Operator("StringEqualsIgnoreCase", "equal", False, ignore_case=True),
        _Operator("StringNotEqualsIgnoreCase", "equal", True, ignore_case=True),
        _Operator("StringLike", "glob", False),
        _Operator("StringNotLike", "glob", True),
        _Operator("ArnEquals", "arn", False),
        _Operator("ArnLike", "arn", False),
        _Operator("ArnNotEquals", "arn", True),
        _Operator("ArnNotLike", "arn", True),
        _Operator("BinaryEquals", "equal", False),
        _Operator("Bool", "typed", False, _cmp_bool, check=_boolean),
        _Operator("IpAddress", "typed", False, _cmp_ip, check=_ip_network),
        _Operator("NotIpAddress", "typed", True, _cmp_ip, check=_ip_network),
    ]
    for suffix, op in (
        ("Equals", lambda a, b: a == b),
        ("LessThan", lambda a, b: a < b),
        ("LessThanEquals", lambda a, b: a <= b),
        ("GreaterThan", lambda a, b: a > b),
        ("GreaterThanEquals", lambda a, b: a >= b),
    ):
        ops.append(_Operator(f"Numeric{suffix}", "typed", False, _cmp_number(op), check=_number))
        ops.append(_Operator(f"Date{suffix}", "typed", False, _cmp_date(op), check=_date))
    ops.append(_Operator("NumericNotEquals", "typed", True, _cmp_number(lambda a, b: a == b), check=_number))
    ops.append(_Operator("DateNotEquals", "typed", True, _cmp_date(lambda a, b: a == b), check=_date))
    return {op.name.lower(): op for op in ops}


_OPERATORS: Final = _operators()


@dataclass(frozen=True)
class Condition:
    """One (operator, key) pair of a Condition block with its values."""

    operator: str  # as written in the policy
    key: str
    values: tuple[Template, ...]
    base: str  # canonical operator name, or "Null"
    qualifier: Literal["", "ForAnyValue", "ForAllValues"] = ""
    if_exists: bool = False

    def holds(self, ctx: _Context, missing: list[str]) -> bool:
        """Whether the condition holds; an absent key it needs is appended to ``missing``."""
        present = ctx.get(self.key)
        if self.base == "Null":
            want_absent = _boolean(self.values[0].raw) is True
            return (present is None) == want_absent
        op = _OPERATORS[self.base.lower()]
        if present is None:
            # IAM User Guide, Condition operators ("Important"): an absent key makes a condition false,
            # except that a negated operator (StringNotLike, ArnNotLike...) is then true; ...IfExists and
            # ForAllValues are true for an absent key, ForAnyValue false.
            if self.if_exists or self.qualifier == "ForAllValues":
                return True
            if op.negated and not self.qualifier:
                return True
            missing.append(self.key)
            return False
        var_missing: list[str] = []
        matchers = [m for tpl in self.values if (m := _value_matcher(op, tpl, ctx, var_missing)) is not None]
        if var_missing:
            missing.extend(var_missing)
            return False

        def positive(value: str) -> bool:
            return any(m(value) for m in matchers)

        if self.qualifier == "ForAnyValue":
            return any(positive(v) != op.negated for v in present)
        if self.qualifier == "ForAllValues":
            return all(positive(v) != op.negated for v in present)
        return any(positive(v) for v in present) != op.negated


ARN_COMPONENTS: Final = 6


def _arn_components(tokens: Sequence[Token]) -> list[tuple[Token, ...]] | None:
    """A pattern's tokens cut at its first five literal colons (None when it has fewer than six parts)."""
    parts: list[list[Token]] = [[]]
    for tok in tokens:
        if tok[0] == _LIT and tok[1] == ":" and len(parts) < ARN_COMPONENTS:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [tuple(p) for p in parts] if len(parts) == ARN_COMPONENTS else None


def _arn_like(components: Sequence[tuple[Token, ...]] | None, value: str) -> bool:
    """ArnLike/ArnEquals: "Each of the six colon-delimited components of the ARN is checked separately" (IAM
    User Guide, ARN condition operators); the sixth, the resource, runs to the end, colons and all."""
    parts = value.split(":", ARN_COMPONENTS - 1)
    if components is None or len(parts) != ARN_COMPONENTS:
        return False
    return all(_match_tokens(c, part) for c, part in zip(components, parts, strict=True))


def _value_matcher(op: _Operator, tpl: Template, ctx: _Context, missing: list[str]) -> Callable[[str], bool] | None:
    if op.kind in ("glob", "arn"):
        chunks = tpl.resolve(ctx, missing)
        if chunks is None:
            return None
        tokens = _chunk_tokens(chunks, "string")
        if op.kind == "arn":
            components = _arn_components(tokens)
            return lambda value: _arn_like(components, value)
        return lambda value: _match_tokens(tokens, value)
    text = _template_text(tpl, ctx, missing) if op.kind == "equal" else tpl.raw
    if text is None:
        return None
    if op.kind == "typed" and op.compare is not None:
        compare, expected = op.compare, text
        return lambda value: compare(value, expected)
    if op.ignore_case:
        lowered = text.lower()
        return lambda value: value.lower() == lowered
    return lambda value: value == text


# ------------------------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Position:
    line: int
    column: int

    def to_dict(self) -> dict[str, int]:
        return {"Line": self.line, "Column": self.column}


@dataclass(frozen=True)
class Statement:
    """One validated statement; exactly one of actions/not_actions and resources/not_resources is set."""

    index: int
    effect: Literal["Allow", "Deny"]
    sid: str | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[Template, ...] | None
    not_resources: tuple[Template, ...] | None
    conditions: tuple[Condition, ...]
    start: Position
    end: Position

    def applies(self, action: str, resource: str, ctx: _Context, missing: list[str]) -> bool:
        """Whether this statement covers the request; keys it needs but lacks go to ``missing``."""
        patterns = self.actions if self.actions is not None else self.not_actions
        assert patterns is not None
        hit = any(glob_match(p, action, "action") for p in patterns)
        if hit != (self.actions is not None):
            return False
        templates = self.resources if self.resources is not None else self.not_resources
        assert templates is not None
        own_missing: list[str] = []
        results = [_template_glob(t, resource, "arn", ctx, own_missing) for t in templates]
        if True in results:
            res_hit: bool | None = True
        elif None in results:
            res_hit = None
        else:
            res_hit = False
        if res_hit is not None and res_hit != (self.resources is not None):
            return False
        holds = [c.holds(ctx, own_missing) for c in self.conditions]
        missing.extend(own_missing)
        return res_hit is not None and all(holds) and not own_missing


@dataclass(frozen=True)
class Policy:
    """A parsed, validated identity policy and the text its statement positions refer to."""

    id: str
    type: str
    version: str
    statements: tuple[Statement, ...]
    text: str


@dataclass(frozen=True)
class SourcePolicy:
    """A policy to simulate: its SourcePolicyId, its document and its SourcePolicyType."""

    id: str
    document: str | Mapping[str, Any]
    type: str = IAM_POLICY

    @classmethod
    def inline(cls, name: str, document: str | Mapping[str, Any]) -> SourcePolicy:
        """A role's (user's, group's) inline policy: AWS reports it by policy name."""
        return cls(name, document)

    @classmethod
    def managed(cls, arn: str, document: str | Mapping[str, Any]) -> SourcePolicy:
        """An attached managed policy: AWS reports it by the policy's name (the ARN's last part)."""
        return cls(arn.rsplit("/", 1)[-1], document)

    @classmethod
    def custom(cls, number: int, document: str | Mapping[str, Any]) -> SourcePolicy:
        """The n-th (1-based) PolicyInputList member, reported as ``PolicyInputList.n``."""
        return cls(f"PolicyInputList.{number}", document)


_STATEMENT_KEYS: Final = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Principal",
        "NotPrincipal",
    }
)
_ACTION: Final = re.compile(r"^[A-Za-z0-9-]+:[^\s]+$")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(f'Duplicate key "{key}" in the policy document')
        out[key] = value
    return out


def _reject_constant(name: str) -> object:
    raise PolicyError(f"{name} is not valid JSON in a policy document")


def _document_text(document: str | Mapping[str, Any]) -> str:
    if isinstance(document, Mapping):
        try:
            return json.dumps(document, indent=4)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"The policy document is not JSON-serialisable: {exc}") from None
    if not isinstance(document, str):
        raise PolicyError(f"A policy document must be a JSON string or a dict, not {type(document).__name__}")
    text = document.strip()
    if text and not text.startswith("{") and "%" in text:
        text = urllib.parse.unquote(text).strip()  # IAM returns documents URL-encoded
    return text


def _statement_spans(text: str) -> list[tuple[int, int]]:
    """Character spans (start at '{', end past '}') of each statement, found by a position-keeping scan."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")

    def skip(i: int) -> int:
        m = ws.match(text, i)
        return m.end() if m else i

    i = skip(0)
    i += 1  # the top-level '{' (validated by the JSON parse that ran first)
    spans: list[tuple[int, int]] = []
    while True:
        i = skip(i)
        if text[i] == "}":
            return spans
        key, i = decoder.raw_decode(text, i)
        i = skip(skip(i) + 1)  # ':'
        if key == "Statement" and text[i] == "[":
            i += 1
            while True:
                i = skip(i)
                if text[i] == "]":
                    i += 1
                    break
                start = i
                _, i = decoder.raw_decode(text, i)
                spans.append((start, i))
                i = skip(i)
                if text[i] == ",":
                    i += 1
        else:
            start = i
            _, i = decoder.raw_decode(text, i)
            if key == "Statement":
                spans.append((start, i))
        i = skip(i)
        if text[i] == ",":
            i += 1


def _position(text: str, offset: int) -> Position:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Position(line, column)


def _string_list(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise PolicyError(f"{where} must be a non-empty string or a non-empty list of strings")
    return items


def parse_policy(document: str | Mapping[str, Any], policy_id: str = "policy", policy_type: str = IAM_POLICY) -> Policy:
    """Validate an identity policy as IAM does and return it parsed; raise PolicyError naming the fault."""
    try:
        text = _document_text(document)
    except PolicyError as exc:
        raise PolicyError(f"Policy {policy_id}: {exc}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"Syntax errors in policy {policy_id}: {exc}") from None
    except PolicyError as exc:
        raise PolicyError(f"Policy {policy_id}: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"Policy {policy_id}: the document must be a JSON object")
    unknown = set(data) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"Policy {policy_id}: unknown top-level element(s) {sorted(unknown)}")
    version = data.get("Version", VERSION_2008)
    if version not in (VERSION_2012, VERSION_2008):
        raise PolicyError(f'Policy {policy_id}: Version must be "2012-10-17" or "2008-10-17", not {version!r}')
    if "Id" in data and not isinstance(data["Id"], str):
        raise PolicyError(f"Policy {policy_id}: Id must be a string")
    if "Statement" not in data:
        raise PolicyError(f"Policy {policy_id}: the document has no Statement")
    raw = data["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise PolicyError(f"Policy {policy_id}: Statement is empty")
    spans = _statement_spans(text)
    statements = tuple(
        _parse_statement(
            s,
            index=n,
            version=version,
            where=f"Policy {policy_id}, statement {n + 1}",
            text=text,
            span=spans[n],
        )
        for n, s in enumerate(raw_statements)
    )
    return Policy(policy_id, policy_type, version, statements, text)


def _parse_statement(raw: Any, *, index: int, version: str, where: str, text: str, span: tuple[int, int]) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a statement must be a JSON object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"{where}: unknown element(s) {sorted(unknown)}")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise PolicyError(f"{where}: an identity policy should not specify a principal")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"{where}: Sid must be a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}: Effect must be "Allow" or "Deny", not {effect!r}')
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{where}: exactly one of Action or NotAction is required")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyError(f"{where}: exactly one of Resource or NotResource is required")
    action_key = "Action" if "Action" in raw else "NotAction"
    actions = tuple(_string_list(raw[action_key], f"{where}: {action_key}"))
    for action in actions:
        if action != "*" and not _ACTION.match(action):
            raise PolicyError(
                f"{where}: action {action!r} must be prefaced by a vendor, e.g. iam, s3, ecr (vendor:Action)"
            )
    resource_key = "Resource" if "Resource" in raw else "NotResource"
    resources = tuple(_string_list(raw[resource_key], f"{where}: {resource_key}"))
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyError(f'{where}: resource {resource!r} must be in ARN format or "*"')
    templates = tuple(Template.parse(r, version) for r in resources)
    conditions = _parse_conditions(raw.get("Condition"), version, where) if "Condition" in raw else ()
    return Statement(
        index=index,
        effect=effect,
        sid=sid,
        actions=actions if action_key == "Action" else None,
        not_actions=actions if action_key == "NotAction" else None,
        resources=templates if resource_key == "Resource" else None,
        not_resources=templates if resource_key == "NotResource" else None,
        conditions=conditions,
        start=_position(text, span[0]),
        end=_position(text, span[1]),
    )


def _parse_conditions(raw: Any, version: str, where: str) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: Condition must be an object of operator -> {{key: value}}")
    out: list[Condition] = []
    for operator, block in raw.items():
        name = operator
        qualifier: Literal["", "ForAnyValue", "ForAllValues"] = ""
        for prefix in ("ForAnyValue", "ForAllValues"):
            if name.lower().startswith(prefix.lower() + ":"):
                qualifier = "ForAnyValue" if prefix == "ForAnyValue" else "ForAllValues"
                name = name[len(prefix) + 1 :]
        if_exists = name.lower().endswith("ifexists")
        if if_exists:
            name = name[: -len("ifexists")]
        if name.lower() == "null":
            if if_exists or qualifier:
                raise PolicyError(f"{where}: Null takes neither IfExists nor ForAnyValue/ForAllValues")
            base = "Null"
        elif name.lower() in _OPERATORS:
            base = _OPERATORS[name.lower()].name
        else:
            raise PolicyError(f"{where}: invalid Condition type {operator!r}")
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}: Condition {operator} must map condition keys to values")
        for key, value in block.items():
            if ":" not in key:
                raise PolicyError(f"{where}: condition key {key!r} must be prefaced by a vendor, e.g. aws:")
            raw_values = value if isinstance(value, list) else [value]
            if not raw_values or not all(isinstance(v, str | int | float | bool) for v in raw_values):
                raise PolicyError(f"{where}: values of {operator} {key} must be strings, numbers or booleans")
            texts = [_scalar_text(v) for v in raw_values]
            check = _boolean if base == "Null" else _OPERATORS[base.lower()].check
            for text in texts:
                if check is not None and check(text) is None:
                    raise PolicyError(f"{where}: {text!r} is not a valid value for {operator} {key}")
            if base == "Null" and len(texts) != 1:
                raise PolicyError(f"{where}: Null {key} takes one value, true or false")
            templates = tuple(Template.parse(t, version) for t in texts)
            out.append(Condition(operator, key, templates, base, qualifier, if_exists))
    return tuple(out)


# ------------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class MatchedStatement:
    source_policy_id: str
    source_policy_type: str
    start: Position
    end: Position
    sid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "SourcePolicyId": self.source_policy_id,
            "SourcePolicyType": self.source_policy_type,
            "StartPosition": self.start.to_dict(),
            "EndPosition": self.end.to_dict(),
        }


@dataclass(frozen=True)
class EvaluationResult:
    """The decision for one (action, resource) pair, with the statements that made it."""

    action: str
    resource: str
    decision: Decision
    matched: tuple[MatchedStatement, ...] = ()
    missing_context: tuple[str, ...] = ()
    resource_specific: bool = field(default=False, compare=False)
    allowed_by_boundary: bool | None = None  # None: no permissions boundary applies to the principal

    def to_dict(self) -> dict[str, Any]:
        """The ``EvaluationResult`` member of the API response."""
        matched = [m.to_dict() for m in self.matched]
        out: dict[str, Any] = {
            "EvalActionName": self.action,
            "EvalResourceName": self.resource,
            "EvalDecision": self.decision,
            "MatchedStatements": matched,
            "MissingContextValues": list(self.missing_context),
            "EvalDecisionDetails": {},
        }
        boundary = (
            {}
            if self.allowed_by_boundary is None
            else {"PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": self.allowed_by_boundary}}
        )
        out.update(boundary)
        if self.resource_specific:
            out["ResourceSpecificResults"] = [
                {
                    "EvalResourceName": self.resource,
                    "EvalResourceDecision": self.decision,
                    "MatchedStatements": [m.to_dict() for m in self.matched],
                    "MissingContextValues": list(self.missing_context),
                    "EvalDecisionDetails": {},
                    **boundary,
                }
            ]
        return out


def _parse_all(policies: Sequence[SourcePolicy | Policy]) -> list[Policy]:
    parsed: list[Policy] = []
    for p in policies:
        if isinstance(p, Policy):
            parsed.append(p)
            continue
        if p.type not in SOURCE_POLICY_TYPES:
            raise InvalidInputError(
                f"SourcePolicyType {p.type!r} of {p.id} is not one of {sorted(SOURCE_POLICY_TYPES)}"
            )
        parsed.append(parse_policy(p.document, p.id, p.type))
    return parsed


def _check_action(action: str) -> str:
    if not isinstance(action, str) or not (3 <= len(action) <= 128) or not _ACTION.match(action):
        raise InvalidInputError(f"Action name {action!r} must look like vendor:Operation, e.g. s3:GetObject")
    return action


def _check_resource(resource: str) -> str:
    if not isinstance(resource, str) or not (resource == "*" or resource.startswith("arn:")):
        raise InvalidInputError(f'Resource {resource!r} must be an ARN or "*"')
    if len(resource) > 2048:
        raise InvalidInputError("A resource name is longer than 2048 characters")
    return resource


def _applying(
    policies: Sequence[Policy], action: str, resource: str, ctx: _Context, missing: list[str]
) -> tuple[list[MatchedStatement], list[MatchedStatement]]:
    """(allows, denies): the statements of ``policies`` that apply to the request."""
    allows: list[MatchedStatement] = []
    denies: list[MatchedStatement] = []
    for policy in policies:
        for st in policy.statements:
            if st.applies(action, resource, ctx, missing):
                hit = MatchedStatement(policy.id, policy.type, st.start, st.end, st.sid)
                (denies if st.effect == "Deny" else allows).append(hit)
    return allows, denies


def _evaluate_parsed(
    policies: Sequence[Policy],
    action: str,
    resource: str,
    ctx: _Context,
    resource_specific: bool,
    boundary: Sequence[Policy] = (),
) -> EvaluationResult:
    """IAM User Guide, "Policy evaluation logic" (one account, no SCP, no resource or session policy): an
    explicit Deny in any evaluated policy denies; otherwise an identity-based Allow is needed and, when the
    principal has a permissions boundary, an Allow in the boundary too ("the effective permissions are the
    intersection"); anything less is an implicit deny."""
    missing: list[str] = []
    allows, denies = _applying(policies, action, resource, ctx, missing)
    allowed_by_boundary: bool | None = None
    if boundary:
        b_allows, b_denies = _applying(boundary, action, resource, ctx, missing)
        allowed_by_boundary = bool(b_allows) and not b_denies
        denies += b_denies
    seen: dict[str, str] = {}
    for key in missing:
        seen.setdefault(key.lower(), key)
    decision: Decision
    if denies:
        decision, matched = "explicitDeny", denies
    elif allows and allowed_by_boundary is not False:
        decision, matched = "allowed", allows
    else:
        # AWS does not document which statements it lists for a boundary's implicit deny: none are listed.
        decision, matched = "implicitDeny", []
    return EvaluationResult(
        action, resource, decision, tuple(matched), tuple(seen.values()), resource_specific, allowed_by_boundary
    )


def evaluate(
    policies: Sequence[SourcePolicy | Policy],
    action: str,
    resource: str = "*",
    context: Sequence[ContextEntry | Mapping[str, Any]] = (),
    *,
    boundary: Sequence[SourcePolicy | Policy] = (),
) -> EvaluationResult:
    """Decide one (action, resource) pair against the policies (see the module docstring)."""
    parsed = _parse_all(policies)
    return _evaluate_parsed(
        parsed, _check_action(action), _check_resource(resource), _Context(context), False, _parse_all(boundary)
    )


def _pairs(actions: Sequence[str], resources: Sequence[str] | None) -> tuple[list[tuple[str, str]], bool]:
    if isinstance(actions, str) or isinstance(resources, str):
        raise InvalidInputError("ActionNames and ResourceArns must be lists, not a single string")
    if not actions:
        raise InvalidInputError("ActionNames must name at least one action")
    given = bool(resources)
    res = [_check_resource(r) for r in resources] if resources else ["*"]
    return [(_check_action(a), r) for a in actions for r in res], given


def simulate(
    policies: Sequence[SourcePolicy | Policy],
    actions: Sequence[str],
    resources: Sequence[str] | None = None,
    context: Sequence[ContextEntry | Mapping[str, Any]] = (),
    *,
    boundary: Sequence[SourcePolicy | Policy] = (),
) -> list[EvaluationResult]:
    """Every (action, resource) pair's result, actions outer and resources inner, in request order."""
    parsed, bounds = _parse_all(policies), _parse_all(boundary)
    ctx = _Context(context)
    pairs, given = _pairs(actions, resources)
    return [_evaluate_parsed(parsed, a, r, ctx, given, bounds) for a, r in pairs]


def _fingerprint(pairs: Sequence[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def _encode_marker(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_marker(marker: str, fingerprint: str, total: int) -> int:
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4))
        data = json.loads(raw)
        offset = data["o"]
        ok = isinstance(offset, int) and data["f"] == fingerprint and 0 < offset < total
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise InvalidInputError("Invalid Marker: it does not come from this simulation request")
    return int(offset)


def simulate_response(
    policies: Sequence[SourcePolicy | Policy],
    actions: Sequence[str],
    resources: Sequence[str] | None = None,
    context: Sequence[ContextEntry | Mapping[str, Any]] = (),
    *,
    max_items: int | None = None,
    marker: str | None = None,
    boundary: Sequence[SourcePolicy | Policy] = (),
) -> dict[str, Any]:
    """The SimulatePrincipalPolicyResult dict for one page of results (see the module docstring)."""
    parsed, bounds = _parse_all(policies), _parse_all(boundary)
    ctx = _Context(context)
    pairs, given = _pairs(actions, resources)
    if max_items is None:
        max_items = DEFAULT_MAX_ITEMS
    if isinstance(max_items, bool) or not isinstance(max_items, int) or not 1 <= max_items <= MAX_ITEMS_LIMIT:
        raise InvalidInputError(f"MaxItems must be an integer from 1 to {MAX_ITEMS_LIMIT}, not {max_items!r}")
    fingerprint = _fingerprint(pairs)
    start = _decode_marker(marker, fingerprint, len(pairs)) if marker else 0
    page = pairs[start : start + max_items]
    results = [_evaluate_parsed(parsed, a, r, ctx, given, bounds).to_dict() for a, r in page]
    out: dict[str, Any] = {"EvaluationResults": results, "IsTruncated": start + len(page) < len(pairs)}
    if out["IsTruncated"]:
        out["Marker"] = _encode_marker(start + len(page), fingerprint)
    return out


def iter_pages(
    policies: Sequence[SourcePolicy | Policy],
    actions: Sequence[str],
    resources: Sequence[str] | None = None,
    context: Sequence[ContextEntry | Mapping[str, Any]] = (),
    max_items: int | None = None,
    boundary: Sequence[SourcePolicy | Policy] = (),
) -> Iterator[dict[str, Any]]:
    """Every page of ``simulate_response`` in order, following the markers (a convenience for callers)."""
    marker: str | None = None
    while True:
        page = simulate_response(
            policies, actions, resources, context, max_items=max_items, marker=marker, boundary=boundary
        )
        yield page
        if not page["IsTruncated"]:
            return
        marker = page["Marker"]
