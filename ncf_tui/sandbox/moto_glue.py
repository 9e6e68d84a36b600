"""Every touch of moto's private internals, in one small module.

moto exposes no plug-in point, so the sandbox adds behaviour by (a) setting methods on moto's
response classes (moto serves any method named after an API action, and serialises an
`ActionResult` with botocore's model) and (b) reading and writing backend state in
`moto.<service>.models.<service>_backends[account][partition-or-region]`. These are private
attributes: the moto version is pinned in pyproject.toml and `tests/sandbox/test_moto_glue.py`
fails loudly when an assumption here stops holding. Nothing else in the sandbox imports moto.

The behaviour itself (what a build or a compile does) lives in the sandbox's own modules, reached
through the `SandboxHooks` object installed with `install_hooks`.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

PINNED_MOTO_VERSION = "5.2.5"

WsgiApp = Callable[..., Any]


class SandboxApiError(Exception):
    """An AWS-shaped error (code + message) raised by a hook and serialised by moto per protocol."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PrincipalPolicy:
    """One policy document that applies to a principal, as the evaluator wants it."""

    id: str
    type: str  # "role", "user", "group" (inline) or "user-managed" / "aws-managed"
    document: str


class SandboxHooks(Protocol):
    """What the glue calls when a request reaches behaviour moto lacks."""

    def simulate(
        self,
        policies: list[PrincipalPolicy],
        actions: list[str],
        resources: list[str] | None,
        context: list[dict[str, Any]] | None,
        max_items: int | None,
        marker: str | None,
        boundary: list[PrincipalPolicy] | None = None,
    ) -> dict[str, Any]: ...

    def boundary_allows(self, boundary: PrincipalPolicy, action: str, resource: str) -> bool: ...

    def compilation_job_created(self, account_id: str, region: str, job_name: str) -> None: ...

    def check_compilation_quota(self, account_id: str, region: str) -> None: ...

    def stop_compilation_job(self, account_id: str, region: str, job_name: str) -> None: ...

    def start_build(self, account_id: str, region: str, params: dict[str, Any]) -> dict[str, Any]: ...

    def batch_get_builds(self, ids: list[str]) -> tuple[list[dict[str, Any]], list[str]]: ...

    def stop_build(self, build_id: str) -> dict[str, Any]: ...

    def list_builds(self, project: str | None) -> list[str]: ...

    def ecr_registry(self) -> Any: ...  # a registry.LocalRegistry when a real registry is ECR's data plane

    def endpoint_created(self, account_id: str, region: str, name: str) -> None: ...

    def endpoint_deleted(self, account_id: str, region: str, name: str) -> None: ...

    def invoke_endpoint(
        self, account_id: str, region: str, name: str, body: bytes, content_type: str, accept: str
    ) -> tuple[int, dict[str, str], bytes]: ...


class _GlueState:
    """The glue's process-wide state (moto's own state is process-wide too)."""

    hooks: SandboxHooks | None = None
    patched = False
    error_class: type[Exception] | None = None
    # IAM eventual consistency: when each role's policies last changed (through the API), with the
    # documents from before that change; and the sessions that still see those older documents.
    role_changes: ClassVar[dict[tuple[str, str], tuple[float, list[str]]]] = {}
    stale_sessions: ClassVar[dict[str, list[str]]] = {}


_state = _GlueState()
_install_lock = threading.Lock()


def moto_version() -> str:
    import moto

    return str(moto.__version__)


def check_moto_version() -> None:
    """Refuse to run on a moto whose private internals were not checked against this module."""
    found = moto_version()
    if found != PINNED_MOTO_VERSION:
        raise RuntimeError(
            f"the sandbox was written against moto {PINNED_MOTO_VERSION} internals but moto {found} is "
            f"installed; install moto[server]=={PINNED_MOTO_VERSION}"
        )


# --------------------------------------------------------------------------------------------- server


class MotoServer:
    """moto's ThreadedMotoServer with a WSGI middleware around its app (for faults)."""

    def __init__(self, host: str, port: int, middleware: Callable[[WsgiApp], WsgiApp]) -> None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        outer = self

        class _Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                try:
                    app = middleware(DomainDispatcherApplication(create_backend_app))
                    self._server = make_server(
                        self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
                    )
                except BaseException as exc:  # surfaced by start() instead of hanging it
                    outer.start_error = exc
                    self._server_ready_event.set()
                    return
                self._server_ready_event.set()
                self._server.serve_forever()

        self.start_error: BaseException | None = None
        self._server = _Server(ip_address=host, port=port, verbose=False)

    def start(self) -> tuple[str, int]:
        import logging

        # werkzeug logs every request to stderr; the sandbox is quiet unless something is wrong.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        if self.start_error is not None:
            raise OSError(f"the sandbox server could not start: {self.start_error}") from self.start_error
        return self._server.get_host_and_port()

    def stop(self) -> None:
        self._server.stop()


