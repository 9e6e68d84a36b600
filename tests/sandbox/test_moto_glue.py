"""The assumptions moto_glue makes about moto's private internals: these fail loudly when moto changes."""

from __future__ import annotations

import inspect
import json
import socket

import pytest

from ncf_tui.sandbox import moto_glue
from ncf_tui.sandbox.names import ACCOUNT_ID
from ncf_tui.sandbox.server import Sandbox


def test_moto_is_the_pinned_version() -> None:
    assert moto_glue.moto_version() == moto_glue.PINNED_MOTO_VERSION
    moto_glue.check_moto_version()


def test_the_private_names_the_glue_uses_still_exist() -> None:
    from moto.codebuild.models import CodeBuild, codebuild_backends
    from moto.codebuild.responses import CodeBuildResponse
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.base_backend import BackendDict
    from moto.iam.models import AccessKey, iam_backends
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.sagemaker.models import CompilationJob, sagemaker_backends
    from moto.sts.models import sts_backends

    assert hasattr(BackendDict, "reset")
    assert hasattr(ActionAuthenticatorMixin, "request_count")
    server_source = inspect.getsource(ThreadedMotoServer)
    for name in ("def _server_entry", "self._ip_address", "self._port", "self._server_ready_event", "make_server("):
        assert name in server_source, name
    assert "physical_resource_id" in dir(AccessKey)
    for attr in ("compilation_job_status", "failure_reason", "model_artifacts", "compilation_end_time"):
        assert attr in inspect.getsource(CompilationJob.__init__), attr
    assert "project_metadata" in inspect.getsource(CodeBuild.__init__)
    assert "codebuild_projects" in inspect.getsource(type(codebuild_backends["123456789012"]["us-east-1"]).__init__)
    assert callable(CodeBuildResponse.create_project)
    for backends in (iam_backends, sagemaker_backends, sts_backends, codebuild_backends):
        assert isinstance(backends, BackendDict)


def test_patched_actions_are_served_methods(sandbox: Sandbox) -> None:
    from moto.codebuild.responses import CodeBuildResponse
    from moto.core.utils import method_names_from_class
    from moto.iam.responses import IamResponse
    from moto.sagemaker.responses import SageMakerResponse

    assert {"simulate_principal_policy", "simulate_custom_policy"} <= set(method_names_from_class(IamResponse))
    assert "stop_compilation_job" in method_names_from_class(SageMakerResponse)
    assert {"update_project", "start_build", "batch_get_builds", "stop_build"} <= set(
        method_names_from_class(CodeBuildResponse)
    )


def test_iam_is_enforced_while_a_sandbox_runs(sandbox: Sandbox) -> None:
    assert moto_glue.iam_enforced()


def test_principal_policies_gathers_inline_and_managed(sandbox: Sandbox) -> None:
    names = sandbox.names
    role = moto_glue.principal_policies(ACCOUNT_ID, names.codebuild_role_arn)
    assert [(p.id, p.type) for p in role] == [(names.codebuild_policy_name, "role")]
    assert json.loads(role[0].document)["Statement"]
    user = moto_glue.principal_policies(ACCOUNT_ID, names.admin_user_arn)
    assert [(p.id, p.type) for p in user] == [(names.admin_policy_name, "user-managed")]
    with pytest.raises(moto_glue.SandboxApiError) as err:
        moto_glue.principal_policies(ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:role/ghost")
    assert err.value.code == "NoSuchEntity"


def test_compilation_job_state_round_trips(sandbox: Sandbox) -> None:
    with pytest.raises(moto_glue.SandboxApiError) as err:
        moto_glue.describe_compilation_job(ACCOUNT_ID, sandbox.region, "ghost")
    assert err.value.code == "ResourceNotFound"


def test_a_busy_port_is_an_error_not_a_hang(sandbox: Sandbox) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = moto_glue.MotoServer("127.0.0.1", busy.getsockname()[1], lambda app: app)
        with pytest.raises(OSError, match="could not start"):
            server.start()
