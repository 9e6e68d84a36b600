"""The IAM policy evaluator behind the sandbox's iam:SimulatePrincipalPolicy.

Table-driven: every case names the rule it checks (IAM User Guide, "Policy evaluation logic", "IAM JSON
policy elements" and "Condition operators"), so a failure says which rule broke. The response shapes are
checked against botocore's own IAM service model, which is what boto3 parses the server's answer with.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ncf_tui.sandbox.policy import (
    ContextEntry,
    InvalidInputError,
    PolicyError,
    SourcePolicy,
    evaluate,
    glob_match,
    iter_pages,
    parse_policy,
    simulate,
    simulate_response,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET_ARN = "arn:aws:s3:::models"
OBJ = f"{BUCKET_ARN}/demo/model.tar.gz"


def doc(*statements: dict[str, Any], version: str = "2012-10-17") -> dict[str, Any]:
    return {"Version": version, "Statement": list(statements)}


def allow(sid: str, action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(sid: str, action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Deny", "Action": action, "Resource": resource, **extra}


def ctx(name: str, *values: str, type_: str = "string") -> dict[str, Any]:
    return {"ContextKeyName": name, "ContextKeyValues": list(values), "ContextKeyType": type_}


@dataclass(frozen=True)
class Case:
    id: str
    rule: str  # the documented rule this case checks
    policies: tuple[dict[str, Any], ...]
    action: str
    resource: str
    decision: str
    matched: tuple[str, ...] = ()  # Sids of the statements reported as matched
    missing: tuple[str, ...] = ()
    context: tuple[dict[str, Any], ...] = ()


def case(
    case_id: str,
    rule: str,
    policies: dict[str, Any] | tuple[dict[str, Any], ...],
    action: str,
    resource: str,
    decision: str,
    matched: tuple[str, ...] = (),
    missing: tuple[str, ...] = (),
    context: tuple[dict[str, Any], ...] = (),
) -> Case:
    pols = policies if isinstance(policies, tuple) else (policies,)
    return Case(case_id, rule, pols, action, resource, decision, matched, missing, context)


VPC_ONLY = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}

CASES = [
    # ---- decision order: explicit deny, then allow, else implicit deny
    case(
        "allow-grants",
        "an applicable Allow grants the request (evaluation logic: identity-based allow)",
        doc(allow("A", "s3:GetObject", OBJ)),
        "s3:GetObject",
        OBJ,
        "allowed",
        ("A",),
    ),
    case(
        "default-implicit-deny",
        "no applicable statement: the request is implicitly denied (evaluation logic default)",
        doc(allow("A", "s3:GetObject", OBJ)),
        "s3:PutObject",
        OBJ,
        "implicitDeny",
    ),
    case(
        "deny-overrides-allow",
        "an explicit Deny overrides any Allow (evaluation logic step 1)",
        doc(allow("A", "s3:*", "*"), deny("D", "s3:GetObject", OBJ)),
        "s3:GetObject",
        OBJ,
        "explicitDeny",
        ("D",),
    ),
    case(
        "deny-in-other-policy",
        "an explicit Deny in any policy overrides an Allow in another (evaluation logic step 1)",
        (doc(allow("A", "s3:GetObject", OBJ)), doc(deny("D", "s3:*", "*"))),
        "s3:GetObject",
        OBJ,
        "explicitDeny",
        ("D",),
    ),
    case(
        "deny-elsewhere-leaves-allow",
        "a Deny whose Resource does not match does not apply (Resource element)",
        doc(allow("A", "s3:GetObject", OBJ), deny("D", "s3:GetObject", f"{BUCKET_ARN}/secret/*")),
        "s3:GetObject",
        OBJ,
        "allowed",
        ("A",),
    ),
    case(
        "all-allows-reported",
        "every applicable Allow is reported as a matched statement (MatchedStatements)",
        doc(allow("A1", "s3:Get*", "*"), allow("A2", "s3:GetObject", OBJ), allow("X", "ecr:*")),
        "s3:GetObject",
        OBJ,
        "allowed",
        ("A1", "A2"),
    ),
    # ---- Action / NotAction
    case(
        "action-case-insensitive",
        "action names match case-insensitively (Action element)",
        doc(allow("A", "S3:getobject", OBJ)),
        "s3:GetObject",
        OBJ,
        "allowed",
        ("A",),
    ),
    case(
        "action-prefix-case-insensitive",
        "the service prefix matches case-insensitively too (Action element)",
        doc(allow("A", "ECR:GetAuthorizationToken")),
        "ecr:getauthorizationtoken",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "action-star-glob",
        "'*' in an action matches any run of characters (Action element wildcards)",
        doc(allow("A", "s3:Get*", OBJ)),
        "s3:GetObjectTagging",
        OBJ,
        "allowed",
        ("A",),
    ),
    case(
        "action-star-is-anchored",
        "an action glob must match the whole name (Action element wildcards)",
        doc(allow("A", "s3:Get*", OBJ)),
        "s3:PutObject",
        OBJ,
        "implicitDeny",
    ),
    case(
        "action-question-glob",
        "'?' in an action matches exactly one character (Action element wildcards)",
        doc(allow("A", "s3:?etObject", OBJ)),
        "s3:GetObject",
        OBJ,
        "allowed",
        ("A",),
    ),
    case(
        "action-all",
        "Action '*' matches every action of every service (Action element)",
        doc(allow("A", "*", "*")),
        "iam:CreateUser",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "action-other-service",
        "'s3:*' does not match another service's action (Action element)",
        doc(allow("A", "s3:*", "*")),
        "ecr:PutImage",
        "*",
        "implicitDeny",
    ),
    case(
        "action-list",
        "a list of actions matches any member (Action element, array form)",
        doc(allow("A", ["ecr:PutImage", "s3:GetObject"], "*")),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "notaction-allows-the-rest",
        "Allow with NotAction grants every action not listed (NotAction element)",
        doc({"Sid": "N", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        "s3:ListBucket",
        "*",
        "allowed",
        ("N",),
    ),
    case(
        "notaction-excludes-listed",
        "Allow with NotAction grants nothing for a listed action (NotAction element)",
        doc({"Sid": "N", "Effect": "Allow", "NotAction": ["iam:*", "s3:*"], "Resource": "*"}),
        "IAM:CreateUser",
        "*",
        "implicitDeny",
    ),
    case(
        "deny-notaction",
        "Deny with NotAction denies every unlisted action (NotAction with Deny)",
        doc(allow("A", "*"), {"Sid": "N", "Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}),
        "ecr:PutImage",
        "*",
        "explicitDeny",
        ("N",),
    ),
    # ---- Resource / NotResource
    case(
        "resource-case-sensitive",
        "resource ARNs match case-sensitively (Resource element)",
        doc(allow("A", "s3:ListBucket", "arn:aws:s3:::Models")),
        "s3:ListBucket",
        BUCKET_ARN,
        "implicitDeny",
    ),
    case(
        "resource-star-spans-slashes",
        "a resource '*' spans '/' inside a segment (Resource wildcards)",
        doc(allow("A", "s3:GetObject", f"{BUCKET_ARN}/*")),
        "s3:GetObject",
        f"{BUCKET_ARN}/a/b/c",
        "allowed",
        ("A",),
    ),
    case(
        "resource-final-star-spans-colons",
        "a '*' ending an ARN segment may match past colons (Resource wildcards)",
        doc(allow("A", "logs:PutLogEvents", "arn:aws:logs:us-east-1:1:log-group:/g:*")),
        "logs:PutLogEvents",
        "arn:aws:logs:us-east-1:1:log-group:/g:log-stream:abc",
        "allowed",
        ("A",),
    ),
    case(
        "resource-inner-star-stays-in-segment",
        "a '*' inside a segment does not cross a colon (Resource wildcards)",
        doc(allow("A", "logs:PutLogEvents", "arn:aws:logs:us-east-1:1:log-group:a*z")),
        "logs:PutLogEvents",
        "arn:aws:logs:us-east-1:1:log-group:a:z",
        "implicitDeny",
    ),
    case(
        "resource-question-one-char",
        "'?' in a resource matches exactly one character (Resource wildcards)",
        doc(allow("A", "s3:ListBucket", "arn:aws:s3:::model?")),
        "s3:ListBucket",
        "arn:aws:s3:::models-2",
        "implicitDeny",
    ),
    case(
        "resource-list",
        "a list of resources matches any member (Resource element, array form)",
        doc(allow("A", "s3:ListBucket", ["arn:aws:s3:::other", BUCKET_ARN])),
        "s3:ListBucket",
        BUCKET_ARN,
        "allowed",
        ("A",),
    ),
    case(
        "notresource-allows-the-rest",
        "Allow with NotResource covers every resource not listed (NotResource)",
        doc({"Sid": "N", "Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET_ARN}/secret/*"}),
        "s3:GetObject",
        OBJ,
        "allowed",
        ("N",),
    ),
    case(
        "notresource-excludes-listed",
        "Allow with NotResource does not cover a listed resource (NotResource)",
        doc({"Sid": "N", "Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET_ARN}/*"}),
        "s3:GetObject",
        OBJ,
        "implicitDeny",
    ),
    case(
        "request-star-needs-star",
        "simulating resource '*' matches only a statement whose Resource matches '*'",
        doc(allow("A", "s3:ListBucket", BUCKET_ARN)),
        "s3:ListBucket",
        "*",
        "implicitDeny",
    ),
    case(
        "statement-object-form",
        "Statement may be a single object instead of a list (Statement element)",
        {"Version": "2012-10-17", "Statement": allow("A", "ecr:PutImage")},
        "ecr:PutImage",
        "*",
        "allowed",
        ("A",),
    ),
    # ---- conditions
    case(
        "cond-string-equals",
        "StringEquals holds when the context value equals a policy value",
        doc(allow("A", "s3:*", "*", Condition=VPC_ONLY)),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:SourceVpc", "vpc-1"),),
    ),
    case(
        "cond-string-equals-differs",
        "StringEquals fails on another value: the Allow does not apply",
        doc(allow("A", "s3:*", "*", Condition=VPC_ONLY)),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceVpc", "vpc-2"),),
    ),
    case(
        "cond-missing-key-reported",
        "a condition key absent from the context: statement not applied, key reported",
        doc(allow("A", "s3:*", "*", Condition=VPC_ONLY)),
        "s3:GetObject",
        "*",
        "implicitDeny",
        missing=("aws:SourceVpc",),
    ),
    case(
        "cond-missing-key-in-deny",
        "a Deny whose condition key is absent is not applied (no guess) and reported",
        doc(allow("A", "s3:*"), deny("D", "s3:*", "*", Condition={"Bool": {"aws:SecureTransport": "false"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        missing=("aws:SecureTransport",),
    ),
    case(
        "cond-bool-deny",
        "Bool compares true/false case-insensitively; an applicable Deny wins",
        doc(allow("A", "s3:*"), deny("D", "s3:*", "*", Condition={"Bool": {"aws:SecureTransport": False}})),
        "s3:GetObject",
        "*",
        "explicitDeny",
        ("D",),
        context=(ctx("aws:SecureTransport", "FALSE", type_="boolean"),),
    ),
    case(
        "cond-ifexists-absent",
        "...IfExists holds when the key is absent, and is not reported missing",
        doc(allow("A", "s3:*", "*", Condition={"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "cond-ifexists-present",
        "...IfExists still compares a present key",
        doc(allow("A", "s3:*", "*", Condition={"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceVpc", "vpc-9"),),
    ),
    case(
        "cond-key-case-insensitive",
        "condition key names match the context case-insensitively",
        doc(allow("A", "s3:*", "*", Condition={"StringEquals": {"AWS:SOURCEVPC": "vpc-1"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:sourcevpc", "vpc-1"),),
    ),
    case(
        "cond-values-or",
        "several values of one key are ORed (Condition element, multiple values)",
        doc(allow("A", "s3:*", "*", Condition={"StringEquals": {"aws:SourceVpc": ["vpc-0", "vpc-1"]}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:SourceVpc", "vpc-1"),),
    ),
    case(
        "cond-keys-and",
        "several keys and operators are ANDed (Condition element)",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"StringEquals": {"aws:SourceVpc": "vpc-1", "aws:username": "bob"}},
            )
        ),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceVpc", "vpc-1"), ctx("aws:username", "eve")),
    ),
    case(
        "cond-string-not-equals-nor",
        "StringNotEquals holds only if the value equals none of the policy values",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}},
            )
        ),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:RequestedRegion", "eu-west-1"),),
    ),
    case(
        "cond-negation-over-all-values",
        "a negated operator is the negation of its positive one, over every value of a multi-valued key",
        doc(allow("A", "s3:*", "*", Condition={"StringNotEquals": {"aws:TagKeys": "secret"}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:TagKeys", "team", "secret", type_="stringList"),),
    ),
    case(
        "cond-missing-reported-once",
        "MissingContextValues lists each absent key once, however many statements need it",
        doc(allow("A", "s3:*", "*", Condition=VPC_ONLY), deny("D", "s3:*", "*", Condition=VPC_ONLY)),
        "s3:GetObject",
        "*",
        "implicitDeny",
        missing=("aws:SourceVpc",),
    ),
    case(
        "cond-string-like",
        "StringLike supports '*' and '?' globs, case-sensitively",
        doc(allow("A", "s3:ListBucket", BUCKET_ARN, Condition={"StringLike": {"s3:prefix": "demo/*"}})),
        "s3:ListBucket",
        BUCKET_ARN,
        "allowed",
        ("A",),
        context=(ctx("s3:prefix", "demo/a/b"),),
    ),
    case(
        "cond-string-equals-ignore-case",
        "StringEqualsIgnoreCase compares without case",
        doc(allow("A", "s3:*", "*", Condition={"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "ML"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:PrincipalTag/team", "ml"),),
    ),
    case(
        "cond-arn-like",
        "ArnLike matches each ARN segment with globs",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"ArnLike": {"aws:SourceArn": "arn:aws:codebuild:*:123456789012:project/*"}},
            )
        ),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:SourceArn", "arn:aws:codebuild:us-east-1:123456789012:project/ncf"),),
    ),
    case(
        "cond-arn-equals-wildcards",
        "ArnEquals behaves like ArnLike (wildcards allowed) and rejects other accounts",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:codebuild:*:123456789012:project/*"}},
            )
        ),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceArn", "arn:aws:codebuild:us-east-1:999999999999:project/ncf"),),
    ),
    case(
        "cond-numeric",
        "NumericLessThanEquals compares numbers, not strings",
        doc(allow("A", "s3:*", "*", Condition={"NumericLessThanEquals": {"s3:max-keys": "10"}})),
        "s3:ListBucket",
        "*",
        "allowed",
        ("A",),
        context=(ctx("s3:max-keys", "9", type_="numeric"),),
    ),
    case(
        "cond-numeric-equals-decimal",
        "NumericEquals treats 1.0 and 1 as equal numbers",
        doc(allow("A", "s3:*", "*", Condition={"NumericEquals": {"s3:max-keys": 1}})),
        "s3:ListBucket",
        "*",
        "allowed",
        ("A",),
        context=(ctx("s3:max-keys", "1.0", type_="numeric"),),
    ),
    case(
        "cond-date",
        "DateGreaterThan compares ISO 8601 dates",
        doc(allow("A", "s3:*", "*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:CurrentTime", "2025-12-31T23:59:59Z", type_="date"),),
    ),
    case(
        "cond-ip",
        "IpAddress matches an address inside the CIDR block",
        doc(allow("A", "s3:*", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:SourceIp", "10.1.2.3", type_="ip"),),
    ),
    case(
        "cond-not-ip",
        "NotIpAddress fails for an address inside the block",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}},
            )
        ),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceIp", "192.168.1.1", type_="ip"),),
    ),
    case(
        "cond-null",
        "Null true holds when the key is absent, and needs no context",
        doc(allow("A", "s3:*", "*", Condition={"Null": {"aws:TokenIssueTime": "true"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "cond-for-any-value",
        "ForAnyValue holds if any context value matches",
        doc(allow("A", "s3:*", "*", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "env"]}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(ctx("aws:TagKeys", "owner", "env", type_="stringList"),),
    ),
    case(
        "cond-for-all-values",
        "ForAllValues fails if any context value is outside the set",
        doc(allow("A", "s3:*", "*", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:TagKeys", "team", "owner", type_="stringList"),),
    ),
    case(
        "cond-for-all-values-absent",
        "ForAllValues holds when the key is absent (documented)",
        doc(allow("A", "s3:*", "*", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    # ---- policy variables (Version 2012-10-17)
    case(
        "variable-missing",
        "a policy variable without a context value: statement not applied, key reported",
        doc(allow("A", "iam:GetUser", "arn:aws:iam::123456789012:user/${aws:username}")),
        "iam:GetUser",
        "arn:aws:iam::123456789012:user/bob",
        "implicitDeny",
        missing=("aws:username",),
    ),
    case(
        "variable-from-context",
        "a policy variable takes its value from the request context",
        doc(allow("A", "iam:GetUser", "arn:aws:iam::123456789012:user/${aws:username}")),
        "iam:GetUser",
        "arn:aws:iam::123456789012:user/bob",
        "allowed",
        ("A",),
        context=(ctx("aws:username", "bob"),),
    ),
    case(
        "variable-literal-in-2008",
        "in Version 2008-10-17 '${...}' is literal text, not a variable",
        doc(allow("A", "iam:GetUser", "arn:aws:iam::123456789012:user/${aws:username}"), version="2008-10-17"),
        "iam:GetUser",
        "arn:aws:iam::123456789012:user/${aws:username}",
        "allowed",
        ("A",),
    ),
    case(
        "variable-escaped-star",
        "${*} is a literal '*', not a wildcard",
        doc(allow("A", "s3:GetObject", "arn:aws:s3:::models/${*}")),
        "s3:GetObject",
        OBJ,
        "implicitDeny",
    ),
    # ---- negated operators on an absent key (Condition operators, "Important": "If the policy condition
    # requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key is not
    # present, the condition is true")
    case(
        "neg-string-not-equals-absent",
        "StringNotEquals on an absent key is true: the Allow applies, nothing is reported missing",
        doc(allow("A", "s3:*", "*", Condition={"StringNotEquals": {"aws:SourceVpc": "vpc-1"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "neg-string-not-like-absent",
        "StringNotLike on an absent key is true",
        doc(allow("A", "s3:*", "*", Condition={"StringNotLike": {"s3:prefix": "secret/*"}})),
        "s3:ListBucket",
        BUCKET_ARN,
        "allowed",
        ("A",),
    ),
    case(
        "neg-arn-not-like-absent-deny",
        "ArnNotLike on an absent key is true, so a Deny that uses it applies (the guide's own example key)",
        doc(
            allow("A", "s3:*"),
            deny("D", "s3:*", "*", Condition={"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:123456789012:*"}}),
        ),
        "s3:GetObject",
        "*",
        "explicitDeny",
        ("D",),
    ),
    case(
        "neg-arn-not-equals-absent",
        "ArnNotEquals on an absent key is true",
        doc(allow("A", "s3:*", "*", Condition={"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "neg-not-ip-address-absent",
        "NotIpAddress on an absent key is true",
        doc(allow("A", "s3:*", "*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "neg-numeric-not-equals-absent",
        "NumericNotEquals on an absent key is true",
        doc(allow("A", "s3:*", "*", Condition={"NumericNotEquals": {"s3:max-keys": "10"}})),
        "s3:ListBucket",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "neg-date-not-equals-absent",
        "DateNotEquals on an absent key is true",
        doc(allow("A", "s3:*", "*", Condition={"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
    ),
    case(
        "neg-for-any-value-absent",
        "ForAnyValue: with a negated operator is false for an absent key (no value to test), key reported",
        doc(allow("A", "s3:*", "*", Condition={"ForAnyValue:StringNotEquals": {"aws:TagKeys": "secret"}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        missing=("aws:TagKeys",),
    ),
    case(
        "neg-present-still-compares",
        "a negated operator on a present key still compares: the value matches a policy value, so it is false",
        doc(allow("A", "s3:*", "*", Condition={"StringNotEquals": {"aws:SourceVpc": "vpc-1"}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceVpc", "vpc-1"),),
    ),
    # ---- ARN condition operators: "Each of the six colon-delimited components of the ARN is checked
    # separately", with the guide's own example, where StringLike matches and ArnLike does not
    case(
        "arn-like-guide-example-fails",
        "ArnLike matches elements between colons: the first * matches only us-east-2 and the match fails",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
            )
        ),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(
            ctx(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            ),
        ),
    ),
    case(
        "arn-like-guide-example-string-like-succeeds",
        "with StringLike the same pattern matches: its first * matches us-east-2:999999999999:store/abc:",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
            )
        ),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(
            ctx(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            ),
        ),
    ),
    case(
        "arn-not-like-guide-example",
        "ArnNotLike is the negation of ArnLike: on the guide's example it holds",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"ArnNotLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
            )
        ),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(
            ctx(
                "aws:SourceArn",
                "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
            ),
        ),
    ),
    case(
        "arn-like-needs-six-components",
        "a pattern with fewer than six components matches no ARN: a trailing * does not stand for the rest",
        doc(allow("A", "s3:*", "*", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:sns:*"}})),
        "s3:GetObject",
        "*",
        "implicitDeny",
        context=(ctx("aws:SourceArn", "arn:aws:sns:us-east-1:123456789012:topic"),),
    ),
    case(
        "arn-like-resource-component-spans-colons",
        "the sixth component (the resource) runs to the end of the ARN, colons included",
        doc(
            allow(
                "A",
                "s3:*",
                "*",
                Condition={"ArnLike": {"aws:SourceArn": "arn:aws:logs:*:123456789012:log-group:/aws/codebuild/*"}},
            )
        ),
        "s3:GetObject",
        "*",
        "allowed",
        ("A",),
        context=(
            ctx(
                "aws:SourceArn",
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/codebuild/p:log-stream:b1",
            ),
        ),
    ),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_decision_table(c: Case) -> None:
    policies = [SourcePolicy.inline(f"policy-{n}", p) for n, p in enumerate(c.policies)]
    result = evaluate(policies, c.action, c.resource, c.context)
    assert result.decision == c.decision, c.rule
    assert tuple(m.sid for m in result.matched) == c.matched, c.rule
    assert result.missing_context == c.missing, c.rule


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.decision for c in CASES} == {"allowed", "explicitDeny", "implicitDeny"}


# ---------------------------------------------------------------------------------- permissions boundaries
# IAM User Guide, "Permissions boundaries for IAM entities" and "Policy evaluation logic": an entity with a
# boundary may do only what both its identity policies and its boundary allow; an explicit Deny in either denies.
# botocore's iam model: PermissionsBoundaryDecisionDetail.AllowedByPermissionsBoundary is true when the boundary
# has a matching Allow, false when it implicitly or explicitly denies.


@dataclass(frozen=True)
class BoundaryCase:
    id: str
    rule: str
    identity: dict[str, Any]
    boundary: dict[str, Any]
    decision: str
    by_boundary: bool
    matched: tuple[str, ...] = ()


BOUNDARY_CASES = [
    BoundaryCase(
        "both-allow",
        "allowed when the identity policy and the boundary both allow",
        doc(allow("I", "ecr:PutImage", "*")),
        doc(allow("B", "ecr:*", "*")),
        "allowed",
        True,
        ("I",),
    ),
    BoundaryCase(
        "boundary-silent",
        "the boundary does not allow it: an implicit deny, whatever the identity policy says",
        doc(allow("I", "ecr:PutImage", "*")),
        doc(allow("B", "s3:*", "*")),
        "implicitDeny",
        False,
    ),
    BoundaryCase(
        "boundary-denies",
        "an explicit Deny in the boundary denies, and it is the statement reported",
        doc(allow("I", "ecr:*", "*")),
        doc(allow("B", "*", "*"), deny("BD", "ecr:PutImage", "*")),
        "explicitDeny",
        False,
        ("BD",),
    ),
    BoundaryCase(
        "identity-silent",
        "a boundary grants nothing by itself: without an identity Allow the request is implicitly denied",
        doc(allow("I", "s3:GetObject", "*")),
        doc(allow("B", "ecr:*", "*")),
        "implicitDeny",
        True,
    ),
    BoundaryCase(
        "identity-denies",
        "an identity Deny denies even where the boundary allows",
        doc(allow("I", "ecr:*", "*"), deny("ID", "ecr:PutImage", "*")),
        doc(allow("B", "ecr:*", "*")),
        "explicitDeny",
        True,
        ("ID",),
    ),
]


@pytest.mark.parametrize("c", BOUNDARY_CASES, ids=[c.id for c in BOUNDARY_CASES])
def test_permissions_boundary_table(c: BoundaryCase) -> None:
    boundary = [SourcePolicy.managed(f"arn:aws:iam::{ACCOUNT}:policy/boundary", c.boundary)]
    result = evaluate([SourcePolicy.inline("role-policy", c.identity)], "ecr:PutImage", REPO_ARN, boundary=boundary)
    assert result.decision == c.decision, c.rule
    assert result.allowed_by_boundary is c.by_boundary, c.rule
    assert tuple(m.sid for m in result.matched) == c.matched, c.rule
    out = simulate_response(
        [SourcePolicy.inline("role-policy", c.identity)], ["ecr:PutImage"], [REPO_ARN], boundary=boundary
    )["EvaluationResults"][0]
    detail = {"AllowedByPermissionsBoundary": c.by_boundary}
    assert out["PermissionsBoundaryDecisionDetail"] == detail
    assert out["ResourceSpecificResults"][0]["PermissionsBoundaryDecisionDetail"] == detail


def test_no_boundary_no_boundary_detail() -> None:
    # the detail describes "the effect that a permissions boundary has ... when that boundary is applied"
    out = simulate_response([SourcePolicy("p", doc(allow("A", "*", "*")))], ["ecr:PutImage"], [REPO_ARN])
    result = out["EvaluationResults"][0]
    assert "PermissionsBoundaryDecisionDetail" not in result
    assert "PermissionsBoundaryDecisionDetail" not in result["ResourceSpecificResults"][0]


# ------------------------------------------------------------------------ the seeded CodeBuild service role

PROJECT = "ncf-recommender-build"
REPO_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/ncf-recommender"
MODEL_BUCKET_ARN = "arn:aws:s3:::ncf-tui-sandbox-models"
MODEL_OBJECT_ARN = f"{MODEL_BUCKET_ARN}/recommender-demo/compilation-output/job-1/model.tar.gz"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/{PROJECT}"
LOG_STREAM_ARN = f"{LOG_GROUP_ARN}:log-stream:8d5c0e0a-1f6e-4a4e-9a47-1b3c9b1f0d2e"
ECR_REPO_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")

# (action, resource, Sid that grants it): what the build needs, as the engine asks for it.
SEED_NEEDS = [
    ("ecr:GetAuthorizationToken", "*", "EcrAuth"),
    *[(a, REPO_ARN, "EcrPush") for a in ECR_REPO_ACTIONS],
    ("s3:GetObject", MODEL_OBJECT_ARN, "ModelRead"),
    ("s3:ListBucket", MODEL_BUCKET_ARN, "ModelList"),
    *[(a, LOG_GROUP_ARN, "BuildLogs") for a in LOG_ACTIONS],
    *[(a, LOG_STREAM_ARN, "BuildLogs") for a in LOG_ACTIONS],
]


def seed_policy(lacks: tuple[str, ...] = ()) -> str:
    """The seed's CodeBuild role policy on exact ARNs, as the sandbox stores it (a JSON string)."""

    def keep(*actions: str) -> list[str]:
        return [a for a in actions if a not in lacks]

    statements = [
        allow("EcrAuth", keep("ecr:GetAuthorizationToken"), "*"),
        allow("EcrPush", keep(*ECR_REPO_ACTIONS), REPO_ARN),
        allow("ModelRead", keep("s3:GetObject"), f"{MODEL_BUCKET_ARN}/*"),
        allow("ModelList", keep("s3:ListBucket"), MODEL_BUCKET_ARN),
        allow("BuildLogs", keep(*LOG_ACTIONS), [LOG_GROUP_ARN, f"{LOG_GROUP_ARN}:*"]),
    ]
    return json.dumps(doc(*[s for s in statements if s["Action"]]), indent=2)


