"""Step 4: the five CodeBuild variables and the rest of the answers, validated as you type.

Local checks come from the engine's ``settings.check_value`` (no AWS call per keystroke); a value with a safe
repair offers it as one key (ctrl+f). Continue runs the engine's settings step, which checks the values
against the account.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import var
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Static

from ...engine.events import SettingEvent
from ...engine.settings import FIELDS, Fix, ValueCheck, check_value
from ..messages import RunFinished
from .base import StepScreen


class EngineCheck(Validator):
    """Textual's validator for one setting, asking the engine's own ``settings.check_value`` (never a copy).

    ``last`` keeps the engine's whole verdict (the normalised value, its fix, notes and warning) for the line
    beside the field; Textual's ``ValidationResult`` carries the refusal's reason.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.last: ValueCheck | None = None

    def validate(self, value: str) -> ValidationResult:
        self.last = check_value(self.name, value)
        return self.success() if self.last.ok else self.failure(self.last.reason, value)


class SettingsScreen(StepScreen):
    STEP = "settings"
    HELP_TEXT = (
        "The CodeBuild project's environment variables and the other answers. Each value is checked as you "
        "type; a ✘ says why, and when a safe fix exists ctrl+f applies it. Continue checks them against the "
        "account (region, account id, bucket, model object, repository)."
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+f", "fix", "Apply fix")]

    state: var[str] = var("editing")
    """editing | checking | ok | failed | unavailable"""
    message: var[str] = var("")

    def __init__(self) -> None:
        super().__init__()
        self.fields = tuple((f.name, f.help, f.default) for f in FIELDS)
        self.checkers = {name: EngineCheck(name) for name, _h, _d in self.fields}
        self.remote: dict[str, SettingEvent] = {}

    def body(self) -> ComposeResult:
        values = self.wizard.session.suggested_settings()
        with VerticalScroll(classes="main form"):
            yield Static("", id="intro", classes="intro")
            for i, (name, help_text, default) in enumerate(self.fields):
                if i in (0, 5):
                    yield Static("CodeBuild environment variables" if i == 0 else "Other answers", classes="section")
                with Horizontal(classes="field"):
                    yield Label(name, classes="field-name")
                    yield Input(
                        values.get(name, default),
                        id=f"in-{name}",
                        placeholder=help_text,
                        validators=[self.checkers[name]],
                        validate_on=["changed", "submitted"],
                    )
                    yield Static("", id=f"msg-{name}", classes="field-msg")

    def on_mount(self) -> None:
        self.wizard.engine_signal(SettingEvent).subscribe(self, self._setting_event)
        for name, _h, _d in self.fields:
            self.query_one(f"#in-{name}", Input).validate(self.query_one(f"#in-{name}", Input).value)
            self._show(name)
        self.refresh_view()

    def watch_state(self) -> None:
        self.refresh_view()

    def watch_message(self) -> None:
        self.refresh_view()

    def on_screen_resume(self) -> None:
        # the compile may have finished (or been overridden) since: take the chosen model's URI
        uri = self.wizard.session.suggested_settings().get("NEO_MODEL_S3_URI")
        box = self.query_one("#in-NEO_MODEL_S3_URI", Input)
        if uri and box.value != uri and self.state == "editing":
            box.value = uri
        self.refresh_view()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "")[3:]
        self.remote.pop(name, None)
        self._show(name)
        if self.state != "checking":
            self.state = "editing"
        self.refresh_view()  # the count of values to fix changed, whatever the state

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """enter in a field checks and continues once every value passes, like the primary button."""
        event.stop()
        self.action_primary()

    @property
    def checks(self) -> dict[str, ValueCheck | None]:
        """The engine's verdict on every field's current value (from each field's validator)."""
        return {name: checker.last for name, checker in self.checkers.items()}

    def _show(self, name: str) -> None:
        """The line beside a field: the account's verdict when it refused the value, else the local one."""
        msg = self.query_one(f"#msg-{name}", Static)
        remote = self.remote.get(name)
        vc = self.checkers[name].last
        if remote is not None and not remote.ok:
            msg.update(Text.assemble(("✘ ", "bold"), remote.message))
            msg.set_classes("field-msg error")
        elif vc is None:
            msg.update(Text("· checked when you continue", style="dim"))
            msg.set_classes("field-msg")
        elif not vc.ok:
            text = Text.assemble(("✘ ", "bold"), vc.reason)
            if vc.fix is not None:
                text.append(f"  [ctrl+f: {vc.fix.description}]")
            elif vc.suggestion:
                text.append(f"  ({vc.suggestion})")
            msg.update(text)
            msg.set_classes("field-msg error")
        else:
            note = "; ".join(vc.notes) or "ok"
            text = Text.assemble(("✔ ", "bold"), note)
            if vc.fix is not None:
                text.append(f"  [ctrl+f: {vc.fix.description}]")
            if vc.warning:
                text.append(f"  ⚠ {vc.warning}")
            msg.update(text)
            msg.set_classes("field-msg ok")

    def values(self) -> dict[str, str]:
        out = {}
        for name, _h, _d in self.fields:
            vc = self.checkers[name].last
            raw = self.query_one(f"#in-{name}", Input).value
            out[name] = vc.value if vc is not None and vc.ok else raw.strip()
        return out

    def action_fix(self) -> None:
        focused = self.focused
        if not isinstance(focused, Input) or not (focused.id or "").startswith("in-"):
            self.notify("focus a field that offers a fix", severity="warning")
            return
        name = str(focused.id)[3:]
        vc = self.checkers[name].last
        if vc is None or vc.fix is None:
            self.notify(f"no fix to apply for {name}", severity="information")
            return
        self._apply_fix(name, vc.fix)

    def _apply_fix(self, name: str, fix: Fix) -> None:
        try:
            value = fix.apply()
        except Exception as exc:
            self.notify(f"the fix failed: {getattr(exc, 'message', exc)}", severity="error")
            return
        self.query_one(f"#in-{name}", Input).value = value
        self.notify(f"{name}: {fix.description}")

    def _setting_event(self, ev: SettingEvent) -> None:
        """The account's verdict on one value (the settings step), shown beside its field."""
        self.remote[ev.name] = ev
        if ev.name in self.checkers:
            self._show(ev.name)

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        self.message = message.message.split("\n", 1)[0] + (f" (hint: {message.hint})" if message.hint else "")
        self.state = {"ok": "ok", "unavailable": "unavailable", "cancelled": "editing"}.get(message.status, "failed")

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        bad = [n for n, vc in self.checks.items() if vc is not None and not vc.ok]
        self.query_one("#intro", Static).update(
            "The values the CodeBuild project will get. Fix any ✘ before you continue."
            if bad
            else "Every value passes the local checks. Continue checks them against the account."
        )
        if self.state == "checking":
            self.set_status("… checking the settings against the account", "busy")
            self.set_primary("Checking…", enabled=False)
        elif self.state == "ok":
            self.set_status("✔ the settings are valid in this account", "ok")
            self.set_primary("Continue ▸", enabled=True, focus=True)
        elif self.state == "unavailable":
            self.set_status(Text.assemble(("not available yet: ", "bold"), self.message), "warn")
            self.set_primary("Continue anyway ▸", enabled=True)
        elif self.state == "failed":
            self.set_status(Text.assemble(("✘ ", "bold"), self.message), "error")
            self.set_primary("Check again ▸", enabled=True)
        elif bad:
            self.set_status(f"✘ {len(bad)} value(s) to fix: {', '.join(bad)}", "error")
            self.set_primary("Check ▸", enabled=False)
        else:
            self.set_status("✔ local checks pass", "ok")
            self.set_primary("Check ▸", enabled=True)

    def primary(self) -> None:
        if self.state in ("ok", "unavailable"):
            super().primary()
            return
        self.wizard.session.settings = self.values()
        self.wizard.session.forget_from("settings")
        if self.wizard.start_run("settings", self):
            self.state = "checking"
