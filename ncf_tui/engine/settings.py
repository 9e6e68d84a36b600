"""A run's settings: the five CodeBuild variables and the other answers, each with its source and a verdict.

Why this module exists: every later step (IAM check, CodeBuild project, build) trusts these values, and a wrong
one costs a slow failed build. So each value is resolved from an ordered list of sources (flags, environment,
``--config FILE``, the saved config, values derived from the run, defaults), remembers which source won, and
is validated before anything is built: first locally (shape, injection attempts: before any AWS call), then
against the account (region, caller's account, bucket location, model object, ECR repository). A failure
carries its reason and, where a fix is safe, a ``Fix`` the CLI or TUI can offer as one key.

Nothing secret ever lives in ``Settings``: credentials stay with the ``Aws`` target (or keyring).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tempfile
import tomllib
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInputError, ExitCode, NcfError
from .events import Emit, SettingEvent, discard

if TYPE_CHECKING:
    from .aws import Aws

SEED_BUILD_IMAGE = "aws/codebuild/amazonlinux2-x86_64-standard:3.0"
"""The Amazon Linux 2 image older CodeBuild recipes name; deprecated 2023-05-09 (no longer cached or patched)."""
DEPRECATED_BUILD_IMAGES = {
    SEED_BUILD_IMAGE: "2023-05-09",
    "aws/codebuild/standard:4.0": "2023-03-31",
    "aws/codebuild/amazonlinux2-aarch64-standard:1.0": "2023-03-31",
    "aws/codebuild/standard:3.0": "2022-06-30",
    "aws/codebuild/amazonlinux2-x86_64-standard:2.0": "2022-06-30",
}
"""CodeBuild's list of deprecated images (user guide, "Deprecated CodeBuild images") with their dates."""
DEFAULT_BUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
"""Amazon Linux 2023 standard 5.0: Amazon Linux 2 itself reached end of life on 2026-06-30. Kept equal to
``codebuild.DEFAULT_IMAGE`` (a test checks), so settings and the project agree on one image."""
"""CodeBuild's current Amazon Linux standard image (Docker available in privileged mode)."""
DEFAULT_TARGET_DEVICE = "ml_c5"
CONFIG_DIR_ENV = "NCF_TUI_CONFIG_DIR"
CONFIG_FILE_NAME = "config.toml"
MAX_LENGTH = 2048
"""No setting is longer than this (S3 keys are at most 1024 bytes); longer input is refused unread."""


@dataclass(frozen=True)
class Field:
    """One setting: its canonical name (events, TOML, flags), ``Settings`` attribute, environment variable."""

    name: str
    attr: str
    env: str
    help: str
    default: str = ""
    required: bool = True
    max_length: int = 256


FIELDS: tuple[Field, ...] = (
    Field("AWS_DEFAULT_REGION", "region", "AWS_DEFAULT_REGION", "AWS region of the build"),
    Field("AWS_ACCOUNT_ID", "account_id", "AWS_ACCOUNT_ID", "12-digit AWS account id (the caller's)"),
    Field("IMAGE_REPO_NAME", "image_repo_name", "IMAGE_REPO_NAME", "ECR repository name", "ncf-recommender"),
    Field("IMAGE_TAG", "image_tag", "IMAGE_TAG", "image tag", "latest", max_length=128),
    Field(
        "NEO_MODEL_S3_URI",
        "neo_model_s3_uri",
        "NEO_MODEL_S3_URI",
        "S3 location of the Neo output, bucket/key without s3://",
        max_length=1100,
    ),
    Field("project_name", "project_name", "NCF_TUI_PROJECT_NAME", "CodeBuild project name", "ncf-recommender-build"),
    Field("service_role", "service_role", "NCF_TUI_SERVICE_ROLE", "ARN of the CodeBuild service role"),
    Field("bucket", "bucket", "NCF_TUI_BUCKET", "S3 bucket for models and Neo output", max_length=63),
    Field("prefix", "prefix", "NCF_TUI_PREFIX", "key prefix in the bucket", "ncf-tui", max_length=1024),
    Field("target_device", "target_device", "NCF_TUI_TARGET_DEVICE", "Neo target device", DEFAULT_TARGET_DEVICE),
    Field(
        "sagemaker_role",
        "sagemaker_role",
        "NCF_TUI_SAGEMAKER_ROLE",
        "ARN of the SageMaker role Neo compiles with",
        required=False,
    ),
    Field("build_image", "build_image", "NCF_TUI_BUILD_IMAGE", "CodeBuild environment image", DEFAULT_BUILD_IMAGE),
)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
CODEBUILD_VARIABLES: tuple[str, ...] = NAMES[:5]
_ALIASES: dict[str, str] = {
    **{f.name.lower(): f.name for f in FIELDS},
    **{f.attr: f.name for f in FIELDS},
    **{f.env.lower(): f.name for f in FIELDS},
}


def canonical_name(key: str) -> str:
    """The canonical name for a flag/config key (any case, ``-`` or ``_``), or a BadInputError naming the known."""
    name = _ALIASES.get(key.strip().lower().replace("-", "_"))
    if name is None:
        raise BadInputError(f"unknown setting {key!r}", hint="known settings: " + ", ".join(NAMES))
    return name


# ---------------------------------------------------------------------------------------------- Settings


