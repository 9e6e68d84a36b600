"""`docker login` and `docker push` against ECR's API (the sandbox has no Docker registry).

The registry check a real ECR does on login is done by asking ECR itself: `GetAuthorizationToken`
with the caller's credentials must hand out the same password. A push uploads every blob through
ECR's layer API (BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
CompleteLayerUpload) and then `PutImage`, all with the environment's credentials, so an IAM policy
without one of those actions fails the push exactly where Docker's would. boto3 is imported lazily.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from dataclasses import dataclass
from typing import Any, TextIO

from .layers import MANIFEST_MEDIA_TYPE, Descriptor, manifest_bytes
from .refs import Reference, ecr_registry
from .state import State


class RegistryError(Exception):
    """A registry answer Docker would print; `str()` is the line Docker prints."""


def _client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_ECR") or os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client(
        "ecr",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 6}),
    )


def _aws_error(error: Exception) -> tuple[str, str]:
    """(code, message) of a botocore error, or ("", text) for anything else."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return "", str(error)
    info = response.get("Error", {})
    code, message = str(info.get("Code", "")), str(info.get("Message", "")) or str(error)
    # moto answers an IAM denial on a JSON API with a query-protocol XML body that botocore
    # passes through as the message; read the code and message out of it.
    xml_code = re.search(r"<Code>([^<]*)</Code>", message)
    xml_message = re.search(r"<Message>([^<]*)</Message>", message)
    if xml_message:
        return (xml_code.group(1) if xml_code else code), html.unescape(xml_message.group(1))
    return code, message


def verify_login(registry: str, username: str, password: str) -> None:
    """Accept the login only if ECR would: username AWS and the password ECR hands this caller."""
    where = f'Get "https://{registry}/v2/"'
    located = ecr_registry(registry)
    if located is None:
        raise RegistryError(
            f"Error response from daemon: {where}: "
            "the ncf-tui sandbox builder only logs in to ECR registries "
            "(<account>.dkr.ecr.<region>.amazonaws.com)"
        )
    account, region = located
    if not password:
        raise RegistryError("Error: Cannot perform an interactive login from a non TTY device")
    if username != "AWS":
        raise RegistryError(f"Error response from daemon: {where}: denied: Your authorization token is invalid.")
    from botocore.exceptions import BotoCoreError, ClientError

    # ECR: one authorization token "can be used to access any Amazon ECR registry that your IAM principal
    # has access to", so the caller's own token also opens AWS's Neo base registry.
    items: list[dict[str, Any]] = []
    try:
        client = _client(region)
        for kwargs in ({"registryIds": [account]}, {}):
            items += client.get_authorization_token(**kwargs).get("authorizationData", [])
    except ClientError as error:
        code, message = _aws_error(error)
        raise RegistryError(f"Error response from daemon: {where}: denied: {message or code}") from None
    except BotoCoreError as error:
        raise RegistryError(f"Error response from daemon: {where}: {error}") from None
    for item in items:
        try:
            decoded = base64.b64decode(item.get("authorizationToken", "")).decode()
        except (ValueError, UnicodeDecodeError):
            continue
        user, _, expected = decoded.partition(":")
        if user == "AWS" and expected and expected == password:
            return
    raise RegistryError(
        f"Error response from daemon: {where}: denied: Your authorization token has expired. "
        "Reauthenticate and try again."
    )


@dataclass(frozen=True)
class PushResult:
    digest: str
    size: int


def _denied(message: str, region: str, account: str, repository: str) -> str:
    """Docker's line for an IAM denial, with the resource ECR names (moto's message omits it)."""
    if " on resource" not in message:
        action = re.search(r"perform: (\S+)", message)
        name = action.group(1) if action else "the"
        message = (
            f"{message} on resource: arn:aws:ecr:{region}:{account}:repository/{repository} "
            f"because no identity-based policy allows the {name} action"
        )
    return f"denied: {message}"


