"""AWS credentials in the OS keyring: stored there only, read back as boto3 keyword arguments.

Credentials stored with ``store_credentials`` go to the keyring (service ``ncf-tui``, one entry per AWS
profile name) and nowhere else: not the settings file, not the run state, not events or logs. No front end
stores them yet (the wizard asks for none); a caller of this module does. A run reads them back with
``credentials_for(profile)`` and hands the mapping to ``AwsTarget(credentials=...)``, which passes it to the
boto3 session. When the machine has no usable keyring (keyring's ``fail`` or ``null`` backends, a locked or
broken backend), this module says so in one sentence and the run falls back to the normal AWS credential
chain (environment, profile, SSO, instance role) instead of failing.

The secret is never part of a message, a ``repr`` or an exception raised here: a wrong value is described
by its shape and length only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import BadInputError

SERVICE = "ncf-tui"
"""The keyring service name every entry of this product lives under."""

DEFAULT_PROFILE = "default"

_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_PROFILE = re.compile(r"^[A-Za-z0-9_.+=,@-]{1,64}$")
_UNUSABLE_BACKENDS = ("keyring.backends.fail", "keyring.backends.null")


class SecretsError(BadInputError):
    """Credentials could not be stored or were not usable; the message never contains the secret."""


@dataclass(frozen=True)
class AwsCredentials:
    """An access key pair (and optional session token); ``repr`` shows the key id's last four only."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id='…{self.access_key_id[-4:]}', secret_access_key='***')"

    __str__ = __repr__

    def validate(self) -> None:
        """Refuse a value that cannot be an AWS key pair, naming the field and its shape, never its content."""
        if not _KEY_ID.match(self.access_key_id):
            raise SecretsError(
                f"the access key id is not an AWS key id (got {len(self.access_key_id)} characters; "
                "expected 16 or more capital letters and digits, such as AKIA…)"
            )
        s = self.secret_access_key
        if not s or len(s) > 512 or any(c.isspace() or not c.isprintable() for c in s):
            raise SecretsError(
                f"the secret access key is not usable (got {len(s)} characters; "
                "expected one line without spaces, 40 characters for an IAM user key)"
            )
        t = self.session_token
        if t is not None and (not t or any(c.isspace() or not c.isprintable() for c in t)):
            raise SecretsError("the session token is not usable (empty, or with spaces or line breaks)")

    def boto3_kwargs(self) -> dict[str, str]:
        """The keyword arguments of ``boto3.session.Session`` (and of ``AwsTarget.credentials``)."""
        out = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        if self.session_token:
            out["aws_session_token"] = self.session_token
        return out

    def _dumps(self) -> str:
        return json.dumps(
            {"version": 1, **self.boto3_kwargs()},
            separators=(",", ":"),
        )

    @classmethod
    def _loads(cls, text: str) -> AwsCredentials:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not an ncf-tui credentials entry")
        creds = cls(
            access_key_id=str(data["aws_access_key_id"]),
            secret_access_key=str(data["aws_secret_access_key"]),
            session_token=str(data["aws_session_token"]) if data.get("aws_session_token") else None,
        )
        creds.validate()
        return creds


@dataclass(frozen=True)
class KeyringStatus:
    """Whether the keyring can hold secrets here, the backend's name, and a sentence for the user."""

    usable: bool
    backend: str
    message: str


@dataclass(frozen=True)
class CredentialsChoice:
    """What a run should use: ``credentials`` for ``AwsTarget`` (None = the AWS credential chain) and why."""

    credentials: dict[str, str] | None = field(repr=False)
    source: str  # "keyring" | "aws-chain"
    message: str


