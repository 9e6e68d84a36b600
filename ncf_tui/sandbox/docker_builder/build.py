"""`docker build`: BuildKit-style plain progress over the plan, the smoke test and the export.

Progress goes to stderr as BuildKit's does (`#N title` ... `#N DONE 0.1s`); the closing
`Successfully built/tagged` lines go to stdout as the classic builder's did, so scripts find them.
"""

from __future__ import annotations

import io
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .dockerfile import Dockerfile, DockerfileError, Instruction, parse
from .ignore import BuildContext
from .layers import (
    CONFIG_MEDIA_TYPE,
    Descriptor,
    config_bytes,
    image_config,
    store_layer,
)
from .plan import STEP_KEYWORDS, BuildError, StageBuilder, StageState, needed_stages
from .refs import Reference, canonical_base
from .smoke import run_smoke_test
from .state import State


@dataclass
class BuildOptions:
    context: str
    tags: list[Reference] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)
    dockerfile: str | None = None
    quiet: bool = False


class Progress:
    """BuildKit's `--progress=plain` output: numbered vertices with notes and a DONE/ERROR line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.number = 0
        self.current = 0
        self.started = 0.0

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def open(self, title: str) -> None:
        self.number += 1
        self.current = self.number
        self.started = time.monotonic()
        self.line(f"#{self.current} {title}")

    def note(self, text: str) -> None:
        self.line(f"#{self.current} {text}")

    def done(self) -> None:
        self.line(f"#{self.current} DONE {time.monotonic() - self.started:.1f}s")
        self.line("")

    def error(self, message: str) -> None:
        self.line(f"#{self.current} ERROR: {message}")


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1000
    return f"{size}B"


def _step_titles(dockerfile: Dockerfile, order: list[int]) -> dict[tuple[int, int], str]:
    """BuildKit's step titles: `[2/5] COPY ...`, or `[builder 2/5] ...` in a multi-stage build."""
    titles: dict[tuple[int, int], str] = {}
    multi = len(dockerfile.stages) > 1
    for index in order:
        stage = dockerfile.stages[index]
        steps = [i for i, ins in enumerate(stage.instructions) if ins.keyword in STEP_KEYWORDS]
        total = len(steps) + 1
        prefix = f"{stage.label} " if multi else ""
        titles[(index, -1)] = f"[{prefix}1/{total}] FROM {canonical_base(stage.base)}"
        for position, i in enumerate(steps, start=2):
            titles[(index, i)] = f"[{prefix}{position}/{total}] {stage.instructions[i].text}"
    return titles


def run_build(options: BuildOptions, store: State, out: TextIO, err: TextIO) -> int:
    """Build, smoke-test and record an image; return Docker's exit code.

    With `--quiet`, as with Docker, the progress is kept back (and shown only if the build fails) and
    stdout carries just the image id.
    """
    buffer = io.StringIO()
    code = _run_build(options, store, out, buffer if options.quiet else err)
    if options.quiet and code != 0:
        err.write(buffer.getvalue())
    return code