@dataclass(frozen=True)
class Settings:
    """A run's settings. ``sources`` maps each canonical name to where its value came from:
    ``flag``, ``env:NAME``, ``config:PATH``, ``saved:PATH``, ``derived:WHAT``, ``default``, ``fix`` or ``unset``.
    ``model_key`` is the S3 key of the model archive once validation has found it ("" before)."""

    region: str = ""
    account_id: str = ""
    image_repo_name: str = ""
    image_tag: str = ""
    neo_model_s3_uri: str = ""
    project_name: str = ""
    service_role: str = ""
    bucket: str = ""
    prefix: str = ""
    target_device: str = ""
    sagemaker_role: str = ""
    build_image: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)
    model_key: str = ""

    def value(self, name: str) -> str:
        return str(getattr(self, FIELD_BY_NAME[canonical_name(name)].attr))

    def source(self, name: str) -> str:
        return self.sources.get(canonical_name(name), "unset")

    def with_value(self, name: str, value: str, source: str) -> Settings:
        f = FIELD_BY_NAME[canonical_name(name)]
        changes: dict[str, Any] = {f.attr: value, "sources": {**self.sources, f.name: source}}
        return dataclasses.replace(self, **changes)

    def items(self) -> Iterator[tuple[str, str, str]]:
        """(name, value, source) for every setting, in the canonical order."""
        for f in FIELDS:
            yield f.name, str(getattr(self, f.attr)), self.sources.get(f.name, "unset")

    def as_dict(self) -> dict[str, str]:
        return {name: value for name, value, _ in self.items()}

    def codebuild_environment(self) -> dict[str, str]:
        """The five CodeBuild project variables, exactly as the buildspec reads them."""
        return {name: self.value(name) for name in CODEBUILD_VARIABLES}

    # Derived names the build and the IAM check use.
    @property
    def partition(self) -> str:
        return partition_for(self.region)

    @property
    def model_bucket(self) -> str:
        """The bucket of NEO_MODEL_S3_URI (the one the build reads), "" when unset."""
        return split_s3_uri(self.neo_model_s3_uri)[0]

    @property
    def model_path(self) -> str:
        """The key part of NEO_MODEL_S3_URI (an archive key or a prefix)."""
        return split_s3_uri(self.neo_model_s3_uri)[1]

    @property
    def repository_arn(self) -> str:
        return f"arn:{self.partition}:ecr:{self.region}:{self.account_id}:repository/{self.image_repo_name}"

    @property
    def registry(self) -> str:
        """The registry host, the partition's DNS suffix read from botocore (amazonaws.com.cn in China)."""
        return f"{self.account_id}.dkr.ecr.{self.region}.{dns_suffix_for(self.region)}"

    @property
    def image_uri(self) -> str:
        return f"{self.registry}/{self.image_repo_name}:{self.image_tag}"

    @property
    def log_group(self) -> str:
        return f"/aws/codebuild/{self.project_name}"

    @property
    def log_group_arn(self) -> str:
        return f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{self.log_group}"


@lru_cache(maxsize=32)
def dns_suffix_for(region: str) -> str:
    """The DNS suffix of ``region``'s partition from botocore's endpoint data (offline): amazonaws.com,
    amazonaws.com.cn, ...; "amazonaws.com" only when botocore knows no such partition."""
    import botocore.loaders

    try:
        data = botocore.loaders.create_loader().load_data("endpoints")
    except Exception:
        return "amazonaws.com"
    for part in data.get("partitions", []):
        if region in part.get("regions", {}) or re.match(part.get("regionRegex", "^$"), region):
            return str(part.get("dnsSuffix", "amazonaws.com"))
    return "amazonaws.com"


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``bucket/key`` or ``s3://bucket/key``; the key has no leading or trailing ``/``."""
    rest = uri.strip()
    if rest[:5].lower() == "s3://":
        rest = rest[5:]
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")


# ---------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Fix:
    """A safe repair the user can accept with one key; ``apply()`` performs it and returns the new value."""

    description: str
    apply: Callable[[], str] = field(repr=False, compare=False)


@dataclass(frozen=True)
class ValueCheck:
    """The local verdict on one raw value: the normalised value, and why it is refused (if it is)."""

    name: str
    value: str
    ok: bool
    reason: str = ""
    notes: tuple[str, ...] = ()
    suggestion: str = ""
    fix: Fix | None = None
    warning: str = ""
    unsafe: bool = False
    """True when the value was refused as a possible injection (it must never reach AWS or a shell)."""


@dataclass(frozen=True)
class SettingIssue:
    """A value that needs attention: an error (blocks the run) or a warning (could not verify, deprecated)."""

    name: str
    value: str
    source: str
    reason: str
    fix: Fix | None = None
    severity: str = "error"  # error | warning

    def describe(self) -> str:
        return f"{self.name}={self.value!r} ({self.source}): {self.reason}"


class SettingsError(NcfError):
    """One or more settings failed validation; ``issues`` lists every failing value."""

    exit_code = ExitCode.PREFLIGHT_FAILED

    def __init__(self, issues: list[SettingIssue], *, hint: str | None = None) -> None:
        self.issues = issues
        lines = "; ".join(f"{i.name}: {i.reason}" for i in issues)
        super().__init__(f"{len(issues)} setting(s) failed validation: {lines}", hint=hint)


