"""The sandbox's fault scenarios, each one small declarative entry.

A scenario only states *what* is different from the healthy account; the seed, the request
filter and the settings helper read these fields, so a new fault is one entry here plus the
code that honours its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

DEFAULT_SCENARIO = "healthy"
DEFAULT_NEO_JOB_NAME = "ncf-full-manual-norm"


@dataclass(frozen=True)
class Scenario:
    """What one scenario changes in the seeded account and in how the server answers."""

    name: str
    description: str
    # Actions removed from the CodeBuild service role's inline policy.
    role_lacks: tuple[str, ...] = ()
    # Actions a permissions boundary on the CodeBuild service role leaves out (empty: the role has none).
    boundary_lacks: tuple[str, ...] = ()
    # The NEO_MODEL_S3_URI the seeded settings suggest, relative to the bucket; None = the healthy one.
    model_uri_suffix: str | None = None
    # privilegedMode of the seeded CodeBuild project and of the settings the engine is told.
    privileged_mode: bool = True
    # Share of API calls answered with a throttling error, and the seed that makes it repeatable.
    throttle_share: float = 0.0
    throttle_seed: int = 4
    # After this many log events of a stream have been served, the next log reads drop the connection.
    flaky_logs_after_events: int | None = None
    flaky_logs_drops: int = 6
    # The compiled model's name inside Neo's output archive: model.pth today, compiled.pt in older releases.
    neo_model_file: str = "model.pth"
    # Share of GetLogEvents calls answered with a 5xx (ServiceUnavailableException, or a bare 502/503/504).
    logs_5xx_share: float = 0.0
    # Seconds between a log line being written and it being readable (also after the build is COMPLETED).
    logs_lag_seconds: float = 0.0
    # Seconds a change to a role's policies takes to reach the builds that use the role (IAM is eventually
    # consistent); SimulatePrincipalPolicy sees the change at once.
    iam_propagation_seconds: float = 0.0
    # The product's caller may not s3:ListBucket: S3 answers HEAD of a missing key with 403, not 404.
    caller_lacks_list: bool = False
    # Concurrent compilation jobs the account may run (SageMaker's quota); None = unlimited.
    neo_concurrent_jobs: int | None = None
    # Builds the account may have queued or running (CodeBuild's quota); None = unlimited. While
    # ``build_quota_held_seconds`` run after the first StartBuild, a build of another team holds one slot.
    build_queue_limit: int | None = None
    build_quota_held_seconds: float = 0.0
    # Only the caller exists: no bucket, no roles, no ECR repository (a newcomer's account).
    empty_account: bool = False
    # SageMaker hosting starts the endpoint's container with an /opt/ml/model that holds no loadable model.
    endpoint_model_unloadable: bool = False
    tags: tuple[str, ...] = field(default=())


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "Everything is in place; the build should succeed."),
        Scenario(
            "missing-permissions",
            "The CodeBuild service role lacks ecr:PutImage and s3:ListBucket.",
            role_lacks=("ecr:PutImage", "s3:ListBucket"),
        ),
        Scenario(
            "boundary-denied",
            "The CodeBuild service role's permissions boundary leaves out ecr:PutImage; no inline policy can fix it.",
            boundary_lacks=("ecr:PutImage",),
        ),
        Scenario(
            "wrong-model-uri",
            "The saved settings point NEO_MODEL_S3_URI at an object that does not exist.",
            model_uri_suffix="compilation-output/ncf-job-that-never-ran",
        ),
        Scenario(
            "no-privileged-mode",
            "The CodeBuild project has privileged mode off, so docker cannot reach a daemon.",
            privileged_mode=False,
        ),
        Scenario(
            "throttling",
            "A share of API calls is answered with ThrottlingException: Rate exceeded.",
            throttle_share=0.15,
        ),
        Scenario(
            "flaky-logs",
            "The CloudWatch Logs connection drops mid-stream; a follower must resume from its token.",
            flaky_logs_after_events=5,
        ),
        Scenario(
            "neo-compiled-pt",
            "Neo names the compiled model compiled.pt inside its output archive, as older Neo releases did.",
            neo_model_file="compiled.pt",
        ),
        Scenario(
            "logs-5xx",
            "A share of GetLogEvents calls fails with ServiceUnavailableException or a bare 5xx.",
            logs_5xx_share=0.3,
        ),
        Scenario(
            "logs-lag",
            "Log events become readable 3 s after they are written, so the last ones after the build ends.",
            logs_lag_seconds=3.0,
        ),
        Scenario(
            "iam-propagation",
            "The build role lacks s3:GetObject, and a policy attached to it reaches builds only 8 s later.",
            role_lacks=("s3:GetObject",),
            iam_propagation_seconds=8.0,
        ),
        Scenario(
            "s3-no-list",
            "The caller may not s3:ListBucket, so S3 answers HEAD of a missing key with 403 Forbidden.",
            caller_lacks_list=True,
        ),
        Scenario(
            "neo-quota",
            "The account may run 2 compilation jobs at once; more answer ResourceLimitExceeded.",
            neo_concurrent_jobs=2,
        ),
        Scenario(
            "build-quota",
            "The account may queue 1 build; another team's build holds it for 6 s after the first StartBuild.",
            build_queue_limit=1,
            build_quota_held_seconds=6.0,
        ),
        Scenario(
            "empty-account",
            "Only the caller exists: no bucket, no SageMaker or CodeBuild role, no ECR repository.",
            empty_account=True,
        ),
        Scenario(
            "endpoint-model-unloadable",
            "The endpoint's container finds no loadable model in /opt/ml/model, exits, and fails the ping check.",
            endpoint_model_unloadable=True,
        ),
    )
}
SEPARATOR = "+"
"""Scenarios compose: ``logs-5xx+neo-quota`` has the faults of both."""


def get_scenario(name: str | None) -> Scenario:
    """The scenario called `name` (None = healthy; ``a+b`` composes), or a ValueError listing the known ones."""
    key = (name or DEFAULT_SCENARIO).strip().lower()
    parts = [p.strip() for p in key.split(SEPARATOR)]
    unknown = [p for p in parts if p not in SCENARIOS]
    if unknown or not parts:
        known = ", ".join(SCENARIOS)
        raise ValueError(
            f"unknown sandbox scenario {name!r}; choose one of: {known} (or several joined with {SEPARATOR!r})"
        ) from None
    if len(parts) == 1:
        return SCENARIOS[parts[0]]
    return compose(*(SCENARIOS[p] for p in parts))


def compose(*scenarios: Scenario) -> Scenario:
    """One scenario with the faults of all: each field takes the value that differs from the healthy one
    (the last such wins), and the actions the build role lacks are the union."""
    healthy = SCENARIOS[DEFAULT_SCENARIO]
    changes: dict[str, object] = {}
    for sc in scenarios:
        for f in fields(Scenario):
            if f.name in ("name", "description", "role_lacks"):
                continue
            value = getattr(sc, f.name)
            if value != getattr(healthy, f.name):
                changes[f.name] = value
    lacks: list[str] = []
    for sc in scenarios:
        lacks.extend(a for a in sc.role_lacks if a not in lacks)
    return replace(
        healthy,
        name=SEPARATOR.join(sc.name for sc in scenarios),
        description=" ".join(sc.description for sc in scenarios),
        role_lacks=tuple(lacks),
        **changes,  # type: ignore[arg-type]
    )