def enforce_iam() -> None:
    """Check every request's signature and IAM permissions (moto's default is to allow all)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0


def iam_enforced() -> bool:
    from moto import settings

    return bool(settings.INITIAL_NO_AUTH_ACTION_COUNT == 0)


def reset_all_backends() -> None:
    """Forget every account's state in every moto service (what /moto-api/reset does)."""
    from moto.core.base_backend import BackendDict

    BackendDict.reset()
    _state.role_changes.clear()
    _state.stale_sessions.clear()


# ------------------------------------------------------------------------ IAM eventual consistency


def _role_documents(account_id: str, role_name: str) -> list[str]:
    """The role's inline and attached managed policy documents as they are now."""
    try:
        role = _iam(account_id).get_role(role_name)
    except Exception:
        return []
    docs = [str(doc) for doc in role.policies.values()]
    docs += [_managed_document(p) for p in role.managed_policies.values()]
    return docs


def _note_role_change(account_id: str, role_name: str) -> None:
    """A policy of ``role_name`` is about to change: keep what it allowed before (the first change of a
    burst keeps the oldest documents, as they are what a lagging endpoint still serves)."""
    import time

    key = (account_id, role_name)
    with _install_lock:
        before = _state.role_changes.get(key)
        docs = before[1] if before is not None else _role_documents(account_id, role_name)
        _state.role_changes[key] = (time.monotonic(), docs)


def policies_before_recent_change(account_id: str, role_arn: str, within: float) -> list[str] | None:
    """The role's documents from before its last change if that change is less than ``within`` s old."""
    import time

    if within <= 0:
        return None
    with _install_lock:
        change = _state.role_changes.get((account_id, role_arn.rsplit("/", 1)[-1]))
    if change is None or time.monotonic() - change[0] >= within:
        return None
    return list(change[1])


def mark_stale_session(access_key_id: str, documents: list[str]) -> None:
    """Requests signed with ``access_key_id`` (a role session) are judged by ``documents``."""
    with _install_lock:
        _state.stale_sessions[access_key_id] = documents


# ----------------------------------------------------------------------------------------------- seed


