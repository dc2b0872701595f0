"""The verification report (playbooks/verify.yml, roles/verify) from the probes' results,
without a server: the FK baseline rules, every check's status, and that no secret ever
reaches a report; and the reading and pruning of earlier reports (module_utils/verify_history.py)."""

from __future__ import annotations

import copy
import json
import os

import pytest
from ansible.module_utils import verify_history
from ansible.module_utils.verify_report import (
    assemble_verify_report,
    compare_foreign_keys,
    conversion_record,
    newest_baseline,
    render_verify_markdown,
    verify_record,
    verify_summary,
)

from tests.unit.report_commands import verify_report_commands
from tests.unit.test_run_report import (
    API_KEY,
    BACKUP,
    FKS,
    PASSWORD,
    RUN_ID,
    SECRETS,
    URL,
    assert_no_secret,
    findings,
    fk,
    full_run,
    run_report,
)

# ----------------------------------------------------------------------------- verification

CONVERSION = {"changed": True, "finished": True, "failed": False, "fk_count_after": 2, "post_commit_errors": []}


def test_conversion_record_reads_a_successful_conversion_only():
    record = conversion_record(RUN_ID, conversion=CONVERSION, findings=findings())
    assert record["fk_count"] == 2 and record["revision"] == "ba1a5bcdb110" and record["source"] == "conversion.json"
    assert record["fk_names"] == ["public.items.items_order_id_fkey", "public.orders.orders_user_id_fkey"]
    assert record["at"] == "2026-11-24T01:42:49Z"
    failed = {"changed": False, "finished": True, "failed": False, "msg": "rolled back after an error"}
    assert conversion_record(RUN_ID, conversion=failed) is None
    assert conversion_record(RUN_ID, conversion=CONVERSION | {"finished": 0}) is None
    from_report = conversion_record(RUN_ID, run_report=run_report(full_run()))
    assert from_report["fk_count"] == 2 and from_report["source"] == "run-report.json"
    assert from_report["fk_names"] is None and from_report["revision"] == "ba1a5bcdb110"


def baseline(count=2, names=FKS, revision="b354d12d1e7d"):
    return {"name": "the conversion of run R", "run_id": "R", "at": "2026-11-24T01:42:49Z", "source": "conversion.json",
            "fk_count": count, "fk_names": None if names is None else sorted(f"{f['schema']}.{f['table']}.{f['name']}"
                                                                            for f in names),
            "revision": revision}


AT_HEAD = {"stored": ("b354d12d1e7d",), "true": "b354d12d1e7d", "needed": False}
EXTRA = fk("public", "folders", "folders_parent_id_fkey")


@pytest.mark.parametrize(("record", "now", "status", "words"), [
    (None, findings(**AT_HEAD), "info", "nothing to compare with"),
    (baseline(), findings(**AT_HEAD), "ok", "as recorded"),
    (baseline(), findings(**AT_HEAD, fks=FKS[:1]), "drift", "1 gone: public.items.items_order_id_fkey"),
    (baseline(), findings(**AT_HEAD, fks=[*FKS, EXTRA]), "drift", "added with no migration since"),
    (baseline(revision="ba1a5bcdb110"), findings(**AT_HEAD, fks=[*FKS, EXTRA]), "ok",
     "added by the migrations since (ba1a5bcdb110 -> b354d12d1e7d)"),
    (baseline(revision="ba1a5bcdb110"), findings(**AT_HEAD, fks=[FKS[0], EXTRA]), "drift", "1 gone"),
    # alembic reset by hand: not a migration, so no leniency for the FKs either.
    (baseline(), findings(stored=("f867c7e3d51c",), true="b354d12d1e7d", needed=False, fks=[*FKS, EXTRA]),
     "drift", "no migration since"),
    (baseline(names=None), findings(**AT_HEAD), "ok", "as recorded"),
    (baseline(names=None), findings(**AT_HEAD, fks=FKS[:1]), "drift", "changed with no migration since"),
    (baseline(names=None, revision="ba1a5bcdb110"), findings(**AT_HEAD, fks=[*FKS, EXTRA]), "ok", "the others added"),
])
def test_foreign_keys_against_the_newest_known_good_record(record, now, status, words):
    check = compare_foreign_keys(record, now)
    assert check["status"] == status and words in check["summary"], check


def test_foreign_key_changes_can_be_accepted_as_the_new_baseline():
    check = compare_foreign_keys(baseline(), findings(**AT_HEAD, fks=FKS[:1]), accept=True)
    assert check["status"] == "ok" and "accepted as the new baseline" in check["summary"]


