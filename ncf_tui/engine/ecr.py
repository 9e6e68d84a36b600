"""The image check after a build, and what to run next to serve the image from SageMaker.

A green build is not proof: ``verify_image`` asks ECR for the tag (digest, size, push time), checks the
digest is the one the build pushed and that the model the build packed (the sha256 it printed of
``model.pth`` or ``compiled.pt``) is the compiled model inside the Neo archive in S3, then emits an ``image``
event. ``deploy_commands``
fills in the aws CLI commands that put the image behind a SageMaker endpoint (the model is inside the
image, so no ModelDataUrl is needed).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import shlex
import tarfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .aws import Aws, aws_errors, error_code, error_message
from .errors import ExitCode, NcfError
from .events import Emit, ImageEvent, SmokeEvent
from .logs import BuildValues

# <registry id>.dkr.ecr[-fips].<region>.<DNS suffix of the partition>/<repository>[:tag|@digest]: the suffix is
# read, never assumed (amazonaws.com, amazonaws.com.cn in China, others in other partitions).
_IMAGE_URI = re.compile(
    r"^(?:https?://)?(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.(?P<suffix>[a-z0-9.-]+)"
    r"(?:/(?P<repo>[a-z0-9._/-]+?))?(?::(?P<tag>[\w][\w.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))?/?$"
)


def parse_image_uri(uri: str) -> dict[str, str] | None:
    """The parts of an ECR image URI or registry endpoint (account, region, suffix, repo, tag, digest), or None."""
    m = _IMAGE_URI.match(uri.strip())
    return None if m is None else {k: v or "" for k, v in m.groupdict().items()}


def repository_arn_of(uri: str) -> str | None:
    """The ARN of the ECR repository ``uri`` names (e.g. AWS's Neo image repository), or None if not ECR."""
    from .settings import partition_for

    parts = parse_image_uri(uri)
    if parts is None or not parts["repo"]:
        return None
    partition = partition_for(parts["region"])
    return f"arn:{partition}:ecr:{parts['region']}:{parts['account']}:repository/{parts['repo']}"


def registry_host(aws: Aws, registry_id: str, printed_uri: str | None = None) -> str:
    """The registry's host name as AWS gives it, never a domain built here while AWS can be asked: the URI the
    build printed, else GetAuthorizationToken's ``proxyEndpoint`` (the address ``docker login`` uses; a China
    region answers under ``.amazonaws.com.cn``), else a repository's URI, else botocore's partition data."""
    from .settings import dns_suffix_for

    if printed_uri:
        parts = parse_image_uri(printed_uri)
        if parts is None or parts["account"] == registry_id:
            return printed_uri.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    client = aws.client("ecr")
    with contextlib.suppress(Exception):  # no ecr:GetAuthorizationToken: the repository's URI says it too
        for entry in client.get_authorization_token().get("authorizationData") or []:
            host = str(entry.get("proxyEndpoint") or "").removeprefix("https://").removeprefix("http://")
            if host.rstrip("/"):
                return host.rstrip("/")
    with contextlib.suppress(Exception):
        repos = client.describe_repositories()["repositories"]
        if repos:
            return str(repos[0]["repositoryUri"]).split("/", 1)[0]
    return f"{registry_id}.dkr.ecr.{aws.region}.{dns_suffix_for(aws.region)}"


class ImageCheckError(NcfError):
    """The image is missing, or not the one the build made, or holds another model."""

    exit_code = ExitCode.BUILD_FAILED


@dataclass(frozen=True)
class ImageInfo:
    uri: str
    repository: str
    tag: str
    digest: str
    size_bytes: int
    pushed_at: datetime | None
    registry_id: str
    model_sha256: str | None = None
    verified: tuple[str, ...] = field(default=())
    """What was checked, one sentence each (for the summary and the ``done`` event)."""
    smoke: dict[str, Any] | None = None
    """The smoke run's result (``docker run IMAGE serve``), when something could run the image."""


SmokeRun = Callable[[str, tuple[int, int]], "dict[str, Any] | None"]
"""Runs ``image`` as SageMaker hosting would and scores ``pair``; None when nothing here can run images."""
# Layers larger than this are not fetched to look for the model (the model's COPY layer is small; the
# base image's torch layer is hundreds of MB).
MODEL_LAYER_LIMIT = 64 * 1024 * 1024
MODEL_DIR_IN_IMAGE = "opt/ml/model/"
MODEL_NAMES = ("model.pth", "compiled.pt")


def _fetch(client: Any, repository: str, digest: str, limit: int) -> bytes | None:
    """One blob through GetDownloadUrlForLayer (a presigned URL on AWS), None when it cannot be had."""
    try:
        url = str(client.get_download_url_for_layer(repositoryName=repository, layerDigest=digest)["downloadUrl"])
        if not url.startswith(("https://", "http://")):
            return None
        with urllib.request.urlopen(url, timeout=120) as answer:  # noqa: S310 (scheme checked above)
            data: bytes = answer.read(limit + 1)
    except Exception:
        return None
    return data if len(data) <= limit else None


def model_in_image(client: Any, repository: str, manifest: dict[str, Any]) -> tuple[str | None, str]:
    """sha256 of the model file the image holds under /opt/ml/model, and how it was read.

    The layers are read from the top (the last ``COPY model/`` wins); a layer too large to be the model's
    is skipped. Without layer access, the image config's ``com.ncf-tui.model.sha256`` label is the answer.
    """
    layers = list(reversed(manifest.get("layers") or []))
    for layer in layers:
        size = int(layer.get("size") or 0)
        if size > MODEL_LAYER_LIMIT:
            continue
        blob = _fetch(client, repository, str(layer.get("digest", "")), MODEL_LAYER_LIMIT)
        if blob is None:
            continue
        try:
            raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
                for name in MODEL_NAMES:
                    try:
                        member = tar.getmember(MODEL_DIR_IN_IMAGE + name)
                    except KeyError:
                        continue
                    handle = tar.extractfile(member)
                    if handle is not None:
                        sha = hashlib.sha256(handle.read()).hexdigest()
                        return sha, f"/{MODEL_DIR_IN_IMAGE}{name} read from layer {str(layer.get('digest'))[:19]}"
        except (OSError, EOFError, tarfile.TarError):
            continue
    config = manifest.get("config") or {}
    blob = _fetch(client, repository, str(config.get("digest", "")), MODEL_LAYER_LIMIT)
    if blob is not None:
        try:
            labels = (json.loads(blob).get("config") or {}).get("Labels") or {}
        except ValueError:
            labels = {}
        label = labels.get("com.ncf-tui.model.sha256")
        if label and label != "unknown":
            return str(label), "the image config's com.ncf-tui.model.sha256 label"
    return None, "neither the model layer nor the image config could be read through GetDownloadUrlForLayer"


def verify_image(
    aws: Aws,
    repository: str,
    tag: str,
    emit: Emit,
    *,
    expected_digest: str | None = None,
    expected_model_sha256: str | None = None,
    build_values: BuildValues | None = None,
    smoke_run: SmokeRun | None = None,
    smoke_pair: tuple[int, int] | None = None,
) -> ImageInfo:
    """Check ``repository:tag`` in ECR against what the build reported; raise ``ImageCheckError`` (exit 5)
    naming the mismatch. ``expected_digest`` defaults to the build's ``image-digest`` line; the build's
    ``model-sha256`` line (the file the build copied into the image) is compared with ``expected_model_sha256``
    (the compiled model inside the Neo archive in S3, which the build downloaded)."""
    values = build_values or BuildValues()
    client = aws.client("ecr")
    try:
        with aws_errors(aws.target):
            images = client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except NcfError:
        raise
    except Exception as exc:
        code = error_code(exc)
        if code == "ImageNotFoundException":
            raise ImageCheckError(
                f"the tag {tag!r} is not in ECR repository {repository}: the build did not push it",
                hint="read the post_build phase of the build log (docker push)",
            ) from None
        if code == "RepositoryNotFoundException":
            raise ImageCheckError(
                f"ECR repository {repository} does not exist", hint="create it, or fix IMAGE_REPO_NAME"
            ) from None
        raise ImageCheckError(f"could not read {repository}:{tag} from ECR: {code}: {error_message(exc)}") from None
    if not images:
        raise ImageCheckError(f"the tag {tag!r} is not in ECR repository {repository}")
    detail = images[0]
    digest = str(detail["imageDigest"])
    registry_id = str(detail.get("registryId", ""))
    uri = f"{registry_host(aws, registry_id, values.image_uri)}/{repository}:{tag}"
    verified = [f"{repository}:{tag} is in ECR ({digest})"]

    manifest_digest, manifest = _manifest(client, repository, digest)
    if manifest_digest is not None and manifest_digest != digest:
        raise ImageCheckError(f"ECR's manifest for {repository}:{tag} hashes to {manifest_digest}, not {digest}")
    if manifest_digest is not None:
        verified.append("its manifest hashes to that digest")

    want_digest = expected_digest or values.image_digest
    if want_digest:
        if want_digest != digest:
            raise ImageCheckError(
                f"{repository}:{tag} is {digest}, but the build pushed {want_digest}: the tag was moved since",
                hint="rerun the build, or use an immutable tag",
            )
        verified.append("the digest is the one the build pushed")
    if values.image_uri and values.image_uri != uri:
        raise ImageCheckError(
            f"the build pushed {values.image_uri}, not {uri}", hint="check IMAGE_REPO_NAME, IMAGE_TAG"
        )

    recorded = values.model_sha256
    if expected_model_sha256:
        if recorded is None:
            raise ImageCheckError(
                "the build log has no 'NCF-TUI: model-sha256' line, so the model inside the image is unknown",
                hint="check the model-copy step in the build log (troubleshooting 3)",
            )
        if recorded != expected_model_sha256.lower():
            raise ImageCheckError(
                f"the image holds the model {recorded[:12]}…, not the compiled model in the Neo archive "
                f"({expected_model_sha256[:12]}…)",
                hint="NEO_MODEL_S3_URI points at another compile output; fix it and rebuild",
            )
        verified.append("the model inside is the compiled model of the Neo archive (sha256 matches)")
    if expected_model_sha256 and manifest is not None:
        inside, how = model_in_image(client, repository, manifest)
        if inside is not None and inside != expected_model_sha256.lower():
            raise ImageCheckError(
                f"the image's model ({how}) is {inside[:12]}…, "
                f"not the compiled artifact's {expected_model_sha256[:12]}…",
                hint="the image was built from another model; rebuild",
            )
        verified.append(
            f"the model in the image equals the compiled artifact ({how})"
            if inside is not None
            else f"the model in the image was not read: {how}"
        )

    smoke: dict[str, Any] | None = None
    if smoke_run is not None and smoke_pair is not None:
        smoke = smoke_run(f"{uri.rsplit(':', 1)[0]}@{digest}", smoke_pair)
        if smoke is not None:
            answer = smoke.get("invocation") or {}
            score = answer.get("score")
            emit(
                SmokeEvent(
                    image=str(smoke.get("image", uri)),
                    ok=bool(smoke.get("ok")),
                    ping_seconds=smoke.get("ping_seconds"),
                    pair=list(smoke_pair),
                    score=float(score) if isinstance(score, int | float) else None,
                    runtime=str(smoke.get("runtime_line", ""))[:300],
                    message=str(smoke.get("message", "")),
                )
            )
            if not smoke.get("ok"):
                raise ImageCheckError(
                    f"the image does not serve: {smoke.get('message')}",
                    hint="run it yourself: docker run -p 8080:8080 IMAGE serve, then curl localhost:8080/ping",
                )
            verified.append(f"it serves as SageMaker runs it: {smoke.get('message')}")

    pushed = detail.get("imagePushedAt")
    info = ImageInfo(
        uri=uri,
        repository=repository,
        tag=tag,
        digest=digest,
        size_bytes=int(detail.get("imageSizeInBytes") or 0),
        pushed_at=pushed if isinstance(pushed, datetime) else None,
        registry_id=registry_id,
        model_sha256=recorded,
        verified=tuple(verified),
        smoke=smoke,
    )
    emit(ImageEvent(uri=uri, digest=digest, tag=tag))
    return info


def _manifest(client: Any, repository: str, digest: str) -> tuple[str | None, dict[str, Any] | None]:
    """sha256 of the manifest ECR serves for ``digest`` and the manifest (None when it cannot be read:
    not a verdict)."""
    try:
        out = client.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    except Exception:
        return None, None
    images = out.get("images") or []
    manifest = images[0].get("imageManifest") if images else None
    if not isinstance(manifest, str):
        return None, None
    try:
        parsed = json.loads(manifest)
    except ValueError:
        parsed = None
    return "sha256:" + hashlib.sha256(manifest.encode()).hexdigest(), parsed if isinstance(parsed, dict) else None


# A Neo model compiled for a cloud target runs only on that instance family ("Supported Instance Types and
# Frameworks", https://docs.aws.amazon.com/sagemaker/latest/dg/neo-supported-cloud.html, and "Deploy a Compiled
# Model", neo-deployment-hosting-services). The size proposed is xlarge, which every Neo cloud family offers
# for hosting, except ml.p3, which starts at 2xlarge.
_NEO_INSTANCE_SIZE = {"ml_p3": "2xlarge"}


def instance_type_for(target_device: str) -> str:
    """The SageMaker instance type of the family ``target_device`` (``ml_c5`` -> ``ml.c5.xlarge``)."""
    target = target_device.strip().lower()
    if not target.startswith("ml_"):
        return "ml.c5.xlarge"  # an edge target has no SageMaker endpoint; the Neo default family (ml_c5)
    family = target.removeprefix("ml_")
    return f"ml.{family}.{_NEO_INSTANCE_SIZE.get(target, 'xlarge')}"


def deploy_commands(
    image_uri: str,
    region: str,
    role_arn: str,
    *,
    name: str = "ncf-recommender",
    instance_type: str = "ml.c5.xlarge",
    instance_count: int = 1,
    request_file: str = "ncf-request.json",
) -> list[str]:
    """aws CLI commands that serve ``image_uri`` from a SageMaker real-time endpoint, then call it once.

    The model is baked into the image at /opt/ml/model, so ``create-model`` names only the image; the role
    is the SageMaker execution role (it must be allowed to pull from the repository). ``instance_type`` must be
    of the family the model was compiled for (``instance_type_for(target_device)``). The request goes
    through ``fileb://`` so the same line works with aws CLI v1 and v2 (v2 reads a raw ``--body`` as base64).
    """
    model, config, endpoint = name, f"{name}-config", f"{name}-endpoint"
    variant = (
        f"VariantName=AllTraffic,ModelName={model},InitialInstanceCount={instance_count},"
        f"InstanceType={instance_type},InitialVariantWeight=1"
    )
    head = ["aws", "sagemaker"]
    lines: list[list[str]] = [
        [*head, "create-model", "--region", region, "--model-name", model, "--execution-role-arn", role_arn,
         "--primary-container", f"Image={image_uri},Mode=SingleModel"],
        [*head, "create-endpoint-config", "--region", region, "--endpoint-config-name", config,
         "--production-variants", variant],
        [*head, "create-endpoint", "--region", region, "--endpoint-name", endpoint, "--endpoint-config-name", config],
        [*head, "wait", "endpoint-in-service", "--region", region, "--endpoint-name", endpoint],
    ]  # fmt: skip
    commands = [shlex.join(parts) for parts in lines]
    body = json.dumps({"user_id": 42, "item_id": 56})
    commands.append(f"printf '%s' {shlex.quote(body)} > {shlex.quote(request_file)}")
    invoke = ["aws", "sagemaker-runtime", "invoke-endpoint", "--region", region, "--endpoint-name", endpoint]
    invoke += ["--content-type", "application/json", "--body", f"fileb://{request_file}", "/dev/stdout"]
    commands.append(shlex.join(invoke))
    return commands
