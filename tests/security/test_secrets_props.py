"""Properties of engine/secrets over arbitrary input: a refusal never quotes the secret; what is stored reads back."""

from __future__ import annotations

import keyring
from hypothesis import given, settings
from hypothesis import strategies as st

from ncf_tui.engine.secrets import AwsCredentials, SecretsError, read_credentials, store_credentials

from .memkeyring import MemoryKeyring

KEY_IDS = st.one_of(st.from_regex(r"(AKIA|ASIA)[A-Z0-9]{16}", fullmatch=True), st.text(max_size=40))
SECRETS = st.one_of(st.from_regex(r"[A-Za-z0-9/+]{40}", fullmatch=True), st.text(min_size=6, max_size=80))


@settings(max_examples=200, deadline=None)
@given(key_id=KEY_IDS, secret=SECRETS, token=st.one_of(st.none(), st.text(min_size=6, max_size=60)))
def test_refusals_never_quote_the_secret_and_accepted_pairs_round_trip(
    key_id: str, secret: str, token: str | None
) -> None:
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        creds = AwsCredentials(key_id, secret, token)
        for text in (repr(creds), str(creds)):
            assert secret not in text and (token is None or token not in text)
        try:
            store_credentials("p", creds)
        except SecretsError as exc:
            message = f"{exc}{exc.hint or ''}"
            assert secret not in message and (token is None or token not in message)
            assert ring.entries == {}, "a refused pair is not stored"
            return
        assert read_credentials("p") == creds
    finally:
        keyring.set_keyring(previous)
