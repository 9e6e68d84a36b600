"""Deploy the verified image as a SageMaker real-time endpoint, call it, and delete it on request.

The image holds the model and its sidecar (``/opt/ml/model``, put there by the build), so the SageMaker
model names only the image: no ``ModelDataUrl``. What happens, in order:

1. **Permissions first** (nothing is created before): the caller's ``iam:PassRole`` on the execution role
   and the ``sagemaker:Create*`` / ``InvokeEndpoint`` actions on the exact ARNs, and the execution role's
   ECR pull rights on the image's repository (SageMaker pulls the image as that role: SageMaker developer
   guide, "CreateModel API: Execution Role Permissions"), each simulated with ``iam:SimulatePrincipalPolicy``
   through ``engine/iam.simulate``. A denied pair of the role is fixable (the least-privilege policy is
   proposed and, with a yes, attached); a denied pair of the caller is explained.
2. **Create** with the sagemaker SDK's resource classes (``sagemaker.core.resources.Model``,
   ``EndpointConfig``, ``Endpoint``): the model, a config with one ``AllTraffic`` variant on the instance
   family Neo compiled for (``ecr.instance_type_for``), the endpoint. A resumed run re-attaches to an
   endpoint of the same name instead of creating another.
3. **Follow** ``DescribeEndpoint``'s ``EndpointStatus`` (API reference, DescribeEndpoint: Creating ->
   InService, or Failed with ``FailureReason``) as ``endpoint`` events. The SDK's own
   ``Endpoint.wait_for_status`` draws a rich panel on stdout and sleeps without a cancel flag, so the loop
   here polls with the engine's ``Backoff`` instead. On Failed, the endpoint's CloudWatch log lines
   (``/aws/sagemaker/Endpoints/<name>``) are read and put into the reason.
4. **Invoke** through ``sagemaker-runtime`` InvokeEndpoint: one pair, one batch, one top-10 for a user of
   the sidecar's range, then a few dozen pairs for latency p50/p95, as ``invocation`` events.
5. **Elsewhere**: the exact ``docker run`` line and an ECS task definition from the run's values, written
   to the output folder.

Exit code 6 (``DeployError``): the endpoint Failed, or an invocation errored.
"""

from __future__ import annotations

import json
import re
import shlex
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aws import Aws, aws_errors, error_code, error_message
from .errors import Cancelled, ExitCode, NcfError
from .events import Emit, EndpointEvent, InvocationEvent, StepEvent
from .iam import (
    ECR_PULL_ACTIONS,
    Permission,
    PermissionResult,
    PermissionsError,
    attach_fix,
    emit_results,
    least_privilege_policy,
    simulate,
)
from .polling import Backoff, Poller

VARIANT_NAME = "AllTraffic"
CONTAINER_PORT = 8080
LATENCY_CALLS = 40
BATCH_SIZE = 8
TOP_K = 10
POLICY_NAME = "ncf-tui-hosting-permissions"
# The SageMaker names' rule (API reference, CreateEndpoint: EndpointName): [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}.
_NAME_BAD = re.compile(r"[^a-zA-Z0-9-]+")
TERMINAL = frozenset({"InService", "Failed", "OutOfService", "UpdateRollbackFailed"})
"""DescribeEndpoint statuses a created endpoint stops at (API reference, DescribeEndpoint, EndpointStatus)."""
LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
LOG_LINES = 20


class DeployError(NcfError):
    """The endpoint failed to come up, or an invocation errored (exit 6)."""

    exit_code = ExitCode.DEPLOY_FAILED


@dataclass(frozen=True)
class DeployInputs:
    """What the deploy step takes from the earlier steps (verify, settings, compile, variants)."""

    image_uri: str
    region: str
    role_arn: str
    target_device: str
    user_range: tuple[int, int]
    item_range: tuple[int, int]
    run_id: str
    output_dir: Path
    variant: str = ""


@dataclass(frozen=True)
class EndpointNames:
    model: str
    config: str
    endpoint: str

    @classmethod
    def for_run(cls, run_id: str, base: str = "ncf") -> EndpointNames:
        stem = _NAME_BAD.sub("-", f"{base}-{run_id}").strip("-")[:50].rstrip("-")
        return cls(model=f"{stem}-model", config=f"{stem}-config", endpoint=f"{stem}-endpoint")


