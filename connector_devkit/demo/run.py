"""Run the demo: moto (SNS + SQS) and the Salesforce emulator in-process, real protocols between."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import click

from connector import logs
from connector.config import Config
from connector.queue import SqsQueue
from connector.runner import Runner
from connector.wiring import wire
from connector_devkit.demo import traffic
from connector_devkit.emulator import Emulator


def _start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _width(text: str) -> int:
    """Columns a string takes in a terminal: Korean, Thai vowels and emoji are not one each."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _pad(text: Any, width: int) -> str:
    text = str(text)
    return text + " " * max(0, width - _width(text))


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    widths = [max(_width(str(x)) for x in [h, *[r[i] for r in rows]]) for i, h in enumerate(header)]
    click.echo(f"\n{title}")
    click.echo("  " + "  ".join(_pad(h, w) for h, w in zip(header, widths, strict=True)))
    click.echo("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        click.echo("  " + "  ".join(_pad(x, w) for x, w in zip(r, widths, strict=True)))


def run_demo(extra_people: int | None = None) -> int:
    demo_aws = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in demo_aws.items():
        os.environ.setdefault(k, v)
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(k, None)
    logs.configure(json_logs=False, level=logging.ERROR)
    import boto3

    moto, endpoint = _start_moto()
    emu = Emulator().start()
    work = Path(tempfile.mkdtemp(prefix="connector-demo-"))
    try:
        click.echo(f"Embedded SQS/SNS (moto) at {endpoint}; Salesforce emulator at {emu.url}")
        kw = dict(endpoint_url=endpoint, region_name="us-east-1")
        sqs, sns = boto3.client("sqs", **kw), boto3.client("sns", **kw)
        queue_url = sqs.create_queue(QueueName="jomablue")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = sns.create_topic(Name="jomablue-acme-push")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        # What the CRM already knows: a Contact Jomablue was told about, and a Lead with an email.
        account = emu.org.insert("Account", {"Name": "Existing Customer Pty"})
        contact = emu.org.insert("Contact", {"FirstName": "Existing", "LastName": "Contact", "AccountId": account,
                                             "Email": "existing.contact@example.com"})
        emu.org.insert("Lead", {"LastName": "Known", "Company": "Known Co", "Email": "known.lead@example.com"})
        stream = traffic.build(contact, "known.lead@example.com", people=36 + (extra_people or 0))
        rename = stream.pop(-4)   # the category rename goes in a second run

        def publish(items: list[Any]) -> None:
            for m in items:
                if isinstance(m, str):
                    sqs.send_message(QueueUrl=queue_url, MessageBody=m)
                else:
                    sns.publish(TopicArn=topic, Message=json.dumps(m, ensure_ascii=False),
                                MessageAttributes={"resource_type": {"DataType": "String",
                                                                     "StringValue": m["resource_type"]}})

        cfg = Config.model_validate({
            "sqs": {"queue_url": queue_url, "region": "us-east-1", "endpoint_url": endpoint, "wait_seconds": 0,
                    "batch_messages": 40, "allowed_topic_arns": [topic]},
            "salesforce": {"instance_url": emu.url, "ca_bundle": emu.ca_path,
                           "auth": {"method": "client_credentials", "login_url": emu.url,
                                    "client_id": emu.client_id, "client_secret": emu.client_secret},
                           "requests_per_second": 50, "max_in_flight": 2},
            "state": {"path": str(work / "connector.db")},
        })
        wired = wire(cfg)
        total = Counter[str]()

        async def drain(label: str, n: int) -> Any:
            def progress(counts: Counter[str]) -> None:
                done = sum(counts.values())
                tally = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                click.echo(f"\r  {label}: {done}/{n} messages  {tally}", nl=False)

            runner = Runner(wired.engine, SqsQueue(cfg.sqs), cfg.sqs, drain=True, on_batch=progress)
            result = await runner.run()
            click.echo("")
            total.update(result.counts)
            return result

        click.echo(f"\nPublishing {len(stream)} Jomablue messages through SNS into SQS…")
        publish(stream)
        first = asyncio.run(drain("run 1", len(stream)))
        calls_first = wired.gateway.stats.calls
        click.echo("\nThe organiser renames a category (only the event is re-published)…")
        publish([rename])
        second = asyncio.run(drain("run 2", 1))
        for note in wired.engine.notes:
            click.echo(f"  {note}")
        _report(emu, wired, total, calls_first, wired.gateway.stats.calls - calls_first)
        from connector.reconcile import reconcile, render

        # Someone edits a member by hand in Salesforce; reconcile finds it and puts it back.
        member = next(m for m in emu.org.records("CampaignMember") if m.get("Status") == "Attended")
        emu.org.update(member["Id"], {"Status": "Registered"})
        click.echo("\nA member's status was changed by hand in Salesforce. `connector reconcile --fix`:")
        report = asyncio.run(reconcile(wired.gateway, wired.state, wired.mappings, fix=True))
        click.echo(render(report, "table"))
        return 0 if first.exit_code == 0 and second.exit_code == 0 else 1
    finally:
        emu.stop()
        moto.stop()


def _report(emu: Emulator, wired: Any, total: Counter[str], calls_first: int, calls_second: int) -> None:
    org = emu.org
    rows = []
    for c in sorted(org.records("Campaign"), key=lambda c: (c.get("ParentId") or "", c["Name"])):
        members = [m for m in org.records("CampaignMember") if m["CampaignId"] == c["Id"]]
        by = Counter(m["Status"] for m in members)
        rows.append([("  └ " if c.get("ParentId") else "") + c["Name"], c.get("StartDate") or "",
                     c.get("Jomablue_Region__c") or "", len(members),
                     ", ".join(f"{k} {v}" for k, v in sorted(by.items()))])
    _table("Campaigns in Salesforce", ["Campaign", "Start (local)", "Region", "Members", "Statuses"], rows)
    leads, contacts = org.records("Lead"), org.records("Contact")
    _table("People in Salesforce", ["Object", "Records", "From Jomablue", "Example"], [
        ["Lead", len(leads), sum(1 for x in leads if x.get("Jomablue_Id__c")),
         next((f"{x.get('FirstName') or ''} {x['LastName']} <{x.get('Email') or ''}>"
               for x in leads if x.get("Jomablue_Id__c")), "")],
        ["Contact", len(contacts), sum(1 for x in contacts if x.get("Jomablue_Id__c")),
         next((f"{x.get('FirstName') or ''} {x['LastName']}" for x in contacts), "")],
        ["Jomablue_Lead_Capture__c", len(org.records("Jomablue_Lead_Capture__c")), "", ""],
    ])
    vip = [m for m in org.records("CampaignMember") if "VIP" in (m.get("Jomablue_Categories__c") or "")]
    _table("Message outcomes", ["Outcome", "Messages"], [[k, v] for k, v in sorted(total.items())])
    q = wired.state.quarantined()
    if q:
        _table("Quarantined (fix, then `connector replay`)", ["Message", "Reason"],
               [[r["message_key"][:24] + "…", (r["reason"] or "")[:70]] for r in q])
    click.echo(f"\nSalesforce API calls: {calls_first} for the first run, {calls_second} for the rename run "
               f"({emu.api_calls} counted by the org). Members showing a VIP category: "
               f"{', '.join(sorted({m['Jomablue_Categories__c'] for m in vip}))}")
    sys.stdout.flush()
