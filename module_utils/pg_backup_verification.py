"""Verifying a backup at a level: checksum < toc < restore.

Restore verification restores into a new scratch database on a scratch server
(never the backed-up server) with --single-transaction --exit-on-error,
compares every table's row count, the object counts and the schema fingerprint
with the manifest, and drops the scratch database whatever happened.
"""

from __future__ import annotations

from ansible.module_utils.pg_backup_database import connect_or_fail, database_errors
from ansible.module_utils.pg_backup_manifest import (
    LEVELS,
    level_at_least,
    passed_levels,
    record_verification,
    verify_checksums,
)
from ansible.module_utils.pg_backup_store import BackupError
from ansible.module_utils.pg_catalog import CatalogReader
from ansible.module_utils.pg_catalog_fingerprint import fingerprint, object_counts, schema_difference
from ansible.module_utils.pg_client_programs import ToolError, find_client, toc_entries
from ansible.module_utils.pg_scratch_restore import archive_path, scratch_restore


@database_errors
def verify_backup(path: str, level: str, *, identity: dict | None = None, scratch: dict | None = None,
                  bin_dir: str | None = None, run_id: str = "", reuse: bool = True,
                  record: bool = True) -> dict:
    """Verify at level (checksum < toc < restore); each level includes the weaker ones.
    The checksum is always verified now. A restore already recorded as passed for
    this exact manifest is reused when reuse: the bytes verified now are the ones
    that were restored. Failures raise BackupError with every problem found."""
    if level not in LEVELS:
        raise BackupError(f"verification level must be one of {', '.join(LEVELS)}, not {level!r}")
    manifest = None
    try:
        manifest = verify_checksums(path, identity)
        result = {"path": path, "level": level, "checked": ["checksum"], "reused": [],
                  "files": len(manifest["files"]), "bytes": manifest["total_bytes"]}
        if level_at_least(level, "toc"):
            try:
                entries = toc_entries(find_client("pg_restore", bin_dir), archive_path(path, manifest))
            except ToolError as exc:
                raise BackupError(f"{path}: {exc}") from None
            if entries != manifest["toc_entries"]:
                raise BackupError(f"{path}: TOC has {entries} entries, the manifest says "
                                  f"{manifest['toc_entries']}")
            result["checked"].append("toc")
        if level == "restore":
            if reuse and "restore" in passed_levels(path, manifest):
                result["reused"].append("restore")
            else:
                if not scratch:
                    raise BackupError("restore verification needs a scratch server (a URL whose role may "
                                      "create databases); none was given")
                try:
                    result["restore"] = restore_check(path, manifest, scratch, bin_dir=bin_dir)
                except ToolError as exc:
                    raise BackupError(f"{path}: {exc}") from None
                result["checked"].append("restore")
    except BackupError as exc:
        if record and manifest is not None:
            record_verification(path, manifest, level, False, run_id, str(exc))
        raise
    if record:
        record_verification(path, manifest, level, True, run_id,
                            "checked " + ", ".join(result["checked"])
                            + (f"; reused {', '.join(result['reused'])}" if result["reused"] else ""))
    result["manifest"] = manifest
    return result


def restore_check(path: str, manifest: dict, scratch: dict, *, bin_dir: str | None = None) -> dict:
    """Restore into a new scratch database, compare with the manifest, drop it."""
    with scratch_restore(path, manifest, scratch, bin_dir=bin_dir, purpose="verify") as (target, restored):
        problems, details = compare_with_manifest(target, manifest, check_schema=True)
        if problems:
            raise BackupError(f"{path}: the restored scratch database differs from the manifest: "
                              + "; ".join(problems))
    return details | {"restore_seconds": restored["restore_seconds"], "scratch_server": restored["scratch_server"]}


def compare_with_manifest(params: dict, manifest: dict, *, check_schema: bool) -> tuple[list[str], dict]:
    """Row counts of every table in the manifest (and, with check_schema, the
    object counts and schema fingerprint) against a database; (problems, details)."""
    conn = connect_or_fail(params)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        reader = CatalogReader(conn)
        schemas = reader.user_schemas()
        present = {name: (schema, table) for schema, table, name in reader.dumped_tables(schemas)}
        problems, rows = [], 0
        for entry in manifest["tables"]:
            if entry["name"] not in present:
                problems.append(f"table {entry['name']} missing")
                continue
            count = reader.exact_row_count(entry["schema"], entry["table"])
            rows += count
            if count != entry["rows"]:
                problems.append(f"row count mismatch for {entry['name']}: {count} restored, "
                                f"{entry['rows']} in the manifest")
        extra = sorted(set(present) - {t["name"] for t in manifest["tables"]})
        details = {"tables_checked": len(manifest["tables"]), "rows_checked": rows, "extra_tables": extra}
        if check_schema:
            objects = reader.schema_objects(schemas)
            counts = object_counts(objects)
            if counts != manifest["objects"]:
                diff = {k: f"{counts.get(k, 0)} restored, {manifest['objects'].get(k, 0)} in the manifest"
                        for k in sorted(set(counts) | set(manifest["objects"]))
                        if counts.get(k, 0) != manifest["objects"].get(k, 0)}
                problems.append("object counts differ: " + ", ".join(f"{k} {v}" for k, v in diff.items()))
            if fingerprint(objects) != manifest["schema_fingerprint"]:
                problems.append("schema fingerprint differs: "
                                + schema_difference(manifest["schema_objects"], objects))
            elif extra:
                problems.append(f"tables not in the manifest: {', '.join(extra)}")
            details["objects"] = counts
        return problems, details
    finally:
        conn.rollback()
        conn.close()
