"""engine/secrets: credentials live in the keyring only, come back as boto3 arguments, and never leak in text."""

from __future__ import annotations

import json

import pytest

from ncf_tui.engine.aws import Aws, AwsTarget
from ncf_tui.engine.secrets import (
    SERVICE,
    AwsCredentials,
    SecretsError,
    credentials_for,
    delete_credentials,
    keyring_status,
    read_credentials,
    redact,
    store_credentials,
)

from .memkeyring import MemoryKeyring

KEY_ID = "AKIAFAKEKEYRING00042"
SECRET = "Ncf/TuiFakeSecret+KeyringTest0123456789Zz"[:40]


def test_store_and_read_one_entry_per_profile(memory_keyring: MemoryKeyring) -> None:
    store_credentials("prod", AwsCredentials(KEY_ID, SECRET))
    store_credentials("dev", AwsCredentials("ASIADEVKEY0000000001", SECRET[::-1], session_token="tok/en=="))
    assert set(memory_keyring.entries) == {(SERVICE, "prod"), (SERVICE, "dev")}
    assert read_credentials("prod") == AwsCredentials(KEY_ID, SECRET)
    dev = read_credentials("dev")
    assert dev is not None and dev.session_token == "tok/en=="
    choice = credentials_for("prod")
    assert choice.source == "keyring" and "keyring" in choice.message
    assert choice.credentials == {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET}
    dev_credentials = credentials_for("dev").credentials
    assert dev_credentials is not None and dev_credentials["aws_session_token"] == "tok/en=="
    # The mapping is what AwsTarget passes to a real boto3 session.
    session = Aws(AwsTarget(region="us-east-1", credentials=choice.credentials)).session
    frozen = session.get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key) == (KEY_ID, SECRET)
    assert delete_credentials("prod") and not delete_credentials("prod")
    assert read_credentials("prod") is None and credentials_for("prod").source == "aws-chain"


def test_no_secret_in_repr_str_or_errors(memory_keyring: MemoryKeyring) -> None:
    creds = AwsCredentials(KEY_ID, SECRET, session_token="SessionTokenValue123")
    for text in (repr(creds), str(creds), repr(credentials_for(None)), f"{creds}"):
        assert SECRET not in text and "SessionTokenValue123" not in text and KEY_ID not in text
    with pytest.raises(SecretsError) as bad_secret:
        store_credentials("p", AwsCredentials(KEY_ID, SECRET + "\nrm -rf /"))
    assert SECRET not in str(bad_secret.value)
    with pytest.raises(SecretsError, match="access key id is not an AWS key id") as bad_id:
        store_credentials("p", AwsCredentials("akia" + SECRET, SECRET))
    assert SECRET not in str(bad_id.value)
    with pytest.raises(SecretsError, match="profile name"):
        store_credentials("../../etc/passwd", AwsCredentials(KEY_ID, SECRET))
    assert memory_keyring.entries == {}, "nothing is stored when a value is refused"
    assert redact(f"x {SECRET} y", creds) == "x *** y"


def test_no_usable_keyring_says_so_and_falls_back_to_the_aws_chain(no_keyring: None) -> None:
    status = keyring_status()
    assert not status.usable and "no usable OS keyring" in status.message
    with pytest.raises(SecretsError, match="no usable OS keyring"):
        store_credentials("prod", AwsCredentials(KEY_ID, SECRET))
    choice = credentials_for("prod")
    assert choice.credentials is None and choice.source == "aws-chain"
    assert "normal credential chain" in choice.message
    assert read_credentials("prod") is None and delete_credentials("prod") is False


def test_null_backend_is_not_usable_either() -> None:
    import keyring
    from keyring.backends.null import Keyring as NullKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(NullKeyring())
    try:
        assert not keyring_status().usable
        assert credentials_for("prod").source == "aws-chain"
    finally:
        keyring.set_keyring(previous)


def test_locked_or_damaged_keyring_falls_back(memory_keyring: MemoryKeyring) -> None:
    store_credentials("prod", AwsCredentials(KEY_ID, SECRET))
    memory_keyring.locked = True
    choice = credentials_for("prod")
    assert choice.source == "aws-chain" and "could not be read (KeyringLocked)" in choice.message
    with pytest.raises(SecretsError, match="refused to store") as info:
        store_credentials("prod", AwsCredentials(KEY_ID, SECRET))
    assert SECRET not in str(info.value)
    memory_keyring.locked = False
    memory_keyring.entries[(SERVICE, "other")] = json.dumps({"version": 1, "aws_access_key_id": "x"})
    choice = credentials_for("other")
    assert choice.source == "aws-chain" and "not usable credentials" in choice.message
    memory_keyring.entries[(SERVICE, "other")] = "plain password"
    assert read_credentials("other") is None
