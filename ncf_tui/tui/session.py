"""The wizard's working state and the blocking calls its workers make; no Textual here.

The app runs each method below in a thread worker and turns what comes back (and every engine event the
``emit`` callback receives) into messages. Keeping this apart from the screens means the screens only
render, and these calls can be read (and reasoned about) as plain Python.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import AppConfig

if TYPE_CHECKING:
    from ..engine.aws import Aws, AwsTarget
    from ..engine.events import Emit
    from ..engine.neo import CompileConfig, Job
    from ..engine.pipeline import Pipeline, RunOutcome
    from ..engine.state import StateStore
    from ..engine.steps.deploy import DeployResult

TERMINAL_JOB = frozenset({"COMPLETED", "FAILED", "STOPPED"})
_GIVEN_SOURCES = frozenset({"flag", "env", "config", "saved"})
"""Settings sources the user gave (not defaults, not derived): the form starts from these."""


@dataclass(frozen=True)
class Connection:
    """Who and where the wizard talks to, for the connection screen and the header."""

    mode: str
    region: str
    account: str
    arn: str
    profile: str = ""
    endpoint_url: str = ""
    scenario: str = ""
    saved_answers: str = ""


class Session:
    """One wizard session: the AWS target, the chosen checkpoint, the pipeline and its cancel flag."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.context = config.make_context()
        """The run context every front end composes (``ncf_tui.context``): target, credentials, settings."""
        self.sandbox: Any = config.sandbox_instance
        self.target: AwsTarget | None = None
        self._aws: Aws | None = None
        self.connection: Connection | None = None
        self.checkpoint: Path | None = config.checkpoint
        self.gmf_norm: str | None = config.gmf_norm
        self.output: str | None = config.output
        """How the model scores, when the checkpoint does not say (flags, or the checkpoint screen's answer)."""
        self.force: set[str] = set(config.force)
        self.pipeline: Pipeline | None = None
        self.cancel = threading.Event()
        self.resume_store: StateStore | None = None
        self.settings: dict[str, str] = {k: v for k, v in config.settings_flags.items() if v is not None}
        """The settings form's answers; ``--set`` (and ``--region``) until the form is submitted."""
        self._checklist: Any = None
        self.ask: Callable[[str, Any], bool] | None = None
        """Answers the engine's confirmations (fix a setting, attach a policy, update the project)."""

    # ------------------------------------------------------------------------------------ connection

    def connect(self) -> Connection:
        """Start the sandbox if needed, pick the credentials (the keyring's, as headless does), then ask STS
        who we are (blocking: call from a worker)."""
        from ..engine.aws import Aws

        cfg = self.config
        self.target = self.context.connect(self.config.sandbox_instance)
        self.sandbox = self.context.sandbox
        self._aws = Aws(self.target)
        who = self._aws.whoami()
        self.connection = Connection(
            mode=cfg.mode,
            region=self.target.region,
            account=who.account,
            arn=who.arn,
            profile=cfg.profile or "",
            endpoint_url=self.target.endpoint_url or "",
            scenario=self.sandbox.scenario.name if self.sandbox is not None else "",
            saved_answers=_saved_answers(cfg),
        )
        return self.connection

    def preflight(self) -> Any:
        """Ask for everything first: the caller, the region and every input the chosen steps need, each present
        or to be created, and the caller's rights to create them (``account.Preflight``; blocking)."""
        from dataclasses import replace

        from ..engine.steps.account import preflight_for

        options = self.pipeline.options if self.pipeline is not None else self.context.run_options()
        return preflight_for(self.aws(), replace(options, settings_flags={**options.settings_flags, **self.settings}))

    def aws(self) -> Aws:
        if self._aws is None:
            from ..engine.errors import BadInputError

            raise BadInputError("not connected yet")
        return self._aws

    def close(self) -> None:
        self.context.close()  # stops the sandbox only if the context started it
        self.sandbox = None

    # ------------------------------------------------------------------------------------ checkpoint

    def default_checkpoint(self) -> Path | None:
        if self.config.checkpoint is not None:
            return Path(self.config.checkpoint)
        if self.config.sandbox:
            from ..engine.sample import sample_checkpoint_path

            return sample_checkpoint_path()
        return None

    def describe_checkpoint(self, path: Path) -> dict[str, Any]:
        """The engine's summary of a checkpoint, with the flags' answers applied; ``gmf_norm``/``output`` stay
        None when nothing says them (imports torch: call from a worker)."""
        from ..engine.checkpoint import apply_answers, load_checkpoint

        ckpt = load_checkpoint(path, key_map=self.config.key_map)
        apply_answers(ckpt, self.config.gmf_norm, self.config.output)
        return ckpt.summary()

    def sample_choices(self) -> list[tuple[str, Path | None, str]]:
        """(label, path or None, how to make it) for the checkpoint screen's quick picks."""
        from ..engine.sample import ml1m_checkpoint_path, sample_checkpoint_path

        ml1m = ml1m_checkpoint_path()  # the process environment: $NCF_TUI_DATA_DIR, else the data folder
        return [
            ("Bundled · 943 x 1,682", sample_checkpoint_path(), ""),
            (
                "Seed scale · 6,040 x 3,706",
                ml1m if ml1m.is_file() else None,
                "python -m ncf_tui.engine.sample --scale ml-1m",
            ),
        ]

    # -------------------------------------------------------------------------------------- pipeline

    def find_resumable(self) -> StateStore | None:
        from ..engine.errors import NcfError

        try:
            return self.context.resume_store(self.config.state_dir)
        except (OSError, NcfError):
            return None

    def _compile_config(self, aws: Aws) -> CompileConfig:
        """The compile config exactly as headless resolves it, with the settings form's answers first."""
        flags: dict[str, str | None] = dict(self.settings)
        if self.pipeline is not None:  # the names the account step created (or found) for this run
            flags = {**self.pipeline.options.settings_flags, **flags}
        return self.context.compile_config(aws, flags=flags)

    def start_pipeline(self, emit: Emit, resume: StateStore | None = None) -> Pipeline:
        """A new (or resumed) pipeline for the chosen checkpoint; the TUI stops jobs itself on cancel."""
        from ..engine.pipeline import Pipeline
        from ..engine.preflight import DEFAULT_TVM_RELEASE

        checkpoint = self.checkpoint or self.default_checkpoint()
        if checkpoint is None and resume is None:
            from ..engine.errors import BadInputError

            raise BadInputError("choose a checkpoint first")
        options = self.context.run_options(
            checkpoint=Path(checkpoint or "."),
            output_dir=self.config.output_dir,
            release=self.config.release or DEFAULT_TVM_RELEASE,
            force=frozenset(self.force),
            stop_on_cancel=False,  # the TUI asks: stop the jobs, or leave them running
            settings_flags=dict(self.settings),
            ask=self._ask,
            gmf_norm=self.gmf_norm,
            output=self.output,
        )
        kw: dict[str, Any] = {"aws": self.aws, "compile_config": self._compile_config, "cancel": self.cancel}
        if resume is not None:
            self.pipeline = Pipeline.resume(resume, options, emit, **kw)
            self.checkpoint = options.checkpoint
            if self.context.owns_sandbox:
                # a sandbox started by this process holds none of the earlier run's jobs, objects or builds
                self.forget_from("compile")
        else:
            self.pipeline = Pipeline.new(
                options, emit, state_dir=self.config.state_dir, run_id=self.config.run_id, **kw
            )
        return self.pipeline

    def needs_aws(self, until: str) -> bool:
        """Whether a run through ``until`` calls AWS: every step after the model's does, and so does the account
        step (first of every run) when the run it is part of needs a bucket, a role or a repository."""
        if until not in ("checkpoint", "variants"):
            return True
        from ..engine.steps.account import chosen_steps, needs_of

        o = self.pipeline.options if self.pipeline is not None else None
        return o is not None and bool(needs_of(chosen_steps(until, o.also)))

    def run(self, until: str) -> RunOutcome:
        """Run the pipeline through ``until`` (blocking: call from a worker)."""
        assert self.pipeline is not None
        self.pipeline.options.force = frozenset(self.force)
        if self.context.target is not None:  # connected since the pipeline was made: the sandbox's own sources
            for name, value in self.context.where().items():
                setattr(self.pipeline.options, name, value)
        if hasattr(self.pipeline.options, "settings_flags"):
            self.pipeline.options.settings_flags = dict(self.settings)
        self.cancel.clear()
        return self.pipeline.run(until)

    def _ask(self, topic: str, detail: Any) -> bool:
        if self.config.yes:  # --yes: as in a headless run
            return True
        return bool(self.ask(topic, detail)) if self.ask is not None else False

    def forget_from(self, step: str) -> None:
        """Drop ``step`` and every later step from the run state, so they run again with new answers."""
        from ..engine.steps import STEPS

        if self.pipeline is None or step not in STEPS:
            return
        for later in STEPS[STEPS.index(step) :]:
            self.pipeline.state.steps.pop(later, None)
        self.pipeline.state.finished = False
        self.pipeline.save()

    def result(self, step: str) -> Any:
        """The typed result of a finished step of this run (``PermissionsResult``, ...), None if not finished."""
        from ..engine.steps import saved_result

        return saved_result(self.pipeline.state, step) if self.pipeline is not None else None

    def ask_for_deploy(self) -> None:
        """The user agreed (or ``--deploy`` did): this run's options ask for the opt-in deploy step too."""
        if self.pipeline is not None:
            self.pipeline.options.also = self.pipeline.options.also | {"deploy"}

    def score_user(self, endpoint: str, user: int, top_k: int = 10) -> tuple[list[dict[str, Any]], float]:
        """One InvokeEndpoint for ``user``'s top ``top_k`` items: (items best first, milliseconds) (blocking)."""
        from ..engine.deploy import DeployError, invoke

        answer, ms = invoke(self.aws(), endpoint, {"user_id": user, "top_k": top_k})
        items = answer.get("items")
        if not isinstance(items, list):
            raise DeployError(f"top-{top_k} for user {user} answered {str(answer)[:160]}")
        return [{"item_id": int(x["item_id"]), "score": float(x["score"])} for x in items], ms

    def live_endpoint(self) -> DeployResult | None:
        """This run's endpoint while it is InService and so billed, else None."""
        deployed = self.result("deploy")
        return deployed if deployed is not None and deployed.status == "InService" else None

    def delete_deployment(self, emit: Emit) -> list[str]:
        """Delete this run's endpoint, its config and its model (blocking): the finished deploy's names, or
        those a failed deploy saved as it went; the run state then says the endpoint is gone."""
        from dataclasses import replace

        from ..engine.deploy import EndpointNames, delete_endpoint
        from ..engine.errors import BadInputError

        entry = self.pipeline.state.steps.get("deploy") if self.pipeline is not None else None
        if self.pipeline is None or not isinstance(entry, dict) or not entry.get("endpoint"):
            raise BadInputError("this run has no endpoint to delete")
        names = EndpointNames(model=str(entry["model"]), config=str(entry["config"]), endpoint=str(entry["endpoint"]))
        self.cancel.clear()
        deleted = delete_endpoint(self.aws(), names, emit, self.cancel)
        deployed = self.result("deploy")
        if deployed is not None:  # the saved result says Deleted, as a headless --delete-endpoint's does
            gone = replace(deployed, status="Deleted", deleted=[*deployed.deleted, *deleted])
            self.pipeline.state.steps["deploy"] = {**gone.to_state(), "status": "done"}
        else:  # a failed deploy's names: nothing is left to re-attach to
            self.pipeline.state.steps.pop("deploy", None)
        self.pipeline.save()
        return deleted

    def jobs(self) -> dict[str, Job]:
        """The compile step's Neo jobs by variant: its result's, else what the running (or failed) step saved."""
        from ..engine.neo import CompileResult, jobs_from_state

        compiled = self.result("compile")
        if isinstance(compiled, CompileResult):
            return compiled.jobs
        entry = self.pipeline.state.steps.get("compile") if self.pipeline is not None else None
        return jobs_from_state(entry.get("jobs") if isinstance(entry, dict) else None)

    def running_jobs(self) -> dict[str, str]:
        """variant -> job name of this run's Neo jobs that have not ended (from the saved run state)."""
        return {k: j.job_name for k, j in self.jobs().items() if j.status not in TERMINAL_JOB}

    def stop_job(self, job_name: str) -> None:
        """Ask SageMaker to stop one compilation job (blocking)."""
        from ..engine.aws import aws_errors

        aws = self.aws()
        with aws_errors(aws.target):
            aws.client("sagemaker").stop_compilation_job(CompilationJobName=job_name)

    def override_choice(self, variant: str) -> str:
        """Make ``variant`` (a compiled one) the chosen model; returns its NEO_MODEL_S3_URI."""
        from ..engine.errors import BadInputError
        from ..engine.neo import CompileResult

        assert self.pipeline is not None
        compiled = self.result("compile")
        picked = compiled.jobs.get(variant) if isinstance(compiled, CompileResult) else None
        if compiled is None or picked is None or picked.status != "COMPLETED":
            raise BadInputError(f"{variant} did not compile, so it cannot be chosen")
        if not picked.sidecar_uri:
            raise BadInputError(f"{variant} has no ncf-model.json beside its Neo output, so it cannot be built")
        compiled.chosen, compiled.neo_model_s3_uri = variant, picked.model_uri
        compiled.reason = "chosen by you in the wizard"
        self.pipeline.state.steps["compile"] = {**compiled.to_state(), "status": "done"}
        self.pipeline.save()
        return str(compiled.neo_model_s3_uri)

    def suggested_settings(self) -> dict[str, str]:
        """Starting values for the settings form: the sandbox's account, or what the run produced."""
        values: dict[str, str] = {}
        if self.sandbox is not None:
            values.update(self.sandbox.user_answers())
        elif self.connection is not None:
            values.update(AWS_DEFAULT_REGION=self.connection.region, AWS_ACCOUNT_ID=self.connection.account)
        # --set, the environment, --config and the saved answers, resolved exactly as a headless run does
        try:
            given = self.context.settings()
        except Exception:  # an unreadable --config is refused when the CLI starts; a test's may be odd
            given = None
        if given is not None:
            values.update({n: v for n, v, src in given.items() if v and src.split(":", 1)[0] in _GIVEN_SOURCES})
        account = self.result("account")
        if account is not None:  # the names the account step found or created for this run
            values.update({k: v for k, v in account.values.items() if v})
            if account.prefix:
                values.setdefault("prefix", account.prefix)
        if self.pipeline is not None:
            compiled = self.result("compile")
            if compiled is not None and compiled.neo_model_s3_uri:
                values["NEO_MODEL_S3_URI"] = compiled.neo_model_s3_uri
        values.update(self.settings)
        return values

    def checklist(self) -> Any:
        """The engine's checklist for this session's account, run state and settings (blocking: no AWS call
        here, but it imports the engine's checklist)."""
        from ..engine.checklist import Checklist, build_context, latest_run

        if self._checklist is None:
            state = self.pipeline.state if self.pipeline is not None else None
            state_path = self.pipeline.store.path if self.pipeline is not None else None
            if state is None and self.sandbox is None:
                found = latest_run(self.config.mode, self.config.state_dir)
                if found is not None:
                    try:
                        state, state_path = found.load(), found.path
                    except Exception:  # a corrupt state is reported by the run step; check without it
                        state, state_path = None, None
            ctx = build_context(
                self.aws(),
                state=state,
                state_path=state_path,
                config=self.context.config,
                env=self.context.env,
                saved_dir=self.context.saved_dir,
                derived=self.suggested_settings() if self.sandbox is not None else None,
                flags=dict(self.settings),
                cli_args=self.context.cli_args(),
            )
            self._checklist = Checklist(ctx)
        return self._checklist

    def forget_checklist(self) -> None:
        """Build the checklist afresh next time (the run or the settings changed)."""
        self._checklist = None

    def saved_answers(self) -> dict[str, str]:
        """The answers saved by an earlier run against AWS ({} when there are none or they cannot be read)."""
        try:
            from ..engine import settings as engine_settings

            path = engine_settings.saved_config_path(self.config.saved_dir, self.config.env)
            return engine_settings.load(path) if path.is_file() else {}
        except Exception:
            return {}


def _saved_answers(config: AppConfig) -> str:
    """Where saved answers live and how many there are, or why the file cannot be read."""
    from ..engine import settings as engine_settings

    try:
        path = engine_settings.saved_config_path(config.saved_dir, config.env)
        if not path.is_file():
            return f"none yet ({path})"
        return f"{len(engine_settings.load(path))} answer(s) from {path}"
    except Exception as exc:  # a broken config file is reported, not crashed on
        return f"unreadable: {str(exc)[:100]}"
