"""Which backups count: finding them, retention, the gate a risky change must
pass, and the backup a restore without a path uses.

Only backups that passed verification count: toward retention's `keep`, for
the gate, and for a restore. No database access here (the gate is handed the
live schema fingerprint); everything is unit-testable.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

from ansible.module_utils.pg_backup_manifest import (
    best_level,
    describe_identity,
    file_problems,
    level_at_least,
    load_manifest,
    read_verifications,
    same_database,
)
from ansible.module_utils.pg_backup_store import BackupError, dir_entries, label_dir, parse_iso

# -- finding backups -----------------------------------------------------------

def list_backups(backup_dir: str, label: str) -> list[dict]:
    """Every backup directory under <backup_dir>/<label>: path, id, manifest or error.
    Temporary directories of a dump in progress (dot names) are left out."""
    found = []
    for name, path in dir_entries(label_dir(backup_dir, label)):
        if name.startswith(".") or not os.path.isdir(path):
            continue
        try:
            found.append({"path": path, "id": name, "manifest": load_manifest(path), "error": None})
        except BackupError as exc:
            found.append({"path": path, "id": name, "manifest": None, "error": str(exc)})
    return found


def newest_first(backups: list[dict]) -> list[dict]:
    good = [b for b in backups if b["manifest"]]
    return sorted(good, key=lambda b: (b["manifest"]["finished_at"], b["id"]), reverse=True)


def failed_verifications(path: str, manifest: dict) -> list[dict]:
    return [r for r in read_verifications(path)
            if not r.get("ok") and r.get("manifest_checksum") == manifest["manifest_checksum"]]


# -- retention -----------------------------------------------------------------

def plan_retention(backups: list[dict], identity: dict, keep: int, protect: list[str]) -> tuple[list, list]:
    """(kept, deleted) backups of this database, each with a "retention" reason.

    Only backups that passed verification count toward `keep`, so failing runs
    can never push a good backup out. Kept: every protected path, the newest
    `keep` verified backups, the newest restore-verified one (even beyond
    `keep`), and never-verified backups newer than the newest verified one (a
    run may be about to verify it). Deleted: older verified ones, backups whose
    verification only ever failed, never-verified ones older than the newest
    verified one. Nothing is deleted while no backup of this database passed
    verification. Other databases' backups and unreadable ones are never touched."""
    if keep < 1:
        raise BackupError("retention must keep at least one backup")
    protected = {os.path.realpath(p) for p in protect if p}
    ours = newest_first([b for b in backups if b["manifest"] and same_database(b["manifest"], identity)])
    levels = {b["path"]: best_level(b["path"], b["manifest"]) for b in ours}
    verified = [b for b in ours if levels[b["path"]]]
    counted = {b["path"] for b in verified[:keep]}
    restore_verified = next((b["path"] for b in verified if levels[b["path"]] == "restore"), None)
    newest_verified = verified[0]["manifest"]["finished_at"] if verified else None
    kept, deleted = [], []
    for backup in ours:
        path, level = backup["path"], levels[backup["path"]]
        if os.path.realpath(path) in protected:
            keep_it, why = True, "protected (this run depends on it)"
        elif not verified:
            keep_it, why = True, "no backup of this database passed verification yet: nothing is deleted"
        elif path in counted:
            keep_it, why = True, f"one of the newest {keep} verified (level {level})"
        elif path == restore_verified:
            keep_it, why = True, "the newest restore-verified backup"
        elif level:
            keep_it, why = False, f"verified (level {level}) but older than the newest {keep} verified"
        elif failed_verifications(path, backup["manifest"]):
            keep_it, why = False, "its verification failed"
        elif backup["manifest"]["finished_at"] > newest_verified:
            keep_it, why = True, "not verified yet, newer than the newest verified backup"
        else:
            keep_it, why = False, "never verified, older than the newest verified backup"
        (kept if keep_it else deleted).append(backup | {"retention": why})
    return kept, deleted