@pytest.mark.parametrize(("action", "resource", "sid"), SEED_NEEDS, ids=[f"{a}@{r}" for a, r, _ in SEED_NEEDS])
def test_seed_role_grants_each_permission_the_build_needs(action: str, resource: str, sid: str) -> None:
    # each permission the build uses (ECR login and push, S3 read of the model), on its exact ARN
    policy = SourcePolicy.inline("ncf-codebuild-build-permissions", seed_policy())
    result = evaluate([policy], action, resource)
    assert result.decision == "allowed"
    assert [m.sid for m in result.matched] == [sid]


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("ecr:PutImage", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/another-repo"),
        ("ecr:PutImage", "*"),  # the repository actions are granted on the repository ARN only
        ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/model.tar.gz"),
        ("s3:PutObject", MODEL_OBJECT_ARN),
        ("s3:ListBucket", f"{MODEL_BUCKET_ARN}/recommender-demo"),
        ("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/other-project"),
        ("logs:DeleteLogGroup", LOG_GROUP_ARN),
        ("iam:PassRole", "*"),
    ],
)
def test_seed_role_grants_nothing_beyond_its_exact_arns(action: str, resource: str) -> None:
    # least privilege: anything not granted is an implicit deny (evaluation logic default)
    result = evaluate([SourcePolicy.inline("seed", seed_policy())], action, resource)
    assert result.decision == "implicitDeny"
    assert result.matched == ()