def test_the_newest_known_good_record_wins():
    clean = {"kind": "verify-report", "result": "ok", "generated_at": "2026-11-25T00:00:00Z",
             "snapshot": {"fk_count": 3, "fk_names": ["a", "b", "c"], "revision": "b354d12d1e7d"}}
    record = verify_record("verify-20261125T000000Z", clean)
    assert record["fk_count"] == 3 and record["source"] == "verify-20261125T000000Z.json"
    assert verify_record("v", clean | {"result": "drift"}) is None
    assert verify_record("v", {"kind": "verify-report", "result": "ok"}) is None
    conversion = conversion_record(RUN_ID, conversion=CONVERSION)
    assert newest_baseline(conversion, record) is record
    assert newest_baseline(conversion, None) is conversion
    assert newest_baseline(None, None) is None


def verify(evidence, **kwargs):
    defaults = {"environment": "production", "host": "production", "generated_at": "2026-11-24T03:00:00Z",
                "baseline": None, "render_configured": True, "expected_key_type": "character varying(36)",
                "secrets": SECRETS, "commands": verify_report_commands("-i inventories/production")}
    return assemble_verify_report(evidence, **(defaults | kwargs))


HEALTHY = {
    "findings": {"findings": findings(**AT_HEAD)},
    "plan": {"changed": False, "plan": {"columns": [], "refusals": []}},
    "gate": {"path": BACKUP, "level": "restore", "backup": {"finished_at": "2026-11-24T02:00:00Z"}},
    "service": {"service": {"serviceDetails": {"url": "https://app.example", "maintenanceMode": {"enabled": False}}}},
    "health": {"status": 200, "url": "https://app.example/health"},
}


def check_statuses(report):
    return {c["id"]: c["status"] for c in report["checks"]}


def test_a_recovered_environment_verifies_clean_and_records_its_snapshot():
    report = verify(HEALTHY, baseline=baseline())
    assert report["result"] == "ok" and report["drifts"] == []
    assert check_statuses(report) == {"key_types": "ok", "foreign_keys": "ok", "alembic": "ok",
                                      "conversion_plan": "ok", "backup": "ok", "maintenance": "ok", "health": "ok"}
    assert report["snapshot"] == {"fk_count": 2, "revision": "b354d12d1e7d",
                                  "fk_names": ["public.items.items_order_id_fkey", "public.orders.orders_user_id_fkey"]}
    assert "fk_names" not in report["baseline"]
    assert verify_summary(report) == "production: no drift"
    assert "**Result: OK, no drift**" in render_verify_markdown(report)


def test_the_broken_environment_drifts_on_types_alembic_and_plan():
    evidence = HEALTHY | {"findings": {"findings": findings()},
                          "plan": {"changed": True, "plan": {"columns": ["public.users.id"] * 12, "refusals": []}}}
    report = verify(evidence)
    assert report["result"] == "drift"
    assert check_statuses(report) | {} == {"key_types": "drift", "foreign_keys": "info", "alembic": "drift",
                                           "conversion_plan": "drift", "backup": "ok", "maintenance": "ok",
                                           "health": "ok"}
    summary = verify_summary(report, "/r/verify-x.md")
    for text in ("3 check(s) failed", "2 key or FK-linked column(s) are not character varying(36)",
                 "alembic_version holds f867c7e3d51c but the schema is at ba1a5bcdb110",
                 "would convert 12 column(s)", "and 7 more", "Report: /r/verify-x.md"):
        assert text in summary, text


def test_alembic_behind_head_is_drift():
    evidence = HEALTHY | {"findings": {"findings": findings(needed=False, stored=("ba1a5bcdb110",))}}
    report = verify(evidence)
    assert check_statuses(report)["alembic"] == "drift"
    assert "not head b354d12d1e7d" in report["drifts"][0]


def test_probes_that_could_not_run_are_errors_and_fail_the_verification():
    evidence = {"findings": {"failed": False, "msg": "could not connect to server"},
                "findings_error": "reading the catalog failed: could not connect to server",
                "plan": {"failed": False, "msg": "could not connect to server"},
                "gate": {"failed": False, "msg": "no verified backup", "refused": []},
                "service": {"failed": False, "msg": "Render answered 401"}, "health": {"skipped": True}}
    report = verify(evidence)
    assert report["result"] == "error"
    assert check_statuses(report) == {"key_types": "error", "foreign_keys": "error", "alembic": "error",
                                      "conversion_plan": "error", "backup": "warn", "maintenance": "error",
                                      "health": "error"}
    assert "could not connect to server" in report["drifts"][0]


