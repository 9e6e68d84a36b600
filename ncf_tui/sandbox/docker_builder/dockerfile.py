"""A small Dockerfile parser: instructions, stages and Docker's word processing.

Written here rather than taken from `dockerfile-parse` because the builder needs Docker's exact
semantics in a few places that library approximates: quotes and escapes in `COPY`/`LABEL`/`ENV`
words, `${VAR:-default}` forms, the `# escape=` directive and global `ARG`s before the first `FROM`.
Heredocs are not supported (the project's Dockerfile has none); they are reported, not misread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Instructions Docker knows. Anything else is a parse error, as in Docker.
KNOWN = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DockerfileError(Exception):
    """A Dockerfile Docker itself would refuse; the message is Docker's wording."""


@dataclass(frozen=True)
class Instruction:
    """One logical instruction (continuation lines joined, comments dropped)."""

    keyword: str  # upper case, e.g. "COPY"
    rest: str  # everything after the keyword, continuation-joined
    line: int  # 1-based line where the instruction starts
    escape: str = "\\"

    @property
    def text(self) -> str:
        """The instruction as BuildKit prints it in a step title."""
        return f"{self.keyword} {self.rest}".strip()

    def json_args(self) -> list[str] | None:
        """The exec (JSON array) form's strings, or None for the shell form."""
        stripped = self.rest.strip()
        if not stripped.startswith("["):
            return None
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        return None


@dataclass
class Stage:
    """A build stage: its `FROM` and the instructions up to the next `FROM`."""

    index: int
    base: str  # after global ARG substitution
    name: str | None
    platform: str | None
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def label(self) -> str:
        """BuildKit's stage label in multi-stage step titles (`builder`, `stage-1`)."""
        return self.name or f"stage-{self.index}"


@dataclass
class Dockerfile:
    """A parsed Dockerfile: global ARGs (before the first FROM) and the stages."""

    global_args: list[Instruction]
    stages: list[Stage]
    escape: str = "\\"

    def stage_by_ref(self, ref: str) -> Stage | None:
        """The stage a `FROM`/`COPY --from` reference names (by name, case-insensitive, or index)."""
        for stage in self.stages:
            if stage.name is not None and stage.name == ref.lower():
                return stage
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None


def _logical_lines(text: str) -> tuple[list[tuple[int, str]], str]:
    """Join continuation lines and drop comments; return (line number, text) pairs and the escape char."""
    lines = text.splitlines()
    escape = "\\"
    start = 0
    # Parser directives are only recognised at the very top, before any other line.
    for index, raw in enumerate(lines):
        match = _DIRECTIVE.match(raw.strip())
        if not match:
            break
        if match.group(1).lower() == "escape":
            if match.group(2) not in ("\\", "`"):
                raise DockerfileError(f"invalid ESCAPE '{match.group(2)}'. Must be ` or \\")
            escape = match.group(2)
        start = index + 1
    # Continuations, comments inside them and the escape directive: dockerfile-parse (imported lazily).
    import io

    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8", "surrogateescape")))
    out: list[tuple[int, str]] = []
    for item in parser.structure:
        if item["instruction"] == "COMMENT" or item["startline"] < start:
            continue
        # dockerfile-parse found the instruction's lines; join them as Docker does (each continuation line
        # stripped, the escape dropped, comment lines inside skipped) so spacing inside a line is kept.
        pieces = []
        for raw in str(item["content"]).splitlines():
            body = raw.rstrip()
            if body.strip().startswith("#"):
                continue
            if body.endswith(escape) and not body.endswith(escape * 2):
                body = body[: -len(escape)]
            if body.strip():
                pieces.append(body.strip())
        if pieces:
            out.append((int(item["startline"]) + 1, " ".join(pieces)))
    return out, escape