@dataclass
class EndpointState:
    name: str
    status: str
    failure_reason: str = ""
    log_lines: list[str] = field(default_factory=list)


def container_environment() -> dict[str, str]:
    """What the image reads at start beyond what SageMaker sets (SAGEMAKER_BIND_TO_PORT and the safe port
    range come from hosting itself): one model worker per instance core is the server's own default, so only
    the access log is named, on, so that the endpoint's CloudWatch stream shows each call."""
    return {"NCF_ACCESS_LOG": "1"}


# ------------------------------------------------------------------------------------------ permissions


def _caller_principal(arn: str) -> str:
    """The ARN the simulator takes for the caller: an assumed-role session becomes its role."""
    m = re.match(r"^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/", arn)
    return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}" if m else arn


def _repository_arn(image_uri: str, region: str, account: str, partition: str) -> str:
    from .ecr import parse_image_uri, repository_arn_of

    arn = repository_arn_of(image_uri)
    if arn:
        return arn
    parts = parse_image_uri(image_uri)
    repo = (parts or {}).get("repo") or image_uri.split("/", 1)[-1].split("@", maxsplit=1)[0].rsplit(":", 1)[0]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repo}"


def deploy_permissions(
    inputs: DeployInputs, names: EndpointNames, account: str, partition: str
) -> tuple[list[Permission], list[Permission]]:
    """(the caller's pairs, the execution role's pairs) the deploy needs, on exact ARNs."""
    arn = f"arn:{partition}:sagemaker:{inputs.region}:{account}"
    caller = [
        Permission("iam:PassRole", inputs.role_arn, "PassExecutionRole", "CreateModel passes the execution role"),
        Permission("sagemaker:CreateModel", f"{arn}:model/{names.model.lower()}", "Deploy", "create the model"),
        Permission(
            "sagemaker:CreateEndpointConfig",
            f"{arn}:endpoint-config/{names.config.lower()}",
            "Deploy",
            "create the endpoint configuration",
        ),
        Permission(
            "sagemaker:CreateEndpoint", f"{arn}:endpoint/{names.endpoint.lower()}", "Deploy", "create the endpoint"
        ),
        Permission(
            "sagemaker:DescribeEndpoint", f"{arn}:endpoint/{names.endpoint.lower()}", "Deploy", "follow its status"
        ),
        Permission("sagemaker:InvokeEndpoint", f"{arn}:endpoint/{names.endpoint.lower()}", "Deploy", "call it"),
    ]
    repo = _repository_arn(inputs.image_uri, inputs.region, account, partition)
    role = [
        Permission("ecr:GetAuthorizationToken", "*", "HostingImageAuth", "SageMaker logs in to ECR as the role"),
        *(Permission(a, repo, "HostingImagePull", "SageMaker pulls the image as the role") for a in ECR_PULL_ACTIONS),
    ]
    return caller, role


def check_deploy_permissions(
    aws: Aws,
    inputs: DeployInputs,
    names: EndpointNames,
    emit: Emit,
    fix: Callable[[dict[str, Any]], bool] = lambda _policy: False,
) -> list[PermissionResult]:
    """Simulate both lists; attach the role's fix if agreed; raise PermissionsError (exit 3) on any deny."""
    from .settings import partition_for

    who = aws.whoami()
    partition = partition_for(inputs.region)
    caller_pairs, role_pairs = deploy_permissions(inputs, names, who.account, partition)
    caller_arn = _caller_principal(who.arn)

    def run() -> tuple[list[PermissionResult], list[PermissionResult]]:
        try:
            return simulate(aws, caller_arn, caller_pairs), simulate(aws, inputs.role_arn, role_pairs)
        except Exception as exc:
            if error_code(exc) == "NoSuchEntity":
                raise PermissionsError(
                    f"the SageMaker execution role {inputs.role_arn} does not exist",
                    hint="check sagemaker_role in the settings",
                ) from None
            if error_code(exc) in ("AccessDenied", "AccessDeniedException"):
                raise PermissionsError(
                    f"could not check the deploy's permissions: {error_message(exc)}",
                    hint="grant the caller iam:SimulatePrincipalPolicy on itself and the execution role",
                ) from None
            raise

    caller, role = run()
    emit_results(emit, (*caller, *role))
    role_denied = [r for r in role if not r.allowed]
    proposed = least_privilege_policy(role_denied) if role_denied else None
    if proposed is not None and all(r.fixable for r in role_denied) and fix(proposed):
        attach_fix(aws, inputs.role_arn, proposed, policy_name=POLICY_NAME)
        emit(StepEvent(name="deploy", status="note", message=f"attached {POLICY_NAME} to {inputs.role_arn}"))
        caller, role = run()
    denied = [r for r in (*caller, *role) if not r.allowed]
    if denied:
        listed = ", ".join(f"{r.permission.action} on {r.permission.resource}" for r in denied)
        whose = "the caller" if any(r in caller for r in denied) else f"the execution role {inputs.role_arn}"
        hint = (
            "attach this policy to the execution role (or rerun with --yes): " + json.dumps(proposed)
            if proposed is not None and not any(r in caller for r in denied)
            else "grant these to the caller (iam:PassRole on the execution role's ARN)"
        )
        raise PermissionsError(f"the deploy is denied for {whose}: {listed}", hint=hint)
    return [*caller, *role]