def test_a_missing_revision_map_cannot_verify_alembic():
    no_map = findings(**AT_HEAD) | {"alembic": None}
    report = verify(HEALTHY | {"findings": {"findings": no_map},
                               "alembic_versions_dir": "/srv/app/migrations/versions"})
    assert check_statuses(report)["alembic"] == "error"
    assert "/srv/app/migrations/versions is not a directory" in report["drifts"][0]


def test_maintenance_on_and_a_failing_health_check_are_drift():
    evidence = HEALTHY | {
        "service": {"service": {"serviceDetails": {"url": "https://a", "maintenanceMode": {"enabled": True}}}},
        "health": {"status": 503, "url": "https://a/health"}}
    report = verify(evidence, baseline=baseline())
    assert check_statuses(report)["maintenance"] == "drift" and check_statuses(report)["health"] == "drift"
    assert "maintenance mode is ON" in verify_summary(report)


def test_render_not_used_skips_its_checks_and_says_why():
    report = verify({k: v for k, v in HEALTHY.items() if k not in ("service", "health")}, render_configured=False,
                    baseline=baseline())
    assert report["result"] == "ok"
    assert check_statuses(report)["maintenance"] == "skipped" and check_statuses(report)["health"] == "skipped"
    assert all("recovery_render is false" in c["summary"] for c in report["checks"]
               if c["id"] in ("maintenance", "health"))


def test_a_backup_refused_by_the_gate_is_reported_but_is_not_drift():
    evidence = HEALTHY | {"gate": {"failed": False, "msg": "no verified backup", "refused": [
        f"{BACKUP}: the schema changed since this backup (fingerprint differs)"]}}
    report = verify(evidence, baseline=baseline())
    assert report["result"] == "ok" and check_statuses(report)["backup"] == "warn"
    assert "playbooks/backup.yml -i inventories/production" in report["checks"][4]["summary"]


def test_no_secret_in_a_verification_report():
    evidence = copy.deepcopy(HEALTHY)
    evidence["findings"]["findings"]["database"]["url"] = URL
    evidence["health"]["url"] = f"https://a/health?key={API_KEY}"
    evidence["gate"]["msg"] = f"password {PASSWORD} rejected"
    report = verify(evidence)
    assert_no_secret(report, render_verify_markdown(report), verify_summary(report))


# ----------------------------------------------------------------------------- the reports it reads

def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(data, handle)


def test_the_history_finds_the_newest_successful_conversion_and_clean_verification(tmp_path):
    module = verify_history
    host = tmp_path / "production"
    write(str(host / "20261120T000000Z" / "conversion.json"), CONVERSION)
    write(str(host / "20261120T000000Z" / "findings.json"), findings())
    failed = {"changed": False, "finished": True, "failed": False, "msg": "rolled back"}
    write(str(host / "20261121T000000Z" / "conversion.json"), failed)
    write(str(host / "20261122T000000Z" / "findings.json"), findings(needed=False))
    record = module.last_conversion(str(host))
    assert record["run_id"] == "20261120T000000Z" and record["fk_names"] and record["revision"] == "ba1a5bcdb110"
    assert module.last_conversion(str(tmp_path / "nowhere")) is None
    write(str(host / "verify-20261123T000000Z.json"), {"kind": "verify-report", "result": "ok",
                                                        "generated_at": "2026-11-23T00:00:00Z",
                                                        "snapshot": {"fk_count": 1, "fk_names": ["x"]}})
    write(str(host / "verify-20261124T000000Z.json"), {"kind": "verify-report", "result": "drift"})
    assert module.last_clean_verification(str(host))["run_id"] == "verify-20261123T000000Z"


def test_the_history_prunes_the_oldest_verify_reports_only(tmp_path):
    module = verify_history
    for day in range(1, 6):
        for ext in (".json", ".md"):
            (tmp_path / f"verify-202611{day:02d}T000000Z{ext}").write_text("{}")
    (tmp_path / "20261101T000000Z").mkdir()
    deleted = module.prune_verify_reports(str(tmp_path), 3)
    assert sorted(os.path.basename(p) for p in deleted) == [
        "verify-20261101T000000Z.json", "verify-20261101T000000Z.md",
        "verify-20261102T000000Z.json", "verify-20261102T000000Z.md",
        "verify-20261103T000000Z.json", "verify-20261103T000000Z.md"]
    assert sorted(os.listdir(tmp_path)) == ["20261101T000000Z", "verify-20261104T000000Z.json",
                                            "verify-20261104T000000Z.md", "verify-20261105T000000Z.json",
                                            "verify-20261105T000000Z.md"]
    assert module.prune_verify_reports(str(tmp_path), 0) == []