def test_missing_permissions_scenario_denies_exactly_what_it_removes() -> None:
    # the 'missing-permissions' scenario: the role lacks ecr:PutImage and s3:ListBucket
    policy = SourcePolicy.inline("seed", seed_policy(lacks=("ecr:PutImage", "s3:ListBucket")))
    denied = {(a, r) for a, r, _ in SEED_NEEDS if evaluate([policy], a, r).decision != "allowed"}
    assert denied == {("ecr:PutImage", REPO_ARN), ("s3:ListBucket", MODEL_BUCKET_ARN)}


def test_seed_role_simulated_as_one_request_per_resource() -> None:
    # SimulatePrincipalPolicy evaluates every action against every resource given, in request order
    policy = SourcePolicy.inline("seed", seed_policy())
    results = simulate([policy], ECR_REPO_ACTIONS, [REPO_ARN, MODEL_BUCKET_ARN])
    assert [(r.action, r.resource) for r in results] == [
        (a, res) for a in ECR_REPO_ACTIONS for res in (REPO_ARN, MODEL_BUCKET_ARN)
    ]
    assert [r.decision for r in results] == ["allowed", "implicitDeny"] * len(ECR_REPO_ACTIONS)


# ------------------------------------------------------------------------------------ documents, positions


def test_dict_json_and_url_encoded_documents_decide_alike() -> None:
    # IAM stores documents URL-encoded; GetRolePolicy hands them back that way
    document = seed_policy()
    forms = [json.loads(document), document, urllib.parse.quote(document)]
    decisions = [evaluate([SourcePolicy("p", f)], "ecr:PutImage", REPO_ARN).decision for f in forms]
    assert decisions == ["allowed"] * 3


