"""The verify step: the pushed image checked in ECR (digest, the compiled model inside it, a smoke run where
something can run it), and the commands that deploy it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Step, StepContext

if TYPE_CHECKING:
    from ..aws import Aws
    from ..ecr import ImageInfo


@dataclass
class VerifyResult:
    image_uri: str
    digest: str = ""
    model_sha256: str | None = None
    verified: list[str] = field(default_factory=list)
    """What was checked, one sentence each."""
    deploy_commands: list[str] = field(default_factory=list)
    """The AWS CLI commands that serve the image from a SageMaker endpoint."""
    smoke: dict[str, Any] | None = None
    image: ImageInfo | None = field(default=None, compare=False, repr=False)
    """The image as ECR described it, in this process only."""

    def to_state(self) -> dict[str, Any]:
        return {
            "image_uri": self.image_uri,
            "digest": self.digest,
            "model_sha256": self.model_sha256,
            "verified": list(self.verified),
            "deploy_commands": list(self.deploy_commands),
            "smoke": self.smoke,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> VerifyResult:
        smoke = data.get("smoke")
        return cls(
            image_uri=str(data.get("image_uri") or ""),
            digest=str(data.get("digest") or ""),
            model_sha256=data.get("model_sha256"),
            verified=[str(v) for v in data.get("verified") or []],
            deploy_commands=[str(c) for c in data.get("deploy_commands") or []],
            smoke=dict(smoke) if isinstance(smoke, Mapping) else None,
        )


def smoke_pair(ctx: StepContext) -> tuple[int, int] | None:
    """A (user, item) pair from the middle of the chosen variant's id ranges (its sidecar)."""
    import io
    import json
    import tarfile

    from ..neo import CompileResult
    from .variants import VariantsResult

    compiled: CompileResult | None = ctx.saved("compile")
    variants: VariantsResult | None = ctx.saved("variants")
    candidate = variants.by_name(compiled.chosen) if variants is not None and compiled is not None else None
    if candidate is None:
        return None
    try:
        with tarfile.open(candidate.archive, "r:*") as tar:
            member = tar.extractfile("ncf-model.json")
            sidecar = json.load(io.TextIOWrapper(member, "utf-8")) if member else {}
        users, items = sidecar["user_id_range"], sidecar["item_id_range"]
        return (int(users[0]) + int(users[1])) // 2, (int(items[0]) + int(items[1])) // 2
    except (OSError, KeyError, ValueError, TypeError, tarfile.TarError):
        return None


def compiled_model_sha256(aws: Aws, neo_model_s3_uri: str, model_key: str = "") -> str | None:
    """sha256 of the compiled model (``model.pth``, else ``compiled.pt``) inside the Neo archive the build
    downloads: ``model_key`` when settings found it, else the archive NEO_MODEL_S3_URI names or the one the
    build's rule picks under it (None if it cannot be read)."""
    import hashlib

    from ..artifact import choose_archive, compiled_model_in
    from ..aws import error_code
    from ..settings import split_s3_uri

    bucket, key = split_s3_uri(neo_model_s3_uri)
    key = model_key or key
    s3 = aws.client("s3")
    try:
        if not key.endswith(".tar.gz"):
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/").get("Contents", [])
            found, _why = choose_archive([str(o["Key"]) for o in listed], key)
            if found is None:
                return None
            key = found
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied"):
            return None
        raise
    compiled = compiled_model_in(body)
    return hashlib.sha256(compiled[1]).hexdigest() if compiled else None


class VerifyStep(Step[VerifyResult]):
    name = "verify"
    title = "Verify"
    needs = ("IMAGE_REPO_NAME",)
    result_type = VerifyResult

    def run(self, ctx: StepContext) -> VerifyResult:
        from ..ecr import deploy_commands, instance_type_for, verify_image
        from ..logs import BuildValues
        from ..neo import CompileResult
        from .build import BuildStepResult
        from .settings import settings_of

        settings = settings_of(ctx)
        aws = ctx.aws()
        build: BuildStepResult | None = ctx.saved("build")
        values = build.values if build is not None else BuildValues()
        info = verify_image(
            aws,
            settings.image_repo_name,
            settings.image_tag,
            ctx.emit,
            expected_digest=values.image_digest,
            expected_model_sha256=compiled_model_sha256(aws, settings.neo_model_s3_uri, settings.model_key),
            build_values=values,
            smoke_run=ctx.options.smoke_run,
            smoke_pair=smoke_pair(ctx),
        )
        compiled: CompileResult | None = ctx.saved("compile")
        target = (compiled.target_device if compiled is not None else "") or settings.target_device or "ml_c5"
        commands = deploy_commands(
            info.uri, settings.region, settings.sagemaker_role, instance_type=instance_type_for(target)
        )
        return VerifyResult(
            image_uri=info.uri,
            digest=info.digest,
            model_sha256=info.model_sha256,
            verified=list(info.verified),
            deploy_commands=commands,
            smoke=info.smoke,
            image=info,
        )
