"""Evaluate a parsed Dockerfile the way BuildKit would, minus the container runtime.

What the image's files are is decided here: every `COPY`/`ADD` of the stages the target needs is
resolved against the build context (through `.dockerignore`) or an earlier stage's files, into a
virtual filesystem and one layer per instruction. `RUN` cannot run without a container runtime: it is
reported, not faked, and files only a `RUN` could have made are said to be unknown rather than invented.
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .dockerfile import (
    Dockerfile,
    DockerfileError,
    Instruction,
    Stage,
    expand,
    parse_arg,
    parse_key_values,
    split_words,
)
from .ignore import BuildContext, glob_to_regex, has_glob

# Instructions BuildKit turns into a step of its own (the others only change the image config).
STEP_KEYWORDS = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})
# The base image is never pulled, so its ENV is unknown; every Linux base image sets this PATH (it is
# also Docker's default), and Dockerfiles extend it with `ENV PATH=/x:$PATH`.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class BuildError(Exception):
    """A build step failed; the message is what Docker prints after `ERROR:`."""


@dataclass(frozen=True)
class FsEntry:
    """One path of an image's filesystem, with where its bytes come from."""

    path: str  # absolute, normalised, e.g. "/opt/ml/model/model.pth"
    kind: str  # "file" | "dir" | "symlink"
    mode: int
    source: Path | None = None  # host file holding the bytes of a "file"
    data: bytes | None = None  # bytes of a file extracted from an ADD archive
    link: str = ""  # target of a "symlink"
    uid: int = 0
    gid: int = 0


@dataclass
class Layer:
    """The files one COPY/ADD instruction adds: one tar in the image."""

    created_by: str
    entries: list[FsEntry]


@dataclass
class StageState:
    """An image being built: its filesystem as far as COPY/ADD know it, its config, its layers."""

    stage: Stage
    base_image: str | None  # the external image this stage starts from, None if from another stage or scratch
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    cmd_set_here: bool = False
    exposed: list[str] = field(default_factory=list)
    fs: dict[str, FsEntry] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    history: list[dict[str, object]] = field(default_factory=list)
    has_run: bool = False

    @property
    def scope(self) -> dict[str, str]:
        """Variables visible to substitution: declared ARGs, overridden by ENV."""
        return {**self.args, **self.env}

    def inherit(self, parent: StageState) -> None:
        """Start from another stage's image (`FROM builder`)."""
        self.env = dict(parent.env)
        self.labels = dict(parent.labels)
        self.workdir, self.user = parent.workdir, parent.user
        self.cmd, self.entrypoint = parent.cmd, parent.entrypoint
        self.exposed = list(parent.exposed)
        self.fs = dict(parent.fs)
        self.layers = list(parent.layers)
        self.history = list(parent.history)
        self.has_run = parent.has_run
        self.base_image = parent.base_image


def needed_stages(dockerfile: Dockerfile, target: int) -> list[int]:
    """Indices of the stages the target depends on (and itself), in file order, as BuildKit builds them."""
    needed: set[int] = set()
    pending = [target]
    while pending:
        index = pending.pop()
        if index in needed:
            continue
        needed.add(index)
        stage = dockerfile.stages[index]
        parent = dockerfile.stage_by_ref(stage.base)
        if parent is not None and parent.index < index:
            pending.append(parent.index)
        for instruction in stage.instructions:
            if instruction.keyword in ("COPY", "ADD"):
                ref = _from_flag(instruction)
                if ref:
                    source = dockerfile.stage_by_ref(ref)
                    if source is not None and source.index < index:
                        pending.append(source.index)
    return sorted(needed)


def _from_flag(instruction: Instruction) -> str | None:
    rest = instruction.rest
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if token.startswith("--from="):
            return token[len("--from=") :]
    return None


def _json_form(text: str) -> list[str] | None:
    return Instruction("X", text, 0).json_args()


