"""Step 2: pick a checkpoint (a tree of ``.pt``/``.pth``/``.safetensors`` files, or one of the samples) and
read the engine's summary of it; when the checkpoint does not say how its model scores, answer here."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import var
from textual.widgets import DirectoryTree, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from ..messages import CheckpointDescribed, NewRun
from ..widgets import bar
from .base import StepScreen, kv_table

SUFFIXES = (".pt", ".pth", ".safetensors")
QUESTIONS = {
    "gmf_norm": ("GMF embeddings", (("l2", "L2-normalised (F.normalize)"), ("none", "not normalised (He et al.)"))),
    "output": ("The model returns", (("sigmoid", "a sigmoid score"), ("logits", "logits (BCEWithLogitsLoss)"))),
}


class CheckpointTree(DirectoryTree):
    """Folders and checkpoint files only; hidden entries and caches left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for p in paths:
            if p.name.startswith(".") or p.name in ("__pycache__", "node_modules"):
                continue
            try:
                if p.is_dir() or p.suffix.lower() in SUFFIXES:
                    yield p
            except OSError:
                continue


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def render_summary(s: dict[str, Any], width: int = 70) -> Text:
    """The summary for a pane ``width`` cells wide (bars shrink so a layer stays on one line)."""
    layout = s.get("layout", "ncf-tui") + (f", {s['stripped_prefix']} stripped" if s.get("stripped_prefix") else "")
    rows: list[tuple[str, object]] = [
        ("File", Path(s["path"]).name),
        ("Architecture", s["architecture"]),
        ("Parameters", f"{s['params']:,}"),
        ("Size", _human_size(int(s.get("file_size", 0)))),
        ("Zero weights", f"{s['sparsity']:.1%} overall, {s['pruned_sparsity']:.1%} of the pruned layers"),
        ("Layout", layout),
        ("Behaviour", s.get("behaviour") or "unknown"),
    ]
    if s.get("folded_masks"):
        rows.append(("Pruning masks", f"{len(s['folded_masks'])} torch.nn.utils.prune masks folded into the weights"))
    text = kv_table(rows)
    layers = s.get("layers") or []
    if layers:
        text.append("\n\nSparsity per layer (share of zero weights)\n", style="bold")
        name_width = max(len(x["name"]) for x in layers)
        shape_width = max(len("×".join(str(d) for d in x["shape"])) for x in layers)
        bar_width = max(5, min(16, width - name_width - shape_width - 9))
        for x in layers:
            shape = "×".join(str(d) for d in x["shape"])
            text.append(f"{x['name']:<{name_width}} {bar(float(x['sparsity']), bar_width)}  {shape}\n")
    meta = s.get("metadata") or {}
    if meta:
        text.append("\nMetadata\n", style="bold")
        for k, v in sorted(meta.items()):
            value = v if isinstance(v, str) else repr(v)
            text.append(f"{k:<{min(24, max(len(k) for k in meta))}} {value[:160]}\n")
    return text


