"""The sandbox's `docker`, run as a real subprocess against the sandbox's moto server (IAM enforced).

The image's server in the smoke test is the repository's own `container/serve.py` with a real model
archive from `export_variants`; ECR answers come from moto over HTTP with the build role's credentials.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ncf_tui.engine.artifact import extract_archive
from ncf_tui.sandbox.docker_builder import BANNER, NO_DAEMON
from ncf_tui.sandbox.docker_builder.dockerfile import DockerfileError, expand, parse, split_words
from ncf_tui.sandbox.docker_builder.ignore import DockerIgnore

if TYPE_CHECKING:
    from ncf_tui.sandbox.server import Sandbox

REPO = Path(__file__).resolve().parents[2]
SERVER_DIR = REPO / "container"
pytestmark = pytest.mark.skipif(
    not (SERVER_DIR / "serve.py").is_file(),
    reason="container/serve.py (the image's server) is not in the tree",
)

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim AS deps
ARG SERVER_DIR=container
COPY ${SERVER_DIR}/ /build/server/
RUN pip install --no-cache-dir torch

FROM python:${PYTHON_VERSION}-slim
ARG MODEL_SRC=model
ENV PROGRAM=/opt/program \\
    SAGEMAKER_BIND_TO_PORT=8080
LABEL org.opencontainers.image.title="ncf recommender" stage=runtime
LABEL model.source=${MODEL_SRC}
COPY --from=deps /build/server/ $PROGRAM/
COPY ${MODEL_SRC}/ /opt/ml/model/
WORKDIR $PROGRAM
EXPOSE 8080
ENTRYPOINT ["python", "/opt/program/serve.py"]
CMD ["serve"]
"""


# ---------------------------------------------------------------------------------------------- helpers


