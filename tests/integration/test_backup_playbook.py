"""The backup role through ansible-playbook: the gate, idempotence, check mode,
bad input, secrets at -vvv, a failing Render export, and restore.yml."""

from __future__ import annotations

import os
import shutil
import stat
import time

import psycopg2
import pytest
from ansible.module_utils.pg_backup_dump import take_backup
from ansible.module_utils.pg_backup_manifest import (
    load_manifest,
    passed_levels,
)
from ansible.module_utils.pg_backup_store import MANIFEST, BackupError
from ansible.module_utils.pg_backup_verification import verify_backup

from tests.integration.backup_support import (
    append_a_byte,
    flip_a_byte,
    new_source,
    params,
    password_of,
    table_hashes,
)
from tests.playbook_runner import ROOT

# -- through ansible-playbook ---------------------------------------------------------

GATED_PLAY = """\
- name: A stand-in for the conversion, gated like it
  hosts: app_environments
  gather_facts: false
  tasks:
    - name: Take and verify a backup first
      ansible.builtin.include_role:
        name: backup
      vars:
        backup_database_url: "{{{{ recovery_database_url }}}}"
      when: take_backup | default(false) | bool
    - name: Require a verified backup
      ansible.builtin.include_role:
        name: backup
        tasks_from: gate
      vars:
        backup_database_url: "{{{{ recovery_database_url }}}}"
        backup_environment: staging
    - name: Convert
      ansible.builtin.debug:
        msg: CONVERSION RAN with {{{{ backup_result.gate_path }}}}
"""


@pytest.fixture
def gated(tmp_path):
    path = tmp_path / "gated.yml"
    path.write_text(GATED_PLAY.format())
    return str(path)


def test_gate_blocks_without_a_backup_and_passes_with_one(request, pg_cluster, pb, gated):
    url = new_source(request, pg_cluster)
    blocked = pb(gated, url)
    assert blocked.rc != 0
    assert "CONVERSION RAN" not in blocked.output
    assert "no verified backup of" in blocked.output
    # The command to paste names the inventory this run was given, not a guessed one.
    inventory = blocked.argv[blocked.argv.index("-i") + 1]
    assert f"Make one, verified at level restore: ansible-playbook playbooks/backup.yml -i {inventory}" \
        in blocked.output

    same_run = pb(gated, url, extra={"take_backup": True, "backup_run_id": "gate1"})
    assert same_run.rc == 0, same_run.output[-3000:]
    assert "verified in this run" in same_run.output and "CONVERSION RAN" in same_run.output

    later = pb(gated, url)  # a recent backup of the same schema
    assert later.rc == 0, later.output[-3000:]
    assert "of the same schema" in later.output and "CONVERSION RAN" in later.output

    too_old = pb(gated, url, extra={"backup_gate_max_age_hours": 0})
    assert too_old.rc != 0 and "h allowed" in too_old.output and "CONVERSION RAN" not in too_old.output

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE added_after_the_backup (id int)")
    conn.close()
    changed = pb(gated, url)
    assert changed.rc != 0
    assert "the schema changed since this backup (fingerprint differs)" in changed.output
    assert "CONVERSION RAN" not in changed.output

    # A backup damaged since its verification does not let the change through.
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE added_after_the_backup")
    conn.close()
    append_a_byte(str(pb.store / "test-env" / "gate1"))
    damaged = pb(gated, url)
    assert damaged.rc != 0 and "size mismatch" in damaged.output and "CONVERSION RAN" not in damaged.output


