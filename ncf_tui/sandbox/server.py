"""The embedded local AWS: moto on 127.0.0.1 plus the behaviour this product needs that moto lacks.

`Sandbox` starts moto's threaded server in-process on a free port, turns IAM enforcement on,
seeds the demo account and routes SimulatePrincipalPolicy, Neo compilation jobs and CodeBuild
builds to real workers. The engine never sees this class: it gets `endpoint_url`, `region` and
`credentials`, exactly what it would get for real AWS.

moto keeps its state in process-wide globals, so only one Sandbox may run per process.
`reset()` brings the seeded account back in milliseconds, which lets a test session share one
server while every test starts from a fresh account.
"""

from __future__ import annotations

import secrets
import shutil
import string
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..build_source import source_root
from . import moto_glue
from .faults import INTERNAL_USER_AGENT, FaultInjector
from .names import DEFAULT_REGION, SandboxNames
from .neo import NeoWorker, neo_seconds_from_env
from .registry import LocalRegistry
from .scenarios import DEFAULT_NEO_JOB_NAME, Scenario, get_scenario
from .seed import seed_account

_running_lock = threading.Lock()
_running: list[Sandbox] = []  # at most one: moto's state is process-wide


def _random_key(prefix: str, length: int, alphabet: str) -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length - len(prefix)))


@dataclass
class DockerSetup:
    """Which docker the sandbox's CodeBuild runs: "real" (a Docker Engine, with `registry` as ECR's data
    plane) or "fallback" (the sandbox's own builder); `reason` is said in every build log."""

    mode: str = "fallback"
    reason: str = "not started"
    real_cli: str = ""
    server_version: str = ""
    registry: LocalRegistry | None = None


