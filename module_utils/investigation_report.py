"""Render investigation findings as the Markdown report an operator reads."""

from __future__ import annotations

# Referencing FKs listed per mismatched key before "... and N more".
REFERENCING_SHOWN = 20


def _size(num_bytes) -> str:
    if num_bytes is None:
        return "unknown"
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _table(headers, rows) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return [*out, ""]


def referencing_line(key: dict, limit: int = REFERENCING_SHOWN) -> str:
    """One bullet per key: referencing table.column -> constraint, capped
    (findings.json keeps every one)."""
    shown = [f"`{fk['table']}.{','.join(fk['columns'])}` -> `{fk['name']}`"
             for fk in key["referenced_by"][:limit]]
    rest = len(key["referenced_by"]) - len(shown)
    return (f"- `{key['qualified']}` is referenced by: {', '.join(shown)}"
            + (f" ... and {rest} more (see findings.json)" if rest > 0 else ""))


def _walk_row(step: dict, drops: bool) -> tuple:
    dropped = step.get("dropped_tables") or []
    unproven = "" if dropped else "(none: assumed)"
    wrong = [*step["missing"], *(f"{t} (still present)" for t in step.get("still_present") or [])]
    return (step["revision"], ", ".join(step["tables"]) or unproven,
            *([", ".join(dropped)] if drops else []), ", ".join(wrong))


def render_markdown(findings: dict, *, title: str) -> str:
    f = findings
    lines = [f"# Findings: {title}", "",
             f"Generated {f['generated_at']} from the catalog of database `{f['database']['name']}` "
             f"as `{f['database']['user']}` (PostgreSQL {f['server_version']['text']}). Read-only.", "",
             f"**Conversion needed: {'yes' if f['conversion_needed'] else 'no'}**", ""]
    if f["warnings"]:
        lines += ["## Warnings", "", *[f"- {w}" for w in f["warnings"]], ""]

    alembic = f.get("alembic")
    if alembic:
        lines += ["## Alembic revision", "",
                  f"- stored in alembic_version: `{', '.join(alembic['stored']) or 'nothing'}`",
                  f"- true revision (from indicator tables): `{alembic['true']}`",
                  f"- head: `{alembic['head']}`; pending after the fix: "
                  f"{', '.join(f'`{r}`' for r in alembic['pending']) or 'none'}", ""]
        # The "must be gone" column only when some revision drops or renames a table.
        drops = any(w.get("dropped_tables") for w in alembic["walk"])
        headers = ["revision", "indicator tables", *(["must be gone (dropped)"] if drops else []),
                   "missing" + (" / still present" if drops else "")]
        lines += _table(headers, [_walk_row(w, drops) for w in alembic["walk"]])

    lines += [f"## Key columns not of type `{f['expected_key_type']}`", ""]
    lines += _table(["column", "type", "referenced by (FKs)"],
                    [(k["qualified"], k["type"], len(k["referenced_by"])) for k in f["mismatched_keys"]])
    lines += [referencing_line(k) for k in f["mismatched_keys"] if k["referenced_by"]]
    if any(k["referenced_by"] for k in f["mismatched_keys"]):
        lines.append("")
    fks = f["foreign_keys"]
    lines += [f"## Foreign keys: {fks['count']} in the database", "",
              f"- declared (not partition copies): {fks['declared']}",
              f"- linked to the keys above: {fks['linked_to_keys']}",
              f"- NOT VALID: {', '.join(fks['not_valid']) or 'none'}",
              f"- DEFERRABLE: {len(fks['deferrable'])}", ""]
    lines += [f"## Columns that must change type together: {len(f['columns_to_convert'])}", ""]
    lines += _table(["column", "type"], [(c["qualified"], c["type"]) for c in f["columns_to_convert"]])

    lines += ["## Objects that block ALTER COLUMN TYPE", ""]
    lines += _table(["kind", "name", "on column"],
                    [(b["kind"], b["name"], b["column"]) for b in f["blockers"]])
    if f["dependent_views"]:
        lines += ["Views built on those views (dropped and recreated with them):", ""]
        lines += _table(["kind", "relation"], [(v["kind"], v["relation"]) for v in f["dependent_views"]])
    if f["unknown_dependents"]:
        lines += ["Other dependents (review by hand):", ""]
        lines += _table(["kind", "name", "on column"],
                        [(d["kind"], d["name"], d["column"]) for d in f["unknown_dependents"]])

    lines += [f"## `{'/'.join(f['source_types'])}` columns that look like references but have no FK", ""]
    lines += _table(["column", "type"], [(c["qualified"], c["type"])
                                         for c in f["unreferenced_key_like_columns"]])
    if f["other_source_type_columns"]:
        lines += ["Other columns of that type:", ""]
        lines += _table(["column", "type"], [(c["qualified"], c["type"])
                                             for c in f["other_source_type_columns"]])
    lines += ["## Functions to review after the conversion", ""]
    lines += _table(["function", "language", "in signature", "in body"],
                    [(fn["function"], fn["language"], fn["in_signature"], fn["in_body"])
                     for fn in f["functions_to_review"]])

    space = f["space"]
    lines += ["## Space and time", "",
              f"- affected tables: {len(f['affected_tables'])}, {_size(space['affected_tables_bytes'])}",
              f"- the rewrite needs about {_size(space['rewrite_needs_bytes'])} free",
              f"- database size: {_size(space['database_bytes'])}; disk: {_size(space['disk_bytes'])}",
              f"- estimated conversion time: {f['estimate']['seconds']} s "
              f"(at {f['estimate']['assumed_mb_per_second']} MB/s)", ""]
    lines += ["## Other sessions", ""]
    lines += _table(["pid", "user", "state", "transaction s", "query"],
                    [(s["pid"], s["user"], s["state"], s["transaction_seconds"], s["query"][:80])
                     for s in f["sessions"]])
    lines += ["## Row counts", ""]
    lines += _table(["table", "rows", "size"],
                    [(f"{t['schema']}.{t['table']}",
                      f"{t['rows']}" if t["rows_exact"] else f"~{t['rows']} (estimate)",
                      _size(t["total_bytes"])) for t in f["tables"]])
    return "\n".join(lines).rstrip() + "\n"
