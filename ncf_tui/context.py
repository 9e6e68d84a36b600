"""One way in for the three front ends: parsed flags in, a :class:`RunContext` out.

The wizard, ``--headless`` and ``--checklist`` all start here, so each of them resolves the same AWS target
(with the keyring's credentials), the same settings sources (``--set``, the environment, ``--config``, the
saved answers, a sandbox's own account), the same compile config and the same :class:`RunOptions`.
:func:`compose` is cheap (no boto3, no torch, no sandbox): it checks the flags and refuses, in one line and
with exit code 2, a flag its front end cannot honour. :meth:`RunContext.connect` then starts the sandbox (when
asked for) and picks the credentials; the wizard calls it from a worker, the others at once.

Layering: above ``ncf_tui.engine`` and ``ncf_tui.sandbox`` (imported lazily), below the front ends
(``ncf_tui.headless``, ``ncf_tui.checklist_report``, ``ncf_tui.tui``, ``ncf_tui.cli``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine.errors import BadInputError

if TYPE_CHECKING:
    from .engine.aws import Aws, AwsTarget
    from .engine.neo import CompileConfig
    from .engine.pipeline import RunOptions
    from .engine.secrets import CredentialsChoice
    from .engine.settings import Settings
    from .engine.state import StateStore

FRONT_ENDS = ("wizard", "headless", "checklist")

_WHY = {
    "json": "--json prints events for a script: use it with --headless (or --checklist --headless)",
    "fix": "--fix goes with --checklist run without the wizard (the wizard's checklist offers each fix itself)",
    "leave_running_wizard": "the wizard asks on quit whether to stop this run's jobs or leave them running",
    "checklist": "the checklist only reads the account and the last run; it runs no step",
}

REFUSED: dict[str, dict[str, str]] = {
    "wizard": {
        "json": _WHY["json"],
        "fix": _WHY["fix"],
        "leave_running": _WHY["leave_running_wizard"],
        "delete_endpoint": "the wizard's Deploy screen deletes the endpoint when you ask (d), after you have used it",
    },
    "headless": {"fix": "--fix goes with --checklist (a headless run fixes what it may with --yes)"},
    "checklist": {
        name: _WHY["checklist"]
        for name in (
            "until",
            "resume",
            "leave_running",
            "force",
            "checkpoint",
            "key_map",
            "gmf_norm",
            "output",
            "output_dir",
            "tvm_release",
            "deploy",
            "delete_endpoint",
        )
    },
}
"""Per front end, the flags (argparse ``dest``) it cannot honour and why; everything else it honours."""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _given(args: argparse.Namespace, dest: str) -> bool:
    value = getattr(args, dest, None)
    return value not in (None, False, [], ())


def refuse_flags(args: argparse.Namespace, front_end: str) -> None:
    """BadInputError (exit 2) for the first flag ``front_end`` cannot honour, naming it and saying why."""
    for dest, why in REFUSED[front_end].items():
        if _given(args, dest):
            where = {"wizard": "the wizard", "headless": "--headless", "checklist": "--checklist"}[front_end]
            raise BadInputError(f"{_flag(dest)} does not apply to {where}: {why}")


def parse_sets(pairs: list[str] | None) -> dict[str, str | None]:
    """``--set NAME=VALUE`` pairs as settings flags (the settings module knows the names)."""
    from .engine.settings import canonical_name

    out: dict[str, str | None] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--set {pair!r}: expected NAME=VALUE, for example --set IMAGE_TAG=v2")
        out[canonical_name(name)] = value
    return out


def sandbox_saved_dir(sandbox: Any) -> Path:
    """A private config folder holding what the sandbox account's user would have saved (scenario applied)."""
    import tempfile

    from .engine.settings import dumps

    values = sandbox.user_answers()
    if not sandbox.scenario.model_uri_suffix:  # healthy accounts take NEO_MODEL_S3_URI from the run's compile
        values.pop("NEO_MODEL_S3_URI")
    values.pop("AWS_DEFAULT_REGION")
    folder = Path(tempfile.mkdtemp(prefix="ncf-tui-sandbox-config-"))
    (folder / "config.toml").write_text(dumps(values), encoding="utf-8")
    return folder