class CheckpointScreen(StepScreen):
    STEP = "checkpoint"
    HELP_TEXT = (
        "Choose the pruned NCF checkpoint (.pt or .pth). The summary on the right is the engine's: the "
        "architecture it inferred, the parameters, how many weights are zero in each layer, and the metadata. "
        "Files with code in their pickle are refused, not loaded. Samples: the bundled one, and one at "
        "MovieLens-1M's scale once made with python -m ncf_tui.engine.sample --scale ml-1m. When the file does not "
        "say whether its GMF embeddings are normalised or whether it returns logits, answer below the summary: "
        "every fidelity figure is measured against the model rebuilt that way."
    )

    selected: var[Path | None] = var(None)
    summary: var[dict[str, Any] | None] = var(None)
    error: var[tuple[str, str] | None] = var(None)
    answers: var[dict[str, str]] = var(dict)
    """The user's answers to what the file does not say (a new dict on every change, so watchers fire)."""

    def __init__(self) -> None:
        super().__init__()
        self._samples: list[tuple[str, Path | None, str]] = []

    def body(self) -> ComposeResult:
        root = self._root()
        self._samples = self.wizard.session.sample_choices()
        with Horizontal(classes="main split"):
            with Vertical(id="picker"):
                options = [
                    Option(label if path else f"{label.split(' · ')[0]} (not made yet)", id=str(n), disabled=not path)
                    for n, (label, path, _how) in enumerate(self._samples)
                ]
                samples = OptionList(*options, id="samples")
                samples.border_title = "Samples"
                yield samples
                tree = CheckpointTree(root, id="tree")
                tree.border_title = "Checkpoints"
                yield tree
            with VerticalScroll(id="summary-pane", classes="panel") as pane:
                pane.border_title = "Summary"
                yield Static("", id="summary")
                with Vertical(id="behaviour"):
                    for key, (title, choices) in QUESTIONS.items():
                        yield Static(title, classes="question")
                        with RadioSet(id=f"ask-{key}"):
                            for value, label in choices:
                                yield RadioButton(label, name=value)

    def _root(self) -> Path:
        cfg = self.wizard.config
        if cfg.start_dir is not None:
            return Path(cfg.start_dir)
        default = self.wizard.session.checkpoint or self.wizard.session.default_checkpoint()
        if default is not None and Path(default).exists():
            return Path(default).parent if Path(default).is_file() else Path(default)
        return Path.cwd()

    def on_mount(self) -> None:
        default = self.wizard.session.checkpoint or self.wizard.session.default_checkpoint()
        if default is not None and Path(default).is_file():
            self.choose(Path(default))
        else:
            self.refresh_view()
            self.query_one("#tree").focus()

    def on_resize(self) -> None:
        if self.summary is not None:
            self.call_after_refresh(self.refresh_view)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.choose(Path(event.path))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        path = self._samples[int(event.option.id or 0)][1]
        if path is not None:
            self.choose(path)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        key = (event.radio_set.id or "").removeprefix("ask-")
        if key in QUESTIONS and event.pressed.name:
            self.answers = {**self.answers, key: event.pressed.name}

    def unanswered(self) -> list[str]:
        """What the summary leaves unknown and the user has not answered yet."""
        s = self.summary or {}
        return [k for k in QUESTIONS if s.get(k) is None and k not in self.answers]

    def choose(self, path: Path) -> None:
        self.selected, self.summary, self.error, self.answers = path, None, None, {}
        self.wizard.describe_checkpoint(path, reply_to=self)

    @on(CheckpointDescribed)
    def _described(self, message: CheckpointDescribed) -> None:
        if self.selected is None or message.path != str(self.selected):
            return  # an answer for a file the user has since moved away from
        self.error = None if message.summary is not None else (message.error, message.hint)
        self.summary = message.summary

    def watch_selected(self) -> None:
        self.refresh_view()

    def watch_summary(self) -> None:
        self.refresh_view()

    def watch_error(self) -> None:
        self.refresh_view()

    def watch_answers(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        out = self.query_one("#summary", Static)
        asked = [k for k in QUESTIONS if self.summary is not None and self.summary.get(k) is None]
        self.query_one("#behaviour").display = bool(asked)
        for key in QUESTIONS:
            self.query_one(f"#ask-{key}").display = key in asked
        for question, key in zip(self.query(".question"), QUESTIONS, strict=False):
            question.display = key in asked
        if self.selected is None:
            out.update("Select a .pt or .pth file on the left (enter or click).")
            self.set_status("no checkpoint chosen yet")
            self.set_primary(enabled=False)
        elif self.error is not None:
            message, hint = self.error
            text = Text.assemble(("✘ This file cannot be used\n\n", "bold"), message)
            if hint:
                text.append(f"\n\nhint: {hint}")
            out.update(text)
            self.set_status(Text.assemble(("✘ ", "bold"), self.selected.name, " cannot be used"), "error")
            self.set_primary(enabled=False)
        elif self.summary is None:
            out.update(f"… reading {self.selected.name}")
            self.set_status(f"… reading {self.selected}", "busy")
            self.set_primary(enabled=False)
        else:
            pane = self.query_one("#summary-pane")
            width = pane.content_size.width or max(40, self.app.size.width - 36)
            out.update(render_summary(self.summary, width))
            missing = self.unanswered()
            if missing:
                what = " and ".join(QUESTIONS[k][0].lower() for k in missing)
                self.set_status(
                    Text.assemble(("? ", "bold"), f"{self.selected.name} does not say: answer {what} below"), "busy"
                )
                self.set_primary(enabled=False)
                return
            self.set_status(Text.assemble(("✔ ", "bold"), f"{self.selected.name} is an NCF checkpoint"), "ok")
            self.set_primary(enabled=True, focus=True)

    def primary(self) -> None:
        session = self.wizard.session
        if self.selected is None or self.summary is None or self.unanswered():
            return
        gmf_norm = self.answers.get("gmf_norm", session.config.gmf_norm)
        output = self.answers.get("output", session.config.output)
        options = session.pipeline.options if session.pipeline is not None else None
        if options is not None and (
            Path(options.checkpoint) != self.selected or (options.gmf_norm, options.output) != (gmf_norm, output)
        ):
            if self.wizard.run_active:
                self.notify("a run for the previous checkpoint is still going; cancel it first", severity="warning")
                return
            session.pipeline = None  # another checkpoint: a new run
            session.resume_store = None
            # the compile screen forgets the previous run's rows (before it resumes: its queue is in order)
            self.wizard.get_screen("variants").post_message(NewRun())
        session.checkpoint = self.selected
        session.gmf_norm, session.output = gmf_norm, output
        super().primary()