SHELL_METACHARACTERS = frozenset(";|&$`<>(){}[]!*?~'\"\\#^%")
# Letters from other scripts that look like ASCII ones: named so the user sees why "ecr" was refused.
_LOOKALIKES = {
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "һ": "h", "ӏ": "l", "α": "a", "ο": "o", "ν": "v", "ρ": "p", "τ": "t", "ι": "i", "κ": "k",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "․": ".", "∕": "/", "⁄": "/",
}  # fmt: skip


def shown(raw: str, limit: int = 80) -> str:
    """A refused value as it may be displayed: escaped (no control characters reach a terminal) and cut short."""
    text = ascii(raw[:limit])[1:-1]
    return text + ("..." if len(raw) > limit else "")


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, 'unnamed')})"


def unsafe_reason(raw: str, max_length: int = MAX_LENGTH) -> str:
    """Why ``raw`` looks like an injection attempt or garbage ("" if it does not). Checked before anything else."""
    if len(raw) > max_length:
        return f"is {len(raw)} characters long; at most {max_length} allowed"
    for i, ch in enumerate(raw):
        if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}:
            return f"contains the control character {_char_name(ch)} at position {i}"
    for i, ch in enumerate(raw):
        if not ch.isascii():
            look = _LOOKALIKES.get(ch) or unicodedata.normalize("NFKC", ch)
            alike = f", a look-alike of {look!r}" if look.isascii() and look != ch else ""
            return f"contains the non-ASCII character {ch!r} {_char_name(ch)} at position {i}{alike}"
    stripped = raw.strip()
    for i, ch in enumerate(stripped):
        if ch in SHELL_METACHARACTERS:
            return f"contains {ch!r} at position {i}, a shell metacharacter; refused so it cannot reach a shell"
        if ch.isspace():
            return f"contains whitespace at position {i}"
    return ""


_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_ACCOUNT_RE = re.compile(r"\d{12}")
# ECR's documented repository name pattern (CreateRepository), 2-256 characters.
_REPO_RE = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}")
_PROJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,149}")
_ROLE_ARN_RE = re.compile(r"arn:(aws[a-z-]*):iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})", re.ASCII)
_KEY_RE = re.compile(r"[A-Za-z0-9._/=+-]*")
_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def bucket_name_problem(name: str) -> str:
    """Why ``name`` is not a valid S3 general purpose bucket name ("" if it is), per the S3 naming rules."""
    if not 3 <= len(name) <= 63:
        return f"a bucket name has 3 to 63 characters, not {len(name)}"
    if not _BUCKET_RE.fullmatch(name):
        return "a bucket name uses lowercase letters, digits, '.' and '-', and starts and ends with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "a bucket name has no '..', '.-' or '-.'"
    if _IP_RE.fullmatch(name):
        return "a bucket name is not formatted as an IP address"
    for bad in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(bad):
            return f"a bucket name does not start with {bad!r}"
    for bad in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(bad):
            return f"a bucket name does not end with {bad!r}"
    return ""


def _key_problem(key: str, what: str) -> str:
    if not _KEY_RE.fullmatch(key):
        return f"{what} may use letters, digits and . _ / = + - only"
    parts = key.split("/")
    if any(p in {"", ".", ".."} for p in parts):
        return f"{what} has an empty, '.' or '..' path segment"
    if len(key.encode()) > 1024:
        return f"{what} is longer than S3's 1024-byte key limit"
    return ""


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region where botocore's endpoint data lists CodeBuild, in every partition (offline)."""
    import botocore.session

    session = botocore.session.get_session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("codebuild", partition))
    return frozenset(regions)


