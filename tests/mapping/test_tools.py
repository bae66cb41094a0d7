"""`connector mapping init` and `connector mapping preview` (issue 10), and offline `mapping
validate` without Salesforce credentials: through the real CLI, no network."""

from __future__ import annotations

import json
from pathlib import Path

from jbtest import SAMPLES, cli

from connector.mapping import default_mapping_folder, validate_mapping_folder

CONFIG = """sqs: {queue_url: https://sqs.example/1/q, region: us-east-1}
salesforce:
  instance_url: https://acme.my.salesforce.com
  auth: {method: client_credentials, login_url: https://acme.my.salesforce.com,
         client_id: abc, client_secret: '${SF_SECRET_NOBODY_SET}'}
"""


def _config(tmp_path: Path, mapping: Path | None = None) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + (f"mapping: {{path: {mapping}}}\n" if mapping else ""), encoding="utf-8")
    return path


def test_init_copies_the_shipped_mappings_and_examples_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "my-mappings"
    res = cli("mapping", "init", str(target))
    assert res.returncode == 0, res.stderr
    for p in default_mapping_folder().iterdir():
        if p.suffix in (".yaml", ".md"):
            assert (target / p.name).read_bytes() == p.read_bytes()
    assert (target / "examples" / "lead-captures-as-tasks" / "lead.yaml").is_file()
    assert validate_mapping_folder(target) == []
    assert validate_mapping_folder(target / "examples" / "lead-captures-as-tasks") == []

    (target / "person.yaml").write_text("# my edits\n", encoding="utf-8")
    again = cli("mapping", "init", str(target))
    assert again.returncode == 2 and "--force" in again.stderr
    assert (target / "person.yaml").read_text(encoding="utf-8") == "# my edits\n"
    assert cli("mapping", "init", str(target), "--force").returncode == 0
    assert (target / "person.yaml").read_bytes() == (default_mapping_folder() / "person.yaml").read_bytes()


def test_validate_offline_needs_no_salesforce_credentials(tmp_path):
    res = cli("mapping", "validate", "--config", str(_config(tmp_path)))
    assert res.returncode == 0, res.stderr
    assert "mapping ok" in res.stdout
    res = cli("mapping", "validate", "--config", str(_config(tmp_path)), "--against-org")
    assert res.returncode == 2 and "SF_SECRET_NOBODY_SET" in res.stderr


def test_preview_prints_the_records_for_one_message_offline(tmp_path):
    msg = tmp_path / "person.json"
    msg.write_text(json.dumps(SAMPLES["sns_envelope_person"]), encoding="utf-8")
    res = cli("mapping", "preview", "--config", str(_config(tmp_path)), "--message", str(msg), "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    records = {r["record"]: r for r in doc["records"]}
    lead = records["new Lead (when no record matches)"]
    assert lead["object"] == "Lead" and lead["operation"] == "upsert"
    assert lead["fields"]["LastName"] == "Doe" and lead["fields"]["LeadSource"] == "Jomablue"
    member = records["the campaign member"]
    assert member["fields"]["Status"] == "Attended"
    assert member["fields"]["CampaignId"] == "<Campaign of acme/event/521>"
    assert member["fields"]["ContactId"] == "0035g00000Xyz12AAB"     # organisation_uid names the Contact
    assert member["fields"]["Jomablue_Categories__c"] == "Delegate"
    text = cli("mapping", "preview", "--config", str(_config(tmp_path)), "--message", str(msg))
    assert text.returncode == 0 and "CampaignMember upsert on Jomablue_Id__c = 'acme/event_person/48213'" in text.stdout


def test_preview_uses_the_configured_mapping_and_names_a_bad_message(tmp_path):
    folder = tmp_path / "m"
    assert cli("mapping", "init", str(folder)).returncode == 0
    lead = folder / "examples" / "lead-captures-as-tasks"
    msg = tmp_path / "lead.json"
    msg.write_text(json.dumps(SAMPLES["lead"]), encoding="utf-8")
    res = cli("mapping", "preview", "--config", str(_config(tmp_path, lead)), "--message", str(msg))
    assert res.returncode == 0, res.stderr
    assert "Task upsert on Jomablue_Id__c = 'acme/lead/90311'" in res.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"resource_type": "person", "identifiers": {}}', encoding="utf-8")
    res = cli("mapping", "preview", "--config", str(_config(tmp_path)), "--message", str(bad))
    assert res.returncode == 2 and "bad.json" in res.stderr and "generated_at" in res.stderr
    broken = tmp_path / "broken"
    assert cli("mapping", "init", str(broken)).returncode == 0
    (broken / "person.yaml").write_text((broken / "person.yaml").read_text(encoding="utf-8").replace(
        "membership:", "membershp:"), encoding="utf-8")
    res = cli("mapping", "preview", "--config", str(_config(tmp_path, broken)), "--message", str(msg))
    assert res.returncode == 2 and "did you mean 'membership'" in res.stderr