def _run_build(options: BuildOptions, store: State, out: TextIO, err: TextIO) -> int:
    progress = Progress(err)
    context_dir = Path(options.context)
    if not context_dir.is_dir():
        err.write(f'ERROR: unable to prepare context: path "{options.context}" not found\n')
        return 1
    dockerfile_path = Path(options.dockerfile) if options.dockerfile else context_dir / "Dockerfile"
    progress.line("#0 building with the ncf-tui sandbox builder (no Docker engine: nothing runs in a container)")
    progress.line("")
    progress.open(f"[internal] load build definition from {dockerfile_path.name}")
    try:
        text = dockerfile_path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        message = f"failed to read dockerfile: open {dockerfile_path.name}: no such file or directory"
        progress.error(message)
        progress.line(f"ERROR: failed to solve: {message}")
        return 1
    progress.note(f"transferring dockerfile: {_human_bytes(len(text.encode()))} done")
    try:
        dockerfile = parse(text, options.build_args)
    except DockerfileError as error:
        progress.error(str(error))
        progress.line(f"ERROR: failed to solve: {error}")
        return 1
    progress.done()
    try:
        final, unused = _build_stages(dockerfile, context_dir, options, progress, dockerfile_path.name)
        _smoke(final, store, progress)
    except _StepFailed:
        return 1
    image_id = _export(final, options, store, progress)
    if unused:
        err.write(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
    if options.quiet:
        out.write(f"{image_id}\n")
        return 0
    out.write(f"Successfully built {image_id.removeprefix('sha256:')[:12]}\n")
    for tag in options.tags:
        out.write(f"Successfully tagged {tag}\n")
    out.flush()
    return 0


def _build_stages(
    dockerfile: Dockerfile, context_dir: Path, options: BuildOptions, progress: Progress, dockerfile_name: str
) -> tuple[StageState, list[str]]:
    """Run the stages the last one needs; return it and the --build-args no ARG consumed."""
    target = len(dockerfile.stages) - 1
    order = needed_stages(dockerfile, target)
    stage_refs = {s.name for s in dockerfile.stages if s.name} | {str(s.index) for s in dockerfile.stages}
    bases = sorted({dockerfile.stages[i].base for i in order} - stage_refs - {"scratch"})
    for base in bases:
        progress.open(f"[internal] load metadata for {canonical_base(base)}")
        progress.note("sandbox: base image not pulled; its layers are not part of the recorded image")
        progress.done()

    context = BuildContext(context_dir)
    progress.open("[internal] load .dockerignore")
    ignore_file = context_dir / ".dockerignore"
    progress.note(
        f"transferring context: {_human_bytes(ignore_file.stat().st_size if ignore_file.is_file() else 2)} done"
    )
    progress.done()

    titles = _step_titles(dockerfile, order)
    built: dict[int, StageState] = {}
    builder = StageBuilder(dockerfile, context, options.build_args, built, progress.note)
    context_loaded = False
    for index in order:
        stage = dockerfile.stages[index]
        progress.open(titles[(index, -1)])
        state = builder.start(stage)
        progress.done()
        for i, instruction in enumerate(stage.instructions):
            if instruction.keyword not in STEP_KEYWORDS:
                _apply_step(builder, state, instruction, progress, dockerfile_name, quiet_ok=True)
                continue
            if instruction.keyword in ("COPY", "ADD") and not context_loaded and "--from=" not in instruction.rest:
                progress.open("[internal] load build context")
                progress.note(f"transferring context: {_human_bytes(context.size())} done")
                progress.done()
                context_loaded = True
            progress.open(titles[(index, i)])
            _apply_step(builder, state, instruction, progress, dockerfile_name, title=titles[(index, i)])
            progress.done()
        built[index] = state
    return built[target], builder.unused_build_args()


def _smoke(final: StageState, store: State, progress: Progress) -> None:
    progress.open("[sandbox] smoke test of the image's server")
    work = store.scratch_dir("smoke-")
    try:
        run_smoke_test(final, work, progress.note)
    except BuildError as error:
        progress.error(str(error))
        progress.line(f"ERROR: failed to solve: {error}")
        raise _StepFailed from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress.done()


def _export(final: StageState, options: BuildOptions, store: State, progress: Progress) -> str:
    progress.open("exporting to image")
    layers: list[Descriptor] = [store_layer(store, layer.entries) for layer in final.layers]
    progress.note(f"exporting layers ({len(layers)} from COPY/ADD) done")
    config = image_config(final, options.labels, [d.digest for d in layers])
    blob = config_bytes(config)
    config_digest = store.put_blob_bytes(blob)
    progress.note(f"writing image {config_digest} done")
    record = {
        "Id": config_digest,
        "Config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(blob)},
        "Layers": [d.as_json() for d in layers],
        "RepoDigests": [],
        "BuiltAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    previous = store.load_image(config_digest)
    if previous is not None:
        record["RepoDigests"] = previous.get("RepoDigests", [])
    store.save_image(record)
    for tag in options.tags:
        store.set_tag(str(tag), config_digest)
        progress.note(f"naming to {tag.canonical} done")
    progress.done()
    return config_digest


class _StepFailed(Exception):
    """A step printed its error; the build stops with exit code 1."""


def _apply_step(
    builder: StageBuilder,
    state: StageState,
    instruction: Instruction,
    progress: Progress,
    dockerfile_name: str,
    *,
    quiet_ok: bool = False,
    title: str = "",
) -> None:
    """Apply one instruction; a failure prints BuildKit's footer (opening a vertex for quiet steps)."""
    try:
        builder.apply(state, instruction)
    except (BuildError, DockerfileError) as error:
        if quiet_ok:
            title = f"[{state.stage.label}] {instruction.text}"
            progress.open(title)
        progress.error(str(error))
        _explain(progress, instruction, title or instruction.text, dockerfile_name, str(error))
        raise _StepFailed from None


def _explain(progress: Progress, instruction: Instruction, title: str, dockerfile_name: str, message: str) -> None:
    """BuildKit's failure footer: the step, the Dockerfile line, then `ERROR: failed to solve: ...`."""
    progress.line("------")
    progress.line(f" > {title}:")
    progress.line("------")
    progress.line(f"{dockerfile_name}:{instruction.line}")
    progress.line("--------------------")
    progress.line(f"{instruction.line:>4} | >>> {instruction.text}")
    progress.line("--------------------")
    progress.line(f"ERROR: failed to solve: {message}")