class StageBuilder:
    """Applies one stage's instructions to a StageState; `note` receives lines worth printing."""

    def __init__(
        self,
        dockerfile: Dockerfile,
        context: BuildContext,
        build_args: Mapping[str, str],
        built: Mapping[int, StageState],
        note: Callable[[str], None],
    ) -> None:
        self.dockerfile = dockerfile
        self.context = context
        self.build_args = build_args
        self.built = built
        self.note = note
        self.consumed_args: set[str] = set()
        self.global_scope: dict[str, str] = {}
        for instruction in dockerfile.global_args:
            for name, default in parse_arg(instruction, self.global_scope):
                self.consumed_args.add(name)
                value = build_args.get(name, default)
                self.global_scope[name] = value if value is not None else ""

    def start(self, stage: Stage) -> StageState:
        parent = self.dockerfile.stage_by_ref(stage.base)
        if parent is not None and parent.index < stage.index:
            state = StageState(stage, None)
            state.inherit(self.built[parent.index])
        else:
            external = None if stage.base == "scratch" else stage.base
            state = StageState(stage, external)
            if external is not None:
                state.env["PATH"] = DEFAULT_PATH
        state.history.append({"created_by": f"FROM {stage.base}", "empty_layer": True})
        return state

    def apply(self, state: StageState, instruction: Instruction) -> None:
        """Apply one instruction; raise BuildError/DockerfileError with Docker's message on failure."""
        handler = getattr(self, f"_do_{instruction.keyword.lower()}", None)
        if handler is not None:
            handler(state, instruction)
        layer = instruction.keyword in ("COPY", "ADD")
        entry: dict[str, object] = {
            "created_by": f"{instruction.text} # buildkit",
            "comment": "buildkit.dockerfile.v0",
        }
        if not layer:
            entry["empty_layer"] = True
        state.history.append(entry)

    # --- metadata instructions -------------------------------------------------------------------

    def _do_arg(self, state: StageState, instruction: Instruction) -> None:
        for name, default in parse_arg(instruction, state.scope):
            self.consumed_args.add(name)
            if name in self.build_args:
                state.args[name] = self.build_args[name]
            elif default is not None:
                state.args[name] = default
            else:
                state.args[name] = self.global_scope.get(name, "")

    def _do_env(self, state: StageState, instruction: Instruction) -> None:
        for key, value in parse_key_values(instruction, state.scope):
            state.env[key] = value

    def _do_label(self, state: StageState, instruction: Instruction) -> None:
        for key, value in parse_key_values(instruction, state.scope):
            state.labels[key] = value

    def _do_maintainer(self, state: StageState, instruction: Instruction) -> None:
        state.labels.setdefault("maintainer", instruction.rest)

    def _do_workdir(self, state: StageState, instruction: Instruction) -> None:
        path = expand(instruction.rest.strip(), state.scope, instruction.escape)
        state.workdir = posixpath.normpath(posixpath.join(state.workdir, path))
        self._ensure_dirs(state, state.workdir, [])

    def _do_user(self, state: StageState, instruction: Instruction) -> None:
        state.user = expand(instruction.rest.strip(), state.scope, instruction.escape)

    def _do_expose(self, state: StageState, instruction: Instruction) -> None:
        for port in split_words(instruction.rest, state.scope, instruction.escape):
            state.exposed.append(port if "/" in port else f"{port}/tcp")

    def _exec_form(self, instruction: Instruction) -> list[str]:
        words = instruction.json_args()
        return words if words is not None else ["/bin/sh", "-c", instruction.rest]

    def _do_cmd(self, state: StageState, instruction: Instruction) -> None:
        state.cmd = self._exec_form(instruction)
        state.cmd_set_here = True

    def _do_entrypoint(self, state: StageState, instruction: Instruction) -> None:
        state.entrypoint = self._exec_form(instruction)
        if not state.cmd_set_here:
            state.cmd = None  # Docker drops a base image's CMD when ENTRYPOINT is set

    def _do_run(self, state: StageState, instruction: Instruction) -> None:
        state.has_run = True
        self.note("sandbox: RUN is not executed here (no container runtime); the smoke test checks the server")

    # --- COPY and ADD --------------------------------------------------------------------------------

    def _do_copy(self, state: StageState, instruction: Instruction) -> None:
        self._copy(state, instruction, allow_remote_and_archives=False)

    def _do_add(self, state: StageState, instruction: Instruction) -> None:
        self._copy(state, instruction, allow_remote_and_archives=True)

    def _copy(self, state: StageState, instruction: Instruction, *, allow_remote_and_archives: bool) -> None:
        scope = state.scope
        rest = instruction.rest
        flags: dict[str, str] = {}
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            name, eq, value = token[2:].partition("=")
            flags[name] = expand(value, scope, instruction.escape) if eq else "true"
        json_args = _json_form(rest)
        args = (
            [expand(a, scope, instruction.escape) for a in json_args]
            if json_args is not None
            else split_words(rest, scope, instruction.escape)
        )
        keyword = instruction.keyword
        if len(args) < 2:
            raise DockerfileError(
                f"dockerfile parse error on line {instruction.line}: "
                f"{keyword} requires at least two arguments, "
                "but only one was provided. Destination could not be determined."
            )
        sources, dest = args[:-1], args[-1]
        dest_abs = posixpath.normpath(posixpath.join(state.workdir, dest))
        dest_is_dir = dest.endswith("/") or dest in (".", "..") or len(sources) > 1
        uid, gid = _parse_chown(flags.get("chown", ""), self.note)
        try:
            chmod = int(flags["chmod"], 8) if flags.get("chmod") else None
        except ValueError:
            raise DockerfileError(f"invalid chmod parameter: {flags['chmod']}") from None

        added: list[FsEntry] = []
        copies_dir = False
        from_ref = flags.get("from")
        for source in sources:
            if from_ref is not None:
                items = self._from_stage(from_ref, source)
            elif allow_remote_and_archives and source.startswith(("http://", "https://", "git@")):
                self.note(f"sandbox: remote ADD source {source} is not fetched; the layer leaves it out")
                continue
            else:
                items = self._from_context(keyword, source)
            multiple = sum(1 for _, kind, _ in items if kind in ("file", "dir")) > 1
            if has_glob(source) and multiple and not dest_is_dir:
                raise BuildError(
                    f"{keyword} failed: When using {keyword} with more than one source file, "
                    "the destination must be a directory and end with a /"
                )
            copies_dir = copies_dir or any(kind == "dir" for _, kind, _ in items)
            for _rel, kind, entry in items:
                if kind == "dir":
                    continue
                if kind == "child" or dest_is_dir or multiple or _is_dir(state, dest_abs):
                    path = posixpath.normpath(posixpath.join(dest_abs, entry.path))
                else:
                    path = dest_abs
                if (
                    allow_remote_and_archives
                    and from_ref is None
                    and kind == "file"
                    and entry.source is not None
                    and entry.source.name.endswith(TAR_SUFFIXES)
                    and tarfile.is_tarfile(entry.source)
                ):
                    added.extend(_extract(entry.source, dest_abs, uid, gid))
                    continue
                mode = chmod if chmod is not None and entry.kind != "symlink" else entry.mode
                added.append(FsEntry(path, entry.kind, mode, entry.source, entry.data, entry.link, uid, gid))
        for entry in added:
            state.fs[entry.path] = entry
        parents: list[FsEntry] = []
        for entry in added:
            self._ensure_dirs(state, posixpath.dirname(entry.path), parents)
        if dest_is_dir or copies_dir:
            self._ensure_dirs(state, dest_abs, parents)
        layer_entries = {e.path: e for e in [*parents, *added]}
        state.layers.append(
            Layer(f"{instruction.text} # buildkit", sorted(layer_entries.values(), key=lambda e: e.path))
        )

    def _ensure_dirs(self, state: StageState, directory: str, created: list[FsEntry]) -> None:
        """Record `directory` and its parents as directories (Docker creates them with mode 0755)."""
        path = directory
        chain: list[str] = []
        while path not in ("/", ""):
            chain.append(path)
            path = posixpath.dirname(path)
        for item in reversed(chain):
            existing = state.fs.get(item)
            if existing is None:
                existing = FsEntry(item, "dir", 0o755)
                state.fs[item] = existing
            created.append(existing)

    def _from_context(self, keyword: str, source: str) -> list[tuple[str, str, FsEntry]]:
        """(relative path, kind, entry with path relative to the copied root) for a context source."""
        rel = self.context.clean(source)
        matches = self.context.glob(rel) if has_glob(rel) else [rel]
        if has_glob(rel) and not matches:
            raise BuildError(f"{keyword} failed: no source files were specified")
        out: list[tuple[str, str, FsEntry]] = []
        for match in matches:
            host = self.context.lookup(match)
            if host is None:
                raise BuildError(
                    f"{keyword} failed: file not found in build context or excluded by .dockerignore: "
                    f"stat {match}: file does not exist"
                )
            if host.is_dir():
                out.append((match, "dir", FsEntry("", "dir", 0o755)))
                for child in self.context.walk(match):
                    child_host = self.context.root / child
                    inner = child[len(match) + 1 :] if match else child
                    out.append((child, "child", _host_entry(child_host, inner)))
            else:
                out.append((match, "file", _host_entry(host.resolve(), posixpath.basename(match))))
        return out

    def _from_stage(self, ref: str, source: str) -> list[tuple[str, str, FsEntry]]:
        stage = self.dockerfile.stage_by_ref(ref)
        if stage is None or stage.index not in self.built:
            self.note(f"sandbox: COPY --from={ref} names an image the sandbox cannot pull; the layer leaves it out")
            return []
        state = self.built[stage.index]
        src = posixpath.normpath("/" + source.lstrip("/"))  # normpath keeps a leading "//"
        out: list[tuple[str, str, FsEntry]] = []
        if has_glob(src):
            regex_paths = [p for p in state.fs if _glob_match(src, p)]
            if not regex_paths and not state.has_run:
                raise BuildError(
                    f'failed to compute cache key: failed to calculate checksum of ref: "{src}": not found'
                )
            for path in sorted(regex_paths):
                out.extend(self._stage_item(state, path))
            return out
        if src not in state.fs and src != "/":
            if state.has_run:
                self.note(
                    f"sandbox: {src} in stage {stage.label} would come from a RUN step, which the sandbox "
                    "does not execute; the layer leaves it out"
                )
                return []
            raise BuildError(f'failed to compute cache key: failed to calculate checksum of ref: "{src}": not found')
        return self._stage_item(state, src)

    def _stage_item(self, state: StageState, path: str) -> list[tuple[str, str, FsEntry]]:
        entry = state.fs.get(path)
        if entry is not None and entry.kind != "dir":
            return [(path, "file", _renamed(entry, posixpath.basename(path)))]
        out: list[tuple[str, str, FsEntry]] = [(path, "dir", FsEntry("", "dir", 0o755))]
        prefix = path.rstrip("/") + "/"
        for child in sorted(p for p in state.fs if p.startswith(prefix)):
            out.append((child, "child", _renamed(state.fs[child], child[len(prefix) :])))
        return out

    def unused_build_args(self) -> list[str]:
        return sorted(set(self.build_args) - self.consumed_args)