@dataclass
class RunContext:
    """Everything a front end needs to run: where (target, credentials, sandbox), what (options) and from
    which settings sources. Built by :func:`compose`; :meth:`connect` fills ``target`` and ``sandbox``."""

    front_end: str = "headless"
    sandbox_mode: bool = False
    scenario: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    flags: dict[str, str | None] = field(default_factory=dict)
    """``--set`` (and ``--region`` as AWS_DEFAULT_REGION): the first settings source."""
    config: Path | None = None
    env: dict[str, str] | None = None
    """The environment settings are read from; None is the process environment (a sandbox uses {})."""
    saved_dir: Path | None = None
    """Folder of the saved answers; None is the user's config folder (a sandbox uses its own)."""
    save_answers: bool = True
    state: Path | None = None
    resume: bool = False
    until: str | None = None
    yes: bool = False
    json: bool = False
    fix: bool = False
    leave_running: bool = False
    deploy: bool = False
    """Run the opt-in deploy step after verify (an endpoint costs money on a real account)."""
    delete_endpoint: bool = False
    checkpoint: Path | None = None
    output_dir: Path | None = None
    release: str | None = None
    force: frozenset[str] = frozenset()
    key_map: Path | None = None
    gmf_norm: str | None = None
    output: str | None = None
    sandbox: Any = None
    """The running ``ncf_tui.sandbox.server.Sandbox`` (after :meth:`connect`)."""
    target: AwsTarget | None = None
    credentials: CredentialsChoice | None = None
    """Where the credentials came from (the keyring, or the AWS chain); None in a sandbox."""
    owns_sandbox: bool = False
    """True when :meth:`connect` started the sandbox (so it holds none of an earlier run's jobs)."""

    def __post_init__(self) -> None:
        if self.sandbox_mode:
            # The sandbox is its own world: no environment leaks in, and its answers (its bucket, its roles)
            # never become the saved answers for real AWS.
            self.env = {} if self.env is None else self.env
            self.save_answers = False

    @property
    def mode(self) -> str:
        return "sandbox" if self.sandbox_mode else "aws"

    # ------------------------------------------------------------------------------------ where

    def connect(self, sandbox: Any = None, *, require_region: bool = True) -> AwsTarget:
        """Start the sandbox (or use ``sandbox``, already running) or pick the credentials for AWS: the
        keyring's entry for the profile when there is one, else the AWS credential chain (blocking)."""
        from .engine.aws import AwsError, AwsTarget, resolve_region

        if self.target is not None:
            return self.target
        if self.sandbox_mode:
            if sandbox is None:
                from .sandbox.server import Sandbox

                try:
                    sandbox = Sandbox(self.scenario, region=self.region or "us-east-1").start()
                except ValueError as exc:
                    raise BadInputError(str(exc)) from None
                self.owns_sandbox = True
            self.sandbox = sandbox
            # The sandbox is its own world: no environment leaks in, the user's saved answers stay untouched.
            self.env = {}
            self.saved_dir = sandbox_saved_dir(sandbox)
            self.save_answers = False
            self.target = AwsTarget(
                region=sandbox.region, endpoint_url=sandbox.endpoint_url, credentials=sandbox.credentials
            )
            return self.target
        from .engine.secrets import credentials_for

        region = resolve_region(self.region, self.profile)
        if not region and require_region:
            raise AwsError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
        self.credentials = credentials_for(self.profile)
        keyring = self.credentials.source == "keyring"
        self.target = AwsTarget(
            region=region or "",
            profile=None if keyring else self.profile,
            endpoint_url=self.endpoint_url,
            credentials=self.credentials.credentials,
        )
        return self.target

    def aws(self) -> Aws:
        """A client factory for the target (:meth:`connect` first)."""
        from .engine.aws import Aws, AwsError

        if self.target is None:
            raise BadInputError("not connected yet")
        if not self.target.region:
            raise AwsError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
        return Aws(self.target)

    def close(self) -> None:
        """Stop the sandbox this context started (one handed to :meth:`connect` is its owner's to stop)."""
        if self.owns_sandbox and self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
            self.owns_sandbox = False

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def cli_args(self) -> tuple[str, ...]:
        """The flags that reach the same target again (the checklist prints them in its fixes)."""
        if self.sandbox_mode:
            return ("--sandbox",)
        out: list[str] = []
        given = (("--region", self.region), ("--profile", self.profile), ("--endpoint-url", self.endpoint_url))
        for flag, value in given:
            if value:
                out += [flag, str(value)]
        return tuple(out)

    # ------------------------------------------------------------------------------------ settings

    def settings(self, flags: dict[str, str] | dict[str, str | None] | None = None) -> Settings:
        """The settings from every source, first wins: ``flags`` (default ``--set``), the environment,
        ``--config``, the saved answers (a sandbox's own), defaults. No validation, no AWS call."""
        from .engine.settings import resolve_settings

        merged: dict[str, str | None] = {**self.flags, **(flags or {})}
        return resolve_settings(flags=merged, env=self.env, config=self.config, saved_dir=self.saved_dir, derived={})

    def compile_config(
        self, _aws: Aws | None = None, flags: dict[str, str] | dict[str, str | None] | None = None
    ) -> CompileConfig:
        """The compile step's bucket, prefix, role and target device, from :meth:`settings` (validated later)."""
        from .engine.neo import CompileConfig

        s = self.settings(flags)
        if not s.bucket or not s.sagemaker_role:
            raise BadInputError(
                "compiling with Neo needs a bucket and a SageMaker execution role",
                hint="--set bucket=NAME --set sagemaker_role=arn:aws:iam::ACCOUNT:role/NAME, or put them in --config",
            )
        return CompileConfig(
            bucket=s.bucket,
            prefix=s.prefix or "ncf-tui",
            role_arn=s.sagemaker_role,
            target_device=s.target_device or "ml_c5",
        )

    # ------------------------------------------------------------------------------------ what

    def run_options(self, **overrides: Any) -> RunOptions:
        """The pipeline's options from the flags (imports the engine's pipeline, hence torch)."""
        from .engine.pipeline import RunOptions, agree, refuse
        from .engine.preflight import DEFAULT_TVM_RELEASE
        from .engine.sample import sample_checkpoint_path
        from .engine.steps import DEFAULT_STEPS
        from .engine.steps.variants import DEFAULT_OUTPUT_DIR, check_output_dir

        options = RunOptions(
            checkpoint=self.checkpoint if self.checkpoint is not None else sample_checkpoint_path(),
            output_dir=check_output_dir(self.output_dir or DEFAULT_OUTPUT_DIR),
            until=self.until or ("deploy" if self.deploy else DEFAULT_STEPS[-1]),
            also=frozenset({"deploy"}) if self.deploy else frozenset(),
            delete_endpoint=self.delete_endpoint,
            release=self.release or DEFAULT_TVM_RELEASE,
            force=self.force,
            stop_on_cancel=not self.leave_running,
            mode=self.mode,
            settings_flags=dict(self.flags),
            config=self.config,
            ask=agree if self.yes else refuse,
            key_map=self.key_map,
            gmf_norm=self.gmf_norm,
            output=self.output,
        )
        for name, value in self.where().items():
            setattr(options, name, value)
        return replace(options, **overrides) if overrides else options

    def where(self) -> dict[str, Any]:
        """The options :meth:`connect` decides (settings sources; a sandbox's source folder and smoke run),
        for a pipeline made before it connected (the wizard traces variants while it connects)."""
        out: dict[str, Any] = {"env": self.env, "saved_dir": self.saved_dir, "save_answers": self.save_answers}
        sb = self.sandbox
        if sb is not None:
            out["source_root"] = sb.source_dir
            if getattr(sb, "docker", None) is not None and sb.docker.mode == "real":
                out["smoke_run"] = sb.smoke_run  # the pushed image, run as SageMaker would
        return out

    def resume_store(self, state_dir: Path | None = None) -> StateStore:
        """The run ``--resume`` continues: ``--state``'s file, else the latest unfinished run of this mode."""
        from .engine.state import StateStore, latest_run

        store = StateStore(self.state) if self.state is not None else latest_run(self.mode, state_dir, unfinished=True)
        if store is None or not store.path.exists():
            raise BadInputError(f"no unfinished {self.mode} run to resume", hint="start one without --resume")
        return store