# ------------------------------------------------------------------------------------------ the SDK


def sdk_session(aws: Aws) -> Any:
    """A boto3 session for the sagemaker SDK, at the run's target. The SDK makes its clients with
    ``session.client(service, region, config=...)`` and no endpoint URL (``sagemaker.core.utils.SageMakerClient``),
    so this session adds the target's endpoint URL (the sandbox, or ``--endpoint-url``) to every client."""
    import boto3

    target = aws.target

    class TargetSession(boto3.session.Session):  # type: ignore[misc]
        def client(self, *args: Any, **kwargs: Any) -> Any:
            if target.endpoint_url:
                kwargs.setdefault("endpoint_url", target.endpoint_url)
            return super().client(*args, **kwargs)

    return TargetSession(profile_name=target.profile, region_name=target.region, **(target.credentials or {}))


def _describe(aws: Aws, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when there is no such endpoint (SageMaker answers ValidationException)."""
    try:
        with aws_errors(aws.target):
            return dict(aws.client("sagemaker").describe_endpoint(EndpointName=name))
    except NcfError:
        raise
    except Exception as exc:
        if error_code(exc) == "ValidationException" and "Could not find" in error_message(exc):
            return None
        raise


def create_endpoint(aws: Aws, inputs: DeployInputs, names: EndpointNames, emit: Emit) -> bool:
    """The model, the config and the endpoint (each only if absent); True if the endpoint was already there."""
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

    from .ecr import instance_type_for

    if _describe(aws, names.endpoint) is not None:
        emit(
            EndpointEvent(
                name=names.endpoint,
                status="attached",
                config=names.config,
                model=names.model,
                message=f"endpoint {names.endpoint} exists: re-attached by name",
            )
        )
        return True
    session = sdk_session(aws)
    instance_type = instance_type_for(inputs.target_device)
    client = aws.client("sagemaker")
    try:
        with aws_errors(aws.target):
            if not _exists(lambda: client.describe_model(ModelName=names.model)):
                Model.create(
                    model_name=names.model,
                    primary_container=ContainerDefinition(
                        image=inputs.image_uri, mode="SingleModel", environment=container_environment()
                    ),
                    execution_role_arn=inputs.role_arn,
                    session=session,
                    region=inputs.region,
                )
            if not _exists(lambda: client.describe_endpoint_config(EndpointConfigName=names.config)):
                EndpointConfig.create(
                    endpoint_config_name=names.config,
                    production_variants=[
                        ProductionVariant(
                            variant_name=VARIANT_NAME,
                            model_name=names.model,
                            initial_instance_count=1,
                            instance_type=instance_type,
                            initial_variant_weight=1.0,
                        )
                    ],
                    session=session,
                    region=inputs.region,
                )
            Endpoint.create(
                endpoint_name=names.endpoint, endpoint_config_name=names.config, session=session, region=inputs.region
            )
    except NcfError:
        raise
    except Exception as exc:
        raise DeployError(
            f"creating the endpoint failed: {error_code(exc) or type(exc).__name__}: {error_message(exc)}"
        ) from None
    emit(
        EndpointEvent(
            name=names.endpoint,
            status="created",
            config=names.config,
            model=names.model,
            instance_type=instance_type,
            message=f"{inputs.image_uri} on {instance_type}",
        )
    )
    return False


def _exists(call: Callable[[], Any]) -> bool:
    try:
        call()
    except Exception as exc:
        if error_code(exc) == "ValidationException":
            return False
        raise
    return True


def endpoint_log_lines(aws: Aws, name: str, limit: int = LOG_LINES) -> list[str]:
    """The last lines of the endpoint's CloudWatch log group (``/aws/sagemaker/Endpoints/<name>``: SageMaker
    developer guide, "Log groups and streams that SageMaker sends to CloudWatch Logs"); [] if none."""
    logs = aws.client("logs")
    events: list[dict[str, Any]] = []
    try:
        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP_PREFIX + name}
        for _ in range(20):
            page = logs.filter_log_events(**kwargs)
            events.extend(page.get("events") or [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except Exception as exc:
        if error_code(exc) in ("ResourceNotFoundException", "AccessDeniedException"):
            return []
        raise
    events.sort(key=lambda e: (int(e.get("timestamp") or 0), str(e.get("eventId", ""))))
    return [str(e.get("message", "")).rstrip() for e in events][-limit:]


def wait_in_service(
    aws: Aws,
    names: EndpointNames,
    emit: Emit,
    cancel: threading.Event,
    *,
    timeout: float = 3600.0,
    backoff: Backoff | None = None,
) -> EndpointState:
    """Follow DescribeEndpoint until a terminal status; raise DeployError (exit 6) unless InService."""
    pace = backoff or Backoff(fast=0.5, slow=15.0, factor=1.5)
    last = ""
    started = time.monotonic()
    while True:
        described = _describe(aws, names.endpoint)
        if described is None:
            raise DeployError(f"the endpoint {names.endpoint} vanished while being created (deleted by someone?)")
        status = str(described.get("EndpointStatus", ""))
        reason = str(described.get("FailureReason") or "")
        if status != last:
            emit(
                EndpointEvent(
                    name=names.endpoint, status=status, config=names.config, model=names.model, failure_reason=reason
                )
            )
            last = status
            delay = pace.progressed()
        else:
            delay = pace.idle()
        if status == "InService":
            return EndpointState(names.endpoint, status)
        if status in TERMINAL:
            lines = endpoint_log_lines(aws, names.endpoint)
            emit(
                EndpointEvent(
                    name=names.endpoint,
                    status=status,
                    config=names.config,
                    model=names.model,
                    failure_reason=reason,
                    log_lines=lines,
                    message="the endpoint's log",
                )
            )
            shown = " | ".join(lines[-8:]) if lines else f"no lines in {LOG_GROUP_PREFIX}{names.endpoint}"
            raise DeployError(
                f"endpoint {names.endpoint} is {status}: {reason or 'no FailureReason'}; "
                f"CloudWatch {LOG_GROUP_PREFIX}{names.endpoint}: {shown}",
                hint="fix the image, then delete the endpoint (--delete-endpoint) and deploy again",
            )
        if time.monotonic() - started > timeout:
            raise DeployError(f"endpoint {names.endpoint} still {status} after {timeout:.0f} s")
        if Poller(pace, cancel).sleep(delay):
            raise Cancelled(f"cancelled while endpoint {names.endpoint} is {status}; it keeps being created")


# ------------------------------------------------------------------------------------------ invoking


@dataclass
class Invocations:
    pair: dict[str, Any] = field(default_factory=dict)
    batch: dict[str, Any] = field(default_factory=dict)
    top_k: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"pair": self.pair, "batch": self.batch, "top_k": self.top_k, "latency": self.latency}


def invoke(aws: Aws, endpoint: str, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """One InvokeEndpoint with a JSON body: (the answer, milliseconds); DeployError on any error."""
    runtime = aws.client("sagemaker-runtime")
    started = time.perf_counter()
    try:
        with aws_errors(aws.target):
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps(body).encode(),
            )
            raw = answer["Body"].read()
    except NcfError:
        raise
    except Exception as exc:
        raise DeployError(
            f"InvokeEndpoint {endpoint} {json.dumps(body)[:120]}: {error_code(exc)}: {error_message(exc)}"
        ) from None
    took = (time.perf_counter() - started) * 1000
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise DeployError(f"InvokeEndpoint {endpoint} answered non-JSON: {raw[:120]!r}") from None
    return (parsed if isinstance(parsed, dict) else {"value": parsed}), took


def _scores(values: Sequence[Any], what: str) -> list[float]:
    out = []
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
            raise DeployError(f"the endpoint's {what} holds {v!r}, not a score in [0, 1]")
        out.append(float(v))
    return out


def invoke_all(aws: Aws, inputs: DeployInputs, endpoint: str, emit: Emit, *, calls: int = LATENCY_CALLS) -> Invocations:
    """One pair, one batch, one top-10, then ``calls`` pairs for p50/p95; one ``invocation`` event each."""
    (u0, u1), (i0, i1) = inputs.user_range, inputs.item_range
    user, item = (u0 + u1) // 2, (i0 + i1) // 2
    out = Invocations()

    body: dict[str, Any] = {"user_id": user, "item_id": item}
    answer, ms = invoke(aws, endpoint, body)
    scores = _scores([answer.get("score")], "pair score")
    out.pair = {"body": body, "scores": scores, "latency_ms": round(ms, 2)}
    emit(
        InvocationEvent(
            endpoint=endpoint, request="pair", ok=True, body=body, scores=scores, latency_ms=round(ms, 2), calls=1
        )
    )

    span_u, span_i = max(1, u1 - u0 + 1), max(1, i1 - i0 + 1)
    pairs = [
        {"user_id": u0 + (user + 7 * n) % span_u, "item_id": i0 + (item + 13 * n) % span_i} for n in range(BATCH_SIZE)
    ]
    body = {"instances": pairs}
    answer, ms = invoke(aws, endpoint, body)
    got = answer.get("scores")
    if not isinstance(got, list) or len(got) != len(pairs):
        raise DeployError(f"the batch of {len(pairs)} answered {json.dumps(answer)[:160]}")
    scores = _scores(got, "batch scores")
    out.batch = {"body": body, "scores": scores, "latency_ms": round(ms, 2)}
    emit(
        InvocationEvent(
            endpoint=endpoint, request="batch", ok=True, body=body, scores=scores, latency_ms=round(ms, 2), calls=1
        )
    )

    body = {"user_id": user, "top_k": TOP_K}
    answer, ms = invoke(aws, endpoint, body)
    items = answer.get("items")
    if not isinstance(items, list) or not items:
        raise DeployError(f"top-{TOP_K} for user {user} answered {json.dumps(answer)[:160]}")
    ranked = [{"item_id": int(x["item_id"]), "score": _scores([x.get("score")], "top-k score")[0]} for x in items]
    out.top_k = {"body": body, "items": ranked, "latency_ms": round(ms, 2)}
    emit(
        InvocationEvent(
            endpoint=endpoint,
            request="top_k",
            ok=True,
            body=body,
            items=ranked,
            scores=[x["score"] for x in ranked],
            latency_ms=round(ms, 2),
            calls=1,
        )
    )

    times = []
    body = {"user_id": user, "item_id": item}
    for _ in range(calls):
        _answer, ms = invoke(aws, endpoint, body)
        times.append(ms)
    p50, p95 = latency_percentiles(times)
    out.latency = {"calls": calls, "p50_ms": p50, "p95_ms": p95}
    emit(
        InvocationEvent(
            endpoint=endpoint,
            request="latency",
            ok=True,
            body=body,
            calls=calls,
            p50_ms=p50,
            p95_ms=p95,
            message=f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {calls} calls",
        )
    )
    return out


def latency_percentiles(times_ms: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 (``statistics.quantiles``, inclusive method) of the calls' milliseconds."""
    if len(times_ms) < 2:
        only = round(float(times_ms[0]) if times_ms else 0.0, 2)
        return only, only
    cuts = statistics.quantiles(times_ms, n=100, method="inclusive")
    return round(cuts[49], 2), round(cuts[94], 2)


