"""The slice of Go's text/template that `docker ... --format` strings use.

Supported: literal text, `{{.A.B}}`, `{{index .A 0}}` / `{{index .A "key"}}`, `{{json .A}}`,
`{{join .A ","}}`, `{{len .A}}`, and `{{-`/`-}}` trimming. Errors read like Go's, e.g.
`template: :1:2: executing "" at <index .RepoDigests 0>: error calling index: index out of range: 0`.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


class TemplateError(Exception):
    """A template that cannot be parsed or executed; the message is Go's wording."""


def _go_str(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def render(template: str, data: dict[str, Any]) -> str:
    """Execute `template` against `data` (Docker's inspect object as a dict)."""
    out: list[str] = []
    position = 0
    for match in _ACTION.finditer(template):
        text = template[position : match.start()]
        if match.group(1):
            text = text.rstrip()
        out.append(text)
        expression = match.group(2).strip()
        line = template.count("\n", 0, match.start()) + 1
        column = match.start(2) - (template.rfind("\n", 0, match.start()) + 1)
        where = f'template: :{line}:{column}: executing "" at <{expression}>'
        out.append(_go_str(_evaluate(expression, data, where)))
        position = match.end()
        if match.group(3):
            rest = template[position:]
            position += len(rest) - len(rest.lstrip())
    out.append(template[position:])
    return "".join(out)


def _tokens(expression: str) -> list[str]:
    try:
        lexer = shlex.shlex(expression, posix=False)
        lexer.whitespace_split = True
        return list(lexer)
    except ValueError as error:
        raise TemplateError(f"template: :1: {error}") from None


def _argument(token: str, data: dict[str, Any], where: str) -> Any:
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        return json.loads(token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if token.startswith("."):
        value: Any = data
        for name in [p for p in token.split(".") if p]:
            if not isinstance(value, dict) or name not in value:
                raise TemplateError(f"{where}: can't evaluate field {name} in type image.InspectResponse")
            value = value[name]
        return value
    raise TemplateError(f'template: :1: function "{token}" not defined')


def _evaluate(expression: str, data: dict[str, Any], where: str) -> Any:
    words = _tokens(expression)
    if not words:
        raise TemplateError("template: :1: missing value for command")
    head, args = words[0], [_argument(w, data, where) for w in words[1:]]
    if head.startswith(".") or head.startswith('"'):
        if args:
            raise TemplateError(f"{where}: can't give argument to non-function {head}")
        return _argument(head, data, where)
    if head == "index":
        if not args:
            raise TemplateError(f"{where}: wrong number of args for index: want at least 1 got 0")
        value = args[0]
        for key in args[1:]:
            if isinstance(value, list):
                if not isinstance(key, int) or not 0 <= key < len(value):
                    raise TemplateError(f"{where}: error calling index: index out of range: {key}")
                value = value[key]
            elif isinstance(value, dict):
                value = value.get(key)
            else:
                raise TemplateError(f"{where}: error calling index: can't index item of type {type(value).__name__}")
        return value
    if head == "json":
        if len(args) != 1:
            raise TemplateError(f"{where}: wrong number of args for json: want 1 got {len(args)}")
        return json.dumps(args[0], separators=(",", ":"))
    if head == "join":
        if len(args) != 2 or not isinstance(args[0], list):
            raise TemplateError(f"{where}: wrong arguments for join")
        return str(args[1]).join(_go_str(v) for v in args[0])
    if head == "len":
        if len(args) != 1 or not isinstance(args[0], list | dict | str):
            raise TemplateError(f"{where}: error calling len: len of wrong type")
        return len(args[0])
    raise TemplateError(f'template: :1: function "{head}" not defined')
