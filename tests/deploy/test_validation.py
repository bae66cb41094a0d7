"""CI checks every deploy/ file: Kubernetes manifests with kubernetes-validate (offline schemas;
the CRDs it has no schema for, PrometheusRule and the KEDA objects, against schemas written here
from their CRDs' documented fields), CloudFormation templates with cfn-lint, the IAM policy and the
Grafana dashboard as JSON; and every metric name they use is one the connector exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from connector.config import Config
from connector.metrics.registry import ConnectorMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30.0"     # the oldest Kubernetes still in the major clouds' standard support
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
TEMPLATES = sorted((DEPLOY / "aws").glob("*.yaml"))

_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
_META = {"type": "object", "required": ["name"], "properties": {"name": _NAME}}
# monitoring.coreos.com/v1 PrometheusRule (prometheus-operator's CRD: spec.groups[].rules[])
PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"}, "metadata": _META,
        "spec": {"type": "object", "additionalProperties": False, "required": ["groups"], "properties": {
            "groups": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                "properties": {"name": {"type": "string"}, "interval": {"type": "string"},
                               "rules": {"type": "array", "minItems": 1, "items": {
                                   "type": "object", "additionalProperties": False, "required": ["alert", "expr"],
                                   "properties": {
                                       "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                       "expr": {"type": "string", "minLength": 1},
                                       "for": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d|w|y)$"},
                                       "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                       "annotations": {"type": "object",
                                                       "additionalProperties": {"type": "string"}}}}}}}}}},
    },
}
# keda.sh/v1alpha1 ScaledObject and TriggerAuthentication (KEDA's CRDs; the aws-sqs-queue scaler)
SCALED_OBJECT = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"}, "kind": {"const": "ScaledObject"}, "metadata": _META,
        "spec": {"type": "object", "additionalProperties": False, "required": ["scaleTargetRef", "triggers"],
                 "properties": {
                     "scaleTargetRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                        "properties": {"name": _NAME, "kind": {"type": "string"},
                                                       "apiVersion": {"type": "string"}}},
                     "minReplicaCount": {"type": "integer", "minimum": 0},
                     "maxReplicaCount": {"type": "integer", "minimum": 1},
                     "pollingInterval": {"type": "integer", "minimum": 1},
                     "cooldownPeriod": {"type": "integer", "minimum": 0},
                     "advanced": {"type": "object"},
                     "triggers": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "required": ["type", "metadata"], "additionalProperties": False,
                         "properties": {"type": {"type": "string"}, "name": {"type": "string"},
                                        "authenticationRef": {"type": "object", "required": ["name"]},
                                        "metadata": {"type": "object",
                                                     "additionalProperties": {"type": "string"}}}}}}},
    },
}
TRIGGER_AUTHENTICATION = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"}, "kind": {"const": "TriggerAuthentication"}, "metadata": _META,
        "spec": {"type": "object", "properties": {"podIdentity": {
            "type": "object", "required": ["provider"],
            "properties": {"provider": {"enum": ["none", "azure-workload", "gcp", "aws", "aws-eks"]},
                           "identityOwner": {"enum": ["keda", "workload"]}}}}},
    },
}
CRD_SCHEMAS = {"PrometheusRule": PROMETHEUS_RULE, "ScaledObject": SCALED_OBJECT,
               "TriggerAuthentication": TRIGGER_AUTHENTICATION}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _all_docs() -> list[tuple[str, dict]]:
    return [(p.name, d) for p in MANIFESTS for d in _docs(p)]


@pytest.mark.parametrize("name,doc", _all_docs(), ids=lambda v: v if isinstance(v, str) else v.get("kind"))
def test_every_manifest_is_valid(name, doc):
    if doc["kind"] in CRD_SCHEMAS:
        # Not in the core schemas kubernetes-validate ships (it would raise SchemaNotFoundError).
        jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
        return
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_crd_schemas_refuse_what_is_wrong():
    rule = _docs(DEPLOY / "kubernetes" / "prometheusrule.yaml")[0]
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUS_RULE)
    scaled = _docs(DEPLOY / "kubernetes" / "scaledobject.yaml")[0]
    scaled["spec"]["triggers"][0]["metadata"]["queueLength"] = 2000     # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, SCALED_OBJECT)


def test_kubernetes_validate_catches_a_broken_manifest():
    [deployment] = _docs(DEPLOY / "kubernetes" / "deployment.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] = 42
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cloudformation_templates_pass_cfn_lint(template):
    from cfnlint.api import ManualArgs, lint

    matches = lint(template.read_text(encoding="utf-8"), config=ManualArgs(regions=["ap-southeast-2"]))
    assert not matches, "\n".join(str(m) for m in matches)


def test_the_iam_policy_is_least_privilege_json():
    policy = json.loads((DEPLOY / "aws" / "iam-policy.json").read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17"
    consume, dlq = policy["Statement"]
    assert sorted(consume["Action"]) == ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                         "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    # The depth gauges and `status --check` read the DLQ the RedrivePolicy names: two read actions.
    assert sorted(dlq["Action"]) == ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    for stmt in policy["Statement"]:
        assert stmt["Effect"] == "Allow" and isinstance(stmt["Resource"], str)
        assert stmt["Resource"].startswith("arn:aws:sqs:") and "*" not in stmt["Resource"]
    assert dlq["Resource"] == consume["Resource"] + "-dlq"


def _exported() -> set[str]:
    names = set()
    for family in ConnectorMetrics().registry.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    # Histograms' series exist once observed: name them from the families.
    for family in ConnectorMetrics().registry.collect():
        if family.type == "histogram":
            names.update({f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"})
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "info":
            names.add(f"{family.name}_info")
    return names


def _used_names(text: str) -> set[str]:
    return set(re.findall(r"jomablue_connector_[a-z_]+", text))


def test_alerts_dashboard_and_alarms_use_only_exported_metrics():
    exported = _exported()
    rules = (DEPLOY / "kubernetes" / "prometheusrule.yaml").read_text(encoding="utf-8")
    dashboard = (DEPLOY / "grafana" / "jomablue-connector.json").read_text(encoding="utf-8")
    alarms = (DEPLOY / "aws" / "monitoring.yaml").read_text(encoding="utf-8")
    for source in (rules, dashboard, alarms):
        used = _used_names(source)
        assert used and used <= exported, used - exported


def test_the_prometheus_rule_has_the_five_alerts():
    [rule] = _docs(DEPLOY / "kubernetes" / "prometheusrule.yaml")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"JomablueConnectorDeadLetterQueueNotEmpty", "JomablueConnectorQuarantineGrowing",
                           "JomablueConnectorApiBudgetAbove80Percent", "JomablueConnectorNoSuccessfulBatch",
                           "JomablueConnectorNotReady"}
    assert "> 0.8" in alerts["JomablueConnectorApiBudgetAbove80Percent"]["expr"]
    assert "1800" in alerts["JomablueConnectorNoSuccessfulBatch"]["expr"]


def test_the_dashboard_is_grafana_json():
    dash = json.loads((DEPLOY / "grafana" / "jomablue-connector.json").read_text(encoding="utf-8"))
    assert dash["title"] and dash["uid"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 6
    for panel in dash["panels"]:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])


def test_probes_scrape_annotations_and_scaling_match_the_config():
    config_map = next(d for d in _docs(DEPLOY / "kubernetes" / "config.yaml") if d["kind"] == "ConfigMap")
    raw = yaml.safe_load(config_map["data"]["config.yaml"])
    raw["salesforce"]["auth"].update(client_id="x", client_secret="y")
    raw["state"]["url"] = "postgresql://connector@db/connector"
    port = Config.model_validate(raw).metrics.port
    assert port > 0
    [deployment] = _docs(DEPLOY / "kubernetes" / "deployment.yaml")
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    [container] = template["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    [scaled, auth] = _docs(DEPLOY / "kubernetes" / "scaledobject.yaml")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] == 1        # never 0: the service answers probes, long-polls
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue" and trigger["metadata"]["queueURL"] == raw["sqs"]["queue_url"]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
