"""The wizard driven with Pilot against the sandbox, as a person would: every step, failures, cancel, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import RadioButton

from ncf_tui.tui.messages import ChecklistFinished, CheckpointDescribed, Connected
from tests.tui.conftest import RUN_ID, Seen, settle, until_screen

pytestmark = pytest.mark.asyncio
SIZE = (100, 30)


def status_text(app: Any) -> str:
    return str(app.screen.query_one("#status").render())


def row(app: Any, name: str) -> Any:
    return app.get_screen("variants").rows[name]


async def to_compiled_variants(pilot: Any, seen: Seen, force: tuple[str, ...] = ()) -> Any:
    """From a resumed prepared run: force the given rows, compile, wait for the result."""
    app = pilot.app
    variants = app.get_screen("variants")
    await seen.run(pilot, "variants")
    for name in force:
        app.screen.query_one(f"#row-{name}").focus()
        await pilot.pause()
        await pilot.press("f")
    await pilot.press("enter")
    await seen.run(pilot, "compile")
    return variants


async def test_first_walk_through_every_screen(make_app: Any, seen: Seen) -> None:
    """Connect, the bundled checkpoint's summary, real variants, a forced variant failing in Neo, the choice."""
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        assert "SANDBOX" in app.screen.query_one("WizardHeader").render().plain
        assert "123456789012" in str(app.screen.query_one("#details").render())
        assert app.focused is app.screen.query_one("#primary")
        await pilot.press("enter")

        checkpoint = app.get_screen("checkpoint")
        assert app.screen is checkpoint
        await seen.message(pilot, CheckpointDescribed)
        summary = str(app.screen.query_one("#summary").render())
        assert "NeuMF 943 users" in summary and "mlp_layers.0.weight" in summary and "50%" in summary
        await pilot.press("enter")

        variants = app.get_screen("variants")
        assert app.screen is variants
        await seen.run(pilot, "variants")
        assert variants.phase == "ready"
        assert row(app, "original").status == "rejected"
        assert "linalg_vector_norm" in row(app, "original").failure_reason
        assert row(app, "full_manual_norm").status == "ready"
        # force the rejected original past the preflight: Neo itself must then refuse it
        app.screen.query_one("#row-original").focus()
        await pilot.press("f")
        assert app.session.force == {"original"}
        await pilot.press("enter")
        await seen.run(pilot, "compile")
        assert variants.phase == "compiled", variants.message
        original = row(app, "original")
        assert original.status == "FAILED" and original.forced
        assert "linalg_vector_norm" in original.failure_reason  # Neo's FailureReason, under the row
        assert "linalg_vector_norm" in str(app.screen.query_one("#row-original").render())
        assert row(app, "full_manual_norm").status == "chosen"
        assert "most faithful" in row(app, "full_manual_norm").chosen_reason
        assert f"ncf-{RUN_ID}-full-manual-norm" in variants.chosen_uri

        # override the ranking: choose mlp instead; the run state says so
        app.screen.query_one("#row-mlp").focus()
        await pilot.press("o")
        assert row(app, "mlp").status == "chosen" and row(app, "full_manual_norm").status == "COMPLETED"
        saved = json.loads(app.session.pipeline.store.path.read_text())
        assert saved["steps"]["compile"]["chosen"] == "mlp"
        assert saved["steps"]["compile"]["neo_model_s3_uri"].endswith(f"compilation-output/ncf-{RUN_ID}-mlp")
        assert saved["steps"]["compile"]["sidecar_uri"].endswith(f"ncf-{RUN_ID}-mlp/ncf-model.json")

        await pilot.press("enter")
        settings = app.get_screen("settings")
        assert app.screen is settings
        uri = app.screen.query_one("#in-NEO_MODEL_S3_URI").value
        assert uri.endswith(f"compilation-output/ncf-{RUN_ID}-mlp")
        # escape goes back a step, and forward again
        await pilot.press("escape")
        assert app.screen is variants
        await pilot.press("enter")
        assert app.screen is settings