def compose(args: argparse.Namespace, front_end: str) -> RunContext:
    """The run context for ``front_end`` (one of :data:`FRONT_ENDS`) from parsed flags; BadInputError (exit 2)
    for a flag it cannot honour or a path that is not there. Cheap: nothing heavy is imported unless a flag
    needs checking (``--force`` names variants, ``--tvm-release`` a table)."""
    if front_end not in FRONT_ENDS:
        raise ValueError(f"front end {front_end!r}: choose from {', '.join(FRONT_ENDS)}")
    refuse_flags(args, front_end)

    def get(name: str) -> Any:
        return getattr(args, name, None)

    for name, kind in (("checkpoint", "exists"), ("config", "file"), ("key_map", "file")):
        path = get(name)
        if path is None:
            continue
        if (kind == "file" and not Path(path).is_file()) or not Path(path).exists():
            raise BadInputError(f"{_flag(name)} {path}: no such {'file' if kind == 'file' else 'file or directory'}")
    if front_end == "checklist" and get("state") is not None and not Path(get("state")).exists():
        raise BadInputError(f"--state {get('state')}: no such run state file")
    if get("tvm_release"):
        from .engine.preflight import operator_table

        operator_table(get("tvm_release"))  # refuse an unknown release before any work
    force = frozenset(get("force") or ())
    if force:
        from .engine.variants import VARIANT_NAMES

        unknown = sorted(force - set(VARIANT_NAMES))
        if unknown:
            raise BadInputError(
                f"--force {', '.join(unknown)}: unknown variant; choose from {', '.join(VARIANT_NAMES)}"
            )
    flags = parse_sets(get("set"))
    if get("region"):
        flags["AWS_DEFAULT_REGION"] = get("region")
    return RunContext(
        front_end=front_end,
        sandbox_mode=bool(get("sandbox")),
        scenario=get("sandbox_scenario"),
        profile=get("profile"),
        region=get("region"),
        endpoint_url=get("endpoint_url"),
        flags=flags,
        config=Path(get("config")) if get("config") is not None else None,
        state=Path(get("state")) if get("state") is not None else None,
        resume=bool(get("resume")),
        until=get("until"),
        yes=bool(get("yes")),
        json=bool(get("json")),
        fix=bool(get("fix")),
        leave_running=bool(get("leave_running")),
        deploy=bool(get("deploy")),
        delete_endpoint=bool(get("delete_endpoint")),
        checkpoint=Path(get("checkpoint")) if get("checkpoint") is not None else None,
        output_dir=Path(get("output_dir")) if get("output_dir") is not None else None,
        release=get("tvm_release"),
        force=force,
        key_map=Path(get("key_map")) if get("key_map") is not None else None,
        gmf_norm=get("gmf_norm"),
        output=get("output"),
    )