class Sandbox:
    """An embedded local AWS account for --sandbox and the tests; use it as a context manager."""

    def __init__(
        self,
        scenario: str | Scenario | None = None,
        *,
        region: str = DEFAULT_REGION,
        port: int = 0,
        host: str = "127.0.0.1",
        neo_seconds: float | None = None,
        source_dir: Path | None = None,
        docker: str | None = None,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else get_scenario(scenario)
        self.names = SandboxNames(region=region)
        self.region = region
        self.host = host
        self.port = port
        self.neo_seconds = neo_seconds_from_env() if neo_seconds is None else neo_seconds
        self.source_dir = Path(source_dir) if source_dir is not None else source_root()
        self._access_key_id = _random_key("AKIA", 20, string.ascii_uppercase + string.digits)
        self._secret = _random_key("", 40, string.ascii_letters + string.digits)
        self._server: moto_glue.MotoServer | None = None
        self._faults: FaultInjector | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._boto_session: Any = None
        self.endpoint_url = ""
        self.docker_request = docker  # None: $NCF_SANDBOX_DOCKER, else auto
        self.docker = DockerSetup()
        self.neo = NeoWorker(
            lambda creds: self.internal_client("s3", creds),
            self.neo_seconds,
            model_file=lambda: self.scenario.neo_model_file,
        )
        self.quota_refusals = {"neo": 0, "build": 0}
        from .codebuild import BuildRunner

        self.builds = BuildRunner(self)
        from .endpoints import EndpointHost

        self.endpoints = EndpointHost(self)

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        moto_glue.check_moto_version()
        with _running_lock:
            if _running:
                raise RuntimeError(
                    "a sandbox is already running in this process (moto's state is process-wide); "
                    "reuse it or close it first"
                )
            _running.append(self)
        try:
            moto_glue.enforce_iam()
            self._start_docker(self.docker_request)
            self._seed()
            moto_glue.install_hooks(_Hooks(self))

            def wrap(app: Any) -> Any:
                self._faults = FaultInjector(app, self.scenario)
                self._faults.no_list_keys = frozenset({self._access_key_id})
                return self._faults

            self._server = moto_glue.MotoServer(self.host, self.port, wrap)
            host, port = self._server.start()
            self.port = port
            self.endpoint_url = f"http://{host}:{port}"
            self._seed_project()
        except BaseException:
            self._stop_docker()
            with _running_lock:
                _running.remove(self)
            raise
        return self

    def _start_docker(self, request: str | None) -> None:
        from .docker_engine import resolve_mode

        mode, found, reason = resolve_mode(request)
        setup = DockerSetup(mode, reason, shutil.which("docker") or "", found.server_version if found else "")
        if mode == "real":
            from .docker_engine import requested_mode
            from .registry import RegistryUnavailable

            try:
                setup.registry = LocalRegistry(self.host).start()
            except RegistryUnavailable as exc:
                if requested_mode(request) == "real":
                    raise ValueError(f"the sandbox's registry did not start: {exc}") from None
                setup = DockerSetup("fallback", f"a Docker Engine answers but the registry did not start: {exc}")
            else:
                setup.reason = f"{reason}; ECR's data plane is docker-registry at {setup.registry.url}"
        self.docker = setup

    def _stop_docker(self) -> None:
        if self.docker.registry is not None:
            self.docker.registry.stop()
        self.docker = DockerSetup()

    def use_docker(self, request: str) -> DockerSetup:
        """Switch between the real engine and the fallback builder on a running sandbox (tests)."""
        self.builds.shutdown()
        self._stop_docker()
        self._start_docker(request)
        return self.docker

    def smoke_run(self, image: str, pair: tuple[int, int]) -> dict[str, Any] | None:
        """Run a pushed image as SageMaker hosting would (real engine only; None without one)."""
        if self.docker.mode != "real":
            return None
        from .docker_engine import smoke_run

        return smoke_run(image, pair, lambda _line: None).to_dict()

    def close(self) -> None:
        self.neo.shutdown()
        self.builds.close()
        self.endpoints.shutdown()
        if self._server is not None:
            self._server.stop()
            self._server = None
        moto_glue.install_hooks(None)
        self._stop_docker()
        with _running_lock:
            if self in _running:
                _running.remove(self)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def reset(self, scenario: str | Scenario | None = None) -> None:
        """Stop every job and build and restore the freshly seeded account (optionally another scenario)."""
        if scenario is not None:
            self.scenario = scenario if isinstance(scenario, Scenario) else get_scenario(scenario)
        self.neo.shutdown()
        self.builds.shutdown()
        self.endpoints.shutdown()
        if self.docker.registry is not None:
            self.docker.registry.wipe()
        self.quota_refusals = {"neo": 0, "build": 0}
        self._seed()
        if self._faults is not None:
            self._faults.reset(self.scenario)
        if self._server is not None:
            self._seed_project()

    def _seed_project(self) -> None:
        """A scenario whose project is already there (as if made by hand in the console)."""
        if self.scenario.privileged_mode:
            return
        d = self.project_defaults()
        self.internal_client("codebuild").create_project(
            name=d["name"],
            source={"type": "S3", "location": f"{d['bucket']}/{d['prefix']}/source/ncf-tui-source.zip"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": d["image"],
                "computeType": d["computeType"],
                "privilegedMode": False,
                "environmentVariables": [
                    {"name": k, "value": v, "type": "PLAINTEXT"} for k, v in self.suggested_settings().items()
                ],
            },
            serviceRole=d["serviceRole"],
        )

    def _seed(self) -> None:
        moto_glue.reset_all_backends()
        seed_account(self.names, self.scenario, self._access_key_id, self._secret)

    # ------------------------------------------------------------------------------ what callers use

    @property
    def credentials(self) -> dict[str, str]:
        """The admin caller's credentials, as boto3 keyword arguments."""
        return {"aws_access_key_id": self._access_key_id, "aws_secret_access_key": self._secret}

    def env(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK or the aws CLI at this sandbox as the admin."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self._access_key_id,
            "AWS_SECRET_ACCESS_KEY": self._secret,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def export_lines(self) -> list[str]:
        return [f"export {k}={v}" for k, v in self.env().items()]

    def client(self, service: str, **config: Any) -> Any:
        """A boto3 client for `service` as the admin caller (faults apply, as to the product)."""
        from botocore.config import Config

        with self._clients_lock:
            return self._session().client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(**config) if config else None,
                **self.credentials,
            )

    def _session(self) -> Any:
        """One boto3 session for every client the sandbox makes (under `_clients_lock`: making clients is not
        thread-safe), so botocore parses each service's model once instead of once per client."""
        import boto3

        if self._boto_session is None:
            self._boto_session = boto3.session.Session()
        return self._boto_session

    def internal_client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        """A client for the sandbox's own workers: never faulted, retried, cached for admin calls."""
        from botocore.config import Config

        cfg = Config(user_agent_extra=INTERNAL_USER_AGENT, retries={"max_attempts": 3, "mode": "standard"})
        with self._clients_lock:
            if credentials is not None:
                return self._session().client(
                    service, endpoint_url=self.endpoint_url, region_name=self.region, config=cfg, **credentials
                )
            if service not in self._clients:
                self._clients[service] = self._session().client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=cfg,
                    **self.credentials,
                )
            return self._clients[service]

    def suggested_settings(self) -> dict[str, str]:
        """The five CodeBuild variables a user of this account would start from (scenario applied)."""
        suffix = self.scenario.model_uri_suffix or f"compilation-output/{DEFAULT_NEO_JOB_NAME}"
        return {
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCOUNT_ID": self.names.account_id,
            "IMAGE_REPO_NAME": self.names.ecr_repo,
            "IMAGE_TAG": self.names.image_tag,
            "NEO_MODEL_S3_URI": f"{self.names.bucket}/{self.names.prefix}/{suffix}",
        }

    def user_answers(self) -> dict[str, str]:
        """Every setting a user of this account would have answered: the five variables and the rest
        (project, roles, bucket, prefix), scenario applied. The one place front ends read them from."""
        d = self.project_defaults()
        if self.scenario.empty_account:  # a newcomer has no bucket, roles or prefix to answer with
            return {**self.suggested_settings(), "project_name": d["name"]}
        return {
            **self.suggested_settings(),
            "project_name": d["name"],
            "service_role": d["serviceRole"],
            "bucket": d["bucket"],
            "prefix": d["prefix"],
            "sagemaker_role": d["sagemakerRoleArn"],
        }

    def project_defaults(self) -> dict[str, Any]:
        """What the CodeBuild project should be created with in this account (scenario applied)."""
        return {
            "name": self.names.codebuild_project,
            "serviceRole": self.names.codebuild_role_arn,
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:3.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": self.scenario.privileged_mode,
            "sagemakerRoleArn": self.names.sagemaker_role_arn,
            "bucket": self.names.bucket,
            "prefix": self.names.prefix,
        }

    @property
    def fault_counts(self) -> dict[str, int]:
        """How often each fault struck since the last reset (for tests and benches): calls throttled, log
        reads dropped or answered 5xx, HEADs answered 403, creates refused by a quota, builds that ran with
        a role's policy from before its last change."""
        f = self._faults
        return {
            "throttled": f.throttled if f else 0,
            "dropped": f.dropped if f else 0,
            "logs_5xx": f.logs_5xx if f else 0,
            "head_403": f.head_403 if f else 0,
            "neo_quota": self.quota_refusals["neo"],
            "build_quota": self.quota_refusals["build"],
            "iam_stale": self.builds.stale_policy_builds,
            "logs_lagged": self.builds.lagged_lines,
        }


