"""Helpers for the CodeBuild tests: create a project, run a build to the end, read its whole log."""

from __future__ import annotations

import functools
from typing import Any

from ncf_tui.sandbox.server import Sandbox
from tests.waits import wait_for


class Builds:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.cb = sb.client("codebuild")
        self.logs = sb.client("logs")

    def project(
        self,
        buildspec: str,
        *,
        variables: dict[str, str] | None = None,
        privileged: bool = True,
        source_type: str = "NO_SOURCE",
    ) -> str:
        variables = dict(variables or {})
        if "NEO_MODEL_S3_URI" in variables:  # the repository's buildspec: it builds FROM the Neo image
            variables.setdefault("NEO_BASE_IMAGE", neo_base_image(self.sb.region))
        env_vars = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()]
        name = self.sb.names.codebuild_project
        if self.cb.batch_get_projects(names=[name])["projects"]:  # a scenario may seed a hand-made project
            self.cb.delete_project(name=name)
        self.cb.create_project(
            name=self.sb.names.codebuild_project,
            source={
                "type": source_type,
                "buildspec": buildspec,
                **({"location": "repo"} if source_type != "NO_SOURCE" else {}),
            },
            artifacts={"type": "NO_ARTIFACTS"},
            serviceRole=self.sb.names.codebuild_role_arn,
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/amazonlinux2-x86_64-standard:3.0",
                "computeType": "BUILD_GENERAL1_SMALL",
                "privilegedMode": privileged,
                "environmentVariables": env_vars,
            },
        )
        return self.sb.names.codebuild_project

    def start(self, **kwargs: Any) -> str:
        return str(self.cb.start_build(projectName=self.sb.names.codebuild_project, **kwargs)["build"]["id"])

    def get(self, build_id: str) -> dict[str, Any]:
        return dict(self.cb.batch_get_builds(ids=[build_id])["builds"][0])

    def wait(self, build_id: str) -> dict[str, Any]:
        """The build once it is complete (BatchGetBuilds says so)."""
        return wait_for(
            lambda: (build := self.get(build_id))["buildComplete"] and build, f"build {build_id} to finish", every=0.1
        )

    def run(self, **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
        build = self.wait(self.start(**kwargs))
        return build, self.log(build)

    def log(self, build: dict[str, Any]) -> list[str]:
        """Every line of the build's log stream, in order, without the trailing newlines."""
        lines: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = self.logs.get_log_events(
                logGroupName=build["logs"]["groupName"], logStreamName=build["logs"]["streamName"], **kwargs
            )
            lines += [e["message"].rstrip("\n") for e in page["events"]]
            if page["nextForwardToken"] == token:
                return lines
            token = page["nextForwardToken"]

    @staticmethod
    def phases(build: dict[str, Any]) -> list[tuple[str, str | None]]:
        return [(p["phaseType"], p.get("phaseStatus")) for p in build["phases"]]


@functools.cache
def neo_base_image(region: str) -> str:
    """The Neo PyTorch inference image the engine would set as NEO_BASE_IMAGE (the sagemaker SDK's table)."""
    from ncf_tui.engine.neo import neo_inference_image

    image = neo_inference_image(region)
    assert image, f"the sagemaker SDK knows no Neo PyTorch image for {region}"
    return image