def docker(
    *args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the builder exactly as the CodeBuild shim does: `python -m ncf_tui.sandbox.docker_builder ...`."""
    return subprocess.run(
        [sys.executable, "-m", "ncf_tui.sandbox.docker_builder", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or REPO,
        timeout=240,
        check=False,
    )


def base_env(state: Path, aws: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NCF_SANDBOX_"))}
    env.update(aws)
    env["NCF_SANDBOX_DOCKER_STATE"] = str(state)
    env["PYTHONPATH"] = str(REPO)
    return env


def role_env(sandbox: Sandbox) -> dict[str, str]:
    """The CodeBuild service role's credentials, as the build gets them."""
    from ncf_tui.sandbox.moto_glue import assume_role_credentials

    creds = assume_role_credentials(
        sandbox.names.account_id, sandbox.region, sandbox.names.codebuild_role_arn, "AWSCodeBuild-test"
    )
    return {
        "AWS_ENDPOINT_URL": sandbox.endpoint_url,
        "AWS_DEFAULT_REGION": sandbox.region,
        "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": creds["aws_session_token"],
    }


def registry(sandbox: Sandbox) -> str:
    return f"{sandbox.names.account_id}.dkr.ecr.{sandbox.region}.amazonaws.com"


def login_password(sandbox: Sandbox, aws: dict[str, str]) -> str:
    """What `aws ecr get-login-password` prints for these credentials."""
    import boto3

    client = boto3.client(
        "ecr",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        region_name=sandbox.region,
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=aws.get("AWS_SESSION_TOKEN"),
    )
    token = client.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().partition(":")[2]


def make_context(root: Path, model_dir: Path, dockerfile: str = DOCKERFILE) -> Path:
    """A build context like the CodeBuild workspace: the container's server, the model, a Dockerfile."""
    context = root / "context"
    shutil.copytree(SERVER_DIR, context / "container", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(model_dir, context / "model")
    (context / "model" / "NOTES.local").write_text("left out by .dockerignore\n")
    (context / ".dockerignore").write_text("**/__pycache__\n*.local\nmodel/*.local\n")
    (context / "Dockerfile").write_text(dockerfile)
    return context


def blob_files(state: Path, digest: str) -> dict[str, bytes]:
    """The regular files of a layer blob in the builder's store."""
    data = (state / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model archive from the engine, unpacked as buildspec.yml unpacks it."""
    from ncf_tui.engine.variants import export_variants

    out = tmp_path_factory.mktemp("variants")
    archive = export_variants(out_dir=out, names=("full_manual_norm",))["full_manual_norm"]
    target = out / "unpacked"
    target.mkdir()
    with tarfile.open(archive) as tar:
        extract_archive(tar, target)
    assert (target / "model.pth").is_file()
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> dict[str, Any]:
    """One successful build (with its output), shared by the push tests through copies of its state."""
    root = tmp_path_factory.mktemp("built")
    context = make_context(root, model_dir)
    state = root / "state"
    env = base_env(state, {})
    result = docker(
        "build", "--label", "ncf-tui.model-sha256=abc123", "--build-arg", "UNUSED=1",
        "-t", "ncf-recommender:latest", str(context), env=env,
    )  # fmt: skip
    return {"result": result, "state": state, "context": context}


@pytest.fixture
def state_copy(built: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the built image's state, so each test logs in and pushes on its own."""
    assert built["result"].returncode == 0, built["result"].stderr
    target = tmp_path / "state"
    shutil.copytree(built["state"], target)
    return target


@pytest.fixture
def build_role(sandbox: Sandbox) -> Iterator[dict[str, str]]:
    yield role_env(sandbox)


# --------------------------------------------------------------------------------------- command line


def test_unprivileged_build_fails_like_docker_without_a_daemon(tmp_path: Path) -> None:
    env = base_env(tmp_path / "state", {}) | {"NCF_SANDBOX_PRIVILEGED": "0"}
    first = docker("build", "-t", "x:1", str(tmp_path), env=env)
    assert first.returncode == 1
    lines = first.stderr.splitlines()
    assert lines[0] == BANNER  # the log says who answers, before anything else
    assert lines[-1] == NO_DAEMON
    for args in (("login", "--username", "AWS", "--password-stdin", "r"), ("push", "x:1"), ("tag", "a", "b")):
        again = docker(*args, env=env, stdin="t")
        assert again.returncode == 1
        assert again.stderr.strip() == NO_DAEMON  # banner once per state directory


def test_unknown_subcommand_and_flag_exit_125(tmp_path: Path) -> None:
    env = base_env(tmp_path / "state", {})
    unknown = docker("run", "ncf", env=env)
    assert unknown.returncode == 125
    assert "docker: 'run' is not a docker command." in unknown.stderr
    flag = docker("build", "--squash", "-t", "x", ".", env=env)
    assert flag.returncode == 125
    assert "unknown flag: --squash\nSee 'docker build --help'." in flag.stderr
    missing = docker("build", "-t", env=env)
    assert missing.returncode == 125
    assert "flag needs an argument: 't' in -t" in missing.stderr
    arity = docker("tag", "only-one", env=env)
    assert arity.returncode == 1
    assert '"docker tag" requires exactly 2 arguments.' in arity.stderr
    upper = docker("build", "-t", "NCF:latest", ".", env=env)
    assert upper.returncode == 125
    assert "must be lowercase" in upper.stderr


# -------------------------------------------------------------------------------------------- login


def test_login_with_the_roles_ecr_token_succeeds(sandbox: Sandbox, build_role: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    password = login_password(sandbox, build_role)
    result = docker(
        "login", "--username", "AWS", "--password-stdin", registry(sandbox),
        env=base_env(state, build_role), stdin=password + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Login Succeeded"
    logins = json.loads((state / "logins.json").read_text())
    assert logins[registry(sandbox)]["token_sha256"] == hashlib.sha256(password.encode()).hexdigest()
    assert password not in (state / "logins.json").read_text()  # never the token itself


def test_login_with_a_wrong_token_is_denied(sandbox: Sandbox, build_role: dict[str, str], tmp_path: Path) -> None:
    result = docker(
        "login", "--username", "AWS", "--password-stdin", registry(sandbox),
        env=base_env(tmp_path / "state", build_role), stdin="not-the-token\n",
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        f'Error response from daemon: Get "https://{registry(sandbox)}/v2/": denied: '
        "Your authorization token has expired. Reauthenticate and try again."
    ) in result.stderr
    assert not (tmp_path / "state" / "logins.json").exists()


# -------------------------------------------------------------------------------------------- build


def test_build_checks_smoke_tests_and_records_the_image(built: dict[str, Any]) -> None:
    result, state, context = built["result"], built["state"], built["context"]
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert err.splitlines()[0] == BANNER
    assert "#1 [internal] load build definition from Dockerfile" in err
    assert "[deps 1/3] FROM docker.io/library/python:3.11-slim" in err  # global ARG in FROM
    assert "[stage-1 2/4] COPY --from=deps /build/server/ $PROGRAM/" in err
    assert "GET /ping -> 200" in err
    invocation = next(line for line in err.splitlines() if "POST /invocations" in line)
    score = json.loads(invocation.split("-> 200 ", 1)[1])["score"]
    assert 0.0 <= score <= 1.0
    assert "server stopped with SIGTERM" in err
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in err
    image_id = result.stdout.split("Successfully built ")[1].split()[0]
    assert "Successfully tagged ncf-recommender:latest" in result.stdout

    env = base_env(state, {})
    inspect = docker("image", "inspect", "ncf-recommender", env=env)
    assert inspect.returncode == 0, inspect.stderr
    inspected = json.loads(inspect.stdout)[0]
    full_id = inspected["Id"]
    assert inspected["Config"]["Labels"] == {
        "org.opencontainers.image.title": "ncf recommender",
        "stage": "runtime",
        "model.source": "model",  # ARG substituted in LABEL
        "ncf-tui.model-sha256": "abc123",  # --label
    }
    assert full_id.removeprefix("sha256:").startswith(image_id)
    config = json.loads((state / "blobs" / "sha256" / full_id.removeprefix("sha256:")).read_bytes())
    assert hashlib.sha256((state / "blobs" / "sha256" / full_id.removeprefix("sha256:")).read_bytes()).hexdigest() == (
        full_id.removeprefix("sha256:")
    )
    assert config["config"]["Entrypoint"] == ["python", "/opt/program/serve.py"]
    assert "PROGRAM=/opt/program" in config["config"]["Env"]
    assert config["config"]["WorkingDir"] == "/opt/program"

    # One layer per COPY of the final stage, made of the real files (minus .dockerignore's).
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(diff_ids) == 2
    server_files, model_files = (blob_files(state, d) for d in diff_ids)
    assert server_files["opt/program/serve.py"] == (context / "container" / "serve.py").read_bytes()
    assert not any("__pycache__" in name for name in server_files)
    assert model_files["opt/ml/model/model.pth"] == (context / "model" / "model.pth").read_bytes()
    assert "opt/ml/model/NOTES.local" not in model_files

    before_push = docker("image", "inspect", "ncf-recommender:latest", env=env)
    assert before_push.returncode == 0
    assert json.loads(before_push.stdout)[0]["RepoDigests"] == []


def test_build_is_reproducible(built: dict[str, Any], tmp_path: Path) -> None:
    """The same context and flags give the same image id, from a fresh state directory."""
    first = built["result"].stdout.split("Successfully built ")[1].split()[0]
    again = docker(
        "build", "--label", "ncf-tui.model-sha256=abc123", "-t", "ncf-recommender:again",
        str(built["context"]), env=base_env(tmp_path / "state", {}),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("Successfully built ")[1].split()[0] == first


@pytest.mark.parametrize(
    ("copy_line", "stat_path"),
    [
        ("COPY model/model.pt /opt/ml/model/", "model/model.pt"),  # a typo
        ("COPY model/NOTES.local /opt/ml/model/", "model/NOTES.local"),  # excluded by .dockerignore
    ],
)
def test_missing_copy_source_fails_like_docker(tmp_path: Path, model_dir: Path, copy_line: str, stat_path: str) -> None:
    dockerfile = f"FROM python:3.11-slim\nCOPY container/ /opt/program/\n{copy_line}\n"
    context = make_context(tmp_path, model_dir, dockerfile)
    env = base_env(tmp_path / "state", {})
    result = docker("build", "-t", "ncf:broken", str(context), env=env)
    assert result.returncode == 1
    message = (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        f"stat {stat_path}: file does not exist"
    )
    assert re.search(rf"^#\d+ ERROR: {re.escape(message)}$", result.stderr, re.MULTILINE)
    assert result.stderr.rstrip().endswith(f"ERROR: failed to solve: {message}")
    assert "Dockerfile:3" in result.stderr
    assert "smoke test" not in result.stderr  # the build stopped at the failing step
    inspect = docker("image", "inspect", "ncf:broken", env=env)
    assert inspect.returncode == 1
    assert "No such image: ncf:broken" in inspect.stderr


def test_smoke_test_failure_fails_the_build(tmp_path: Path, model_dir: Path) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(model_dir, broken)
    (broken / "model.pth").write_bytes(b"this is not a TorchScript archive")
    context = make_context(tmp_path, broken)
    env = base_env(tmp_path / "state", {})
    result = docker("build", "-t", "ncf:broken", str(context), env=env)
    assert result.returncode == 1
    assert "ERROR: failed to solve: smoke test failed:" in result.stderr
    assert "server: " in result.stderr  # the server's own words are in the log
    assert "Successfully" not in result.stdout
    assert docker("image", "inspect", "ncf:broken", env=env).returncode == 1


# --------------------------------------------------------------------------------------------- push


def _login(sandbox: Sandbox, env: dict[str, str], aws: dict[str, str]) -> None:
    result = docker(
        "login", "--username", "AWS", "--password-stdin", registry(sandbox),
        env=env, stdin=login_password(sandbox, aws),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_push_registers_the_image_in_ecr(
    sandbox: Sandbox, build_role: dict[str, str], state_copy: Path, built: dict[str, Any]
) -> None:
    env = base_env(state_copy, build_role)
    target = f"{registry(sandbox)}/{sandbox.names.ecr_repo}:latest"
    _login(sandbox, env, build_role)
    assert docker("tag", "ncf-recommender:latest", target, env=env).returncode == 0
    result = docker("push", target, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{registry(sandbox)}/{sandbox.names.ecr_repo}]"
    assert sum(line.endswith(": Pushed") for line in lines) == 2
    tag, _, rest = lines[-1].partition(": digest: ")
    digest, _, size = rest.partition(" size: ")
    assert tag == "latest"

    ecr = sandbox.client("ecr")
    details = ecr.describe_images(repositoryName=sandbox.names.ecr_repo)["imageDetails"]
    assert [(d["imageTags"], d["imageDigest"]) for d in details] == [(["latest"], digest)]
    image = ecr.batch_get_image(repositoryName=sandbox.names.ecr_repo, imageIds=[{"imageTag": "latest"}])["images"][0]
    manifest_text = image["imageManifest"]
    assert int(size) == len(manifest_text.encode())
    assert "sha256:" + hashlib.sha256(manifest_text.encode()).hexdigest() == digest
    manifest = json.loads(manifest_text)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    layer_digests = [layer["digest"] for layer in manifest["layers"]]
    # Each layer digest is the sha256 of a tar of the real files...
    for layer in manifest["layers"]:
        blob = (state_copy / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")).read_bytes()
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        assert len(blob) == layer["size"]
    model_files = blob_files(state_copy, layer_digests[1])
    assert model_files["opt/ml/model/model.pth"] == (built["context"] / "model" / "model.pth").read_bytes()
    # ...and ECR computed the same digests from the bytes it received.
    check = ecr.batch_check_layer_availability(
        repositoryName=sandbox.names.ecr_repo, layerDigests=[*layer_digests, manifest["config"]["digest"]]
    )
    assert check["failures"] == []
    assert {layer["layerDigest"] for layer in check["layers"]} == {
        *layer_digests,
        manifest["config"]["digest"],
    }

    inspect = docker("image", "inspect", target, env=env)
    assert json.loads(inspect.stdout)[0]["RepoDigests"] == [f"{registry(sandbox)}/{sandbox.names.ecr_repo}@{digest}"]

    again = docker("push", target, env=env)  # a registry push is idempotent
    assert again.returncode == 0, again.stderr
    assert sum(line.endswith(": Layer already exists") for line in again.stdout.splitlines()) == 2
    assert again.stdout.splitlines()[-1] == lines[-1]


def test_push_without_login_has_no_credentials(sandbox: Sandbox, build_role: dict[str, str], state_copy: Path) -> None:
    env = base_env(state_copy, build_role)
    target = f"{registry(sandbox)}/{sandbox.names.ecr_repo}:latest"
    assert docker("tag", "ncf-recommender:latest", target, env=env).returncode == 0
    result = docker("push", target, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == "no basic auth credentials"
    assert sandbox.client("ecr").describe_images(repositoryName=sandbox.names.ecr_repo)["imageDetails"] == []


def test_push_to_a_missing_repository_is_name_unknown(sandbox: Sandbox, state_copy: Path) -> None:
    # As the admin: the build role's policy names the one repository, so IAM would deny first (as in AWS).
    admin = sandbox.env()
    env = base_env(state_copy, admin)
    _login(sandbox, env, admin)
    target = f"{registry(sandbox)}/no-such-repo:latest"
    assert docker("tag", "ncf-recommender:latest", target, env=env).returncode == 0
    result = docker("push", target, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "name unknown: The repository with name 'no-such-repo' does not exist "
        f"in the registry with id '{sandbox.names.account_id}'"
    )


def test_push_denied_when_the_role_lacks_put_image(sandbox: Sandbox, state_copy: Path) -> None:
    sandbox.reset("missing-permissions")
    aws = role_env(sandbox)
    env = base_env(state_copy, aws)
    target = f"{registry(sandbox)}/{sandbox.names.ecr_repo}:v1"
    _login(sandbox, env, aws)
    assert docker("tag", "ncf-recommender:latest", target, env=env).returncode == 0
    result = docker("push", target, env=env)
    assert result.returncode == 1
    denial = result.stderr.strip().splitlines()[-1]
    assert denial.startswith("denied: User: arn:aws:sts::")
    assert "is not authorized to perform: ecr:PutImage on resource: " in denial
    assert f"repository/{sandbox.names.ecr_repo}" in denial
    assert sandbox.client("ecr").describe_images(repositoryName=sandbox.names.ecr_repo)["imageDetails"] == []


# ------------------------------------------------------------------------------ parser and templates


@pytest.mark.parametrize(
    ("text", "scope", "words"),
    [
        ("a b", {}, ["a", "b"]),
        ('"a b" c', {}, ["a b", "c"]),
        ("$X/ /dst/", {"X": "model dir"}, ["model dir/", "/dst/"]),  # an expansion is never re-split
        ("${X:-def} ${Y:-def}", {"X": "x"}, ["x", "def"]),
        ("${X:+alt} ${Y:+alt}", {"X": "x"}, ["alt", ""]),
        ("'$X' \\$X", {"X": "x"}, ["$X", "$X"]),
        ('k="v w" k2=$X', {"X": "1"}, ["k=v w", "k2=1"]),
    ],
)
def test_word_processing_matches_docker(text: str, scope: dict[str, str], words: list[str]) -> None:
    assert split_words(text, scope) == words


def test_parse_stages_and_errors() -> None:
    parsed = parse("ARG V=1\nFROM a:${V} AS one\nRUN x \\\n  && y\nFROM one\nCOPY --from=one /a /b\n")
    assert [s.base for s in parsed.stages] == ["a:1", "one"]
    assert parsed.stages[0].instructions[0].rest == "x && y"
    with pytest.raises(DockerfileError, match="unknown instruction: COPPY"):
        parse("FROM a\nCOPPY x y\n")
    assert expand("${MISSING}x", {}) == "x"


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.local"], "NOTES.local", True),
        (["*.local"], "model/NOTES.local", False),  # `*` does not cross directories
        (["**/*.local"], "model/NOTES.local", True),
        (["model"], "model/model.pth", True),  # a directory excludes what is below it
        (["model", "!model/model.pth"], "model/model.pth", False),  # the last match wins
        (["/model/*.pth"], "model/model.pth", True),  # leading slash ignored
        (["*", "!model/"], "model/stray.txt", False),  # an allow-listed directory brings its contents
        (["*", "!model/"], "notes.txt", True),
        (["*", "!model/", "**/*.pyc"], "model/x.pyc", True),
    ],
)
def test_dockerignore_rules(patterns: list[str], path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excluded(path) is excluded


def test_only_json_inspect_and_the_server_version(tmp_path: Path) -> None:
    """The Go-template engine is gone: `image inspect` prints JSON, `version` names this builder."""
    env = base_env(tmp_path / "state", {})
    assert docker("version", "--format", "{{.Server.Version}}", env=env).stdout.strip() == "ncf-tui-sandbox-builder"
    wrong = docker("version", "--format", "{{.Server.Os}}", env=env)
    assert wrong.returncode == 1 and "fills only" in wrong.stderr
    templated = docker("image", "inspect", "--format", "{{.Id}}", "x", env=env)
    assert templated.returncode == 1 and "JSON only" in templated.stderr


# ------------------------------------------------------------------- the repository's own Dockerfile


@pytest.mark.slow
@pytest.mark.skipif(not (SERVER_DIR / "Dockerfile").is_file(), reason="container/Dockerfile is not in the tree")
def test_repository_dockerfile_builds_and_pushes_as_buildspec_runs_it(
    sandbox: Sandbox, build_role: dict[str, str], tmp_path: Path, model_dir: Path
) -> None:
    """The commands of buildspec.yml, in its build context (container/. plus model/), end to end."""
    work = tmp_path / "src"
    context = work / "build" / "image"
    shutil.copytree(SERVER_DIR, context, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(model_dir, context / "model")
    (context / "model" / "stray.pyc").write_bytes(b"excluded by **/*.pyc")
    (context / "notes.txt").write_text("not in the allow-list\n")
    env = base_env(tmp_path / "state", build_role)
    _login(sandbox, env, build_role)
    target = f"{registry(sandbox)}/{sandbox.names.ecr_repo}:latest"
    base = "785573368785.dkr.ecr.us-east-1.amazonaws.com/sagemaker-inference-pytorch:2.0-cpu-py3"
    build = docker(
        "build", "--build-arg", f"BASE_IMAGE={base}", "--build-arg", "MODEL_VARIANT=full_manual_norm",
        "--build-arg", "MODEL_SHA256=feed",
        "-t", "ncf-recommender:latest", "-f", "build/image/Dockerfile", "build/image", env=env, cwd=work,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert f"FROM {base}" in build.stderr
    assert "GET /ping -> 200" in build.stderr
    assert docker("tag", "ncf-recommender:latest", target, env=env).returncode == 0
    push = docker("push", target, env=env, cwd=work)
    assert push.returncode == 0, push.stderr
    digest = push.stdout.splitlines()[-1].split("digest: ")[1].split()[0]
    inspected = json.loads(docker("image", "inspect", target, env=env).stdout)[0]
    assert inspected["RepoDigests"] == [f"{registry(sandbox)}/{sandbox.names.ecr_repo}@{digest}"]
    assert inspected["Config"]["Labels"]["com.ncf-tui.model.variant"] == "full_manual_norm"
    assert inspected["Config"].get("User", "") in ("", "root", "0")  # SageMaker expects root
    manifest = json.loads(
        sandbox.client("ecr").batch_get_image(
            repositoryName=sandbox.names.ecr_repo, imageIds=[{"imageDigest": digest}]
        )["images"][0]["imageManifest"]
    )
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        files.update(blob_files(tmp_path / "state", layer["digest"]))
    assert files["opt/ml/model/model.pth"] == (model_dir / "model.pth").read_bytes()
    assert files["opt/program/serve.py"] == (SERVER_DIR / "serve.py").read_bytes()
    assert "opt/ml/model/stray.pyc" not in files  # .dockerignore honoured


# ------------------------------------------------------------------- COPY/ADD semantics (no server)


def test_copy_and_add_semantics_without_a_server(tmp_path: Path) -> None:
    """Globs, ADD of a local archive, COPY --from a stage, --chmod; the smoke test says it has nothing to run."""
    context = tmp_path / "ctx"
    (context / "conf").mkdir(parents=True)
    (context / "conf" / "a.json").write_text("{}")
    (context / "conf" / "b.json").write_text("[]")
    (context / "conf" / "c.txt").write_text("text")
    (context / "tool.sh").write_text("#!/bin/sh\n")
    with tarfile.open(context / "assets.tar.gz", "w:gz") as tar:
        payload = b"unpacked by ADD"
        info = tarfile.TarInfo("assets/readme.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    (context / "Dockerfile").write_text(
        "FROM scratch AS files\nCOPY tool.sh /stage/tool.sh\n"
        "FROM busybox\nCOPY conf/*.json /etc/app/\nADD assets.tar.gz /srv/\n"
        "COPY --from=files --chmod=755 /stage/tool.sh /usr/local/bin/tool\n"
    )
    state = tmp_path / "state"
    env = base_env(state, {})
    result = docker("build", "-t", "files:1", str(context), env=env)
    assert result.returncode == 0, result.stderr
    assert "no serve.py in the image: smoke test skipped" in result.stderr
    listing = docker("images", env=env).stdout.splitlines()
    assert listing[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert listing[1].split()[:2] == ["files", "1"]
    inspect = docker("image", "inspect", "files:1", env=env)
    layers = json.loads(inspect.stdout)[0]["RootFS"]["Layers"]
    assert len(layers) == 3
    globbed, added, copied = (blob_files(state, d) for d in layers)
    assert globbed == {"etc/app/a.json": b"{}", "etc/app/b.json": b"[]"}
    assert added == {"srv/assets/readme.txt": b"unpacked by ADD"}
    assert copied == {"usr/local/bin/tool": b"#!/bin/sh\n"}
    blob = (state / "blobs" / "sha256" / layers[2].removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.getmember("usr/local/bin/tool")
        assert (member.mode, member.mtime, member.uid) == (0o755, 0, 0)

    (context / "Dockerfile").write_text("FROM scratch AS files\nFROM busybox\nCOPY --from=files /nope /x\n")
    missing = docker("build", "-t", "files:2", str(context), env=env)
    assert missing.returncode == 1
    assert 'failed to calculate checksum of ref: "/nope": not found' in missing.stderr


def test_quiet_build_prints_only_the_id_and_parse_errors_read_like_docker(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "app.txt").write_text("app")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    env = base_env(tmp_path / "state", {})
    quiet = docker("build", "-q", "-t", "app:1", str(context), env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", quiet.stdout)
    assert "#1 " not in quiet.stderr
    (context / "Dockerfile").write_text("FROM scratch\nCOPPY app.txt /app.txt\n")
    bad = docker("build", "-q", "-t", "app:2", str(context), env=env)
    assert bad.returncode == 1
    assert "ERROR: failed to solve: dockerfile parse error on line 2: unknown instruction: COPPY" in bad.stderr