@lru_cache(maxsize=1)
def known_target_devices() -> tuple[str, ...]:
    """SageMaker's TargetDevice enum from botocore's service model (the API's own list)."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("TargetDevice")
    return tuple(getattr(shape, "enum", ()) or ())


def _close(value: str, options: Collection[str]) -> str:
    match = difflib.get_close_matches(value, sorted(options), n=1, cutoff=0.7)
    return f"did you mean {match[0]!r}?" if match else ""


def check_value(name: str, raw: str) -> ValueCheck:
    """The local verdict on one value: never calls AWS, never raises (except BadInputError for an unknown name).

    An empty value of a required setting is refused as missing; an optional one is accepted empty.
    Accepted values never contain control characters, non-ASCII characters or shell metacharacters.
    """
    f = FIELD_BY_NAME[canonical_name(name)]
    limit = f.max_length + 64  # some slack for a removable s3:// prefix and surrounding spaces
    reason = unsafe_reason(raw, limit)
    if reason:
        return ValueCheck(f.name, raw, False, reason=f"refused: {reason}", unsafe=True)
    value = raw.strip()
    notes: list[str] = []
    if value != raw:
        notes.append("surrounding whitespace removed")
    if not value:
        if f.required:
            return ValueCheck(f.name, "", False, reason=f"missing: set {f.env} or {f.name} in the config file")
        return ValueCheck(f.name, "", True, notes=("not set",))
    rule = _RULES[f.name]
    return rule(f, value, notes)


_Rule = Callable[[Field, str, list[str]], ValueCheck]


def _ok(f: Field, value: str, notes: list[str], **kw: Any) -> ValueCheck:
    return ValueCheck(f.name, value, True, notes=tuple(notes), **kw)


def _bad(f: Field, value: str, notes: list[str], reason: str, **kw: Any) -> ValueCheck:
    return ValueCheck(f.name, value, False, reason=reason, notes=tuple(notes), **kw)


def _rule_region(f: Field, v: str, notes: list[str]) -> ValueCheck:
    regions = known_regions()
    if v in regions:
        return _ok(f, v, notes)
    hint = _close(v.lower(), regions)
    shape = "" if _REGION_RE.fullmatch(v) else " (regions look like us-east-1)"
    return _bad(f, v, notes, f"{v!r} is not an AWS region where CodeBuild runs{shape}", suggestion=hint)


def _rule_account(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if _ACCOUNT_RE.fullmatch(v):
        return _ok(f, v, notes)
    return _bad(f, v, notes, f"an account id is exactly 12 digits, not {v!r}")


def _rule_repo(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if 2 <= len(v) <= 256 and _REPO_RE.fullmatch(v):
        return _ok(f, v, notes)
    why = (
        "an ECR repository name has 2 to 256 characters: lowercase letters and digits, separated by single "
        "'.', '_' or '-', with optional '/' namespaces"
    )
    lower = v.lower()
    if lower != v and 2 <= len(lower) <= 256 and _REPO_RE.fullmatch(lower):
        return _bad(f, v, notes, why, fix=Fix(f"use the lowercase name {lower!r}", lambda: lower))
    return _bad(f, v, notes, why)


def _rule_tag(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if _TAG_RE.fullmatch(v):
        return _ok(f, v, notes)
    return _bad(
        f, v, notes, "an image tag has 1 to 128 characters: letters, digits, '_', '.', '-', not starting with . or -"
    )


def _rule_uri(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if v[:5].lower() == "s3://":
        v = v[5:]
        notes.append("the s3:// prefix was removed: the build expects bucket/key")
    if v.endswith("/"):
        v = v.rstrip("/")
        notes.append("the trailing '/' was removed")
    bucket, _, key = v.partition("/")
    problem = bucket_name_problem(bucket)
    if problem:
        return _bad(f, v, notes, f"bucket {bucket!r}: {problem}")
    if not key:
        return _bad(f, v, notes, "NEO_MODEL_S3_URI needs a key after the bucket: bucket/prefix/of/the/neo/output")
    problem = _key_problem(key, "the key")
    if problem:
        return _bad(f, v, notes, problem)
    return _ok(f, v, notes)


def _rule_project(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if _PROJECT_RE.fullmatch(v):
        return _ok(f, v, notes)
    return _bad(f, v, notes, "a CodeBuild project name has 2 to 150 letters, digits, '-' or '_', starting alphanumeric")


def _rule_role(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if _ROLE_ARN_RE.fullmatch(v):
        return _ok(f, v, notes)
    return _bad(f, v, notes, "expected a role ARN such as arn:aws:iam::123456789012:role/service-role/NAME")


def _rule_bucket(f: Field, v: str, notes: list[str]) -> ValueCheck:
    problem = bucket_name_problem(v)
    return _bad(f, v, notes, problem) if problem else _ok(f, v, notes)


def _rule_prefix(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if v.startswith("/") or v.endswith("/"):
        v = v.strip("/")
        notes.append("leading and trailing '/' removed")
    if not v:
        return _bad(f, v, notes, "the prefix is empty")
    problem = _key_problem(v, "the prefix")
    return _bad(f, v, notes, problem) if problem else _ok(f, v, notes)


def _rule_device(f: Field, v: str, notes: list[str]) -> ValueCheck:
    devices = known_target_devices()
    if v in devices:
        return _ok(f, v, notes)
    return _bad(f, v, notes, f"{v!r} is not a SageMaker Neo target device", suggestion=_close(v, devices))


def _rule_image(f: Field, v: str, notes: list[str]) -> ValueCheck:
    if not _IMAGE_RE.fullmatch(v):
        return _bad(f, v, notes, "an image name uses letters, digits and . _ / : @ - (e.g. aws/codebuild/...:5.0)")
    if v in DEPRECATED_BUILD_IMAGES:
        return _ok(
            f,
            v,
            notes,
            warning=(
                f"CodeBuild deprecated {v} on {DEPRECATED_BUILD_IMAGES[v]} (no longer cached or patched); "
                f"{DEFAULT_BUILD_IMAGE} is the current Amazon Linux standard image"
            ),
            fix=Fix(f"use {DEFAULT_BUILD_IMAGE}", lambda: DEFAULT_BUILD_IMAGE),
        )
    return _ok(f, v, notes)


_RULES: dict[str, _Rule] = {
    "AWS_DEFAULT_REGION": _rule_region,
    "AWS_ACCOUNT_ID": _rule_account,
    "IMAGE_REPO_NAME": _rule_repo,
    "IMAGE_TAG": _rule_tag,
    "NEO_MODEL_S3_URI": _rule_uri,
    "project_name": _rule_project,
    "service_role": _rule_role,
    "bucket": _rule_bucket,
    "prefix": _rule_prefix,
    "target_device": _rule_device,
    "sagemaker_role": _rule_role,
    "build_image": _rule_image,
}


# ---------------------------------------------------------------------------------------------- TOML


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the saved config lives: ``$NCF_TUI_CONFIG_DIR``, else platformdirs' user config dir."""
    env = os.environ if env is None else env
    if env.get(CONFIG_DIR_ENV):
        return Path(env[CONFIG_DIR_ENV])
    import platformdirs

    return Path(platformdirs.user_config_dir("ncf-tui"))


