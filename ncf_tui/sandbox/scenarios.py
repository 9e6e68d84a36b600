"""The sandbox's fault scenarios, each one small declarative entry.

A scenario only states *what* is different from the healthy account; the seed, the request
filter and the settings helper read these fields, so a new fault is one entry here plus the
code that honours its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
            throttle_share=0.25,
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
    )
}


def get_scenario(name: str | None) -> Scenario:
    """The scenario called `name` (None = healthy), or a ValueError that lists the known ones."""
    key = (name or DEFAULT_SCENARIO).strip().lower()
    try:
        return SCENARIOS[key]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown sandbox scenario {name!r}; choose one of: {known}") from None