@pytest.mark.parametrize("indent", [None, 2, 4])
def test_positions_point_at_each_statement(indent: int | None) -> None:
    # MatchedStatements Start/EndPosition: 1-based line/column of the statement's braces in the text
    statements = [
        allow("A", "s3:GetObject", OBJ),
        deny("D", "s3:GetObject", f"{BUCKET_ARN}/x"),
        allow("B", "*"),
    ]
    text = json.dumps(doc(*statements), indent=indent)
    lines = text.split("\n")
    policy = parse_policy(text, "p")
    for parsed, expected in zip(policy.statements, statements, strict=True):
        start, end = parsed.start, parsed.end
        assert lines[start.line - 1][start.column - 1] == "{"
        assert lines[end.line - 1][end.column - 2] == "}"
        offsets = [sum(len(line) + 1 for line in lines[: p.line - 1]) + p.column - 1 for p in (start, end)]
        assert json.loads(text[offsets[0] : offsets[1]]) == expected


def test_position_of_a_single_object_statement_and_of_an_aws_style_one_liner() -> None:
    # AWS reports one-line documents like {"Version": ..., "Statement": [{ with Column 41 for the first brace
    text = json.dumps(doc(allow("A", "s3:GetObject", OBJ)))
    matched = evaluate([SourcePolicy.custom(1, text)], "s3:GetObject", OBJ).matched[0]
    assert (matched.source_policy_id, matched.start.line, matched.start.column) == (
        "PolicyInputList.1",
        1,
        41,
    )
    single = '{\n  "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}\n}'
    st = parse_policy(single).statements[0]
    assert (st.start.line, st.start.column, st.end.line, st.end.column) == (2, 16, 2, 67)