def saved_config_path(directory: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    return (Path(directory) if directory is not None else config_dir(env)) / CONFIG_FILE_NAME


def load(path: Path) -> dict[str, str]:
    """The settings in a TOML file as {canonical name: raw value}; BadInputError (exit 2) for a bad file.

    The file is a flat table of strings; ``[settings]`` may hold them instead. Unknown keys and non-strings are
    refused with the key's name, a syntax error with its line and column.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise BadInputError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise BadInputError(f"config file {path} is a folder") from None
    except OSError as exc:
        raise BadInputError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{path} is not valid TOML: {exc}", hint="fix the file or pass another --config") from None
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    table = data.get("settings", data) if isinstance(data.get("settings"), dict) else data
    out: dict[str, str] = {}
    for key, value in table.items():
        name = _config_key(path, key)
        if not isinstance(value, str):
            kind = type(value).__name__
            raise BadInputError(
                f"{path}: {key} must be a string in quotes, not a {kind}",
                hint=f'write {key} = "{value}"' if isinstance(value, int | float) else None,
            )
        out[name] = value
    return out


def _config_key(path: Path, key: str) -> str:
    try:
        return canonical_name(key)
    except BadInputError as exc:
        raise BadInputError(f"{path}: unknown setting {key!r}", hint=exc.hint) from None


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ACCESS_KEY_RE = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}")


def toml_string(value: str) -> str:
    """A TOML basic string (escapes quotes, backslashes and every control character)."""
    out = ['"']
    for ch in value:
        if ch in {'"', "\\"}:
            out.append("\\" + ch)
        elif unicodedata.category(ch) == "Cc" or ch == "\x7f":
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(values: Mapping[str, str]) -> str:
    """A flat TOML table of strings (all this file format needs: tomllib reads, the stdlib cannot write)."""
    lines = ["# ncf-tui settings. Never holds credentials: they stay in your AWS profile or keyring.", ""]
    for key, value in values.items():
        k = key if _BARE_KEY.fullmatch(key) else toml_string(key)
        lines.append(f"{k} = {toml_string(value)}")
    return "\n".join(lines) + "\n"


ANSWER_SOURCES = ("flag", "env", "config", "saved", "fix")


def save(settings: Settings, path: Path, *, answers_only: bool = True) -> Path:
    """Write the settings to ``path`` as TOML, atomically (a temp file in the same folder, then rename).

    With ``answers_only`` (the default), values that came from defaults or were derived from the run are left
    out, so a later run derives them afresh. Refuses anything that looks like an AWS access key id.
    """
    values: dict[str, str] = {}
    for name, value, source in settings.items():
        if not value:
            continue
        if answers_only and source.split(":", 1)[0] not in ANSWER_SOURCES:
            continue
        if _ACCESS_KEY_RE.search(value):
            raise BadInputError(f"refusing to save {name}: it looks like an AWS access key id")
        values[name] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(dumps(values))
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------------- resolution


def _derive_from_uri(uri: str) -> dict[str, str]:
    """bucket (and prefix, for ``bucket/PREFIX/compilation-output/...``) implied by NEO_MODEL_S3_URI."""
    bucket, key = split_s3_uri(uri)
    out = {"bucket": bucket} if bucket else {}
    head, sep, _ = key.partition("/compilation-output")
    if sep and head:
        out["prefix"] = head
    return out


def resolve_settings(
    *,
    flags: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
    config: Path | None = None,
    saved_dir: Path | None = None,
    derived: Mapping[str, str] | None = None,
) -> Settings:
    """Pick each value from the first source that has it: flags, env, --config, saved config, derived, defaults.

    No validation and no AWS call here (``settings_step`` does both). ``env`` defaults to ``os.environ``;
    ``saved_dir`` defaults to ``config_dir(env)``. BadInputError for an unknown key or an unreadable file.
    """
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, str]]] = []
    layers.append(("flag", {canonical_name(k): v for k, v in (flags or {}).items() if v is not None and v != ""}))
    layers.append(("env", {f.name: env[f.env] for f in FIELDS if env.get(f.env)}))
    if config is not None:
        layers.append((f"config:{config}", load(config)))
    saved = saved_config_path(saved_dir, env)
    if saved.exists():
        layers.append((f"saved:{saved}", load(saved)))
    layers.append(("derived", {canonical_name(k): v for k, v in (derived or {}).items() if v}))

    chosen: dict[str, tuple[str, str]] = {}
    for source, values in layers:
        for name, value in values.items():
            if name not in chosen and value:
                chosen[name] = (value, f"env:{FIELD_BY_NAME[name].env}" if source == "env" else source)
    uri = chosen.get("NEO_MODEL_S3_URI", ("", ""))[0]
    for name, value in _derive_from_uri(uri).items():
        chosen.setdefault(name, (value, "derived:NEO_MODEL_S3_URI"))
    for f in FIELDS:
        if f.default:
            chosen.setdefault(f.name, (f.default, "default"))
    s = Settings()
    for name, (value, source) in chosen.items():
        s = s.with_value(name, value, source)
    return s


# ---------------------------------------------------------------------------------------------- validation


@dataclass
class _Verdict:
    """The state of one value during validation."""

    check: ValueCheck
    source: str
    issues: list[SettingIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def validate(
    settings: Settings, aws: Aws | None, *, only: Collection[str] | None = None
) -> tuple[Settings, dict[str, _Verdict]]:
    """Check every value locally, then (with ``aws``) against the account; return normalised settings + verdicts.

    If any value was refused as unsafe, no AWS call is made at all: a hostile value never reaches the account.
    """
    names = [canonical_name(n) for n in only] if only is not None else list(NAMES)
    verdicts: dict[str, _Verdict] = {}
    for name in NAMES:
        check = check_value(name, settings.value(name))
        v = _Verdict(check, settings.source(name), notes=list(check.notes))
        if name in names:
            if not check.ok:
                v.issues.append(_issue(name, settings, check.reason, check.fix))
            elif check.warning:
                v.issues.append(_issue(name, settings, check.warning, check.fix, "warning"))
        if check.ok and check.value != settings.value(name):
            settings = settings.with_value(name, check.value, settings.source(name))
        verdicts[name] = v
    if aws is None:
        return settings, {n: verdicts[n] for n in names}
    refused = [n for n in names if verdicts[n].check.unsafe]
    if refused:
        for n in names:
            if n not in refused and verdicts[n].check.ok:
                verb = "was" if len(refused) == 1 else "were"
                verdicts[n].notes.append(f"not checked against AWS: {', '.join(refused)} {verb} refused first")
        return settings, {n: verdicts[n] for n in names}
    settings = _check_account(settings, aws, verdicts, names)
    return settings, {n: verdicts[n] for n in names}


def _issue(name: str, s: Settings, reason: str, fix: Fix | None = None, severity: str = "error") -> SettingIssue:
    return SettingIssue(name, s.value(name), s.source(name), reason, fix, severity)


def _usable(verdicts: dict[str, _Verdict], *names: str) -> bool:
    return all(verdicts[n].check.ok and verdicts[n].check.value for n in names)


def _regional(aws: Aws, region: str) -> Aws:
    if region == aws.region:
        return aws
    from .aws import Aws as AwsClass

    return AwsClass(dataclasses.replace(aws.target, region=region))


def _check_account(settings: Settings, aws: Aws, verdicts: dict[str, _Verdict], names: list[str]) -> Settings:
    """The checks that need AWS; each one only runs when the values it uses passed the local checks."""
    from .aws import aws_errors

    with aws_errors(aws.target):
        me = aws.whoami()
    if not settings.account_id and "AWS_ACCOUNT_ID" in verdicts:
        settings = settings.with_value("AWS_ACCOUNT_ID", me.account, "derived:sts")
        verdicts["AWS_ACCOUNT_ID"] = _Verdict(check_value("AWS_ACCOUNT_ID", me.account), "derived:sts")
    want = set(names)
    if "AWS_ACCOUNT_ID" in want and _usable(verdicts, "AWS_ACCOUNT_ID") and settings.account_id != me.account:
        verdicts["AWS_ACCOUNT_ID"].issues.append(
            _issue(
                "AWS_ACCOUNT_ID",
                settings,
                f"the credentials belong to account {me.account} ({me.arn}), not {settings.account_id}",
                Fix(f"use the caller's account {me.account}", lambda: me.account),
            )
        )
    region_ok = _usable(verdicts, "AWS_DEFAULT_REGION")
    regional = _regional(aws, settings.region) if region_ok else aws
    for role_name in ("service_role", "sagemaker_role"):
        if role_name in want and _usable(verdicts, role_name):
            _check_role(settings, aws, verdicts[role_name], role_name, me.account)
    buckets: dict[str, list[str]] = {}
    if "bucket" in want and _usable(verdicts, "bucket"):
        buckets.setdefault(settings.bucket, []).append("bucket")
    if "NEO_MODEL_S3_URI" in want and _usable(verdicts, "NEO_MODEL_S3_URI"):
        buckets.setdefault(settings.model_bucket, []).append("NEO_MODEL_S3_URI")
    bucket_ok: dict[str, bool] = {}
    if region_ok:
        for bucket, users in buckets.items():  # one call per bucket, its verdict told to every value using it
            ok, reason, severity = _check_bucket(settings, regional, bucket)
            bucket_ok[bucket] = ok
            for name in users:
                if reason and severity:
                    verdicts[name].issues.append(_issue(name, settings, reason, None, severity))
                elif reason:
                    verdicts[name].notes.append(reason)
    if "NEO_MODEL_S3_URI" in want and bucket_ok.get(settings.model_bucket):
        key = _check_model(settings, regional, verdicts["NEO_MODEL_S3_URI"])
        if key:
            settings = dataclasses.replace(settings, model_key=key)
    if "IMAGE_REPO_NAME" in want and region_ok and _usable(verdicts, "IMAGE_REPO_NAME"):
        _check_repository(settings, regional, verdicts["IMAGE_REPO_NAME"])
    return settings


def _denied(exc: BaseException) -> bool:
    from .aws import error_code

    return error_code(exc) in {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "UnauthorizedOperation"}


def _check_role(settings: Settings, aws: Aws, v: _Verdict, name: str, account: str) -> None:
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code

    arn = settings.value(name)
    m = _ROLE_ARN_RE.fullmatch(arn)
    assert m is not None
    if m.group(2) != account:
        v.issues.append(_issue(name, settings, f"the role is in account {m.group(2)}, the caller in {account}"))
        return
    try:
        with aws_errors(aws.target):
            aws.client("iam").get_role(RoleName=m.group(4))
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            v.issues.append(_issue(name, settings, f"no role named {m.group(4)!r} in account {account}"))
        elif _denied(exc):
            v.issues.append(
                _issue(name, settings, f"could not verify: the caller may not iam:GetRole on {arn}", None, "warning")
            )
        else:
            raise
    else:
        v.notes.append("the role exists")


def _check_bucket(settings: Settings, aws: Aws, bucket: str) -> tuple[bool, str, str]:
    """(objects can be checked next, what to say, "error"/"warning"/"" for a note): exists, in the region."""
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code

    try:
        with aws_errors(aws.target):
            loc = aws.client("s3").get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return False, f"bucket {bucket!r} does not exist", "error"
        if _denied(exc):
            return True, f"could not verify bucket {bucket!r}: the caller may not s3:GetBucketLocation on it", "warning"
        raise
    region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, str(loc))
    if region != settings.region:
        why = (
            f"bucket {bucket!r} is in {region}, not in {settings.region}: "
            f"use a bucket in {settings.region} or set AWS_DEFAULT_REGION={region}"
        )
        return False, why, "error"
    return True, f"bucket {bucket} is in {region}", ""


def _check_model(settings: Settings, aws: Aws, v: _Verdict) -> str:
    """The Neo archive's key, found the way buildspec.yml finds it (``artifact.choose_archive``), and the sidecar
    beside it; "" (with an issue) when there is no archive.

    Without s3:ListBucket, S3 answers HEAD of a missing key 403, not 404 (HeadObject, Permissions): a 403 means
    "not known to exist", so the archive is looked for under its Neo name and by listing before anything is
    said, and a 403 that nothing else explains is reported as not found, with the reason."""
    from botocore.exceptions import ClientError

    from .artifact import choose_archive, sidecar_key
    from .aws import aws_errors, error_code

    s3 = aws.client("s3")
    bucket, path = settings.model_bucket, settings.model_path
    forbidden = False

    def head(key: str) -> bool:
        nonlocal forbidden
        try:
            with aws_errors(aws.target):
                s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if _denied(exc):
                forbidden = True
                return False
            if error_code(exc) not in {"404", "NoSuchKey", "NotFound"}:
                raise
            return False

    key = reason = ""
    if path.endswith(".tar.gz"):
        if head(path):
            key = path
        else:
            reason = f"no model archive found at s3://{bucket}/{path}"
    else:
        device = settings.target_device or DEFAULT_TARGET_DEVICE
        named = f"{path.rstrip('/')}/model-{device}.tar.gz"  # what Neo writes for ncf-tui's model.tar.gz input
        keys: list[str] | None = None
        try:
            with aws_errors(aws.target):
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=path.rstrip("/") + "/")
                keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        except ClientError as exc:
            if not _denied(exc):
                raise
        if keys is None:  # no s3:ListBucket: only Neo's own name can be asked for
            if head(named):
                key = named
            elif not forbidden:
                reason = f"no model archive at s3://{bucket}/{named} (and s3://{bucket}/{path}/ cannot be listed)"
            else:
                why = f"could not list s3://{bucket}/{path}/: the caller may not s3:ListBucket on {bucket}"
                reason = f"no model archive found at s3://{bucket}/{named}; {why}"
        else:
            found, why_found = choose_archive(keys, path)
            if found:
                key = found
            else:
                reason = f"no model archive found under s3://{bucket}/{path}/ ({why_found})"
                if "archives under" in why_found:
                    reason += "; point NEO_MODEL_S3_URI at the folder of one Neo output"
    if not key:
        if forbidden:
            reason += " (S3 answered 403: a missing key answers 403 when the caller may not s3:ListBucket)"
        near = _nearby_outputs(s3, bucket, path)
        if near:
            reason += "; compile outputs that do exist: " + ", ".join(near)
        v.issues.append(_issue("NEO_MODEL_S3_URI", settings, reason))
        return ""
    v.notes.append(f"model archive found at s3://{bucket}/{key}")
    side = sidecar_key(key)
    forbidden = False
    if head(side):
        v.notes.append(f"sidecar found at s3://{bucket}/{side}")
    elif forbidden:
        why = (
            f"could not verify the sidecar s3://{bucket}/{side}: S3 answered 403 (the caller may not "
            "s3:GetObject on it, or it is missing and the caller may not s3:ListBucket)"
        )
        v.issues.append(_issue("NEO_MODEL_S3_URI", settings, why, None, "warning"))
    else:
        why = (
            f"no ncf-model.json at s3://{bucket}/{side}: ncf-tui writes it beside the Neo output once the job "
            "completes (the server needs its id ranges); compile with ncf-tui, or resume the run that compiled it"
        )
        v.issues.append(_issue("NEO_MODEL_S3_URI", settings, why))
    return key


def _nearby_outputs(s3: Any, bucket: str, path: str) -> list[str]:
    """Folders holding a model archive one level up from ``path`` (e.g. other jobs' compile outputs), as hints;
    never raises."""
    base = path.removesuffix("/")
    base = base.rsplit("/", 1)[0] if base.endswith(".tar.gz") and "/" in base else base
    parent = base.rsplit("/", 1)[0] if "/" in base else ""
    try:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=f"{parent}/" if parent else "", MaxKeys=200)
    except Exception:
        return []
    folders: list[str] = []
    for o in page.get("Contents", []):
        k = str(o["Key"])
        if k.endswith(".tar.gz") and "/" in k and k.rsplit("/", 1)[0] not in folders:
            folders.append(k.rsplit("/", 1)[0])
    return [f"{bucket}/{f}" for f in folders[:3]]


def _check_repository(settings: Settings, aws: Aws, v: _Verdict) -> None:
    from botocore.exceptions import ClientError

    from .aws import aws_errors, error_code

    name, region = settings.image_repo_name, settings.region
    ecr = aws.client("ecr")
    try:
        with aws_errors(aws.target):
            ecr.describe_repositories(repositoryNames=[name])
    except ClientError as exc:
        if error_code(exc) == "RepositoryNotFoundException":

            def create() -> str:
                with aws_errors(aws.target):
                    ecr.create_repository(repositoryName=name, imageTagMutability="MUTABLE")
                return name

            why = f"ECR repository {name!r} does not exist in {region}"
            v.issues.append(_issue("IMAGE_REPO_NAME", settings, why, Fix(f"create ECR repository {name}", create)))
        elif _denied(exc):
            why = f"could not verify: the caller may not ecr:DescribeRepositories on {settings.repository_arn}"
            v.issues.append(_issue("IMAGE_REPO_NAME", settings, why, None, "warning"))
        else:
            raise
    else:
        v.notes.append(f"repository {name} exists in {region}")


# ---------------------------------------------------------------------------------------------- the step

FixPolicy = bool | Callable[[SettingIssue], bool]
MAX_FIX_ROUNDS = 3


def settings_step(
    aws: Aws | None,
    emit: Emit = discard,
    *,
    flags: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
    config: Path | None = None,
    saved_dir: Path | None = None,
    derived: Mapping[str, str] | None = None,
    fix: FixPolicy = False,
    only: Collection[str] | None = None,
) -> Settings:
    """Resolve, validate and (where agreed) fix the settings; one ``SettingEvent`` per value.

    ``aws`` None checks locally only. ``fix`` True applies every offered fix, a callable decides per issue
    (asked once each). ``only`` limits validation to some names (e.g. before the compile stage, when
    NEO_MODEL_S3_URI cannot exist yet). Returns the validated settings (``model_key`` set when found) or raises
    ``SettingsError`` (exit 3) listing every failing value; BadInputError (exit 2) for an unreadable config.
    """
    extra = dict(derived or {})
    if aws is not None:
        extra.setdefault("AWS_DEFAULT_REGION", aws.region)
    settings = resolve_settings(flags=flags, env=env, config=config, saved_dir=saved_dir, derived=extra)
    if aws is not None and "AWS_DEFAULT_REGION" not in (derived or {}) and settings.source("region") == "derived":
        settings = settings.with_value("AWS_DEFAULT_REGION", settings.region, "derived:aws")
    seen: set[tuple[str, str]] = set()
    applied: dict[str, list[str]] = {}
    for _round in range(MAX_FIX_ROUNDS + 1):
        settings, verdicts = validate(settings, aws, only=only)
        changed = False
        for name, v in verdicts.items():
            for issue in v.issues:
                if issue.fix is None or (name, issue.fix.description) in seen:
                    continue
                seen.add((name, issue.fix.description))  # asked (and applied) at most once
                if not (fix(issue) if callable(fix) else fix):
                    continue
                try:
                    new = issue.fix.apply()
                except NcfError:
                    raise
                except Exception as exc:
                    from .aws import error_message

                    applied.setdefault(name, []).append(f"fix failed ({issue.fix.description}): {error_message(exc)}")
                    continue
                applied.setdefault(name, []).append(f"fixed: {issue.fix.description}")
                if new != settings.value(name):
                    settings = settings.with_value(name, new, "fix")
                changed = True
        if not changed:
            break
    else:  # the last round still changed something: judge what the fixes left
        settings, verdicts = validate(settings, aws, only=only)
    errors: list[SettingIssue] = []
    for name, v in verdicts.items():
        errs = [i for i in v.issues if i.severity == "error"]
        warns = [i for i in v.issues if i.severity == "warning"]
        errors.extend(errs)
        parts = applied.get(name, []) + [i.reason for i in errs] + [f"warning: {i.reason}" for i in warns]
        parts += [f"fix available: {i.fix.description}" for i in v.issues if i.fix is not None]
        parts += v.notes
        if v.check.suggestion:
            parts.append(v.check.suggestion)
        emit(
            SettingEvent(
                name=name,
                value=shown(settings.value(name)) if v.check.unsafe else settings.value(name),
                ok=not errs,
                message="; ".join(parts) or "ok",
                source=settings.source(name),
            )
        )
    if errors:
        offered = any(i.fix is not None for i in errors)
        hint = "set them with flags, environment variables or --config FILE"
        if offered:
            hint += "; accept the offered fixes (or pass --yes) to repair the ones marked fixable"
        raise SettingsError(errors, hint=hint)
    return settings
