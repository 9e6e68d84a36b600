"""Properties of the settings validators: they never raise, and what they accept is safe to hand to a shell."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ncf_tui.engine.errors import BadInputError
from ncf_tui.engine.settings import (
    CODEBUILD_VARIABLES,
    NAMES,
    SHELL_METACHARACTERS,
    canonical_name,
    check_value,
    dumps,
    unsafe_reason,
)

# Text biased towards the characters that matter: shell metacharacters, controls, look-alikes, valid pieces.
_PIECES = st.sampled_from(
    [*SHELL_METACHARACTERS, "\n", "\r", "\t", "\x00", "\x1b", "\u200b", "\u202e", "а", "ｌ", "‐", " ", "s3://", "/",
     "..", ".", "-", "_", "us-east-1", "123456789012", "ncf-recommender", "latest", "arn:aws:iam::123456789012:role/",
     "bucket-name", "ml_c5", "model.tar.gz", "A", "z", "9"]
)  # fmt: skip
hostile_text = st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=30).map("".join))


def _assert_safe(value: str) -> None:
    assert value.isascii()
    assert value.isprintable()
    assert not any(ch.isspace() for ch in value)
    assert not (set(value) & SHELL_METACHARACTERS), value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), raw=hostile_text)
def test_validators_never_raise_and_accept_only_safe_values(name: str, raw: str) -> None:
    check = check_value(name, raw)
    assert check.name == name
    if check.ok:
        _assert_safe(check.value)
        assert check.reason == ""
    else:
        assert check.reason  # a refusal always says why
    if check.unsafe:
        assert not check.ok and check.reason.startswith("refused:")


@settings(max_examples=200, deadline=None)
@given(raw=hostile_text)
def test_anything_unsafe_reason_lets_through_has_no_metacharacters(raw: str) -> None:
    if unsafe_reason(raw) == "":
        _assert_safe(raw.strip())


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(st.sampled_from(CODEBUILD_VARIABLES), st.text(max_size=80)))
def test_the_toml_writer_round_trips_any_text(values: dict[str, str]) -> None:
    assert tomllib.loads(dumps(values)) == values


@settings(max_examples=100, deadline=None)
@given(key=st.text(max_size=40))
def test_unknown_names_raise_only_bad_input(key: str) -> None:
    try:
        name = canonical_name(key)
    except BadInputError as exc:
        assert "unknown setting" in exc.message
    else:
        assert name in NAMES


def test_every_name_has_a_rule() -> None:
    for name in NAMES:
        assert check_value(name, "x").name == name
    with pytest.raises(BadInputError):
        check_value("AWS_SECRET_ACCESS_KEY", "x")
