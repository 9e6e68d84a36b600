"""container/Dockerfile and buildspec.yml, read as Docker and CodeBuild would read them."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from .container_kit import CONTAINER, REPO

DOCKERFILE = CONTAINER / "Dockerfile"
BUILDSPEC = REPO / "buildspec.yml"
FIVE_VARIABLES = ("AWS_DEFAULT_REGION", "AWS_ACCOUNT_ID", "IMAGE_REPO_NAME", "IMAGE_TAG", "NEO_MODEL_S3_URI")
# docs/CONTRACTS.md: the docker sub-commands (and their flags) the sandbox's builder implements.
DOCKER_FLAGS = {
    "login": {"--username", "--password-stdin"},
    "version": {"--format"},
    "build": {"--label", "--build-arg", "-t", "-f"},
    "tag": set(),
    "push": set(),
}
SECRET_WORDS = re.compile(r"AWS_SECRET|AWS_ACCESS_KEY|AWS_SESSION_TOKEN|PASSWORD|PRIVATE.KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=DOCKERFILE.open("rb"))
    return parser


def final_stage(instructions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def test_dockerfile_builds_from_the_neo_base_argument_and_runs_as_root(dockerfile: DockerfileParser) -> None:
    """FROM the build argument the buildspec fills (no default, so no Docker Hub image), its torch kept,
    and no USER: SageMaker expects containers to run as root (docs/AWS-FIDELITY.md)."""
    text = DOCKERFILE.read_text()
    assert not text.startswith("# syntax=")  # the BuildKit frontend image would come from Docker Hub
    froms = [ins["value"] for ins in dockerfile.structure if ins["instruction"] == "FROM"]
    assert froms == ["${BASE_IMAGE}"]
    args = [ins["value"] for ins in dockerfile.structure if ins["instruction"] == "ARG"]
    assert "BASE_IMAGE" in args  # declared without a default
    assert not any(ins["instruction"] == "USER" for ins in dockerfile.structure)
    runs = " ".join(ins["value"] for ins in dockerfile.structure if ins["instruction"] == "RUN")
    assert "import torch" in runs and "--index-url" not in runs
    requirements = (CONTAINER / "requirements.txt").read_text()
    assert not re.search(r"^torch\b", requirements, re.MULTILINE)  # the base's torch, no other


def test_the_server_parses_as_python_3_8() -> None:
    """AWS does not document the Neo image's Python (the SDK says py3): the server must run on 3.8 up."""
    import ast

    for path in [CONTAINER / "serve.py", *sorted((CONTAINER / "ncf_serve").glob("*.py"))]:
        source = path.read_text()
        ast.parse(source, str(path), feature_version=(3, 8))
        assert "strict=True" not in source and "removeprefix" not in source, path


def test_entrypoint_is_exec_form_so_docker_run_image_serve_works(dockerfile: DockerfileParser) -> None:
    final = final_stage(dockerfile.structure)
    entrypoint = [ins["value"] for ins in final if ins["instruction"] == "ENTRYPOINT"][-1]
    words = json.loads(entrypoint)  # exec form is a JSON array; shell form would not parse
    assert words[0] == "python"
    assert words[1] == "/opt/program/serve.py"
    # `docker run IMAGE serve` runs ENTRYPOINT + ["serve"]: the server's own parser must accept it
    import serve

    args = serve.parse_args([*words[2:], "serve"])
    assert args.command == "serve"
    assert args.model_dir == Path("/opt/ml/model")


def test_the_model_is_copied_to_opt_ml_model_and_labelled(dockerfile: DockerfileParser) -> None:
    final = final_stage(dockerfile.structure)
    copies = [ins["value"].split() for ins in final if ins["instruction"] == "COPY"]
    assert ["model/", "/opt/ml/model/"] in copies
    labels = " ".join(ins["value"] for ins in final if ins["instruction"] == "LABEL")
    assert "com.ncf-tui.model.variant=" in labels and "${MODEL_VARIANT}" in labels
    assert "com.ncf-tui.model.sha256=" in labels and "${MODEL_SHA256}" in labels


def test_no_secrets_and_no_aws_cli_in_the_image(dockerfile: DockerfileParser) -> None:
    text = DOCKERFILE.read_text()
    requirements = (CONTAINER / "requirements.txt").read_text()
    assert not SECRET_WORDS.search(text)
    for source in (text, requirements):
        assert not re.search(r"\bawscli\b|\baws-cli\b|\bboto3\b", source)
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
    assert not re.search(r"FROM\s+(docker\.io/|python:|library/)", text)