async def test_settings_validate_live_and_offer_a_fix(make_app: Any, seen: Seen) -> None:
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        app.push_screen("settings")
        await pilot.pause()
        screen = app.screen
        repo = screen.query_one("#in-IMAGE_REPO_NAME")
        repo.focus()
        repo.value = "Bad_Repo"
        await pilot.pause()
        message = str(screen.query_one("#msg-IMAGE_REPO_NAME").render())
        assert "✘" in message and "ctrl+f" in message
        assert repo.has_class("-invalid"), "Textual's own validation marks the field (the engine's check refused it)"
        assert "IMAGE_REPO_NAME" in status_text(app)
        assert screen.query_one("#primary").disabled
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert repo.value == "bad_repo"
        assert not repo.has_class("-invalid")
        assert "✔" in str(screen.query_one("#msg-IMAGE_REPO_NAME").render())

        uri = screen.query_one("#in-NEO_MODEL_S3_URI")
        uri.value = "s3://ncf-tui-sandbox-models/recommender-demo/compilation-output/job/model.tar.gz"
        await pilot.pause()
        assert "s3:// prefix was removed" in str(screen.query_one("#msg-NEO_MODEL_S3_URI").render())
        assert screen.values()["NEO_MODEL_S3_URI"].startswith("ncf-tui-sandbox-models/")
        assert not screen.query_one("#primary").disabled


async def test_a_bad_checkpoint_is_explained_inline(make_app: Any, tmp_path: Path, seen: Seen) -> None:
    picks = tmp_path / "picks"
    (picks / "nested").mkdir(parents=True)
    (picks / "broken.pt").write_bytes(b"this is not a torch file")
    (picks / "notes.txt").write_text("not a checkpoint")
    app = make_app(start_dir=picks, checkpoint=picks / "broken.pt")
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        await pilot.press("enter")
        screen = app.get_screen("checkpoint")
        described = await seen.message(pilot, CheckpointDescribed)
        assert described.summary is None and screen.error is not None
        shown = str(screen.query_one("#summary").render())
        assert "cannot be used" in shown and screen.error[0] in shown
        assert screen.query_one("#primary").disabled
        tree = screen.query_one("#tree")
        # the tree reads its folder in workers of its own (its loader waits for more folders for good)
        if listing := [w for w in app.workers if w.node is tree and w.group != "_loader"]:
            await app.workers.wait_for_complete(listing)  # (an empty list would wait for every worker)
        await pilot.pause()
        names = sorted(str(child.label) for child in tree.root.children)
        assert "notes.txt" not in names and "broken.pt" in names


async def test_cancel_stops_a_running_job(make_app: Any, resumable: Path, sandbox: Any, seen: Seen) -> None:
    sandbox.neo.seconds = 60  # long enough to catch the jobs running
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until_screen(pilot, "ResumeModal")
        await pilot.press("r")
        await seen.message(pilot, Connected)
        variants = app.get_screen("variants")
        await seen.run(pilot, "variants")
        await pilot.press("enter")
        await seen.variant(pilot, "full_manual_norm", "STARTING", "INPROGRESS")
        shown = str(app.screen.query_one("#row-full_manual_norm").render())
        assert "starting" in shown or "compiling" in shown
        # s stops the focused row's job alone
        if row(app, "mlp").status not in ("STARTING", "INPROGRESS"):
            await seen.variant(pilot, "mlp", "STARTING", "INPROGRESS")
        app.screen.query_one("#row-mlp").focus()
        await pilot.press("s")
        await seen.variant(pilot, "mlp", "STOPPING", "STOPPED")
        assert row(app, "full_manual_norm").status in ("STARTING", "INPROGRESS")
        # c cancels the run and stops every job still going
        await pilot.press("c")
        finished = await seen.run(pilot, "compile")
        assert finished.status == "cancelled" and variants.phase == "cancelled"
        await settle(pilot)  # the worker that stops the jobs
        assert row(app, "full_manual_norm").status in ("STOPPING", "STOPPED")
        job = f"ncf-{RUN_ID}-full-manual-norm"
        described = sandbox.client("sagemaker").describe_compilation_job(CompilationJobName=job)
        assert described["CompilationJobStatus"] in ("STOPPING", "STOPPED")
        assert not app.run_active


async def test_quit_while_compiling_asks_and_can_leave_jobs_running(
    make_app: Any, resumable: Path, sandbox: Any, seen: Seen
) -> None:
    sandbox.neo.seconds = 60
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until_screen(pilot, "ResumeModal")
        await pilot.press("r")
        await seen.message(pilot, Connected)
        await seen.run(pilot, "variants")
        await pilot.press("enter")
        await seen.variant(pilot, "mlp", "STARTING", "INPROGRESS")
        await pilot.press("ctrl+q")
        await until_screen(pilot, "QuitModal")
        assert "mlp" in str(app.screen.query("Static").first().render()) or app.screen.jobs
        await pilot.press("l")
        await seen.run(pilot, "compile")  # the cancelled run ends, and the app exits after it
    assert app.return_code == 130
    job = f"ncf-{RUN_ID}-mlp"
    described = sandbox.client("sagemaker").describe_compilation_job(CompilationJobName=job)
    assert described["CompilationJobStatus"] in ("STARTING", "INPROGRESS")  # left running, as asked
    saved = json.loads(resumable.read_text())
    assert not saved["finished"] and "mlp" in saved["steps"]["compile"]["jobs"]


