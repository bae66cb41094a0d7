"""deploy/: the manifests run the image as the operator contract says (read-only root, UID 10001,
--drain for schedules, plain run for replicas, disk-less state) and the IAM policy is the least one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from connector.config import Config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text(encoding="utf-8")) if d]


def _pod(doc: dict) -> dict:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def test_kubernetes_workloads_run_read_only_as_10001():
    for name, kind, drain in (("cronjob.yaml", "CronJob", True), ("deployment.yaml", "Deployment", False)):
        [doc] = _docs(name)
        assert doc["kind"] == kind
        pod = _pod(doc)
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
        [c] = pod["containers"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert ("--drain" in c["args"]) is drain and c["args"][0] == "run"
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/config", "/tmp"}


def test_the_kubernetes_config_is_a_valid_connector_config_with_a_shared_store():
    config_map = next(d for d in _docs("config.yaml") if d["kind"] == "ConfigMap")
    raw = yaml.safe_load(config_map["data"]["config.yaml"])
    raw["salesforce"]["auth"].update(client_id="x", client_secret="y")
    raw["state"]["url"] = "postgresql://connector@db/connector"
    cfg = Config.model_validate(raw)
    assert cfg.state.location == "postgresql://connector@db/connector" and cfg.state.keep_days == 30


def test_the_ecs_task_runs_read_only_as_10001_and_drains():
    task = json.loads((DEPLOY / "ecs" / "task-definition.json").read_text(encoding="utf-8"))
    main = next(c for c in task["containerDefinitions"] if c["essential"])
    assert main["readonlyRootFilesystem"] is True and main["user"].startswith("10001")
    assert main["command"][:2] == ["run", "--drain"]
    assert {s["name"] for s in main["secrets"]} >= {"STATE_URL", "SF_CLIENT_SECRET"}
    schedule = json.loads((DEPLOY / "ecs" / "schedule.json").read_text(encoding="utf-8"))
    assert schedule["Target"]["EcsParameters"]["TaskCount"] == 1


def test_the_iam_policy_grants_four_sqs_actions_on_one_queue():
    policy = json.loads((DEPLOY / "aws" / "iam-policy.json").read_text(encoding="utf-8"))
    stmt = policy["Statement"][0]      # the second one reads the DLQ's depth (tests/deploy/test_validation.py)
    assert stmt["Effect"] == "Allow"
    assert sorted(stmt["Action"]) == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                      "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert isinstance(stmt["Resource"], str) and stmt["Resource"].startswith("arn:aws:sqs:")
    assert "*" not in stmt["Resource"]
