"""Restoring a verified backup into the real database, in one transaction whose
row counts are compared with the manifest before its COMMIT."""

from __future__ import annotations

import json
import re
import secrets
import time

from ansible.module_utils.pg_backup_database import connect_or_fail, database_errors
from ansible.module_utils.pg_backup_manifest import identity_of, verify_checksums
from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_client_programs import find_client, first_error, libpq_env, restore_via_psql
from ansible.module_utils.pg_connection import resolve_connection
from ansible.module_utils.pg_scratch_restore import archive_path, check_restore_versions

# -- the row-count check inside the restore's transaction ----------------------

ROW_COUNT_MISMATCH = "rkr: row counts differ from the manifest"

_ROW_COUNT_CHECK = """
DO $@outer@$
DECLARE
  t record;
  n bigint;
  bad text[] := ARRAY[]::text[];
BEGIN
  FOR t IN SELECT * FROM pg_catalog.jsonb_to_recordset($@inner@$@expected@$@inner@$::jsonb)
             AS x("schema" text, "table" text, "name" text, "rows" bigint) LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', t."schema", t."table")) IS NULL THEN
      bad := bad || pg_catalog.format('%s: missing', t."name");
      CONTINUE;
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %I.%I', t."schema", t."table") INTO n;
    IF n <> t."rows" THEN
      bad := bad || pg_catalog.format('%s: %s restored, %s in the manifest', t."name", n, t."rows");
    END IF;
  END LOOP;
  IF pg_catalog.cardinality(bad) > 0 THEN
    RAISE EXCEPTION '@mismatch@ in % table(s): %', pg_catalog.cardinality(bad),
      pg_catalog.array_to_string(bad, '; ');
  END IF;
END
$@outer@$;
"""


def row_count_check_sql(manifest: dict, token: str) -> str:
    """A DO block that raises, naming every table whose row count differs from
    the manifest (count(*) like the dump's counts). Run before the restore's
    COMMIT, a difference rolls the whole restore back. token: [a-z0-9]+, makes
    the dollar quotes unique."""
    if not re.fullmatch(r"[a-z0-9]+", token):
        raise ValueError("token must be lowercase letters and digits")
    expected = json.dumps([{k: t[k] for k in ("schema", "table", "name", "rows")} for t in manifest["tables"]],
                          ensure_ascii=True, separators=(",", ":"))
    return (_ROW_COUNT_CHECK.replace("@outer@", f"rkr_{token}").replace("@inner@", f"rkr_{token}_rows")
            .replace("@expected@", expected).replace("@mismatch@", ROW_COUNT_MISMATCH))


# -- the restore ---------------------------------------------------------------

@database_errors
def restore_backup(params: dict, path: str, *, bin_dir: str | None = None, clean: bool = True,
                   no_owner: bool = False, allow_other_database: bool = False,
                   check_mode: bool = False) -> dict:
    """Verify the checksums, then restore into the database in one transaction
    whose row counts are compared with the manifest before its COMMIT.

    pg_restore cannot run SQL before its own COMMIT, so it writes its
    --single-transaction script to a pipe and psql (ON_ERROR_STOP) runs it, with
    the row-count check inserted just before the final COMMIT: a difference, like
    any error, rolls everything back."""
    identity = identity_of(resolve_connection(params))
    manifest = verify_checksums(path, None if allow_other_database else identity)
    pg_restore = find_client("pg_restore", bin_dir)
    psql = find_client("psql", bin_dir)
    conn = connect_or_fail(params)
    try:
        server = CatalogReader(conn).server_version()
    finally:
        conn.rollback()
        conn.close()
    check_restore_versions(manifest, pg_restore, server, "the target server")
    plan = {"path": path, "backup_id": manifest["backup_id"], "taken_at": manifest["finished_at"],
            "tables": len(manifest["tables"]), "rows": manifest["rows"], "bytes": manifest["total_bytes"],
            "clean": clean}
    if check_mode:
        return plan | {"restored": False}
    restore_argv = [pg_restore, "--single-transaction", "--exit-on-error", "--file=-"]
    if clean:
        restore_argv += ["--clean", "--if-exists"]
    if no_owner:
        restore_argv.append("--no-owner")
    restore_argv.append(archive_path(path, manifest))
    psql_argv = [psql, "--no-psqlrc", "--no-password", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"]
    env = libpq_env(params, application="render-key-recovery restore")
    clock = time.monotonic()
    try:
        done = restore_via_psql(restore_argv, psql_argv, env,
                                row_count_check_sql(manifest, secrets.token_hex(6)))
    except OSError as exc:
        raise BackupError(f"cannot run pg_restore or psql: {exc.strerror}") from None
    seconds = time.monotonic() - clock
    if not done["committed"]:
        raise BackupError("restore rolled back, nothing committed (the database is as it was): "
                          + _restore_failure(done))
    details = {"tables_checked": len(manifest["tables"]), "rows_checked": manifest["rows"],
               "extra_tables": tables_beyond(params, manifest), "counts_checked_before_commit": True}
    return plan | details | {"restored": True, "restore_seconds": round(seconds, 3)}


def _restore_failure(done: dict) -> str:
    if done["restore_rc"] != 0:
        return f"pg_restore failed (exit {done['restore_rc']}): {first_error(done['restore_stderr'])}"
    if not done["commit_sent"] and done["psql_rc"] == 0:
        return "pg_restore's script had no final COMMIT; nothing was sent to commit"
    for line in done["psql_stderr"].splitlines():
        if ROW_COUNT_MISMATCH in line:
            return line[line.index(ROW_COUNT_MISMATCH):].strip()
    return f"psql (exit {done['psql_rc']}): {first_error(done['psql_stderr'])}"


def tables_beyond(params: dict, manifest: dict) -> list[str]:
    """Tables in the database that the backup does not hold (created after it; left alone)."""
    conn = connect_or_fail(params)
    try:
        reader = CatalogReader(conn)
        present = {name for _schema, _table, name in reader.dumped_tables(reader.user_schemas())}
        return sorted(present - {t["name"] for t in manifest["tables"]})
    finally:
        conn.rollback()
        conn.close()