def _glob_match(pattern: str, path: str) -> bool:
    return bool(glob_to_regex(pattern.lstrip("/")).match(path.lstrip("/")))


def _host_entry(host: Path, rel: str) -> FsEntry:
    info = host.lstat()
    if stat.S_ISLNK(info.st_mode):
        return FsEntry(rel, "symlink", 0o777, link=str(host.readlink()))
    if stat.S_ISDIR(info.st_mode):
        return FsEntry(rel, "dir", stat.S_IMODE(info.st_mode))
    return FsEntry(rel, "file", stat.S_IMODE(info.st_mode), source=host)


def _renamed(entry: FsEntry, rel: str) -> FsEntry:
    return FsEntry(rel, entry.kind, entry.mode, entry.source, entry.data, entry.link, entry.uid, entry.gid)


def _is_dir(state: StageState, path: str) -> bool:
    entry = state.fs.get(path)
    return entry is not None and entry.kind == "dir"


def _parse_chown(value: str, note: Callable[[str], None]) -> tuple[int, int]:
    if not value:
        return 0, 0
    user, _, group = value.partition(":")
    try:
        uid = int(user)
        gid = int(group) if group else uid
    except ValueError:
        note(f"sandbox: --chown={value} names users the sandbox cannot look up in the base image; recorded as 0:0")
        return 0, 0
    return uid, gid


def _extract(archive: Path, dest: str, uid: int, gid: int) -> list[FsEntry]:
    """ADD of a local tar archive: its members land under `dest`, as Docker extracts them."""
    out: list[FsEntry] = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            path = posixpath.join(dest, name)
            if member.isdir():
                out.append(FsEntry(path, "dir", member.mode & 0o7777, uid=uid, gid=gid))
            elif member.issym():
                out.append(FsEntry(path, "symlink", 0o777, link=member.linkname, uid=uid, gid=gid))
            elif member.isfile():
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                out.append(FsEntry(path, "file", member.mode & 0o7777, data=data, uid=uid, gid=gid))
    return out