# ------------------------------------------------------------------------------------------ deleting


def delete_endpoint(
    aws: Aws, names: EndpointNames, emit: Emit, cancel: threading.Event | None = None, *, timeout: float = 900.0
) -> list[str]:
    """Delete the endpoint (and wait until DescribeEndpoint no longer finds it), its config and its model;
    what was deleted. Absent pieces are skipped: deleting twice is not an error."""
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model

    session = sdk_session(aws)
    region = aws.region
    deleted: list[str] = []
    with aws_errors(aws.target):
        if _describe(aws, names.endpoint) is not None:
            Endpoint.get(endpoint_name=names.endpoint, session=session, region=region).delete()
            pace = Backoff(fast=0.5, slow=10.0)
            started = time.monotonic()
            while (described := _describe(aws, names.endpoint)) is not None:
                if time.monotonic() - started > timeout:
                    raise DeployError(
                        f"endpoint {names.endpoint} still {described.get('EndpointStatus')} "
                        f"after {timeout:.0f} s of deleting"
                    )
                if Poller(pace, cancel).next_round(changed=False):
                    raise Cancelled(f"cancelled while endpoint {names.endpoint} is being deleted")
            deleted.append(f"endpoint {names.endpoint}")
        client = aws.client("sagemaker")
        if _exists(lambda: client.describe_endpoint_config(EndpointConfigName=names.config)):
            EndpointConfig.get(endpoint_config_name=names.config, session=session, region=region).delete()
            deleted.append(f"endpoint config {names.config}")
        if _exists(lambda: client.describe_model(ModelName=names.model)):
            Model.get(model_name=names.model, session=session, region=region).delete()
            deleted.append(f"model {names.model}")
    emit(
        EndpointEvent(
            name=names.endpoint,
            status="Deleted",
            config=names.config,
            model=names.model,
            message="deleted: " + (", ".join(deleted) or "nothing was left"),
        )
    )
    return deleted


