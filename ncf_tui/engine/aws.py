"""One place that makes boto3 clients, and turns credential and connection failures into clear errors.

Retries are botocore's ``standard`` mode (throttling and transient errors retried with jittered backoff), not
hand-written loops. The engine never knows whether it talks to AWS or to the sandbox: it gets a region, an
optional profile, an optional endpoint URL and optional credentials, nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .errors import ExitCode, NcfError

USER_AGENT = "ncf-tui/0.1.0"
MAX_ATTEMPTS = 10
"""botocore standard-mode attempts; enough to ride out a throttled burst without hiding a real outage."""


class AwsError(NcfError):
    """AWS could not be reached or refused who we are: a setting to fix before anything else can run."""

    exit_code = ExitCode.PREFLIGHT_FAILED


@dataclass(frozen=True)
class AwsTarget:
    """Where and as whom to call AWS."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: dict[str, str] | None = field(default=None, repr=False)

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"{where} ({self.region}{', profile ' + self.profile if self.profile else ''})"


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    user_id: str


class Aws:
    """A boto3 session for one target, handing out one thread-safe client per service."""

    def __init__(self, target: AwsTarget) -> None:
        import boto3
        import botocore.exceptions

        self.target = target
        try:
            self.session = boto3.session.Session(
                profile_name=target.profile, region_name=target.region, **(target.credentials or {})
            )
        except botocore.exceptions.ProfileNotFound:
            raise AwsError(
                f"AWS profile {target.profile!r} not found",
                hint="list profiles with `aws configure list-profiles`, or pass --profile NAME",
            ) from None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str:
        return self.target.region

    def client(self, service: str) -> Any:
        """A cached client; boto3 clients are thread-safe once made, sessions are not, hence the lock."""
        from botocore.config import Config

        with self._lock:
            if service not in self._clients:
                cfg = Config(
                    retries=self._retries(),
                    connect_timeout=5,
                    read_timeout=60,
                    user_agent_extra=USER_AGENT,
                    max_pool_connections=32,
                )
                with aws_errors(self.target):
                    self._clients[service] = self.session.client(
                        service, region_name=self.target.region, endpoint_url=self.target.endpoint_url, config=cfg
                    )
            return self._clients[service]

    def _retries(self) -> dict[str, Any]:
        """botocore's standard mode; the attempts are the user's `max_attempts` (AWS_MAX_ATTEMPTS or the
        profile's `max_attempts`, total attempts as the SDKs' shared config defines them) when set, else ours."""
        configured = self.session._session.get_config_variable("max_attempts")  # env, then the profile
        if configured:
            return {"mode": "standard", "total_max_attempts": max(1, int(configured))}
        return {"mode": "standard", "max_attempts": MAX_ATTEMPTS}

    def whoami(self) -> Identity:
        with aws_errors(self.target):
            r = self.client("sts").get_caller_identity()
        return Identity(account=r["Account"], arn=r["Arn"], user_id=r["UserId"])

    def available_regions(self, service: str = "codebuild") -> list[str]:
        return list(self.session.get_available_regions(service))


def resolve_region(explicit: str | None = None, profile: str | None = None) -> str:
    """The region a run uses: the flag, then AWS_REGION, AWS_DEFAULT_REGION, then the profile's configured
    region; "" when none says (the caller reports that with its fix). One rule for every front end."""
    import os

    region = explicit or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    if region:
        return region
    try:
        import botocore.session

        return str(botocore.session.Session(profile=profile).get_config_variable("region") or "")
    except Exception:  # a missing profile is reported by the first AWS call, with its own message
        return ""


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError (empty for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


_CREDENTIAL_CODES = {
    "ExpiredToken": ("your AWS session token has expired", "refresh it: `aws sso login` or new temporary keys"),
    "ExpiredTokenException": ("your AWS session token has expired", "refresh it: `aws sso login` or new keys"),
    "RequestExpired": ("the request expired: is this machine's clock right?", "sync the clock (NTP)"),
    "InvalidClientTokenId": ("the AWS access key id is not valid", "check AWS_ACCESS_KEY_ID or the profile's keys"),
    "UnrecognizedClientException": ("the AWS access key id is not valid", "check the profile's keys"),
    "SignatureDoesNotMatch": ("the AWS secret access key does not match its key id", "check the profile's secret"),
    "AuthFailure": ("AWS refused the credentials", "check the profile's keys"),
}


def translate(exc: BaseException, target: AwsTarget | None = None) -> NcfError | None:
    """The clear error for a credentials, region or connection failure; None for anything else."""
    import botocore.exceptions as bx

    where = target.describe() if target else "AWS"
    if isinstance(exc, bx.NoCredentialsError):
        return AwsError(
            "no AWS credentials found",
            hint="run `aws configure`, set AWS_PROFILE or pass --profile, or try `ncf-tui --sandbox`",
        )
    if isinstance(exc, bx.PartialCredentialsError):
        return AwsError(f"incomplete AWS credentials: {exc}", hint="set both the access key id and the secret")
    if isinstance(exc, bx.NoRegionError):
        return AwsError("no AWS region set", hint="pass --region, or set AWS_DEFAULT_REGION")
    if isinstance(exc, bx.ProfileNotFound):
        return AwsError(str(exc), hint="list profiles with `aws configure list-profiles`")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return AwsError(
            f"cannot reach {where}: {exc}",
            hint="check the network or --endpoint-url; if the sandbox was stopped, start it again and use --resume",
        )
    if isinstance(exc, bx.ClientError):
        code = error_code(exc)
        if code in _CREDENTIAL_CODES:
            message, hint = _CREDENTIAL_CODES[code]
            return AwsError(message, hint=hint)
    return None


@contextmanager
def aws_errors(target: AwsTarget | None = None) -> Iterator[None]:
    """Re-raise credential, region and connection failures as one clear ``AwsError`` each."""
    try:
        yield
    except NcfError:
        raise
    except Exception as exc:
        clear = translate(exc, target)
        if clear is None:
            raise
        raise clear from None