def _iam(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["aws"]


def create_user_with_key(account_id: str, user_name: str, access_key_id: str, secret: str) -> None:
    """Create an IAM user whose one access key has the given id and secret (stable across resets)."""
    iam = _iam(account_id)
    iam.create_user(region_name="us-east-1", user_name=user_name)
    key = iam.create_access_key(user_name)
    del iam.access_keys[key.physical_resource_id]
    key.access_key_id = access_key_id
    key.secret_access_key = secret
    iam.access_keys[key.physical_resource_id] = key
    if key.physical_resource_id != access_key_id:
        raise RuntimeError("moto's AccessKey.physical_resource_id no longer is the access key id")


def create_managed_policy(account_id: str, name: str, document: str) -> str:
    policy = _iam(account_id).create_policy(
        description="", path="/", policy_document=document, policy_name=name, tags=[]
    )
    return str(policy.arn)


def attach_user_policy(account_id: str, user_name: str, policy_arn: str) -> None:
    _iam(account_id).attach_user_policy(policy_arn, user_name)


def create_role(
    account_id: str, name: str, path: str, trust_policy: str, description: str, boundary_arn: str | None = None
) -> str:
    role = _iam(account_id).create_role(
        role_name=name,
        assume_role_policy_document=trust_policy,
        path=path,
        permissions_boundary=boundary_arn,
        description=description,
        tags=[],
        max_session_duration=None,
    )
    return str(role.arn)


def put_role_policy(account_id: str, role_name: str, policy_name: str, document: str) -> None:
    _iam(account_id).put_role_policy(role_name, policy_name, document)


def create_bucket(account_id: str, region: str, bucket: str) -> None:
    from moto.s3.models import s3_backends

    s3_backends[account_id]["aws"].create_bucket(bucket, region)


def create_ecr_repository(account_id: str, region: str, name: str) -> None:
    from moto.ecr.models import ecr_backends

    ecr_backends[account_id][region].create_repository(
        repository_name=name,
        registry_id=None,
        encryption_config={"encryptionType": "AES256"},
        image_scan_config={"scanOnPush": False},
        image_tag_mutability="MUTABLE",
        tags=[],
    )


# ------------------------------------------------------------------------------------------------ IAM


def _managed_document(policy: Any) -> str:
    for version in policy.versions:
        if version.is_default:
            return str(version.document)
    raise RuntimeError(f"managed policy {policy.arn} has no default version")


def principal_policies(account_id: str, arn: str) -> list[PrincipalPolicy]:
    """The inline and attached managed policies of the user or role named by `arn`."""
    iam = _iam(account_id)
    resource = arn.split(":", 5)[-1]
    kind, _, path_and_name = resource.partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    try:
        if kind == "role":
            principal = iam.get_role(name)
        elif kind == "user":
            principal = iam.get_user(name)
        else:
            raise SandboxApiError("InvalidInput", f"Invalid ARN: {arn} is not a user or a role.")
    except SandboxApiError:
        raise
    except Exception:
        raise SandboxApiError("NoSuchEntity", f"The {kind} with ARN {arn} cannot be found.") from None
    found = [PrincipalPolicy(n, kind, str(doc)) for n, doc in principal.policies.items()]
    for policy in principal.managed_policies.values():
        managed_type = "aws-managed" if ":aws:policy/" in str(policy.arn) else "user-managed"
        found.append(PrincipalPolicy(str(policy.name), managed_type, _managed_document(policy)))
    if kind == "user":
        for group in iam.get_groups_for_user(name):
            found += [PrincipalPolicy(n, "group", str(doc)) for n, doc in group.policies.items()]
            for policy in group.managed_policies.values():
                found.append(PrincipalPolicy(str(policy.name), "user-managed", _managed_document(policy)))
    return found


def principal_boundary(account_id: str, arn: str) -> PrincipalPolicy | None:
    """The permissions boundary (a managed policy) set on the user or role named by ``arn``, or None."""
    iam = _iam(account_id)
    kind, _, path_and_name = arn.split(":", 5)[-1].partition("/")
    name = path_and_name.rsplit("/", 1)[-1]
    try:
        principal = iam.get_role(name) if kind == "role" else iam.get_user(name) if kind == "user" else None
    except Exception:
        return None
    boundary_arn = getattr(principal, "permissions_boundary_arn", None)
    if not boundary_arn:
        return None
    policy = iam.get_policy(boundary_arn)
    managed_type = "aws-managed" if ":aws:policy/" in str(policy.arn) else "user-managed"
    return PrincipalPolicy(str(policy.name), managed_type, _managed_document(policy))


def role_exists(account_id: str, role_arn: str) -> bool:
    name = role_arn.rsplit("/", 1)[-1]
    return any(str(r.arn) == role_arn or r.name == name for r in _iam(account_id).get_roles())


# ------------------------------------------------------------------------------------- Neo (SageMaker)


def _compilation_job(account_id: str, region: str, job_name: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    jobs = sagemaker_backends[account_id][region].compilation_jobs
    if job_name not in jobs:
        raise SandboxApiError("ResourceNotFound", f"Could not find compilation job '{job_name}'.")
    return jobs[job_name]


def describe_compilation_job(account_id: str, region: str, job_name: str) -> dict[str, Any]:
    """A copy of the job's description (the worker reads its input and output config from it)."""
    return copy.deepcopy(_compilation_job(account_id, region, job_name).describe())


def update_compilation_job(
    account_id: str,
    region: str,
    job_name: str,
    *,
    status: str,
    failure_reason: str | None = None,
    artifacts_uri: str | None = None,
    artifact_digest: str | None = None,
    derived_data_input_config: str | None = None,
    started: bool = False,
    ended: bool = False,
) -> None:
    """Set a job's status and the fields that go with it, as DescribeCompilationJob will show them."""
    job = _compilation_job(account_id, region, job_name)
    now = datetime.now(UTC)
    job.compilation_job_status = status
    job.last_modified_time = now
    if started:
        job.compilation_start_time = now
    if ended:
        job.compilation_end_time = now
    if failure_reason is not None:
        job.failure_reason = failure_reason
    if artifacts_uri is not None:
        job.model_artifacts = {"S3ModelArtifacts": artifacts_uri}
    if artifact_digest is not None:
        job.model_digests = {"ArtifactDigest": artifact_digest}
    if derived_data_input_config is not None:
        job.derived_information = {"DerivedDataInputConfig": derived_data_input_config}


def _reset_new_compilation_job(account_id: str, region: str, job_name: str) -> None:
    """moto marks a new job COMPLETED with a fake artifact; make it a job that has not run yet."""
    job = _compilation_job(account_id, region, job_name)
    job.compilation_job_status = "STARTING"
    job.compilation_start_time = None
    job.compilation_end_time = None
    job.model_artifacts = None
    job.model_digests = None
    job.derived_information = None
    job.inference_image = None


# -------------------------------------------------------------------------------------------- CodeBuild


# ------------------------------------------------------------------------------- SageMaker hosting


def _sagemaker(account_id: str, region: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account_id][region]


def endpoint_container(account_id: str, region: str, name: str) -> dict[str, Any]:
    """The first production variant of an endpoint and its model's primary container (image, environment)."""
    backend = _sagemaker(account_id, region)
    endpoint = backend.endpoints[name]
    variant = backend.endpoint_configs[endpoint.endpoint_config_name].production_variants[0]
    model = backend._models[variant["ModelName"]]
    container = model.primary_container or (model.containers or [{}])[0]
    return {
        "variant": str(variant.get("VariantName", "AllTraffic")),
        "instance_type": str(variant.get("InstanceType", "")),
        "image": str(container.get("Image", "")),
        "environment": {str(k): str(v) for k, v in (container.get("Environment") or {}).items()},
    }


def set_endpoint_status(account_id: str, region: str, name: str, status: str, reason: str | None = None) -> None:
    endpoint = _sagemaker(account_id, region).endpoints.get(name)
    if endpoint is not None:
        endpoint.endpoint_status = status
        endpoint.failure_reason = reason
        endpoint.last_modified_time = datetime.now(UTC)


def endpoint_status(account_id: str, region: str, name: str) -> str | None:
    endpoint = _sagemaker(account_id, region).endpoints.get(name)
    return None if endpoint is None else str(endpoint.endpoint_status)


class ModelError(SandboxApiError):
    """sagemaker-runtime's ModelError with the fields botocore's model gives it."""

    def __init__(self, message: str, *, original_status: int, original_message: str, log_stream_arn: str) -> None:
        super().__init__("ModelError", message)
        self.fields = {
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": log_stream_arn,
        }


# ------------------------------------------------------------------------------------------ CodeBuild


def _codebuild(account_id: str, region: str) -> Any:
    from moto.codebuild.models import codebuild_backends

    return codebuild_backends[account_id][region]


def get_codebuild_project(account_id: str, region: str, name: str) -> dict[str, Any] | None:
    """A copy of the project as CreateProject/UpdateProject left it (None if there is none)."""
    backend = _codebuild(account_id, region)
    project = backend.codebuild_projects.get(name)
    if project is None:
        for candidate in backend.codebuild_projects.values():
            if candidate.arn == name:
                project = candidate
    return None if project is None else copy.deepcopy(project.project_metadata)


_UPDATABLE_PROJECT_FIELDS = (
    "description",
    "source",
    "artifacts",
    "environment",
    "serviceRole",
    "timeoutInMinutes",
    "queuedTimeoutInMinutes",
    "sourceVersion",
    "logsConfig",
    "vpcConfig",
    "cache",
    "tags",
)


def update_codebuild_project(account_id: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateProject: change the given fields of an existing project, as CodeBuild does."""
    name = params.get("name") or ""
    backend = _codebuild(account_id, region)
    project = backend.codebuild_projects.get(name)
    if project is None:
        raise SandboxApiError(
            "ResourceNotFoundException",
            f"Failed to call UpdateProject, reason: Project {name} does not exist",
        )
    meta = project.project_metadata
    for field in _UPDATABLE_PROJECT_FIELDS:
        if params.get(field) is not None:
            meta[field] = copy.deepcopy(params[field])
    if params.get("serviceRole"):
        project.service_role = params["serviceRole"]
    meta["lastModifiedDate"] = datetime.now(UTC)
    return copy.deepcopy(meta)


# ------------------------------------------------------------------------------------------ the hooks


def _to_moto_error(exc: SandboxApiError) -> Exception:
    """moto's serialisable error; defined here so moto looks the code up in the request's own service."""
    if _state.error_class is None:
        from moto.core.exceptions import ServiceException

        class SandboxServiceError(ServiceException):
            pass

        _state.error_class = SandboxServiceError
    error = _state.error_class(exc.code, exc.message)
    for key, value in getattr(exc, "fields", {}).items():
        setattr(error, key, value)
    return error


def _hook() -> SandboxHooks:
    if _state.hooks is None:
        raise SandboxApiError("ServiceUnavailable", "the sandbox is shutting down")
    return _state.hooks


def _guarded(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def method(self: Any) -> Any:
        try:
            return fn(self)
        except SandboxApiError as exc:
            raise _to_moto_error(exc) from None

    method.__name__ = fn.__name__
    return method


def _json_body(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.body or "{}")
    except ValueError:
        raise SandboxApiError("SerializationException", "the request body is not JSON") from None
    return body if isinstance(body, dict) else {}


def _json_body_or_empty(response: Any) -> dict[str, Any]:
    try:
        return _json_body(response)
    except SandboxApiError:
        return {}


def assume_role_credentials(account_id: str, region: str, role_arn: str, session_name: str) -> dict[str, str]:
    """Credentials for `role_arn` as the CodeBuild service would get them (no trust check by a caller)."""
    from moto.sts.models import sts_backends

    role = sts_backends[account_id]["aws"].assume_role(
        region_name=region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy="",
        duration=3600,
        external_id="",
    )
    return {
        "aws_access_key_id": str(role.access_key_id),
        "aws_secret_access_key": str(role.secret_access_key),
        "aws_session_token": str(role.session_token),
    }


def _boundary_inputs(documents: list[str]) -> list[PrincipalPolicy]:
    return [PrincipalPolicy(f"PermissionsBoundaryPolicyInputList.{i}", "none", d) for i, d in enumerate(documents, 1)]


_create_job_lock = threading.Lock()


def install_hooks(hooks: SandboxHooks | None) -> None:
    """Route the APIs moto lacks or fakes to `hooks` (None detaches, restoring moto's errors)."""
    with _install_lock:
        _state.hooks = hooks
        _patch_response_classes()


def _patch_response_classes() -> None:
    """Every moto response class the sandbox changes, in one place."""
    if _state.patched:
        return
    from moto.codebuild.responses import CodeBuildResponse
    from moto.core.responses import ActionResult, EmptyResult
    from moto.iam.responses import IamResponse
    from moto.sagemaker.responses import SageMakerResponse

    # --- IAM
    def simulate_principal_policy(self: Any) -> Any:
        source = self._get_param("PolicySourceArn")
        policies = principal_policies(self.current_account, source)
        for i, doc in enumerate(self._get_param("PolicyInputList") or [], start=1):
            policies.append(PrincipalPolicy(f"PolicyInputList.{i}", "none", doc))
        # botocore's iam model: a PermissionsBoundaryPolicyInputList replaces the entity's own boundary.
        given = self._get_param("PermissionsBoundaryPolicyInputList") or []
        found = principal_boundary(self.current_account, source)
        boundary = _boundary_inputs(given)
        if not boundary and found is not None:
            boundary = [found]
        return ActionResult(
            _hook().simulate(
                policies,
                list(self._get_param("ActionNames") or []),
                self._get_param("ResourceArns"),
                self._get_param("ContextEntries"),
                self._get_param("MaxItems"),
                self._get_param("Marker"),
                boundary,
            )
        )

    def simulate_custom_policy(self: Any) -> Any:
        docs = self._get_param("PolicyInputList") or []
        policies = [PrincipalPolicy(f"PolicyInputList.{i}", "none", d) for i, d in enumerate(docs, 1)]
        given = self._get_param("PermissionsBoundaryPolicyInputList") or []
        boundary = _boundary_inputs(given)
        return ActionResult(
            _hook().simulate(
                policies,
                list(self._get_param("ActionNames") or []),
                self._get_param("ResourceArns"),
                self._get_param("ContextEntries"),
                self._get_param("MaxItems"),
                self._get_param("Marker"),
                boundary,
            )
        )

    # --- permissions boundaries on real requests: moto's access control evaluates a principal's identity
    # policies only; IAM also requires the boundary's Allow (IAM User Guide, "Permissions boundaries for IAM
    # entities"), so a request moto permits is refused when the caller's role has a boundary that does not allow it.
    from moto.iam.access_control import IAMRequestBase

    original_check = IAMRequestBase.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        original_check(self, resource)
        role = getattr(self._access_key, "_owner_role_name", None)
        if not role or self._action == "sts:GetCallerIdentity" or _state.hooks is None:
            return
        account = self.account_id
        arn = next((str(r.arn) for r in _iam(account).get_roles() if r.name == role), "")
        boundary = principal_boundary(account, arn) if arn else None
        if boundary is not None and not _state.hooks.boundary_allows(boundary, self._action, resource):
            self._raise_access_denied()

    # --- exact resource ARNs for IAM checks (moto checks "*" for these services otherwise)
    from moto.ecr.responses import ECRResponse
    from moto.logs.responses import LogsResponse

    def ecr_resource(self: Any) -> str:
        name = _json_body_or_empty(self).get("repositoryName")
        return f"arn:aws:ecr:{self.region}:{self.current_account}:repository/{name}" if name else "*"

    def logs_resource(self: Any) -> str:
        body = _json_body_or_empty(self)
        group, stream = body.get("logGroupName"), body.get("logStreamName")
        if not group:
            return "*"
        arn = f"arn:aws:logs:{self.region}:{self.current_account}:log-group:{group}"
        return f"{arn}:log-stream:{stream}" if stream else arn

    # --- SageMaker Neo
    original_create = SageMakerResponse.create_compilation_job

    def create_compilation_job(self: Any) -> Any:
        role_arn = self._get_param("RoleArn") or ""
        if not role_exists(self.current_account, role_arn):
            raise SandboxApiError(
                "ValidationException", f"Could not assume role {role_arn}. Please ensure that it exists."
            )
        with _create_job_lock:  # the quota check and the job's start are one step, as concurrent creates race
            _hook().check_compilation_quota(self.current_account, self.region)
            result = original_create(self)
            name = self._get_param("CompilationJobName")
            _reset_new_compilation_job(self.current_account, self.region, name)
            _hook().compilation_job_created(self.current_account, self.region, name)
        return result

    def stop_compilation_job(self: Any) -> Any:
        _hook().stop_compilation_job(self.current_account, self.region, self._get_param("CompilationJobName"))
        return EmptyResult()

    # --- CodeBuild
    def update_project(self: Any) -> Any:
        return ActionResult({"project": update_codebuild_project(self.current_account, self.region, _json_body(self))})

    def start_build(self: Any) -> Any:
        return ActionResult({"build": _hook().start_build(self.current_account, self.region, _json_body(self))})

    def batch_get_builds(self: Any) -> Any:
        builds, missing = _hook().batch_get_builds(list(self._get_param("ids") or []))
        return ActionResult({"builds": builds, "buildsNotFound": missing})

    def stop_build(self: Any) -> Any:
        return ActionResult({"build": _hook().stop_build(self._get_param("id") or "")})

    def list_builds(self: Any) -> Any:
        return ActionResult({"ids": _hook().list_builds(None)})

    def list_builds_for_project(self: Any) -> Any:
        name = self._get_param("projectName") or ""
        if get_codebuild_project(self.current_account, self.region, name) is None:
            raise SandboxApiError(
                "ResourceNotFoundException",
                f"The provided project arn:aws:codebuild:{self.region}:{self.current_account}:project/"
                f"{name} does not exist",
            )
        return ActionResult({"ids": _hook().list_builds(name)})

    original_create_project = CodeBuildResponse.create_project

    def create_project(self: Any) -> Any:
        # CodeBuild needs no location for NO_SOURCE (the buildspec is inline); moto insists on one.
        body = _json_body(self)
        source = body.get("source") or {}
        if source.get("type") == "NO_SOURCE":
            if not str(source.get("buildspec") or "").strip():
                raise SandboxApiError(
                    "InvalidInputException", "Project source buildspec is required for NO_SOURCE projects"
                )
            if not source.get("location"):
                source = {**source, "location": "NO_SOURCE"}
                self.body = json.dumps({**body, "source": source})
        return original_create_project(self)

    # --- ECR's data plane: with a real registry, what the image calls answer comes from it
    ecr_original = {
        name: getattr(ECRResponse, name)
        for name in ("get_authorization_token", "describe_images", "batch_get_image", "list_images")
    }

    def _registry() -> Any:
        hooks = _state.hooks
        return hooks.ecr_registry() if hooks is not None else None

    def _ecr_repository(self: Any) -> str:
        name = str(self._get_param("repositoryName") or "")
        self.ecr_backend.describe_repositories(repository_names=[name])  # RepositoryNotFoundException
        return name

    def get_authorization_token(self: Any) -> Any:
        result = ecr_original["get_authorization_token"](self)
        registry = _registry()
        if registry is not None:
            data = result.result if isinstance(result, ActionResult) else {}
            for item in data.get("authorizationData", []) if isinstance(data, dict) else []:
                item["proxyEndpoint"] = registry.url
        return result

    def _image_ids(self: Any) -> list[dict[str, str]]:
        return list(self._get_param("imageIds") or [])

    def _matches(image_id: dict[str, str], digest: str, tags: list[str]) -> bool:
        if image_id.get("imageDigest") and image_id["imageDigest"] != digest:
            return False
        return not image_id.get("imageTag") or image_id["imageTag"] in tags

    def describe_images(self: Any) -> Any:
        registry = _registry()
        if registry is None:
            return ecr_original["describe_images"](self)
        from moto.ecr.exceptions import ImageNotFoundException

        from .registry import image_size

        repo = _ecr_repository(self)
        images = registry.images(repo)
        wanted = _image_ids(self)
        details = []
        for image_id in wanted or [{}]:
            found = [(m, tags) for m, tags in images if _matches(image_id, m.digest, tags)]
            if wanted and not found:
                raise ImageNotFoundException(
                    image_id="{" + ", ".join(f"{k}:'{v}'" for k, v in image_id.items()) + "}",
                    repository_name=repo,
                    registry_id=self.current_account,
                )
            for manifest, tags in found:
                detail = {
                    "registryId": self.current_account,
                    "repositoryName": repo,
                    "imageDigest": manifest.digest,
                    "imageTags": tags,
                    "imageSizeInBytes": image_size(manifest),
                    "imagePushedAt": registry.pushed_at(repo, manifest.digest),
                    "imageManifestMediaType": manifest.media_type,
                    "artifactMediaType": str((manifest.json().get("config") or {}).get("mediaType", "")),
                }
                if detail not in details:
                    details.append(detail)
        return ActionResult({"imageDetails": details})

    def batch_get_image(self: Any) -> Any:
        registry = _registry()
        if registry is None:
            return ecr_original["batch_get_image"](self)
        repo = _ecr_repository(self)
        images, failures = [], []
        for image_id in _image_ids(self):
            manifest = registry.manifest(repo, image_id.get("imageDigest") or image_id.get("imageTag") or "")
            if manifest is None or (image_id.get("imageDigest") and manifest.digest != image_id["imageDigest"]):
                failures.append(
                    {"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
                )
                continue
            images.append(
                {
                    "registryId": self.current_account,
                    "repositoryName": repo,
                    "imageId": {
                        "imageDigest": manifest.digest,
                        **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {}),
                    },
                    "imageManifest": manifest.body.decode(),
                    "imageManifestMediaType": manifest.media_type,
                }
            )
        return ActionResult({"images": images, "failures": failures})

    def list_images(self: Any) -> Any:
        registry = _registry()
        if registry is None:
            return ecr_original["list_images"](self)
        repo = _ecr_repository(self)
        ids = [{"imageDigest": m.digest, "imageTag": tag} for m, tags in registry.images(repo) for tag in tags]
        return ActionResult({"imageIds": ids})

    def get_download_url_for_layer(self: Any) -> Any:
        registry = _registry()
        digest = str(self._get_param("layerDigest") or "")
        if registry is None:
            raise SandboxApiError(
                "LayersNotFoundException",
                f"The specified layers {digest} could not be found (the sandbox's fallback builder registers "
                "manifests only; a Docker Engine and docker-registry give real layers)",
            )
        repo = _ecr_repository(self)
        url = registry.blob_url(repo, digest)
        if url is None:
            raise SandboxApiError(
                "LayersNotFoundException", f"The specified layers {digest} could not be found in the repository {repo}"
            )
        return ActionResult({"downloadUrl": url, "layerDigest": digest})

    # --- SageMaker hosting: the endpoint is the model's container really running (sandbox/endpoints.py)
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    original_create_endpoint = SageMakerResponse.create_endpoint
    original_delete_endpoint = SageMakerResponse.delete_endpoint

    def create_endpoint(self: Any) -> Any:
        name = self._get_param("EndpointName")
        existing = _sagemaker(self.current_account, self.region).endpoints.get(name)
        if existing is not None:  # moto would replace it; SageMaker refuses (API reference, CreateEndpoint)
            raise SandboxApiError("ValidationException", f'Cannot create already existing endpoint "{existing.arn}".')
        result = original_create_endpoint(self)
        _hook().endpoint_created(self.current_account, self.region, name)
        return result

    def delete_endpoint(self: Any) -> Any:
        result = original_delete_endpoint(self)
        _hook().endpoint_deleted(self.current_account, self.region, self._get_param("EndpointName"))
        return result

    def omitting_empty(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """moto answers an unset structure as ``{}`` (``VpcConfig``, ``DataCaptureConfig``); SageMaker omits it,
        and botocore's sagemaker model gives those structures required members, so ``{}`` is never AWS's."""

        def method(self: Any) -> Any:
            result = original(self)
            data = getattr(result, "result", None)
            if isinstance(data, dict):
                for key in [k for k, v in data.items() if v == {}]:
                    del data[key]
            return result

        method.__name__ = original.__name__
        return method

    def invoke_endpoint(self: Any) -> Any:
        name = self.path.split("/")[2] if self.path.count("/") >= 3 else self._get_param("EndpointName")
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        return _hook().invoke_endpoint(
            self.current_account,
            self.region,
            name,
            body,
            self.headers.get("Content-Type", ""),
            self.headers.get("Accept", ""),
        )

    # --- IAM eventual consistency: note each role policy change made through the API, and let a session
    # marked stale be judged by the documents from before the change.
    from moto.iam.access_control import AssumedRoleAccessKey

    def noting(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def method(self: Any) -> Any:
            role_name = self._get_param("RoleName")
            if role_name:
                _note_role_change(self.current_account, str(role_name))
            return original(self)

        method.__name__ = original.__name__
        return method

    original_collect = AssumedRoleAccessKey.collect_policies

    def collect_policies(self: Any) -> list[Any]:
        stale = _state.stale_sessions.get(getattr(self, "_access_key_id", ""))
        return list(stale) if stale is not None else list(original_collect(self))

    # --- S3 DeleteBucket takes the bucket's tags with it (a bucket made again under the name has no tag set:
    # GetBucketTagging answers NoSuchTagSet); moto 5 keeps them in its tagger, keyed by the bucket's ARN.
    from moto.s3.models import S3Backend

    original_delete_bucket = S3Backend.delete_bucket

    def delete_bucket(self: Any, bucket_name: str) -> Any:
        arn = self.get_bucket(bucket_name).arn
        deleted = original_delete_bucket(self, bucket_name)
        if deleted is not None:
            self.tagger.delete_all_tags_for_resource(arn)
        return deleted

    patches: list[tuple[type, str, Any]] = [
        (S3Backend, "delete_bucket", delete_bucket),
        (IamResponse, "put_role_policy", noting(IamResponse.put_role_policy)),
        (IamResponse, "delete_role_policy", noting(IamResponse.delete_role_policy)),
        (IamResponse, "attach_role_policy", noting(IamResponse.attach_role_policy)),
        (IamResponse, "detach_role_policy", noting(IamResponse.detach_role_policy)),
        (AssumedRoleAccessKey, "collect_policies", collect_policies),
        (ECRResponse, "get_authorization_token", get_authorization_token),
        (ECRResponse, "describe_images", describe_images),
        (ECRResponse, "batch_get_image", batch_get_image),
        (ECRResponse, "list_images", list_images),
        (ECRResponse, "get_download_url_for_layer", _guarded(get_download_url_for_layer)),
        (IamResponse, "simulate_principal_policy", _guarded(simulate_principal_policy)),
        (IamResponse, "simulate_custom_policy", _guarded(simulate_custom_policy)),
        (IAMRequestBase, "check_action_permitted", check_action_permitted),
        (ECRResponse, "_determine_resource", ecr_resource),
        (LogsResponse, "_determine_resource", logs_resource),
        (SageMakerResponse, "create_compilation_job", _guarded(create_compilation_job)),
        (SageMakerResponse, "stop_compilation_job", _guarded(stop_compilation_job)),
        (CodeBuildResponse, "create_project", _guarded(create_project)),
        (CodeBuildResponse, "update_project", _guarded(update_project)),
        (CodeBuildResponse, "start_build", _guarded(start_build)),
        (CodeBuildResponse, "batch_get_builds", _guarded(batch_get_builds)),
        (CodeBuildResponse, "stop_build", _guarded(stop_build)),
        (CodeBuildResponse, "list_builds", _guarded(list_builds)),
        (CodeBuildResponse, "list_builds_for_project", _guarded(list_builds_for_project)),
        (SageMakerResponse, "create_endpoint", _guarded(create_endpoint)),
        (SageMakerResponse, "describe_model", omitting_empty(SageMakerResponse.describe_model)),
        (SageMakerResponse, "describe_endpoint_config", omitting_empty(SageMakerResponse.describe_endpoint_config)),
        (SageMakerResponse, "describe_endpoint", omitting_empty(SageMakerResponse.describe_endpoint)),
        (SageMakerResponse, "delete_endpoint", _guarded(delete_endpoint)),
        (SageMakerRuntimeResponse, "invoke_endpoint", _guarded(invoke_endpoint)),
    ]
    for cls, name, method in patches:
        setattr(cls, name, method)
    _state.patched = True
