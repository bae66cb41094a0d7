"""deploy/aws/sns-sqs-subscription.yaml: the archive (SNS -> Amazon Data Firehose -> S3) passes
cfn-lint, filters as the queue's subscription does, compresses, expires after the retention
parameter, and each role grants the least it needs."""

from __future__ import annotations

from pathlib import Path

import yaml

RECIPE = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "sns-sqs-subscription.yaml"


def _template() -> dict:
    return yaml.safe_load(RECIPE.read_text(encoding="utf-8"))


def test_the_recipe_passes_cfn_lint_and_lint_catches_a_broken_one():
    from cfnlint.api import lint, lint_file

    assert [str(m) for m in lint_file(RECIPE)] == []
    # The same linter finds what is wrong in a small template (so the empty list above means something).
    broken = yaml.safe_dump({"Resources": {"S": {"Type": "AWS::KinesisFirehose::DeliveryStream", "Properties": {
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b", "RoleARN": "arn:aws:iam::1:role/r",
                                               "CompressionFormat": "ZIP7"}}}}})
    assert any("ZIP7" in str(m) for m in lint(broken))


def test_the_archive_subscription_mirrors_the_queue_subscription():
    res = _template()["Resources"]
    queue, archive = res["Subscription"]["Properties"], res["ArchiveSubscription"]["Properties"]
    assert archive["Protocol"] == "firehose" and archive["RawMessageDelivery"] is False
    assert archive["FilterPolicy"] == queue["FilterPolicy"]
    assert archive["FilterPolicyScope"] == queue["FilterPolicyScope"] and archive["TopicArn"] == queue["TopicArn"]
    assert archive["SubscriptionRoleArn"] == {"Fn::GetAtt": ["ArchiveSubscriptionRole", "Arn"]}
    s3 = res["ArchiveStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert s3["CompressionFormat"] == "GZIP" and s3["Prefix"] == "sns/"
    [rule] = res["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"} and rule["Status"] == "Enabled"


def test_each_archive_role_grants_only_what_it_needs():
    res = _template()["Resources"]
    [sns_stmt] = res["ArchiveSubscriptionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert res["ArchiveSubscriptionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == \
        {"Service": "sns.amazonaws.com"}
    assert all(a.startswith("firehose:") and "List" not in a or a == "firehose:ListTagsForDeliveryStream"
               for a in sns_stmt["Action"])
    assert {"firehose:PutRecord", "firehose:PutRecordBatch"} <= set(sns_stmt["Action"])
    assert sns_stmt["Resource"] == {"Fn::GetAtt": ["ArchiveStream", "Arn"]}
    read = res["ArchiveReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [(s["Action"], s["Resource"]) for s in read] == [
        ("s3:ListBucket", {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}),
        ("s3:GetObject", {"Fn::Sub": "${ArchiveBucket.Arn}/sns/*"})]
    assert read[0]["Condition"] == {"StringLike": {"s3:prefix": ["sns/*"]}}