def test_backup_playbook_is_idempotent_checkable_and_never_prints_a_password(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    checked = pb("playbooks/backup.yml", url, check=True, extra={"backup_run_id": "r1"})
    assert checked.rc == 0, checked.output[-3000:]
    assert "would dump" in checked.output and "of table data (before compression)" in checked.output
    assert not pb.store.exists() or not list(pb.store.rglob(MANIFEST))

    # No scratch URL: the role starts a throwaway cluster, whose superuser URL stays hidden too.
    first = pb("playbooks/backup.yml", url, verbosity=3, extra={"backup_run_id": "r1", "backup_scratch_url": ""})
    assert first.rc == 0, first.output[-3000:]
    assert first.recap()["changed"] == 1
    assert "backup verified at level restore: checked checksum, toc, restore" in first.output
    assert password_of(url) not in first.output
    assert "postgresql://postgres:" not in first.output and "PGPASSWORD" not in first.output
    for file in pb.store.rglob("*"):
        if file.is_file():
            assert password_of(url).encode() not in file.read_bytes(), file

    again = pb("playbooks/backup.yml", url, extra={"backup_run_id": "r1"})
    assert again.rc == 0 and again.recap()["changed"] == 0
    assert "this run already has custom backup" in again.output
    assert "reused the recorded restore" in again.output
    check_again = pb("playbooks/backup.yml", url, check=True, extra={"backup_run_id": "r1"})
    assert check_again.rc == 0 and check_again.recap()["changed"] == 0


@pytest.mark.parametrize("extra, message", [
    ({"backup_jobs": 4}, "backup_jobs > 1 needs backup_format directory"),
    ({"backup_format": "tar"}, "backup_format"),
    ({"backup_run_id": "../escape"}, "backup_run_id must be letters"),
    ({"recovery_database_url": "postgresql://CHANGE_ME_user:CHANGE_ME_pw@h/db"}, "CHANGE_ME"),
    ({"recovery_database_url": "mysql://u:hunter22@h/db"},
     "backup_database_url: database URL must start with postgresql://"),
])
def test_bad_input_is_rejected_before_anything_runs(source, pb, extra, message):
    result = pb("playbooks/backup.yml", extra.pop("recovery_database_url", source), extra=extra)
    assert result.rc != 0
    assert message in result.output, result.output[-3000:]
    assert "hunter22" not in result.output
    assert not pb.store.exists()


def test_failures_name_the_problem_without_the_password(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    wrong = url.replace(password_of(url), "not-the-password")
    result = pb("playbooks/backup.yml", wrong)
    assert result.rc != 0
    assert "password rejected for app_owner@127.0.0.1" in result.output
    assert "not-the-password" not in result.output


def test_backup_force_through_the_playbook_dumps_again_under_the_same_run_id(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    first = pb("playbooks/backup.yml", url, extra={"backup_run_id": "f1", "backup_verify_level": "checksum"})
    assert first.rc == 0, first.output[-3000:]
    path = pb.store / "test-env" / "f1"
    old = load_manifest(str(path))
    forced = pb("playbooks/backup.yml", url, extra={"backup_run_id": "f1", "backup_force": True})
    assert forced.rc == 0, forced.output[-3000:]
    assert forced.recap()["changed"] >= 1
    assert f"dumped custom backup {path}" in forced.output
    new = load_manifest(str(path))
    assert new["manifest_checksum"] != old["manifest_checksum"] and new["started_at"] >= old["started_at"]
    assert sorted(os.listdir(pb.store / "test-env")) == ["f1"]  # replaced, no leftover
    # The new manifest was verified afresh (the old one's records do not carry over).
    assert passed_levels(str(path), new) == ["restore"]
    assert "backup verified at level restore: checked checksum, toc, restore" in forced.output


def test_an_existing_group_readable_backup_dir_is_refused_and_left_alone(source, pb, tmp_path):
    shared = tmp_path / "shared-backups"
    shared.mkdir()
    os.chmod(shared, 0o750)  # noqa: S103 - a directory someone shares on purpose is the case under test
    result = pb("playbooks/backup.yml", source, extra={"backup_dir": str(shared)})
    assert result.rc != 0
    assert f"{shared} exists with mode 0750: group or others may read it" in result.output
    assert f"chmod 700 {shared}" in result.output
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o750 and os.listdir(shared) == []


EXPORT_PLAY = """\
- name: The backup role with Render's export on, then the gate, as recover.yml runs them
  hosts: app_environments
  gather_facts: false
  tasks:
    - name: Take and verify a backup, and ask Render for its export
      ansible.builtin.include_role:
        name: backup
      vars:
        backup_database_url: "{{ recovery_database_url }}"
    - name: Require a verified backup
      ansible.builtin.include_role:
        name: backup
        tasks_from: gate
      vars:
        backup_database_url: "{{ recovery_database_url }}"
    - name: Show what the run report reads
      ansible.builtin.debug:
        msg: "EXPORT ERROR FACT=[{{ backup_render_export_error }}] RETENTION RAN={{ __backup_prune is defined }}"
"""


def test_a_failing_render_export_is_a_warning_never_a_failed_backup(request, pg_cluster, pb, tmp_path):
    from localenv.render_sim import testing

    url = new_source(request, pg_cluster)
    play = tmp_path / "export.yml"
    play.write_text(EXPORT_PLAY)
    with testing.running(pg_cluster) as (server, names, key):
        testing.Control(server, key).faults("POST /postgres/{postgresId}/export",
                                            [{"status": 403}] * 5)
        result = pb(str(play), url, verbosity=3, extra={
            "backup_run_id": "e1", "backup_render_export": True,
            "backup_render_postgres_id": names["postgres"], "render_api_key": key,
            "render_api_base_url": server.base_url})
    assert result.rc == 0, result.output[-4000:]
    assert "WARNING: Render's own export of " + names["postgres"] + " failed (" in result.output
    assert "is unaffected and remains the one the conversion depends on" in result.output
    fact = result.output.split("EXPORT ERROR FACT=[", 1)[1].split("]", 1)[0]
    assert fact and "403" in fact, fact
    assert "RETENTION RAN=True" in result.output and "backup gate passed" in result.output
    assert key not in result.output


# -- restore.yml ---------------------------------------------------------------------

def test_restore_round_trips_and_production_needs_confirmation(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    before = table_hashes(url)
    taken = pb("playbooks/backup.yml", url, extra={"backup_run_id": "before", "backup_verify_level": "checksum"})
    assert taken.rc == 0, taken.output[-3000:]

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        # Lose rows in the two largest tables no foreign key references.
        cur.execute("SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'r' "
                    "AND c.relnamespace = 'public'::regnamespace AND pg_relation_size(c.oid) > 0 "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.confrelid = c.oid) "
                    "ORDER BY pg_relation_size(c.oid) DESC, 1 LIMIT 2")
        for (table,) in cur.fetchall():
            cur.execute(f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} LIMIT 3)")
        cur.execute("CREATE TABLE created_after (id int)")
    conn.close()
    mutated = table_hashes(url)
    mutated.pop("public.created_after")
    assert mutated != before

    production = {"recovery_environment": "production"}
    # The gates of a protected environment (playbooks/tasks/gates.yml) refuse before any change.
    refused = pb("playbooks/restore.yml", url, extra=production)
    assert refused.rc != 0
    assert ("refused before any change by confirm: production is protected: "
            "re-run with -e recovery_confirm=production") in refused.output
    wrong = pb("playbooks/restore.yml", url, extra=production | {"restore_confirm": "staging"})
    assert wrong.rc != 0 and "refused before any change by confirm: production is protected" in wrong.output

    checked = pb("playbooks/restore.yml", url, check=True, extra=production | {"restore_confirm": "production"})
    assert checked.rc == 0 and "would restore" in checked.output

    # restore_path relative to where ansible-playbook runs (the project root here).
    relative = os.path.relpath(pb.store / "test-env" / "before", ROOT)
    restored = pb("playbooks/restore.yml", url,
                  extra=production | {"restore_confirm": "production", "restore_path": relative})
    assert restored.rc == 0, restored.output[-3000:]
    assert "row counts equal the manifest" in restored.output
    assert "tables created after the backup, left alone: public.created_after" in restored.output
    after = table_hashes(url)
    after.pop("public.created_after")
    assert after == before
    assert password_of(url) not in restored.output


def test_restore_without_a_path_takes_the_newest_verified_backup_never_a_failed_one(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    none_yet = pb("playbooks/restore.yml", url)
    assert none_yet.rc != 0 and "no backup of" in none_yet.output

    good = pb("playbooks/backup.yml", url, extra={"backup_run_id": "good", "backup_verify_level": "checksum"})
    assert good.rc == 0, good.output[-3000:]
    before = table_hashes(url)
    time.sleep(1.05)  # manifests order by their end time (seconds)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE only_in_the_failed_backup (id int)")
    conn.close()
    # A newer run whose verification failed (no scratch server for level restore).
    failed = take_backup(params(url), backup_dir=str(pb.store), label="test-env", backup_id="failed")
    with pytest.raises(BackupError, match="needs a scratch server"):
        verify_backup(failed["path"], "restore")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE only_in_the_failed_backup")
        cur.execute("CREATE TABLE after_both (id int)")
    conn.close()

    restored = pb("playbooks/restore.yml", url)
    assert restored.rc == 0, restored.output[-3000:]
    assert f"restored {pb.store / 'test-env' / 'good'}" in restored.output
    assert "chosen as the newest backup verified at level checksum, passing over newer: failed" in restored.output
    after = table_hashes(url)
    assert "public.only_in_the_failed_backup" not in after
    after.pop("public.after_both")
    assert after == before

    # With only unverified backups there is nothing to restore by default.
    shutil.rmtree(pb.store / "test-env" / "good")
    refused = pb("playbooks/restore.yml", url)
    assert refused.rc != 0
    assert "refusing to restore: no backup of" in refused.output
    assert "passed verification (failed: its verification failed)" in refused.output
    assert "-e restore_path=<dir>" in refused.output


def test_restore_refuses_a_damaged_backup_and_leaves_the_database_alone(request, pg_cluster, pb):
    url = new_source(request, pg_cluster)
    taken = pb("playbooks/backup.yml", url, extra={"backup_run_id": "b", "backup_verify_level": "checksum"})
    assert taken.rc == 0, taken.output[-3000:]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marker (id int)")
    conn.close()
    before = table_hashes(url)
    flip_a_byte(str(pb.store / "test-env" / "b"))
    result = pb("playbooks/restore.yml", url, extra={"restore_path": str(pb.store / "test-env" / "b")})
    assert result.rc != 0
    assert "dump.pgc: checksum mismatch" in result.output
    assert table_hashes(url) == before