def test_copy_sources_are_what_the_buildspec_puts_in_the_context(dockerfile: DockerfileParser) -> None:
    """The context is container/ plus model/ (buildspec); every COPY source must be one of those."""
    ignore = (CONTAINER / ".dockerignore").read_text().split()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for ins in dockerfile.structure:
        if ins["instruction"] != "COPY" or "--from=" in ins["value"]:
            continue
        *sources, _target = ins["value"].split()
        for source in sources:
            name = source.rstrip("/")
            assert name in allowed, f"{source} is not let through .dockerignore"
            assert name == "model" or (CONTAINER / name).exists(), f"{source} is not in container/"
    spec = BUILDSPEC.read_text()
    assert 'tar -xzf build/neo-model.tar.gz -C "$BUILD_CONTEXT/model"' in spec
    assert 'cp -R container/. "$BUILD_CONTEXT/"' in spec


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed")
def test_hadolint_passes() -> None:
    result = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def buildspec() -> dict[str, Any]:
    return dict(yaml.safe_load(BUILDSPEC.read_text()))


def all_commands(spec: dict[str, Any]) -> list[str]:
    return [c for phase in spec["phases"].values() for c in phase.get("commands", [])]


def test_buildspec_shape(buildspec: dict[str, Any]) -> None:
    assert str(buildspec["version"]) == "0.2"
    assert set(buildspec["phases"]) == {"pre_build", "build", "post_build"}
    for phase in buildspec["phases"].values():
        assert isinstance(phase["commands"], list) and phase["commands"]
        assert all(isinstance(c, str) for c in phase["commands"])
    assert buildspec["env"]["shell"] == "bash"
    assert "artifacts" not in buildspec  # the seed's project has none


def test_buildspec_uses_the_five_variables(buildspec: dict[str, Any]) -> None:
    text = "\n".join(all_commands(buildspec))
    for name in FIVE_VARIABLES:
        assert f"${name}" in text or f"${{{name}" in text, name
    assert "#s3://" in text  # an s3:// prefix on NEO_MODEL_S3_URI is stripped


PHASE_COMMANDS = [
    pytest.param(command, id=f"{phase}-{n}")
    for phase, body in yaml.safe_load(BUILDSPEC.read_text())["phases"].items()
    for n, command in enumerate(body.get("commands", []))
]


@pytest.mark.parametrize("command", PHASE_COMMANDS)
def test_every_command_is_valid_bash(command: str) -> None:
    result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_errors_are_never_swallowed(buildspec: dict[str, Any]) -> None:
    for command in all_commands(buildspec):
        assert "|| true" not in command and "|| :" not in command
        if "\n" in command.strip() or "|" in command:
            assert command.lstrip().startswith("set -euo pipefail"), command


def test_only_the_docker_commands_the_contract_lists(buildspec: dict[str, Any]) -> None:
    seen = set()
    for command in all_commands(buildspec):
        for segment in re.split(r"[|;\n]|\$\(", command):
            words = shlex.split(segment.strip().rstrip(")"), posix=True) if "docker" in segment else []
            if not words or words[0] != "docker":
                continue
            sub = words[1]
            assert sub in DOCKER_FLAGS, sub
            seen.add(sub)
            flags = {w.split("=")[0] for w in words[2:] if w.startswith("-")}
            assert flags <= DOCKER_FLAGS[sub], (sub, flags)
    assert seen == set(DOCKER_FLAGS)


def test_the_parsed_lines_have_the_contract_wording(buildspec: dict[str, Any]) -> None:
    text = "\n".join(all_commands(buildspec))
    assert 'echo "NCF-TUI: model-sha256 $MODEL_SHA256 $MODEL_FILE"' in text
    assert "for name in model.pth compiled.pt; do" in text  # the compiled model by its documented names
    assert 'echo "NCF-TUI: image-uri $IMAGE_URI"' in text
    assert 'echo "NCF-TUI: image-digest $digest"' in text
    assert 'echo "NCF-TUI: docker-server $server"' in text
    assert 'IMAGE_URI="$REGISTRY/$IMAGE_REPO_NAME:$IMAGE_TAG"' in text
    # the registry is the one ECR names (proxyEndpoint), never a domain built here (China: .amazonaws.com.cn)
    assert "authorizationData[0].proxyEndpoint" in text
    assert "amazonaws.com" not in text
    assert '--build-arg BASE_IMAGE="$NEO_BASE_IMAGE"' in text
    assert 'docker login --username AWS --password-stdin "$BASE_REGISTRY"' in text


def test_buildspec_holds_no_secrets() -> None:
    """Credentials come from the build role; the registry password only ever goes through stdin."""
    text = BUILDSPEC.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|--password(?!-stdin)", text)
    assert "get-login-password" in text and "--password-stdin" in text
