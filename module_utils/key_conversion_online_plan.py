"""Plan an online key conversion: expand, swap, contract.

Built on the offline plan (the same columns, FKs, dependents, rewrites,
refusals and after-commit list): the offline plan's drops and recreations are
the swap's too; what differs is how each table's columns change. A table
done online gets shadow columns filled while the app runs, and its swap is
catalog-only; a table that cannot be (named here with the reason) is refused,
or, where the operator allows it, rewritten inside the swap as offline, its
size shown. Planning only reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ansible.module_utils import key_conversion_after_commit_list as pending
from ansible.module_utils import key_conversion_online_catalog as catalog
from ansible.module_utils import key_conversion_online_sql as sql
from ansible.module_utils import key_conversion_sql as q
from ansible.module_utils.key_conversion_plan import ConversionRequest, Plan, build_plan

MIN_SERVER_VERSION = 140000  # TID range scans for the backfill


@dataclass
class OnlineTable:
    relation: str
    schema: str
    columns: list[dict]  # column, shadow, new_type, is_array, needs_not_null, default
    pages: int
    rows: int
    total_bytes: int
    shadow_indexes: list[dict]  # built during expand, attached in the swap
    later_indexes: list[dict]  # built CONCURRENTLY after the swap ("definition" as it will be)
    checks: list[dict]  # re-added NOT VALID in the swap, validated after
    extras: dict  # column -> comment, grants, statistics, options
    update_triggers: list[dict]  # user row triggers an UPDATE fires: disabled per backfill batch
    state: dict = field(default_factory=dict)  # how far an earlier expand got

    @property
    def spec(self) -> str:
        return sql.spec(self.columns)

    def expand_done(self) -> dict:
        """Which expand steps an earlier run finished (and kept for this spec)."""
        state = self.state
        check = state.get("check") or {}
        return {
            "columns": all(c["shadow"] in state.get("columns", {}) for c in self.columns),
            "sync": state.get("function_comment") == self.spec and state.get("trigger") == "A",
            "check": check.get("comment") == self.spec,
            "backfill": check.get("comment") == self.spec and bool(check.get("validated")),
            "indexes": all(state.get("indexes", {}).get(sql.shadow_index(ix["bare_name"])) is True
                           for ix in self.shadow_indexes),
        }


@dataclass
class OnlinePlan:
    offline: Plan
    tables: list[OnlineTable]
    rewritten_tables: list[dict]  # cannot be online, allowed: rewritten inside the swap
    refusals: list[str]
    notes: list[str]
    swap_sql: list[str]
    contract_steps: list[tuple[str, str]]  # (relation, statement), recorded in the durable list

    def __getattr__(self, name):
        # Columns, FKs, dependents, rewrites: the offline plan's, which this one builds on.
        if name == "offline":
            raise AttributeError(name)
        return getattr(self.offline, name)

    @property
    def needed(self) -> bool:
        return self.offline.needed

    def expand_sql(self) -> list[str]:
        statements = []
        for table in self.tables:
            statements += _expand_statements(table, self.offline.collation)
        return statements

    def summary(self) -> dict:
        base = self.offline.summary()
        done = {t.relation: t.expand_done() for t in self.tables}
        return base | {
            "mode": "online",
            "refusals": self.refusals,
            "notes": self.notes,
            "sql": self.swap_sql,
            "post_commit_sql": [s for _, s in self.contract_steps],
            "phases": {
                "expand": {"sql": self.expand_sql(),
                           "tables": [{"relation": t.relation, "columns": [c["column"] for c in t.columns],
                                       "shadows": [c["shadow"] for c in t.columns], "rows": t.rows,
                                       "pages": t.pages, "total_bytes": t.total_bytes,
                                       "indexes_built": [ix["name"] for ix in t.shadow_indexes],
                                       "indexes_after_swap": [ix["name"] for ix in t.later_indexes],
                                       "done": done[t.relation]} for t in self.tables]},
                "swap": {"sql": self.swap_sql, "lock_order": self.offline.lock_relations,
                         "rewritten_tables": self.rewritten_tables},
                "contract": {"sql": [s for _, s in self.contract_steps]},
            },
            "cannot_be_online": [r for r in self.refusals if r.startswith("table ")],
        }


def _expand_statements(table: OnlineTable, collation: str | None) -> list[str]:
    rel = table.relation
    statements = [sql.add_shadow_columns(rel, table.columns, collation),
                  sql.create_sync_function(table.schema, rel, table.columns),
                  sql.comment_sync_function(table.schema, rel, table.columns),
                  *sql.create_sync_trigger(table.schema, rel),
                  *sql.add_proof_check(rel, table.columns),
                  f"-- backfill {rel}: " + sql.backfill_batch(rel, table.columns) + " (per page range)",
                  sql.vacuum_after_backfill(rel), sql.validate_proof_check(rel)]
    statements += [sql.create_shadow_index(rel, ix, _shadows(table)) for ix in table.shadow_indexes]
    return statements


def _shadows(table: OnlineTable) -> dict[str, str]:
    return {c["column"]: c["shadow"] for c in table.columns}


def index_handling(index: dict) -> tuple[str, str | None]:
    """How an index over a converted column gets to the new column: ("shadow",
    None) built on the shadows during the expand and attached in the swap;
    ("after", None) built CONCURRENTLY from its definition after the swap (no
    uniqueness is lost meanwhile, only speed); ("refuse", why)."""
    name = index["name"]
    plain = (not index["uses_in_expression"] and not index["has_expressions"]
             and index["am"] in ("btree", "hash")
             and all(k["attnum"] != 0 and k["default_opclass"] and not k["own_collation"] for k in index["keys"]))
    if index["own_tablespace"]:
        return "refuse", f"index {name} is in a tablespace of its own"
    if not index["valid"]:
        return "refuse", f"index {name} is invalid (drop or REINDEX it first)"
    if index["constraint_type"] == "x":
        return "refuse", f"exclusion constraint {index['constraint']} uses a converted column"
    if plain:
        return "shadow", None
    if index["unique"] or index["constraint_type"]:
        return "refuse", (f"unique index {name} uses a converted column in an expression, predicate, operator "
                          "class or collation (it cannot be built on the shadows, and building it after the swap "
                          "would leave the table without it)")
    return "after", None


def _table_problems(table_facts: dict, relation: str, indexes: list[dict], extras: dict,
                    offline: Plan) -> list[str]:
    problems = []
    if table_facts["relkind"] != "r" or table_facts["partition"] or table_facts["inherits"]:
        problems.append("it is partitioned, a partition or in an inheritance tree (indexes cannot be built "
                        "CONCURRENTLY on it)")
    problems += [f"generated column {g['column']} uses a converted column (the table must be rewritten)"
                 for g in offline.generated if g["relation"] == relation]
    problems += [why for how, why in map(index_handling, indexes) if how == "refuse"]
    problems += [f"column {name} is an identity or generated column" for name, e in extras.items()
                 if e["identity_or_generated"]]
    problems += [f"BEFORE trigger {t['name']} fires after the sync trigger (names sort after "
                 f"{sql.SYNC_TRIGGER}) and could change a key after it is copied"
                 for t in table_facts["triggers"]
                 if t["before"] and t["row"] and (t["insert"] or t["update"]) and t["name"] > sql.SYNC_TRIGGER]
    return problems


def _collisions(table: OnlineTable, target_fmt: str) -> list[str]:
    """Names the expand would take that something else already has."""
    state, problems = table.state, []
    ours = (state.get("function_comment") or "").startswith(sql.SPEC_PREFIX)
    if state.get("function_exists") and not ours:
        problems.append(f"function {sql.sync_function(table.schema, table.relation)}() exists and is not this "
                        "tool's sync function: rename it")
    for column in table.columns:
        found = state.get("columns", {}).get(column["shadow"])
        if found is None:
            continue
        if not ours:
            problems.append(f"table {table.relation} already has a column {column['shadow']} that this tool did "
                            "not add: rename it")
        elif found != target_fmt + ("[]" if column["is_array"] else ""):
            problems.append(f"shadow column {table.relation}.{column['shadow']} is {found}, not {target_fmt}: "
                            "abort the online expand (online_abort) and run again")
    return problems


def online_request(request: ConversionRequest) -> ConversionRequest:
    """The online swap validates FKs and builds secondary indexes after its commit, always."""
    return dataclasses.replace(request, fk_validation="after_commit", index_build="after_commit")


def build_online_plan(reader, request: ConversionRequest, current_user: str, *,
                      allow_rewrite: bool = False) -> OnlinePlan:
    offline = build_plan(reader, online_request(request), current_user, online=True)
    refusals, notes = list(offline.refusals), list(offline.notes)
    if not offline.needed:
        return OnlinePlan(offline, [], [], refusals, notes, [], [])
    conn = reader.conn
    if catalog.server_version(conn) < MIN_SERVER_VERSION:
        refusals.append("online mode needs PostgreSQL 14 or later (its backfill reads page ranges by TID); "
                        "use the offline mode")
    if not offline.records_pending and not pending.can_create(conn):
        refusals.append(f"online mode needs a list of the work after the swap in schema {pending.SCHEMA}: grant "
                        "this role CREATE on the database, or use the offline mode")
    by_table: dict[str, list[dict]] = {}
    for column in offline.columns:
        by_table.setdefault(column["relation"], []).append(column)
    facts = catalog.table_facts(conn, sorted(by_table))
    rewritten = {r["object"]: r["after"] for r in offline.rewritten}
    tables, rewrite_tables = [], []
    for relation, cols in sorted(by_table.items()):
        names = [c["column"] for c in cols]
        indexes = catalog.indexes(conn, relation, names)
        extras = catalog.column_extras(conn, relation, names)
        problems = _table_problems(facts[relation], relation, indexes, extras, offline)
        if problems:
            size = facts[relation]["total_bytes"]
            if allow_rewrite:
                rewrite_tables.append({"relation": relation, "total_bytes": size, "reasons": problems})
                notes.append(f"table {relation} is rewritten inside the swap ({size // (1024 * 1024)} MB under the "
                             f"exclusive lock): {'; '.join(problems)}")
            else:
                refusals.append(f"table {relation} cannot be converted online: {'; '.join(problems)}; convert "
                                f"offline, or set online_allow_rewrite to rewrite it inside the swap "
                                f"({size // (1024 * 1024)} MB under the exclusive lock)")
            continue
        columns = [{"column": c["column"], "shadow": sql.shadow_column(c["column"]), "new_type": c["new_type"],
                    "is_array": c["is_array"], "needs_not_null": bool(c["not_null"]), "default": c["default"]}
                   for c in cols]
        checks = [check | {"definition": rewritten.get(f"check constraint {check['name']} on {relation}",
                                                       check["definition"])}
                  for check in catalog.check_constraints(conn, relation, names)]
        fact = facts[relation]
        handled = {ix["name"]: index_handling(ix)[0] for ix in indexes}
        later = [ix | {"definition": rewritten.get(f"index {ix['name']}", ix["definition"]),
                       "rewritten": f"index {ix['name']}" in rewritten}
                 for ix in indexes if handled[ix["name"]] == "after"]
        table = OnlineTable(relation, cols[0]["schema"], columns, fact["pages"], fact["rows"], fact["total_bytes"],
                            [ix for ix in indexes if handled[ix["name"]] == "shadow"], later, checks, extras,
                            # Row and statement UPDATE triggers (an UPDATE OF trigger never fires: the
                            # backfill sets shadows only).
                            [t for t in fact["triggers"] if t["update"] and not t["columns"] and t["enabled"] != "D"])
        table.state = catalog.expand_state(conn, relation, [c["shadow"] for c in columns],
                                           sql.sync_function(table.schema, relation))
        refusals += _collisions(table, offline.target_type)
        tables.append(table)
        if table.update_triggers:
            notes.append(f"the backfill of {relation} disables its UPDATE triggers "
                         f"({', '.join(t['name'] for t in table.update_triggers)}) for each batch, in the batch's "
                         "transaction: writes to the table wait for the batch")
    notes += [f"materialized view {v['relation']} is recreated empty in the swap and refreshed first thing after it "
              "(its query would otherwise run under the exclusive lock): reading it fails until that refresh ends"
              for v in offline.views if v["kind"] == "materialized view" and v["populated"]]
    swap, contract = _swap_and_contract(offline, tables, {t["relation"] for t in rewrite_tables})
    notes += [f"column {t.relation}.{c['column']} moves to the end of its table (a new column replaces it)"
              for t in tables for c in t.columns]
    return OnlinePlan(offline, tables, rewrite_tables, refusals, notes, swap, contract)


def kept_indexes(offline: Plan, tables: list[OnlineTable]) -> list[dict]:
    """The offline plan drops every secondary index of a table it rewrites and
    builds it again after COMMIT; a table done online keeps its own (those over
    a converted column are built on the shadows instead)."""
    online = {t.relation for t in tables}
    return [ix for ix in offline.deferred_indexes if ix["relation"] in online]


def _swap_and_contract(offline: Plan, tables: list[OnlineTable], rewrite: set[str]):
    kept = kept_indexes(offline, tables)
    skip = {q.drop_index(ix["name"]) for ix in kept}
    skip |= {q.create_index_concurrently(ix["definition"], ix["bare_name"]) for ix in kept}
    skip |= {q.comment_on_index(ix["name"], ix["comment"]) for ix in kept if ix["comment"] is not None}
    # Indexes built after the swap: not in it (offline recreates a retyped one inside its transaction).
    later = [ix for t in tables for ix in t.later_indexes]
    skip |= {ix["definition"] for ix in later}
    skip |= {q.comment_on_index(ix["name"], ix["comment"]) for ix in later if ix["comment"] is not None}
    swap = [statement for statement in offline.drop_sql if statement not in skip]
    for table in tables:
        swap += sql.swap_columns(table.schema, table.relation, table.columns)
        for column in table.columns:
            swap += q.column_attachments(table.relation, column["column"], table.extras[column["column"]])
        for index in table.shadow_indexes:
            swap += sql.attach_index(table.relation, q.ident(table.schema), index)
        for check in table.checks:
            swap += sql.add_check_not_valid(table.relation, check)
    swap += [statement for relation, statement in offline.alter_sql if relation in rewrite]
    swap += [q.drop_value_check(relation) for relation in offline.checked_relations if relation in rewrite]
    # A populated materialized view comes back empty in the swap (its query would run under
    # the lock, as long as the data is large) and is refreshed first thing after it.
    filled = [v for v in offline.views if v["kind"] == "materialized view" and v["populated"]]
    swap += [_without_data(statement, filled) for statement in offline.create_sql if statement not in skip]
    contract = [(v["relation"], f"REFRESH MATERIALIZED VIEW {v['relation']}") for v in filled]
    contract += [(table.relation, q.create_index_concurrently(ix["definition"], ix["bare_name"]))
                 for table in tables for ix in table.later_indexes]
    contract += [(table.relation, q.comment_on_index(ix["name"], ix["comment"]))
                 for table in tables for ix in table.later_indexes if ix["comment"] is not None]
    # Only those that were validated: a check the app left NOT VALID stays so.
    contract += [(table.relation, sql.validate_check(table.relation, check["name"]))
                 for table in tables for check in table.checks if check["validated"]]
    contract += [(relation, statement) for relation, statement in offline.post_commit_steps if statement not in skip]
    return swap, contract


def _without_data(statement: str, matviews: list[dict]) -> str:
    """CREATE MATERIALIZED VIEW ... WITH DATA of one of ``matviews`` as WITH NO DATA."""
    for view in matviews:
        head = f"CREATE MATERIALIZED VIEW {view['relation']}"
        if statement.startswith((head + " ", head + "\n")) and statement.endswith("\nWITH DATA"):
            return statement.removesuffix("WITH DATA") + "WITH NO DATA"
    return statement


def fk_lock_order(relations: list[str], foreign_keys) -> list[str]:
    """``relations`` with each table before the tables its FKs reference, as
    far as the FK graph allows (a cycle is entered in name order). The app's
    writes lock the same way round (a row first, the referenced table's key
    check after), so the swap's locking queues behind them instead of closing
    a cycle with them."""
    wanted = set(relations)
    references: dict[str, set[str]] = {r: set() for r in relations}
    for fk in foreign_keys:
        if fk.relation in wanted and fk.ref_relation in wanted and fk.relation != fk.ref_relation:
            references[fk.relation].add(fk.ref_relation)
    referenced_by = {r: {c for c, parents in references.items() if r in parents} for r in relations}
    order, left = [], set(relations)
    while left:
        # Tables no remaining table references: every referrer is locked already.
        free = sorted(r for r in left if not referenced_by[r] & left)
        step = free or [min(left)]
        for relation in step:
            order.append(relation)
            left.discard(relation)
            if not free:
                break
    return order