class _Hooks:
    """Routes what moto_glue intercepts to the sandbox's workers and the policy evaluator."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sb = sandbox

    def simulate(
        self,
        policies: list[moto_glue.PrincipalPolicy],
        actions: list[str],
        resources: list[str] | None,
        context: list[dict[str, Any]] | None,
        max_items: int | None,
        marker: str | None,
        boundary: list[moto_glue.PrincipalPolicy] | None = None,
    ) -> dict[str, Any]:
        from .policy import InvalidInputError, PolicyError, SourcePolicy, simulate_response

        # AWS reports every identity policy (inline or attached) with SourcePolicyType "IAM Policy".
        sources = [SourcePolicy(p.id, p.document) for p in policies]
        bounds = [SourcePolicy(p.id, p.document) for p in boundary or []]
        try:
            return simulate_response(
                sources,
                actions,
                resources or None,
                context or (),
                max_items=max_items,
                marker=marker,
                boundary=bounds,
            )
        except PolicyError as exc:
            raise moto_glue.SandboxApiError("MalformedPolicyDocument", str(exc)) from None
        except InvalidInputError as exc:
            raise moto_glue.SandboxApiError("InvalidInput", str(exc)) from None

    def boundary_allows(self, boundary: moto_glue.PrincipalPolicy, action: str, resource: str) -> bool:
        """Whether the caller's permissions boundary allows a real request (moto checked its policies)."""
        from .policy import InvalidInputError, PolicyError, SourcePolicy, evaluate

        try:
            return evaluate([SourcePolicy(boundary.id, boundary.document)], action, resource).decision == "allowed"
        except (InvalidInputError, PolicyError):
            return True  # a request the evaluator cannot express is left to moto's verdict

    def compilation_job_created(self, account_id: str, region: str, job_name: str) -> None:
        self._sb.neo.created(account_id, region, job_name)

    def check_compilation_quota(self, account_id: str, region: str) -> None:
        limit = self._sb.scenario.neo_concurrent_jobs
        if limit is None:
            return
        running = self._sb.neo.active(account_id, region)
        if running >= limit:
            self._sb.quota_refusals["neo"] += 1
            # The shape of SageMaker's account-level limit messages (as for training jobs and endpoints).
            raise moto_glue.SandboxApiError(
                "ResourceLimitExceeded",
                f"The account-level service limit 'Number of concurrent compilation jobs' is {limit} Jobs, "
                f"with current utilization of {running} Jobs and a request delta of 1 Jobs. "
                "Please use AWS Service Quotas to request an increase for this quota.",
            )

    def stop_compilation_job(self, account_id: str, region: str, job_name: str) -> None:
        self._sb.neo.stop(account_id, region, job_name)

    def start_build(self, account_id: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._sb.builds.start(account_id, region, params)

    def batch_get_builds(self, ids: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        return self._sb.builds.batch_get(ids)

    def stop_build(self, build_id: str) -> dict[str, Any]:
        return self._sb.builds.stop(build_id)

    def list_builds(self, project: str | None) -> list[str]:
        return self._sb.builds.list_ids(project)

    def ecr_registry(self) -> LocalRegistry | None:
        return self._sb.docker.registry if self._sb.docker.mode == "real" else None

    def endpoint_created(self, account_id: str, region: str, name: str) -> None:
        self._sb.endpoints.created(account_id, region, name)

    def endpoint_deleted(self, account_id: str, region: str, name: str) -> None:
        self._sb.endpoints.deleted(account_id, region, name)

    def invoke_endpoint(
        self, account_id: str, region: str, name: str, body: bytes, content_type: str, accept: str
    ) -> tuple[int, dict[str, str], bytes]:
        return self._sb.endpoints.invoke(account_id, region, name, body, content_type, accept)
