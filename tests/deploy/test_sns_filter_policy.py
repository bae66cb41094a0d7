"""`connector sns-filter-policy`: the policy lists the mapped resource types, and SNS (moto) applies
it as Jomablue's messages need: mapped types reach the queue, other types do not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from jbtest import Aws, cli, sample

import connector

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, mapping: Path | None = None) -> Path:
    cfg = {"sqs": {"queue_url": "https://sqs.ap-southeast-2.amazonaws.com/123456789012/jomablue",
                   "region": "ap-southeast-2"},
           "salesforce": {"instance_url": "https://acme.my.salesforce.com",
                          "auth": {"method": "access_token", "access_token": "unused"}}}
    if mapping:
        cfg["mapping"] = {"path": str(mapping)}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_the_policy_lists_the_default_mappings_resource_types(tmp_path):
    res = cli("sns-filter-policy", "--config", str(_config(tmp_path)))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"resource_type": ["event", "lead", "person", "session_participation"]}
    assert "MessageAttributes" in res.stderr


def test_the_policy_follows_the_configured_mappings(tmp_path):
    folder = tmp_path / "mappings"
    shutil.copytree(Path(connector.__file__).parent / "default_mappings", folder)
    (folder / "lead.yaml").unlink()
    res = cli("sns-filter-policy", "--config", str(_config(tmp_path, folder)))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"resource_type": ["event", "person", "session_participation"]}


def test_a_bad_config_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sqs: {}\n", encoding="utf-8")
    assert cli("sns-filter-policy", "--config", str(bad)).returncode == 2


def test_sns_delivers_only_the_mapped_types_with_the_printed_policy(tmp_path, moto_endpoint):
    policy = cli("sns-filter-policy", "--config", str(_config(tmp_path))).stdout
    aws = Aws(moto_endpoint)
    [sub] = aws.sns.list_subscriptions_by_topic(TopicArn=aws.topic_arn)["Subscriptions"]
    aws.sns.set_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"], AttributeName="FilterPolicy",
                                        AttributeValue=policy)
    aws.publish(sample("person"))
    aws.publish(sample("event"))
    aws.publish({**sample("person"), "resource_type": "exhibitor_scan"})   # a kind Jomablue adds later
    got = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    types = sorted(json.loads(json.loads(m["Body"])["Message"])["resource_type"] for m in got)
    assert types == ["event", "person"]


def test_the_deploy_subscription_uses_the_same_policy(tmp_path):
    template = yaml.safe_load((ROOT / "deploy" / "aws" / "sns-sqs-subscription.yaml").read_text(encoding="utf-8"))
    sub = template["Resources"]["Subscription"]["Properties"]
    printed = json.loads(cli("sns-filter-policy", "--config", str(_config(tmp_path))).stdout)
    assert sub["FilterPolicy"] == printed
    assert sub["FilterPolicyScope"] == "MessageAttributes"
    assert sub["RawMessageDelivery"] is False
    assert "RedrivePolicy" in sub           # SNS's own DLQ for deliveries that fail for 23 days