def push(reference: Reference, image: dict[str, Any], store: State, out: TextIO) -> PushResult:
    """Upload the image's blobs and put its manifest under the reference's tag; print Docker's lines."""
    located = ecr_registry(reference.registry)
    if located is None:
        raise RegistryError(
            f'Get "https://{reference.registry or "registry-1.docker.io"}/v2/": the ncf-tui sandbox builder '
            "only pushes to ECR registries"
        )
    account, region = located
    layers = [Descriptor(d["mediaType"], d["digest"], int(d["size"])) for d in image["Layers"]]
    config_info = image["Config"]
    config = Descriptor(config_info["mediaType"], config_info["digest"], int(config_info["size"]))
    out.write(f"The push refers to repository [{reference.name}]\n")
    shown = list(reversed(layers))  # Docker lists the top layer first
    for layer in shown:
        out.write(f"{layer.digest.removeprefix('sha256:')[:12]}: Preparing\n")
    out.flush()
    if reference.registry not in store.logins():
        raise RegistryError("no basic auth credentials")

    from botocore.exceptions import BotoCoreError, ClientError

    client = _client(region)
    repo = reference.repository

    def fail(error: Exception) -> RegistryError:
        code, message = _aws_error(error)
        if code in ("AccessDenied", "AccessDeniedException"):
            return RegistryError(_denied(message, region, account, repo))
        if code == "RepositoryNotFoundException":
            return RegistryError(
                f"name unknown: The repository with name '{repo}' does not exist in the registry with id '{account}'"
            )
        return RegistryError(f"unknown: {message or code}")

    try:
        digests = [d.digest for d in [*layers, config]]
        answer = client.batch_check_layer_availability(repositoryName=repo, layerDigests=digests)
        available = {
            item["layerDigest"] for item in answer.get("layers", []) if item.get("layerAvailability") == "AVAILABLE"
        }
        statuses: dict[str, str] = {}
        for blob in [*layers, config]:
            if blob.digest in available:
                statuses[blob.digest] = "Layer already exists"
                continue
            _upload(client, repo, store, blob)
            statuses[blob.digest] = "Pushed"
        for layer in shown:
            out.write(f"{layer.digest.removeprefix('sha256:')[:12]}: {statuses[layer.digest]}\n")
        out.flush()
        manifest = manifest_bytes(config, layers)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        try:
            client.put_image(
                repositoryName=repo,
                imageManifest=manifest.decode(),
                imageManifestMediaType=MANIFEST_MEDIA_TYPE,
                imageTag=reference.tag,
                imageDigest=digest,
            )
        except ClientError as error:
            # The registry keeps identical pushes idempotent; ECR says so with this exception.
            if _aws_error(error)[0] != "ImageAlreadyExistsException":
                raise
    except ClientError as error:
        raise fail(error) from None
    except BotoCoreError as error:
        raise RegistryError(
            f'Put "https://{reference.registry}/v2/{repo}/manifests/{reference.tag}": {error}'
        ) from None
    return PushResult(digest, len(manifest))


def _upload(client: Any, repo: str, store: State, blob: Descriptor) -> None:
    """Upload one blob in ECR's part size and check the digest ECR computed from the bytes."""
    started = client.initiate_layer_upload(repositoryName=repo)
    upload_id = started["uploadId"]
    part_size = int(started.get("partSize") or 10 * 1024 * 1024)
    first = 0
    with store.blob_path(blob.digest).open("rb") as handle:
        while True:
            chunk = handle.read(part_size)
            if not chunk:
                break
            client.upload_layer_part(
                repositoryName=repo,
                uploadId=upload_id,
                partFirstByte=first,
                partLastByte=first + len(chunk) - 1,
                layerPartBlob=chunk,
            )
            first += len(chunk)
    done = client.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[blob.digest])
    if done.get("layerDigest") != blob.digest:
        raise RegistryError(
            "digest invalid: provided digest did not match uploaded content "
            f"({blob.digest} != {done.get('layerDigest')})"
        )