def test_dict_documents_are_positioned_in_their_indented_rendering() -> None:
    document = doc(allow("A", "s3:*"))
    st = parse_policy(document).statements[0]
    assert (st.start.line, st.start.column) == (4, 9)  # json.dumps(indent=4): line 4, after 8 spaces


# ------------------------------------------------------------------------------------------ malformed input

MALFORMED = [
    ("not-json", '{"Version": "2012-10-17", ', "Syntax errors"),
    ("empty", "", "Syntax errors"),
    ("not-an-object", "[]", "must be a JSON object"),
    ("not-a-document", 42, "JSON string or a dict"),
    ("unknown-top-level", {"Version": "2012-10-17", "Statement": [], "Extra": 1}, "unknown top-level"),
    ("bad-version", {"Version": "2020-01-01", "Statement": [allow("A", "*")]}, "Version must be"),
    ("no-statement", {"Version": "2012-10-17"}, "no Statement"),
    ("empty-statement", doc(), "Statement is empty"),
    ("statement-not-object", {"Version": "2012-10-17", "Statement": ["s3:*"]}, "must be a JSON object"),
    ("bad-effect", doc({"Effect": "allow", "Action": "*", "Resource": "*"}), "Effect must be"),
    ("no-effect", doc({"Action": "*", "Resource": "*"}), "Effect must be"),
    (
        "action-and-notaction",
        doc({"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}),
        "exactly one of Action or NotAction",
    ),
    ("no-action", doc({"Effect": "Allow", "Resource": "*"}), "exactly one of Action or NotAction"),
    ("no-resource", doc({"Effect": "Allow", "Action": "*"}), "exactly one of Resource or NotResource"),
    ("action-without-vendor", doc(allow("A", "GetObject")), "prefaced by a vendor"),
    ("empty-action-list", doc(allow("A", [])), "non-empty"),
    ("action-not-string", doc(allow("A", ["s3:GetObject", 5])), "non-empty"),
    ("resource-not-arn", doc(allow("A", "s3:*", "my-bucket")), 'ARN format or "*"'),
    (
        "unknown-statement-element",
        doc({"Effect": "Allow", "Actions": "*", "Resource": "*"}),
        "unknown element",
    ),
    ("principal-in-identity-policy", doc(allow("A", "*", Principal="*")), "should not specify a principal"),
    (
        "unknown-operator",
        doc(allow("A", "*", Condition={"StringEqualz": {"aws:x": "1"}})),
        "invalid Condition type",
    ),
    ("condition-key-without-vendor", doc(allow("A", "*", Condition={"StringEquals": {"x": "1"}})), "vendor"),
    (
        "numeric-not-a-number",
        doc(allow("A", "*", Condition={"NumericEquals": {"s3:max-keys": "ten"}})),
        "not a valid",
    ),
    ("null-with-ifexists", doc(allow("A", "*", Condition={"NullIfExists": {"aws:x": "true"}})), "Null takes"),
    ("duplicate-key", '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}', "Duplicate key"),
    (
        "nan",
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": NaN}]}',
        "NaN is not valid",
    ),
]


@pytest.mark.parametrize(("document", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_policies_are_refused_with_a_clear_message(document: Any, message: str) -> None:
    # IAM refuses these with MalformedPolicyDocument; the message names the fault and the policy
    with pytest.raises(PolicyError, match=re.escape(message)) as err:
        simulate([SourcePolicy("the-role-policy", document)], ["s3:GetObject"])
    assert "the-role-policy" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actions": ["GetObject"]}, "vendor:Operation"),
        ({"actions": []}, "at least one action"),
        ({"actions": "s3:GetObject"}, "must be lists"),
        ({"resources": ["my-bucket"]}, "must be an ARN"),
        ({"context": [ctx("aws:SourceIp", "300.1.1.1", type_="ip")]}, "not a valid ip"),
        ({"context": [ctx("s3:max-keys", "ten", type_="numeric")]}, "not a valid numeric"),
        ({"context": [ctx("aws:x1", "a", type_="text")]}, "Invalid ContextKeyType"),
        ({"context": [ctx("aws:x1", "a", "b")]}, "several values"),
        ({"context": [ctx("aws:x1", "a"), ctx("AWS:X1", "b")]}, "more than once"),
        ({"context": [{"ContextKeyValues": ["a"]}]}, "need ContextKeyName"),
        ({"max_items": 0}, "MaxItems"),
        ({"max_items": 1001}, "MaxItems"),
        ({"marker": "not-a-marker"}, "Invalid Marker"),
    ],
    ids=lambda v: v if isinstance(v, str) else next(iter(v)),
)
def test_bad_request_parameters_are_invalid_input(kwargs: dict[str, Any], message: str) -> None:
    # IAM answers these with InvalidInput, not with a decision
    args: dict[str, Any] = {
        "policies": [SourcePolicy("p", doc(allow("A", "*")))],
        "actions": ["s3:GetObject"],
    }
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        simulate_response(**{**args, **kwargs})


def test_unknown_source_policy_type_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="SourcePolicyType"):
        simulate([SourcePolicy("p", doc(allow("A", "*")), type="inline")], ["s3:GetObject"])


# ------------------------------------------------------------------------------------- response and paging


def _check_shape(value: Any, shape: Any, path: str = "") -> None:
    """Every key and value of ``value`` must exist in botocore's IAM output shape with the right type."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        for key, member in value.items():
            assert key in shape.members, f"{path}.{key} is not in the {shape.name} shape"
            _check_shape(member, shape.members[key], f"{path}.{key}")
        assert set(shape.required_members) <= set(value), path
    elif kind == "list":
        assert isinstance(value, list), path
        for n, item in enumerate(value):
            _check_shape(item, shape.member, f"{path}[{n}]")
    elif kind == "map":
        assert isinstance(value, dict), path
        for k, v in value.items():
            _check_shape(k, shape.key, path)
            _check_shape(v, shape.value, f"{path}[{k}]")
    elif kind == "string":
        assert isinstance(value, str), path
        # AWS itself answers SourcePolicyType "IAM Policy", outside the documented enum
        if shape.enum and shape.name != "PolicySourceType":
            assert value in shape.enum, f"{path}={value!r} not in {shape.enum}"
    elif kind == "boolean":
        assert isinstance(value, bool), path
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), path
        assert value >= 1, path  # lines and columns are 1-based


@pytest.fixture(scope="module")
def output_shape() -> Any:
    model = botocore.session.get_session().get_service_model("iam")
    return model.operation_model("SimulatePrincipalPolicy").output_shape


def test_response_has_the_real_shape_and_resource_specific_results(output_shape: Any) -> None:
    # ResourceSpecificResults: present (one entry per result) when ResourceArns were given
    policies = [
        SourcePolicy.inline("seed", seed_policy()),
        SourcePolicy.custom(1, doc(deny("D", "ecr:PutImage"))),
    ]
    response = simulate_response(policies, ["ecr:PutImage", "ecr:BatchGetImage"], [REPO_ARN, "*"])
    _check_shape(response, output_shape)
    results = response["EvaluationResults"]
    assert [r["EvalDecision"] for r in results] == ["explicitDeny", "explicitDeny", "allowed", "implicitDeny"]
    assert all(r["EvalDecisionDetails"] == {} for r in results)
    for r in results:
        (specific,) = r["ResourceSpecificResults"]
        assert specific["EvalResourceName"] == r["EvalResourceName"]
        assert specific["EvalResourceDecision"] == r["EvalDecision"]
        assert specific["MatchedStatements"] == r["MatchedStatements"]
    assert response["IsTruncated"] is False and "Marker" not in response
    denied, allowed = results[0]["MatchedStatements"][0], results[2]["MatchedStatements"][0]
    assert (denied["SourcePolicyId"], denied["SourcePolicyType"]) == ("PolicyInputList.1", "IAM Policy")
    assert (allowed["SourcePolicyId"], allowed["SourcePolicyType"]) == ("seed", "IAM Policy")


def test_response_without_resources_is_for_star_and_has_no_resource_specific_results(
    output_shape: Any,
) -> None:
    # ResourceArns omitted: AWS simulates resource "*" and answers without ResourceSpecificResults
    response = simulate_response([SourcePolicy.inline("seed", seed_policy())], ["ecr:GetAuthorizationToken"])
    _check_shape(response, output_shape)
    (result,) = response["EvaluationResults"]
    assert result["EvalResourceName"] == "*" and result["EvalDecision"] == "allowed"
    assert "ResourceSpecificResults" not in result


def test_missing_context_values_appear_in_the_response(output_shape: Any) -> None:
    policy = SourcePolicy.inline("p", doc(allow("A", "s3:*", "*", Condition={"StringEquals": {"aws:SourceVpc": "v"}})))
    response = simulate_response([policy], ["s3:GetObject", "ecr:PutImage"])
    _check_shape(response, output_shape)
    assert [r["MissingContextValues"] for r in response["EvaluationResults"]] == [["aws:SourceVpc"], []]


ACTIONS = [f"svc:Action{n}" for n in range(7)]
RESOURCES = [f"arn:aws:svc:::thing/{n}" for n in range(3)]


@pytest.mark.parametrize("max_items", [1, 2, 5, 20, 21, 22, 1000])
def test_paging_covers_every_pair_once_in_order(max_items: int) -> None:
    # IsTruncated/Marker paging with MaxItems: one result per action x resource pair, request order
    policies = [SourcePolicy("p", doc(allow("A", "svc:Action1")))]
    pages = list(iter_pages(policies, ACTIONS, RESOURCES, max_items=max_items))
    seen = [(r["EvalActionName"], r["EvalResourceName"]) for p in pages for r in p["EvaluationResults"]]
    assert seen == [(a, r) for a in ACTIONS for r in RESOURCES]
    assert all(len(p["EvaluationResults"]) <= max_items for p in pages)
    assert [p["IsTruncated"] for p in pages] == [True] * (len(pages) - 1) + [False]
    assert all(("Marker" in p) == p["IsTruncated"] for p in pages)
    assert len(pages) == -(-len(seen) // max_items)


def test_markers_are_stable_and_bound_to_their_request() -> None:
    policies = [SourcePolicy("p", doc(allow("A", "*")))]
    first = simulate_response(policies, ACTIONS, RESOURCES, max_items=4)
    again = simulate_response(policies, ACTIONS, RESOURCES, max_items=4)
    assert first["Marker"] == again["Marker"]
    second = simulate_response(policies, ACTIONS, RESOURCES, max_items=4, marker=first["Marker"])
    assert second["EvaluationResults"][0]["EvalActionName"] == ACTIONS[1]  # pairs 4.. = action 1, resource 1
    with pytest.raises(InvalidInputError, match="Invalid Marker"):
        simulate_response(policies, ACTIONS[:2], RESOURCES, max_items=4, marker=first["Marker"])


def test_default_page_is_a_hundred_results() -> None:
    # AWS's default MaxItems is 100
    actions = [f"svc:Action{n}" for n in range(150)]
    page = simulate_response([SourcePolicy("p", doc(allow("A", "*")))], actions)
    assert len(page["EvaluationResults"]) == 100 and page["IsTruncated"] is True


def test_context_entries_may_be_dataclasses_or_request_mappings() -> None:
    policy = SourcePolicy("p", doc(allow("A", "s3:*", "*", Condition={"NumericLessThan": {"s3:max-keys": 5}})))
    typed = evaluate([policy], "s3:ListBucket", "*", [ContextEntry("s3:max-keys", ("4",), "numeric")])
    mapped = evaluate([policy], "s3:ListBucket", "*", [ctx("s3:max-keys", "6", type_="numeric")])
    assert (typed.decision, mapped.decision) == ("allowed", "implicitDeny")


# ------------------------------------------------------------------------------------------------ properties

GLOB_CHARS = st.text(alphabet="ab:/*?", max_size=8)
TEXT_CHARS = st.text(alphabet="ab:/", max_size=10)


def oracle(pattern: str, mode: str) -> re.Pattern[str]:
    """The documented glob semantics as a regex (fine as an oracle; the evaluator avoids backtracking)."""
    out = []
    for i, ch in enumerate(pattern):
        segment_end = i + 1 == len(pattern) or pattern[i + 1] == ":"
        if ch == "*":
            out.append(".*" if mode != "arn" or segment_end else "[^:]*")
        elif ch == "?":
            out.append("." if mode != "arn" else "[^:]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if mode == "action" else 0))


@settings(max_examples=400, deadline=None)
@given(pattern=GLOB_CHARS, text=TEXT_CHARS, mode=st.sampled_from(["action", "string", "arn"]))
def test_glob_matching_agrees_with_a_regex_oracle(pattern: str, text: str, mode: Any) -> None:
    assert glob_match(pattern, text, mode) == bool(oracle(pattern, mode).fullmatch(text))


@settings(max_examples=100, deadline=None)
@given(pattern=st.text(alphabet="aB", max_size=6), text=st.text(alphabet="aAbB", max_size=6))
def test_action_matching_ignores_case_and_resources_do_not(pattern: str, text: str) -> None:
    assert glob_match(pattern, text, "action") == (pattern.lower() == text.lower())
    assert glob_match(pattern, text, "arn") == (pattern == text)


SMALL_ACTIONS = ["s3:GetObject", "s3:PutObject", "ecr:PutImage"]
SMALL_RESOURCES = ["arn:aws:s3:::b/k", "arn:aws:s3:::b", "*"]
action_pats = st.sampled_from(["*", "s3:*", "s3:Get*", "ecr:PutImage", "S3:putobject", "s3:?etObject"])
resource_pats = st.sampled_from(["*", "arn:aws:s3:::b/*", "arn:aws:s3:::b", "arn:aws:s3:::?", "arn:aws:*"])
statement = st.builds(
    lambda effect, not_action, actions, not_resource, resources: {
        "Effect": effect,
        ("NotAction" if not_action else "Action"): actions,
        ("NotResource" if not_resource else "Resource"): resources,
    },
    st.sampled_from(["Allow", "Deny"]),
    st.booleans(),
    st.lists(action_pats, min_size=1, max_size=3),
    st.booleans(),
    st.lists(resource_pats, min_size=1, max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    statements=st.lists(statement, min_size=1, max_size=4),
    extra=statement.map(lambda s: {**s, "Effect": "Deny"}),
    action=st.sampled_from(SMALL_ACTIONS),
    resource=st.sampled_from(SMALL_RESOURCES),
)
def test_adding_a_deny_never_allows_more(
    statements: list[dict[str, Any]], extra: dict[str, Any], action: str, resource: str
) -> None:
    # explicit deny only ever removes access (evaluation logic step 1); it never turns a decision into allowed
    before = evaluate([SourcePolicy("p", doc(*statements))], action, resource).decision
    after = evaluate([SourcePolicy("p", doc(*statements)), SourcePolicy("q", doc(extra))], action, resource)
    if after.decision == "allowed":
        assert before == "allowed"
    if before == "explicitDeny":
        assert after.decision == "explicitDeny"


@settings(max_examples=100, deadline=None)
@given(
    statements=st.lists(statement, min_size=1, max_size=5),
    action=st.sampled_from(SMALL_ACTIONS),
    resource=st.sampled_from(SMALL_RESOURCES),
)
def test_statement_and_policy_order_does_not_change_the_decision(
    statements: list[dict[str, Any]], action: str, resource: str
) -> None:
    # policy evaluation is order-independent: every statement is considered
    one = evaluate([SourcePolicy("p", doc(*statements))], action, resource).decision
    split = [SourcePolicy(f"p{n}", doc(s)) for n, s in enumerate(reversed(statements))]
    assert evaluate(split, action, resource).decision == one
