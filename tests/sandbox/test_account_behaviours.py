"""What the account step and --teardown rely on, asked of the sandbox over HTTP: each answer is the one the AWS
API reference documents (cited beside each test), so the engine's care is tested against AWS's rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ncf_tui.sandbox.server import Sandbox


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _regional(sb: Any, service: str, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=sb.endpoint_url, region_name=region, **sb.credentials)


def test_create_bucket_location_constraint_rule(sandbox: Sandbox) -> None:
    """S3 API Reference, CreateBucket / CreateBucketConfiguration: us-east-1 takes no LocationConstraint (naming
    it is InvalidLocationConstraint); a regional endpoint elsewhere needs it (IllegalLocationConstraintException)."""
    sandbox.reset("empty-account")
    s3 = sandbox.client("s3")
    with pytest.raises(ClientError) as named:
        s3.create_bucket(Bucket="rule-east", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert _code(named) == "InvalidLocationConstraint"
    west = _regional(sandbox, "s3", "eu-west-1")
    with pytest.raises(ClientError) as unnamed:
        west.create_bucket(Bucket="rule-west")
    assert _code(unnamed) == "IllegalLocationConstraintException"
    west.create_bucket(Bucket="rule-west", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert west.get_bucket_location(Bucket="rule-west")["LocationConstraint"] == "eu-west-1"
    s3.create_bucket(Bucket="rule-east")
    assert s3.get_bucket_location(Bucket="rule-east")["LocationConstraint"] in (None, "")


def test_public_access_block_encryption_and_tags_read_back(sandbox: Sandbox) -> None:
    """PutPublicAccessBlock, PutBucketEncryption, PutBucketTagging; GetBucketTagging of an untagged bucket
    answers NoSuchTagSet (S3 API Reference, GetBucketTagging)."""
    sandbox.reset("empty-account")
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket="conf-bucket")
    with pytest.raises(ClientError) as untagged:
        s3.get_bucket_tagging(Bucket="conf-bucket")
    assert _code(untagged) == "NoSuchTagSet"
    block = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    s3.put_public_access_block(Bucket="conf-bucket", PublicAccessBlockConfiguration=block)
    assert s3.get_public_access_block(Bucket="conf-bucket")["PublicAccessBlockConfiguration"] == block
    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    s3.put_bucket_encryption(Bucket="conf-bucket", ServerSideEncryptionConfiguration={"Rules": [rule]})
    rules = s3.get_bucket_encryption(Bucket="conf-bucket")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    s3.put_bucket_tagging(Bucket="conf-bucket", Tagging={"TagSet": [{"Key": "managed-by", "Value": "ncf-tui"}]})
    assert s3.get_bucket_tagging(Bucket="conf-bucket")["TagSet"] == [{"Key": "managed-by", "Value": "ncf-tui"}]


def test_delete_bucket_needs_an_empty_bucket_and_takes_its_tags(sandbox: Sandbox) -> None:
    """S3 API Reference, DeleteBucket: every object (and version) must be deleted first (BucketNotEmpty); a
    bucket made again under the name starts with no tag set."""
    sandbox.reset("empty-account")
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket="gone-bucket")
    s3.put_bucket_tagging(Bucket="gone-bucket", Tagging={"TagSet": [{"Key": "managed-by", "Value": "ncf-tui"}]})
    s3.put_object(Bucket="gone-bucket", Key="k", Body=b"x")
    with pytest.raises(ClientError) as full:
        s3.delete_bucket(Bucket="gone-bucket")
    assert _code(full) == "BucketNotEmpty"
    s3.delete_object(Bucket="gone-bucket", Key="k")
    s3.delete_bucket(Bucket="gone-bucket")
    s3.create_bucket(Bucket="gone-bucket")
    with pytest.raises(ClientError) as fresh:
        s3.get_bucket_tagging(Bucket="gone-bucket")
    assert _code(fresh) == "NoSuchTagSet"


def test_create_role_with_tags_and_delete_role_order(sandbox: Sandbox) -> None:
    """IAM API Reference, CreateRole (Tags) and DeleteRole: a role with inline policies, attached managed
    policies or an instance profile is refused with DeleteConflict until each is removed."""
    sandbox.reset("empty-account")
    iam = sandbox.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(
        RoleName="order-role", AssumeRolePolicyDocument=json.dumps(trust), Tags=[{"Key": "k", "Value": "v"}]
    )
    assert iam.list_role_tags(RoleName="order-role")["Tags"] == [{"Key": "k", "Value": "v"}]
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_role_policy(RoleName="order-role", PolicyName="inline", PolicyDocument=json.dumps(doc))
    arn = iam.create_policy(PolicyName="managed", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="order-role", PolicyArn=arn)
    for undo in (
        lambda: iam.delete_role_policy(RoleName="order-role", PolicyName="inline"),
        lambda: iam.detach_role_policy(RoleName="order-role", PolicyArn=arn),
    ):
        with pytest.raises(ClientError) as conflict:
            iam.delete_role(RoleName="order-role")
        assert _code(conflict) == "DeleteConflict"
        undo()
    iam.delete_role(RoleName="order-role")
    assert "order-role" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


def test_ecr_repository_scan_on_push_and_tags(sandbox: Sandbox) -> None:
    """ECR API Reference, CreateRepository: imageScanningConfiguration.scanOnPush and tags, read back."""
    sandbox.reset("empty-account")
    ecr = sandbox.client("ecr")
    repo = ecr.create_repository(
        repositoryName="scan-repo",
        imageScanningConfiguration={"scanOnPush": True},
        tags=[{"Key": "managed-by", "Value": "ncf-tui"}],
    )["repository"]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert tags == [{"Key": "managed-by", "Value": "ncf-tui"}]