async def test_resume_continues_where_the_run_stopped(make_app: Any, resumable: Path, seen: Seen) -> None:
    app = make_app(offer_resume=True)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await until_screen(pilot, "ResumeModal")
        assert RUN_ID in str(app.screen.query("Static")[1].render())
        await pilot.press("r")
        variants = await to_compiled_variants(pilot, seen)
        assert variants.phase == "compiled"
        assert app.session.pipeline.run_id == RUN_ID
        assert "done earlier" in variants.skipped["variants"]
        assert row(app, "full_manual_norm").status == "chosen"


async def test_the_checklist_opens_from_any_screen(make_app: Any, seen: Seen) -> None:
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        await pilot.press("enter")
        checkpoint = app.get_screen("checkpoint")
        await pilot.press("f3")
        checklist = app.get_screen("checklist")
        assert app.screen is checklist
        assert "SANDBOX" in app.screen.query_one("WizardHeader").render().plain
        # the engine's checks really run against the sandbox account: nothing compiled yet, so no model
        await seen.message(pilot, ChecklistFinished)
        assert "checks:" in checklist.status
        assert checklist.checks["neo-model"].status == "fail"
        assert checklist.checks["ecr-repository"].status == "pass"
        assert "NEO_MODEL_S3_URI" in str(checklist.query_one("#checks").render())
        await pilot.press("escape")
        assert app.screen is checkpoint


async def test_help_lists_the_keys_and_the_palette_has_every_action(make_app: Any, seen: Seen) -> None:
    app = make_app()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        await pilot.press("enter")
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpModal"
        shown = str(app.screen.query("Static")[1].render())
        assert "Back" in shown and "Checklist" in shown and "ctrl+p" in shown
        await pilot.press("escape")
        assert app.screen is app.get_screen("checkpoint")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Back") for t in titles) and any(t.startswith("Checklist") for t in titles)


@pytest.mark.parametrize("width", [80])
async def test_small_terminal_keeps_the_badge_and_trail(make_app: Any, width: int, seen: Seen) -> None:
    app = make_app()
    async with app.run_test(size=(width, 24), message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        header = app.screen.query_one("WizardHeader").render().plain
        assert "SANDBOX" in header and "▸1 Connect" in header


async def test_the_checkpoint_screen_asks_what_the_file_does_not_say(
    make_app: Any, tmp_path: Path, sample_ckpt: Any, monkeypatch: Any, seen: Seen
) -> None:
    """A key-mapped file says nothing of its behaviour: continue waits for both answers, which reach the run;
    the seed-scale sample is offered once it has been made."""
    import shutil

    from ncf_tui.engine.sample import ML1M_NAME
    from tests.engine import kinds

    data = tmp_path / "data"
    (data / "samples").mkdir(parents=True)
    shutil.copyfile(sample_ckpt.path, data / "samples" / ML1M_NAME)  # stands in for the seed-scale sample
    monkeypatch.setenv("NCF_TUI_DATA_DIR", str(data))
    path, key_map = kinds.renamed(sample_ckpt, tmp_path)
    app = make_app(start_dir=tmp_path, checkpoint=path, key_map=key_map)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await seen.message(pilot, Connected)
        await pilot.press("enter")
        screen = app.get_screen("checkpoint")
        await seen.message(pilot, CheckpointDescribed)
        assert screen.summary["layout"] == "key map" and screen.summary["gmf_norm"] is None
        assert screen.query_one("#behaviour").display
        assert screen.query_one("#primary").disabled and "does not say" in status_text(app)
        screen.query_one("#ask-gmf_norm").query(RadioButton).first().value = True  # l2
        await pilot.pause()
        assert screen.query_one("#primary").disabled, "one answer of two"
        screen.query_one("#ask-output").query(RadioButton).first().value = True  # sigmoid
        await pilot.pause()
        assert not screen.query_one("#primary").disabled, "both answered"
        assert screen.answers == {"gmf_norm": "l2", "output": "sigmoid"}
        samples = screen.query_one("#samples")
        assert not samples.get_option_at_index(1).disabled, "the seed-scale sample is offered"
        screen.query_one("#primary").press()
        await pilot.pause()
        assert (app.session.gmf_norm, app.session.output) == ("l2", "sigmoid")
        assert app.session.checkpoint == path
        samples.highlighted = 1
        samples.action_select()
        await pilot.pause()
        assert screen.selected == data / "samples" / ML1M_NAME, "the sample chosen"