def keyring_status() -> KeyringStatus:
    """Which keyring backend is active and whether it can store secrets (never raises)."""
    try:
        import keyring
    except ImportError:
        return KeyringStatus(False, "none", "the keyring package is not installed; credentials cannot be stored")
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a broken keyring configuration must not stop the run
        return KeyringStatus(False, "unknown", f"the OS keyring could not be loaded ({type(exc).__name__})")
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if type(backend).__module__.startswith(_UNUSABLE_BACKENDS):
        return KeyringStatus(
            False,
            name,
            "no usable OS keyring on this machine (keyring found no backend); credentials cannot be stored here, "
            "so AWS access uses the normal credential chain (environment, profile, SSO)",
        )
    return KeyringStatus(True, name, f"credentials are kept in the OS keyring ({type(backend).__qualname__})")


def _profile(profile: str | None) -> str:
    name = profile or DEFAULT_PROFILE
    if not _PROFILE.match(name):
        raise SecretsError(
            f"profile name {name[:64]!r} is not usable as a keyring entry "
            "(letters, digits and _.+=,@- only, at most 64)"
        )
    return name


def store_credentials(profile: str | None, credentials: AwsCredentials) -> KeyringStatus:
    """Keep ``credentials`` for ``profile`` in the OS keyring; ``SecretsError`` if no usable keyring exists."""
    credentials.validate()
    name = _profile(profile)
    status = keyring_status()
    if not status.usable:
        raise SecretsError(status.message, hint="use an AWS profile (`aws configure`) or environment variables")
    import keyring

    try:
        keyring.set_password(SERVICE, name, credentials._dumps())
    except Exception as exc:
        raise SecretsError(
            f"the OS keyring refused to store the credentials for profile {name!r} ({type(exc).__name__})",
            hint="unlock the keyring, or use an AWS profile (`aws configure`)",
        ) from None
    return status


def read_credentials(profile: str | None) -> AwsCredentials | None:
    """The credentials stored for ``profile``, None when there are none or no keyring is usable.

    An entry that is unreadable (not written by this module, or damaged) is treated as absent: raising here
    would stop a run that the AWS credential chain could still serve.
    """
    return _read(profile)[0]


def _read(profile: str | None) -> tuple[AwsCredentials | None, str]:
    name = _profile(profile)
    status = keyring_status()
    if not status.usable:
        return None, status.message
    import keyring

    try:
        text = keyring.get_password(SERVICE, name)
    except Exception as exc:
        return None, f"the OS keyring could not be read ({type(exc).__name__}); using the AWS credential chain"
    if text is None:
        return None, f"no credentials stored in the OS keyring for profile {name!r}; using the AWS credential chain"
    try:
        return AwsCredentials._loads(text), f"using the credentials stored in the OS keyring for profile {name!r}"
    except (ValueError, KeyError, TypeError, SecretsError):
        return None, (
            f"the OS keyring entry for profile {name!r} is not usable credentials; using the AWS credential chain"
        )


def delete_credentials(profile: str | None) -> bool:
    """Forget the stored credentials of ``profile``; True if there were some."""
    name = _profile(profile)
    if not keyring_status().usable:
        return False
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(SERVICE, name)
    except keyring.errors.PasswordDeleteError:
        return False
    except Exception:
        return False
    return True


def credentials_for(profile: str | None = None) -> CredentialsChoice:
    """What a run should authenticate with: keyring credentials for ``profile``, else the AWS chain.

    Use it as ``AwsTarget(region=..., profile=None if c.source == "keyring" else profile,
    credentials=c.credentials)`` and show ``c.message`` once.
    """
    creds, message = _read(profile)
    if creds is None:
        return CredentialsChoice(None, "aws-chain", message)
    return CredentialsChoice(creds.boto3_kwargs(), "keyring", message)


def redact(text: str, credentials: AwsCredentials | dict[str, Any] | None) -> str:
    """``text`` with any secret of ``credentials`` replaced by ``***`` (for text that must be shown)."""
    if credentials is None:
        return text
    values = credentials.boto3_kwargs() if isinstance(credentials, AwsCredentials) else credentials
    for key in ("aws_secret_access_key", "aws_session_token"):
        value = values.get(key)
        if isinstance(value, str) and len(value) >= 8:
            text = text.replace(value, "***")
    return text