def parse(text: str, build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Parse Dockerfile text; the message of a DockerfileError is the one Docker prints.

    `build_args` (`--build-arg`) override global ARG defaults where FROM lines use them.
    """
    logical, escape = _logical_lines(text)
    global_args: list[Instruction] = []
    stages: list[Stage] = []
    for number, line in logical:
        keyword, _, rest = line.partition(" ")
        keyword_upper = keyword.upper()
        if keyword_upper not in KNOWN:
            raise DockerfileError(f"dockerfile parse error on line {number}: unknown instruction: {keyword}")
        if "<<" in rest and keyword_upper in ("RUN", "COPY", "ADD") and re.search(r"<<-?[\"']?[A-Za-z]", rest):
            raise DockerfileError(
                f"dockerfile parse error on line {number}: heredocs are not supported by the sandbox builder"
            )
        instruction = Instruction(keyword_upper, rest.strip(), number, escape)
        if keyword_upper == "FROM":
            stages.append(_parse_from(instruction, len(stages), global_args, build_args or {}))
        elif not stages:
            if keyword_upper != "ARG":
                raise DockerfileError("no build stage in current context")
            global_args.append(instruction)
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError("the Dockerfile (Dockerfile) cannot be empty" if not logical else "no build stage")
    return Dockerfile(global_args, stages, escape)


def _parse_from(
    instruction: Instruction, index: int, global_args: list[Instruction], build_args: Mapping[str, str]
) -> Stage:
    scope: dict[str, str] = {}
    for arg in global_args:
        for name, value in parse_arg(arg, scope):
            chosen = build_args.get(name, value)
            scope[name] = chosen if chosen is not None else ""
    words = split_words(instruction.rest, {}, instruction.escape, expand_vars=False)
    flags, words = take_flags(words)
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise DockerfileError(
            f"dockerfile parse error on line {instruction.line}: FROM requires either one or three arguments"
        )
    base = expand(words[0], scope, instruction.escape)
    stage_name = words[2].lower() if len(words) == 3 else None
    return Stage(index, base, stage_name, flags.get("platform"), instruction)


def parse_arg(instruction: Instruction, scope: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """`ARG NAME[=default] ...` as (name, default or None) pairs, defaults expanded in `scope`."""
    out: list[tuple[str, str | None]] = []
    for word in split_words(instruction.rest, scope, instruction.escape):
        name, eq, value = word.partition("=")
        if not _NAME.fullmatch(name):
            raise DockerfileError(f"dockerfile parse error on line {instruction.line}: invalid ARG name {name!r}")
        out.append((name, value if eq else None))
    if not out:
        raise DockerfileError(f"dockerfile parse error on line {instruction.line}: ARG requires exactly one argument")
    return out


def parse_key_values(instruction: Instruction, scope: Mapping[str, str]) -> list[tuple[str, str]]:
    """`ENV`/`LABEL` pairs in both forms: `k=v k2="v 2"` and the legacy `k some value`."""
    words = split_words(instruction.rest, scope, instruction.escape)
    if not words:
        raise DockerfileError(
            f"dockerfile parse error on line {instruction.line}: {instruction.keyword} requires at least one argument"
        )
    if "=" not in words[0]:
        # Legacy form: the first word is the key, the rest of the line (expanded, unsplit) the value.
        key, _, raw_value = instruction.rest.strip().partition(" ")
        return [(key, expand(raw_value.strip(), scope, instruction.escape))]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, eq, value = word.partition("=")
        where = f"dockerfile parse error on line {instruction.line}"
        if not key:
            raise DockerfileError(f"{where}: {instruction.keyword} names can not be blank")
        if not eq:
            raise DockerfileError(f"{where}: Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        pairs.append((key, value))
    return pairs


def take_flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split leading `--name=value` / `--name` flags off an instruction's words."""
    flags: dict[str, str] = {}
    index = 0
    while index < len(words) and words[index].startswith("--"):
        name, eq, value = words[index][2:].partition("=")
        flags[name] = value if eq else "true"
        index += 1
    return flags, words[index:]


def expand(text: str, scope: Mapping[str, str], escape: str = "\\") -> str:
    """Docker's ProcessWord: quotes removed and variables expanded, whitespace kept."""
    words = _process(text, scope, escape, split=False, expand_vars=True)
    return words[0] if words else ""


def split_words(text: str, scope: Mapping[str, str], escape: str = "\\", *, expand_vars: bool = True) -> list[str]:
    """Docker's ProcessWords: split on unquoted whitespace, quotes removed, variables expanded once.

    An expanded value is never re-split, exactly as in Docker: `COPY $SRC /dst` copies one path even if
    `$SRC` contains a space.
    """
    return _process(text, scope, escape, split=True, expand_vars=expand_vars)


def _process(text: str, scope: Mapping[str, str], escape: str, *, split: bool, expand_vars: bool) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    in_word = False
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if split and char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
            i += 1
            continue
        in_word = True
        if char == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise DockerfileError("unexpected end of statement while looking for matching single-quote")
            current.append(text[i + 1 : end])
            i = end + 1
        elif char == '"':
            i += 1
            while True:
                if i >= n:
                    raise DockerfileError("unexpected end of statement while looking for matching double-quote")
                inner = text[i]
                if inner == '"':
                    i += 1
                    break
                if inner == escape and i + 1 < n and text[i + 1] in ('"', "$", escape):
                    current.append(text[i + 1])
                    i += 2
                elif inner == "$" and expand_vars:
                    value, i = _expand_var(text, i, scope, escape)
                    current.append(value)
                else:
                    current.append(inner)
                    i += 1
        elif char == escape:
            if i + 1 < n:
                current.append(text[i + 1])
            i += 2
        elif char == "$" and expand_vars:
            value, i = _expand_var(text, i, scope, escape)
            current.append(value)
        else:
            current.append(char)
            i += 1
    if in_word or not split:
        words.append("".join(current))
    return words


def _expand_var(text: str, i: int, scope: Mapping[str, str], escape: str) -> tuple[str, int]:
    """Expand the `$NAME` or `${NAME...}` at `text[i]`; return its value and the index after it."""
    n = len(text)
    if i + 1 < n and text[i + 1] == "{":
        depth, j = 1, i + 2
        while j < n and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        if depth:
            raise DockerfileError(f"missing '}}' in {text[i:]!r}")
        body = text[i + 2 : j - 1]
        match = _NAME.match(body)
        if not match:
            raise DockerfileError(f"bad substitution: {text[i:j]!r}")
        name, modifier = match.group(0), body[match.end() :]
        value = scope.get(name)
        if not modifier:
            return value or "", j
        colon = modifier.startswith(":")
        op, word = (modifier[1:2], modifier[2:]) if colon else (modifier[:1], modifier[1:])
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return (value or "") if is_set else expand(word, scope, escape), j
        if op == "+":
            return expand(word, scope, escape) if is_set else "", j
        if op == "?":
            if not is_set:
                raise DockerfileError(f"{name}: {expand(word, scope, escape) or 'is not allowed to be unset'}")
            return value or "", j
        raise DockerfileError(f"unsupported modifier ({modifier[:2]}) in substitution: {text[i:j]!r}")
    match = _NAME.match(text, i + 1)
    if not match:
        return "$", i + 1
    return scope.get(match.group(0), ""), match.end()
