"""Alembic history: which revision a database is really at.

Alembic stores one revision id in ``alembic_version``; after a failed or
hand-stamped upgrade it can name a migration whose tables never appeared. The
true revision is read from the schema instead: each revision has indicator
tables (the tables its upgrade creates, or renames a table to, and no later
revision drops or renames away), plus the tables it drops or renames away that
no later revision creates again, which must be absent. The true revision is the
last one in the chain, walked from its base, whose indicators all hold.

The revision map comes from inventory variables or from parsing the app's
``versions/`` directory with Python's ast (no import of the app's code).
"""

from __future__ import annotations

import ast
import os


class HistoryError(ValueError):
    """The revision map is unusable (cycle, branch, unknown parent, bad file)."""


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def parse_migration_source(source: str, filename: str = "<migration>") -> dict | None:
    """revision, down_revision and created tables of one migration file, or
    None when the file declares no revision (e.g. a helper module)."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise HistoryError(f"{filename}: not valid Python ({exc.msg} at line {exc.lineno})") from None
    found = {}
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value = [node.target.id], node.value
        for name in targets:
            if name in ("revision", "down_revision") and value is not None:
                found[name] = _literal(value)
    if not isinstance(found.get("revision"), str):
        return None
    down = found.get("down_revision")
    if isinstance(down, list | tuple):
        down = list(down)
    created, dropped = _table_effects(tree)
    return {"revision": found["revision"], "down_revision": down, "tables": created,
            "dropped_tables": dropped}


# op.<name>(...) calls that add or remove a table name: (keyword, position) of the name.
_CREATES = {"create_table": ("table_name", 0)}
_DROPS = {"drop_table": ("table_name", 0)}
_RENAMES = {"rename_table": (("old_table_name", 0), ("new_table_name", 1))}


def _argument(call, keyword: str, position: int):
    if len(call.args) > position:
        return _literal(call.args[position])
    return next((_literal(k.value) for k in call.keywords if k.arg == keyword), None)


def _table_effects(tree) -> tuple[list[str], list[str]]:
    """Net effect of upgrade(): table names it leaves created and names it
    leaves removed, following its create/drop/rename calls in source order."""
    created: list[str] = []
    dropped: list[str] = []

    def add(name):
        if name in dropped:
            dropped.remove(name)
        elif name not in created:
            created.append(name)

    def remove(name):
        if name in created:
            created.remove(name)  # created and removed in the same upgrade: no trace
        elif name not in dropped:
            dropped.append(name)

    for func in tree.body:
        if not (isinstance(func, ast.FunctionDef) and func.name == "upgrade"):
            continue
        calls = [c for c in ast.walk(func) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)]
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
            op = call.func.attr
            if op in _CREATES or op in _DROPS:
                name = _argument(call, *(_CREATES.get(op) or _DROPS[op]))
                if isinstance(name, str):
                    (add if op in _CREATES else remove)(name)
            elif op in _RENAMES:
                old, new = (_argument(call, *spec) for spec in _RENAMES[op])
                if isinstance(old, str) and isinstance(new, str):
                    remove(old)
                    add(new)
    return created, dropped


def parse_versions_dir(path: str) -> list[dict]:
    if not os.path.isdir(path):
        raise HistoryError(f"alembic versions directory not found: {path}")
    revisions = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".py") and not name.startswith("__"):
            full = os.path.join(path, name)
            with open(full, encoding="utf-8") as handle:
                parsed = parse_migration_source(handle.read(), full)
            if parsed:
                revisions.append(parsed)
    if not revisions:
        raise HistoryError(f"no alembic revisions found in {path}")
    return revisions


def ordered_chain(revisions: list[dict]) -> list[dict]:
    """The revisions from base to head; a branched history is refused because
    'the last applied revision' is then not one revision."""
    by_id = {}
    for rev in revisions:
        if rev["revision"] in by_id:
            raise HistoryError(f"revision {rev['revision']} is defined twice")
        by_id[rev["revision"]] = rev
    children: dict = {}
    bases = []
    for rev in revisions:
        down = rev.get("down_revision")
        if isinstance(down, list):
            raise HistoryError(f"revision {rev['revision']} merges {down}: branched histories "
                               "need an explicit linear revision map")
        if down is None:
            bases.append(rev["revision"])
        elif down not in by_id:
            raise HistoryError(f"revision {rev['revision']} names unknown parent {down}")
        else:
            children.setdefault(down, []).append(rev["revision"])
    if len(bases) != 1:
        raise HistoryError(f"expected exactly one base revision, found {sorted(bases) or 'none'}")
    chain = [by_id[bases[0]]]
    while chain[-1]["revision"] in children:
        nexts = children[chain[-1]["revision"]]
        if len(nexts) > 1:
            raise HistoryError(f"revision {chain[-1]['revision']} has several children {sorted(nexts)}")
        chain.append(by_id[nexts[0]])
    if len(chain) != len(revisions):
        raise HistoryError("some revisions are not reachable from the base (cycle?)")
    return chain


def indicators(chain: list[dict]) -> list[tuple[list[str], list[str]]]:
    """Per revision of an ordered chain: (tables that must exist, tables that
    must be absent) once it is applied. A table a later revision drops or
    renames away proves nothing about its creator; a name a later revision
    creates again proves nothing about its dropper."""
    result = []
    for i, rev in enumerate(chain):
        later = chain[i + 1:]
        removed_later = {t for r in later for t in r.get("dropped_tables") or []}
        created_later = {t for r in later for t in r.get("tables") or []}
        result.append(([t for t in rev.get("tables") or [] if t not in removed_later],
                       [t for t in rev.get("dropped_tables") or [] if t not in created_later]))
    return result


def _gap(step: dict) -> str:
    said = [f"is missing {step['missing']}"] if step["missing"] else []
    said += [f"still has {step['still_present']} it drops"] if step["still_present"] else []
    return " and ".join(said)


def true_revision(revisions: list[dict], existing_tables, stored: list[str]) -> dict:
    """Compare the stored revision with the one the schema proves.

    existing_tables: table names present (unqualified and/or schema-qualified).
    A revision without indicators cannot be checked: it counts as applied
    when its predecessor is, and is listed so an operator knows it was assumed.
    """
    chain = ordered_chain(revisions)
    existing = set(existing_tables)
    walk = []
    applied = 0  # length of the unbroken prefix of present revisions
    first_gap = None
    contradictions = []
    for rev, (tables, absent) in zip(chain, indicators(chain), strict=True):
        missing = [t for t in tables if t not in existing]
        still_there = [t for t in absent if t in existing]
        walk.append({"revision": rev["revision"], "tables": tables, "missing": missing,
                     "dropped_tables": absent, "still_present": still_there,
                     "verified": bool(tables or absent), "present": not missing and not still_there})
        if first_gap is None and walk[-1]["present"]:
            applied += 1
        elif first_gap is None:
            first_gap = walk[-1]
        elif tables and not missing:
            # Only tables that exist prove a later revision ran: an absent
            # table is also what a never-applied history looks like.
            contradictions.append(
                f"revision {rev['revision']} tables {tables} exist although earlier revision "
                f"{first_gap['revision']} {_gap(first_gap)}")
    true_rev = chain[applied - 1]["revision"] if applied else None
    return {
        "stored": stored,
        "true": true_rev,
        "head": chain[-1]["revision"],
        "base": chain[0]["revision"],
        "matches": stored == ([true_rev] if true_rev else []),
        "stored_unknown": [s for s in stored if s not in {rev["revision"] for rev in chain}],
        "contradictions": contradictions,
        "assumed_without_indicators": [w["revision"] for w in walk[:applied] if not w["verified"]],
        "pending": [w["revision"] for w in walk[applied:]],
        "walk": walk,
    }
