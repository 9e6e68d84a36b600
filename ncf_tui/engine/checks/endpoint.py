"""The endpoint check: the run's SageMaker endpoint exists, is InService, and answers a test invocation.

SageMaker hosting itself sends ``/ping`` to the container; from outside, the one way to know the endpoint
answers is InvokeEndpoint, so the check sends one pair from the middle of the id ranges the deploy used
(saved in the run state) and expects a score in [0, 1]. With no deploy in the run, the check is skipped.
"""

from __future__ import annotations

import json
from typing import Any

from ..aws import error_code, error_message
from .base import FAIL, PASS, SKIP, WARN, ChecklistContext, CheckResult

TITLE = "The run's SageMaker endpoint is InService and answers"


def _deploy_entry(ctx: ChecklistContext) -> dict[str, Any] | None:
    entry = (ctx.state.steps.get("deploy") if ctx.state is not None else None) or None
    return entry if isinstance(entry, dict) and entry.get("endpoint") else None


def check_endpoint(ctx: ChecklistContext) -> CheckResult:
    entry = _deploy_entry(ctx)
    if entry is None:
        return CheckResult("endpoint", TITLE, SKIP, "the run deployed no endpoint (headless: --deploy)")
    name = str(entry["endpoint"])
    if entry.get("deleted"):
        return CheckResult("endpoint", TITLE, SKIP, f"{name} was deleted by the run (--delete-endpoint)")
    try:
        described = ctx.aws.client("sagemaker").describe_endpoint(EndpointName=name)
    except Exception as exc:
        if error_code(exc) == "ValidationException":
            return CheckResult(
                "endpoint",
                TITLE,
                FAIL,
                f"{name} does not exist: {error_message(exc)}",
                "deploy again: ncf-tui --headless --deploy (a resumed run re-attaches)",
            )
        raise
    status = str(described.get("EndpointStatus"))
    if status != "InService":
        reason = described.get("FailureReason") or ""
        verdict = FAIL if status in ("Failed", "OutOfService", "UpdateRollbackFailed") else WARN
        return CheckResult(
            "endpoint",
            TITLE,
            verdict,
            f"{name} is {status}{': ' + reason if reason else ''}",
            f"read /aws/sagemaker/Endpoints/{name} in CloudWatch Logs; a Failed endpoint can only "
            "be deleted (--deploy --delete-endpoint), then deployed again",
        )
    pair = (entry.get("invocations") or {}).get("pair", {}).get("body") or {"user_id": 0, "item_id": 0}
    try:
        answer = ctx.aws.client("sagemaker-runtime").invoke_endpoint(
            EndpointName=name, ContentType="application/json", Body=json.dumps(pair).encode()
        )
        score = json.loads(answer["Body"].read()).get("score")
    except Exception as exc:
        return CheckResult(
            "endpoint",
            TITLE,
            FAIL,
            f"{name} is InService but InvokeEndpoint {json.dumps(pair)} "
            f"failed: {error_code(exc)}: {error_message(exc)[:300]}",
            f"read /aws/sagemaker/Endpoints/{name} in CloudWatch Logs",
        )
    if not isinstance(score, int | float) or not 0.0 <= float(score) <= 1.0:
        return CheckResult("endpoint", TITLE, FAIL, f"{name} answered {json.dumps(pair)} with {score!r}")
    return CheckResult("endpoint", TITLE, PASS, f"{name} InService; {json.dumps(pair)} -> score {float(score):.4f}")