def prune(backup_dir: str, label: str, identity: dict, keep: int, protect: list[str], *,
          check_mode: bool = False) -> dict:
    kept, deleted = plan_retention(list_backups(backup_dir, label), identity, keep, protect)
    if not check_mode:
        for backup in deleted:
            shutil.rmtree(backup["path"])
    return {"kept": [b["path"] for b in kept], "deleted": [b["path"] for b in deleted],
            "reasons": {b["path"]: b["retention"] for b in kept + deleted}}


# -- the gate ------------------------------------------------------------------

def evaluate_gate(backups: list[dict], identity: dict, *, live_fingerprint: str, min_level: str,
                  max_age_seconds: float, now: dt.datetime, this_run: str = "",
                  recheck: bool = True) -> tuple[dict | None, list[str]]:
    """(the backup that lets a risky change run, or None; why each candidate was refused).

    A backup verified in this run (this_run = its path) at min_level passes.
    Otherwise the newest backup of this database verified at min_level, younger
    than max_age_seconds and taken of the same schema (fingerprint) passes.
    With recheck, its checksums are verified again now, so a backup damaged
    since its verification cannot let the change through."""
    reasons = []
    candidates = newest_first(backups)
    if this_run:
        run_path = os.path.realpath(this_run)
        candidates = [b for b in candidates if os.path.realpath(b["path"]) == run_path] or candidates
    for bad in (b for b in backups if b["error"]):
        reasons.append(bad["error"])
    for backup in candidates:
        manifest, path = backup["manifest"], backup["path"]
        if not same_database(manifest, identity):
            reasons.append(f"{path}: manifest is for database {describe_identity(manifest['database'])}")
            continue
        level = best_level(path, manifest)
        if level is None or not level_at_least(level, min_level):
            reasons.append(f"{path}: verified at {level or 'no'} level, {min_level} required")
            continue
        from_this_run = bool(this_run) and os.path.realpath(path) == os.path.realpath(this_run)
        if not from_this_run:
            age = (now - parse_iso(manifest["finished_at"])).total_seconds()
            if age > max_age_seconds:
                reasons.append(f"{path}: {age / 3600:.1f} h old, at most {max_age_seconds / 3600:g} h allowed")
                continue
            if manifest.get("schema_fingerprint") != live_fingerprint:
                reasons.append(f"{path}: the schema changed since this backup (fingerprint differs)")
                continue
        if recheck:
            problems = file_problems(path, manifest)
            if problems:
                reasons.append(f"{path}: " + "; ".join(problems))
                continue
        return backup | {"level": level, "from_this_run": from_this_run}, reasons
    return None, reasons


def gate_message(identity: dict, remedy: str, reasons: list[str], min_level: str) -> str:
    """remedy: what the operator runs to make one (the caller's command: this module never names
    the project's own playbooks); empty names none."""
    why = ("; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
           if reasons else "no backup of it was found")
    return (f"no verified backup of {describe_identity(identity)} lets this change run ({why}). "
            f"Make one, verified at level {min_level}" + (f": {remedy}" if remedy else "."))


# -- restore -------------------------------------------------------------------

def restore_candidate(backup_dir: str, label: str, identity: dict, remedy: str = "") -> dict:
    """The backup a restore without an explicit path uses: the newest one of this
    database verified at level restore, else the newest verified at all (its
    level is said). Never one that did not pass verification: BackupError then,
    saying what was found and then remedy (the caller's words for what to do)."""
    ours = newest_first([b for b in list_backups(backup_dir, label)
                         if b["manifest"] and same_database(b["manifest"], identity)])
    where = f"{describe_identity(identity)} under {label_dir(backup_dir, label)}"
    if not ours:
        raise BackupError(f"no backup of {where}")
    levels = [(b, best_level(b["path"], b["manifest"])) for b in ours]
    for wanted in ("restore", None):
        for backup, level in levels:
            if level and (wanted is None or level == wanted):
                skipped = [b["id"] for b in ours[:ours.index(backup)]]
                return backup | {"level": level, "skipped_newer": skipped}
    found = "; ".join(f"{b['id']}: " + ("its verification failed" if failed_verifications(b["path"], b["manifest"])
                                        else "never verified") for b in ours[:5])
    raise BackupError(f"refusing to restore: no backup of {where} passed verification ({found})."
                      + (f" {remedy}" if remedy else ""))