# ------------------------------------------------------------------------------------------ elsewhere


def docker_run_line(image_uri: str, port: int = CONTAINER_PORT) -> str:
    """The exact ``docker run`` that serves the image as SageMaker does (``serve``, port 8080, SageMaker's
    port variables and the container's environment)."""
    env = {
        "SAGEMAKER_BIND_TO_PORT": str(CONTAINER_PORT),
        "SAGEMAKER_SAFE_PORT_RANGE": "8081-8089",
        **container_environment(),
    }
    words = ["docker", "run", "--rm", "-p", f"{port}:{CONTAINER_PORT}"]
    for key, value in env.items():
        words += ["-e", f"{key}={value}"]
    return shlex.join([*words, image_uri, "serve"])


def ecs_task_definition(inputs: DeployInputs, *, family: str = "ncf-recommender") -> dict[str, Any]:
    """An ECS task definition (Fargate, awsvpc) for the image: the container's port, environment, health
    check on /ping and the awslogs driver; the execution role is left for the user to fill in (ECS pulls
    from ECR with it: it needs the AmazonECSTaskExecutionRolePolicy)."""
    env = {"SAGEMAKER_BIND_TO_PORT": str(CONTAINER_PORT), **container_environment()}
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "1024",
        "memory": "2048",
        "executionRoleArn": "arn:aws:iam::ACCOUNT_ID:role/ecsTaskExecutionRole",
        "containerDefinitions": [
            {
                "name": "ncf-serve",
                "image": inputs.image_uri,
                "essential": True,
                "command": ["serve"],
                "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
                "environment": [{"name": k, "value": v} for k, v in env.items()],
                "healthCheck": {
                    "command": [
                        "CMD-SHELL",
                        f'python -c "import urllib.request; urllib.request.urlopen('
                        f"'http://127.0.0.1:{CONTAINER_PORT}/ping', timeout=2)\"",
                    ],
                    "interval": 10,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 60,
                },
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": f"/ecs/{family}",
                        "awslogs-region": inputs.region,
                        "awslogs-stream-prefix": "ncf",
                        "awslogs-create-group": "true",
                    },
                },
            }
        ],
    }


def write_elsewhere(inputs: DeployInputs) -> dict[str, str]:
    """The ``docker run`` line and the ECS task definition, written to the output folder; their paths."""
    folder = Path(inputs.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    run_file, ecs_file = folder / "docker-run.sh", folder / "ecs-task-definition.json"
    line = docker_run_line(inputs.image_uri)
    run_file.write_text(
        f"#!/bin/sh\n# Serve {inputs.image_uri} as SageMaker does, on port {CONTAINER_PORT}\n{line}\n", encoding="utf-8"
    )
    ecs_file.write_text(json.dumps(ecs_task_definition(inputs), indent=2) + "\n", encoding="utf-8")
    return {"docker_run": line, "docker_run_file": str(run_file), "ecs_task_definition_file": str(ecs_file)}
