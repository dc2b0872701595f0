"""Plan a key-type conversion from the catalog alone.

The plan names every column that changes type (the keys and the closure of
FK-linked columns), every FK and dependent object dropped and recreated, the
ordered SQL, the tables rewritten with their sizes, what is refused (by name,
before any change), and columns of the source type left unconverted.
Planning only reads: it is what check mode returns and what a run executes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible.module_utils import key_conversion_after_commit_list as pending
from ansible.module_utils import key_conversion_dependents as catalog
from ansible.module_utils import key_conversion_objects as objects
from ansible.module_utils import key_conversion_sql as q
from ansible.module_utils.investigation import conversion_seconds
from ansible.module_utils.key_conversion_online_catalog import shadow_leftovers
from ansible.module_utils.key_graph import fks_touching, linked_closure
from ansible.module_utils.pg_catalog import Column, split_type_spelling

SCOPES = ("keys", "all")
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
FK_VALIDATION = ("in_transaction", "after_commit")
INDEX_BUILD = ("in_transaction", "after_commit")
VALUE_CHECKS = ("round_trip", "shape")


@dataclass
class ConversionRequest:
    keys: list[str] = field(default_factory=lambda: ["auto"])
    # all: the app's contract is that no source-type column remains (arrays opt in).
    scope: str = "all"
    source_type: str = "uuid"
    target_type: str = "varchar(36)"
    schemas: list[str] = field(default_factory=lambda: ["public"])
    include_columns: list[str] = field(default_factory=list)
    include_arrays: bool = False
    # The defaults are the fastest settings that keep every guarantee (role README,
    # "Levers"). after_commit: FKs re-added NOT VALID (new rows checked at once),
    # VALIDATEd after COMMIT; secondary indexes dropped inside the transaction
    # and built again with CREATE INDEX CONCURRENTLY after COMMIT.
    fk_validation: str = "after_commit"
    index_build: str = "after_commit"
    # From uuid, how each new value is checked during the rewrite: shape (36
    # bytes, hyphens in place; the lower-case hex digits are what uuid's built-in
    # output prints, which the plan confirms does the cast, else round_trip) or
    # round_trip (cast back and compared: the same verdict, a third of the rewrite).
    value_check: str = "shape"
    rewrite_mb_per_second: float = 50.0
    # A collation for the converted columns, e.g. "C": bytewise order, which for
    # canonical UUID text is uuid's own order, and index builds several times
    # faster than under a linguistic collation. None keeps the database default.
    collation: str | None = None
    # With columns of the source type left as they are: run even though functions
    # or triggers that name a converted table also name one of them.
    allow_unconverted_writers: bool = False

    def check(self) -> None:
        """Bad input is refused before any connection work."""
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.fk_validation not in FK_VALIDATION:
            raise ValueError(f"fk_validation must be one of {', '.join(FK_VALIDATION)}")
        if self.index_build not in INDEX_BUILD:
            raise ValueError(f"index_build must be one of {', '.join(INDEX_BUILD)}")
        if self.value_check not in VALUE_CHECKS:
            raise ValueError(f"value_check must be one of {', '.join(VALUE_CHECKS)}")
        bad = [k for k in self.keys if k != "auto" and k.count(".") != 2]
        bad += [c for c in self.include_columns if c.count(".") != 2]
        if bad:
            raise ValueError(f"columns must be written schema.table.column: {', '.join(bad)}")
        if not self.keys:
            raise ValueError("keys must list schema.table.column entries or be [auto]")
        if not self.schemas:
            raise ValueError("schemas must not be empty")
        for option in ("source_type", "target_type"):
            split_type_spelling(getattr(self, option))  # raises, naming the bad spelling


@dataclass
class Plan:
    source_type: str
    target_type: str
    collation: str | None
    columns: list[dict]
    already_converted: list[str]
    tables: list[dict]
    foreign_keys: list
    views: list[dict]
    policies: list[dict]
    triggers: list[dict]
    rules: list[dict]
    refusals: list[str]
    unconverted: list[dict]
    lock_relations: list[str]
    drop_sql: list[str]
    alter_sql: list[tuple[str, str]]  # (relation, statement)
    checked_relations: list[str]  # tables whose ALTER adds the temporary value check
    create_sql: list[str]
    post_commit_steps: list[tuple[str, str]]  # (relation, statement) run after COMMIT
    deferred_validations: list[tuple[str, str]]  # (relation, fk name) added NOT VALID
    estimate_seconds: int
    # What the operator should know but that does not stop the run.
    notes: list[str] = field(default_factory=list)
    # Secondary indexes dropped inside and built CONCURRENTLY after COMMIT.
    deferred_indexes: list[dict] = field(default_factory=list)
    # Whether the post-commit steps are recorded durably (key_conversion_after_commit_list).
    records_pending: bool = False
    # Steps an earlier run recorded and did not finish: (position, relation, statement).
    pending_after_commit: list[tuple[int, str, str]] = field(default_factory=list)
    # Generated columns dropped and added back; dependents whose text was retyped.
    generated: list[dict] = field(default_factory=list)
    rewritten: list[dict] = field(default_factory=list)
    # Functions and triggers naming a converted table and a column left unconverted.
    writers: list[str] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        return bool(self.columns)

    @property
    def maintenance_work_mem(self) -> str:
        """Enough for the largest index rebuild to sort in memory (twice its size,
        64 MB to 1 GB), so the rewrite's index builds do not spill to disk."""
        largest = max((t["largest_index_bytes"] for t in self.tables), default=0)
        megabytes = min(1024, max(64, 2 * largest // (1024 * 1024) + 1))
        return f"{megabytes}MB"

    @property
    def post_commit_sql(self) -> list[str]:
        return [statement for _, statement in self.post_commit_steps]

    @property
    def check_cleanup_sql(self) -> list[str]:
        """Drops the temporary value checks, right after the rewrites."""
        return [q.drop_value_check(relation) for relation in self.checked_relations]

    @property
    def sql(self) -> list[str]:
        return [*self.drop_sql, *(s for _, s in self.alter_sql), *self.check_cleanup_sql, *self.create_sql]

    def summary(self) -> dict:
        return {
            "source_type": self.source_type,
            "target_type": self.target_type,
            "columns": [c["qualified"] for c in self.columns],
            "changes": [f"{c['qualified']}: {c['type']} -> {c['new_type']}"
                        + (f" COLLATE {self.collation}" if self.collation else "") for c in self.columns],
            "collation": self.collation,
            "already_converted": self.already_converted,
            "tables": self.tables,
            "foreign_keys": [fk.relation + "." + fk.name for fk in self.foreign_keys],
            "views": [v["relation"] for v in self.views],
            "policies": [f"{p['name']} ON {p['relation']}" for p in self.policies],
            "triggers": [f"{t['name']} ON {t['relation']}" for t in self.triggers],
            "rules": [f"{r['name']} ON {r['relation']}" for r in self.rules],
            "refusals": self.refusals,
            "notes": self.notes,
            "unconverted": self.unconverted,
            "lock_order": self.lock_relations,
            "sql": self.sql,
            "post_commit_sql": self.post_commit_sql,
            "deferred_indexes": [ix["name"] for ix in self.deferred_indexes],
            "pending_after_commit": [statement for _, _, statement in self.pending_after_commit],
            "generated_columns": [f"{g['relation']}.{q.ident(g['column'])}" for g in self.generated],
            "rewritten": self.rewritten,
            "unconverted_writers": self.writers,
            "maintenance_work_mem": self.maintenance_work_mem,
            "estimated_seconds": self.estimate_seconds,
        }


def _columns(names) -> list[Column]:
    return [Column(*name.split(".", 2)) for name in names]


def build_plan(reader, request: ConversionRequest, current_user: str, *, online: bool = False) -> Plan:
    """The plan; ``online`` when the online mode builds on it (an unfinished
    online expand is then its own, not a reason to refuse)."""
    request.check()
    source_name, source_fmt = reader.resolve_type(request.source_type)
    target_sql = " ".join(request.target_type.split())
    _, target_fmt = reader.resolve_type(target_sql)
    refusals: list[str] = []
    foreign_keys = reader.foreign_keys()

    # 1. Start columns: the keys (auto: primary keys of the source type), and
    #    for scope=all every other source-type column in the schemas.
    #    Columns of a domain over the source type count as the source type.
    domains = catalog.domains_over(reader, source_fmt)
    sources = {source_fmt} | set(domains)
    if request.keys == ["auto"]:
        start = [c for c in reader.primary_key_columns(request.schemas) if c.type in sources]
    else:
        start = _columns(k for k in request.keys if k != "auto")
    start += _columns(request.include_columns)
    source_columns = reader.columns_of_types([source_name], request.schemas)
    source_columns += catalog.domain_columns(reader, [d["oid"] for d in domains.values()], request.schemas)
    if request.scope == "all":
        start += [c for c in source_columns if c.type in sources]
    if request.include_arrays:
        start += [c for c in reader.columns_of_types(["_" + source_name], request.schemas)
                  if c.type == source_fmt + "[]"]
    explicit = {c.qualified for c in start}

    # 2. The closure over FK edges, in any schema; details for each column.
    closure = linked_closure([(c.schema, c.table, c.column) for c in start], foreign_keys)
    details = reader.column_details(sorted(Column(*col) for col in closure))
    found = {f"{d['schema']}.{d['table']}.{d['column']}" for d in details}
    refusals += [f"column {name} does not exist" for name in sorted(explicit - found)]

    columns, already, domain_notes = [], [], []
    for d in details:
        d["qualified"] = f"{d['schema']}.{d['table']}.{d['column']}"
        wanted = target_fmt + "[]" if d["is_array"] else target_fmt
        if d["type"] == wanted and (request.collation is None or d["collation"] == request.collation):
            already.append(d["qualified"])
            continue
        if d["type"] not in (source_fmt, source_fmt + "[]", wanted, *domains):
            refusals.append(f"column {d['qualified']} is {d['type']}, neither {source_fmt} nor {target_fmt}")
            continue
        if d["relkind"] not in ("r", "p"):
            refusals.append(f"column {d['qualified']} belongs to a relation of kind {d['relkind']!r}, "
                            "not a table")
            continue
        if not d["owned_by_us"]:
            refusals.append(f"table {d['relation']} is owned by {d['owner']}, not by {current_user}: "
                            "only its owner can change its columns")
            continue
        d["new_type"] = target_sql + ("[]" if d["is_array"] else "")
        if d["type"] in domains:
            catalog.from_domain(d, domains[d["type"]], domain_notes)
        columns.append(d)
    convert_keys = [(d["schema"], d["table"], d["column"]) for d in columns]
    if target_fmt == "uuid":
        # Text to uuid: every value must already be a UUID, or the cast fails midway.
        for d in (d for d in columns if not d["is_array"]):  # arrays: the cast itself checks
            bad = reader.values_not_matching(d["relation"], d["column"], UUID_PATTERN)
            if bad:
                refusals.append(f"column {d['qualified']} holds values that are not UUIDs: {'; '.join(bad)}")

    # 3. FKs on either side of a converted column (partition copies follow their parent).
    fks = [fk for fk in fks_touching(convert_keys, foreign_keys) if not fk.inherited]

    # 4. Objects depending on the columns, what they need, what is refused.
    found = objects.gather(reader, columns, source_name=source_name, source_fmt=source_fmt,
                           target_fmt=target_fmt, current_user=current_user)
    views, policies, triggers, rules = found.views, found.policies, found.triggers, found.rules
    refusals += found.refusals
    notes = found.notes + domain_notes

    # 5. Source-type columns left as they are, and what still writes into them:
    #    a function naming a converted table and one of them would copy the new
    #    type into the old after the change (bodies are not in pg_depend).
    converted = {d["qualified"] for d in columns} | set(already)
    left = [c for c in source_columns if c.qualified not in converted and c.type in sources]
    left_details = {d["schema"] + "." + d["table"] + "." + d["column"]: d for d in reader.column_details(left)}
    unconverted = [{"column": c.qualified, "type": c.type,
                    "written_by": reader.trigger_functions_mentioning(left_details[c.qualified]["relation"],
                                                                       c.column)}
                   for c in left if c.qualified in left_details]
    # Writers into any source-type column left, in every schema, arrays included.
    everywhere = reader.user_schemas()
    anywhere = reader.columns_of_types([source_name, "_" + source_name], everywhere) + catalog.domain_columns(
        reader, [d["oid"] for d in domains.values()], everywhere)
    left_anywhere = [c for c in anywhere if c.qualified not in converted]
    writers = catalog.unconverted_writers(
        reader, sorted({d["relation"] for d in columns}),
        [(d["relation"], d["column"]) for d in reader.column_details(left_anywhere)])
    if writers and request.allow_unconverted_writers:
        notes += [f"{writer}, a column left unconverted (allowed by allow_unconverted_writers)" for writer in writers]
    elif writers:
        refusals += [f"{writer}, a column left {source_fmt}: after the change it would write {target_fmt} values "
                     "into it; convert that column too (scope all and its schema in schemas, include_columns, or "
                     "include_arrays for an array), or set allow_unconverted_writers once it is reviewed"
                     for writer in writers]
    notes += catalog.unused_domains(reader, columns, domains)

    # 7. SQL, in execution order.
    by_table: dict = {}
    for d in columns:
        by_table.setdefault(d["relation"], []).append(d)
    relkinds = {d["relation"]: d["relkind"] for d in details}
    drop_sql = [q.drop_view(v) for v in sorted(views, key=lambda v: -v["depth"])]
    drop_sql += [q.drop_policy(p) for p in policies]
    drop_sql += [q.drop_trigger(t) for t in triggers]
    drop_sql += [q.drop_rule(r) for r in rules]
    fks_by_table: dict = {}
    for fk in fks:
        fks_by_table.setdefault(fk.relation, []).append(fk)
    drop_sql += [q.drop_foreign_keys(rel, [fk.name for fk in group])
                 for rel, group in sorted(fks_by_table.items())]
    # Work after COMMIT is recorded in a list to survive a crash; where this role cannot
    # keep one, it stays inside the transaction (same result, longer lock window).
    fk_validation, index_build = request.fk_validation, request.index_build
    try:
        leftover, list_error = pending.read(reader.conn), None
    except pending.PendingListError as exc:
        leftover, list_error = [], exc
    if "after_commit" in (fk_validation, index_build) and (list_error or not pending.can_create(reader.conn)):
        fk_validation = index_build = "in_transaction"
        notes.append(f"indexes are built and FKs validated inside the transaction, not after COMMIT: that needs a "
                     f"list of the work in schema {pending.SCHEMA}, which this role " + ("cannot use (see below)" if
                     list_error else "may not create (grant it CREATE on the database for a shorter lock window)"))
    deferred_indexes = []
    if index_build == "after_commit":
        # Partitioned tables keep theirs: CONCURRENTLY cannot build on them.
        deferred_indexes = reader.secondary_indexes([Column(d["schema"], d["table"], d["column"])
                                                     for d in columns if d["relkind"] == "r"])
        drop_sql += [q.drop_index(ix["name"]) for ix in deferred_indexes]
    later = {ix["name"] for ix in deferred_indexes}
    drop_sql += [q.drop_index(ix["name"]) for ix in found.rewrites.indexes if ix["name"] not in later]
    # From uuid, each new value is checked to be canonical UUID text during the
    # rewrite itself (arrays: the element cast already guarantees it).
    values_checked = source_fmt == "uuid"
    value_check = request.value_check
    if values_checked and value_check == "shape" and not reader.uuid_output_is_builtin(target_sql):
        value_check = "round_trip"
        notes.append(f"a cast from uuid to {target_fmt} or a changed uuid output function is in the catalog: "
                     "values are checked round_trip, not by shape")
    alter_sql, checked_relations = [], []
    for rel, cols in sorted(by_table.items()):
        gen = found.generated_names(rel)  # dropped and added back with the new type
        checked = [d["column"] for d in cols if not d["is_array"] and d["column"] not in gen] \
            if values_checked else []
        before, after = found.table_clauses(rel, cols)
        alter_sql.append((rel, q.alter_columns(rel, [(d["column"], d["new_type"]) for d in cols
                                                     if d["column"] not in gen],
                                               request.collation, checked, value_check, before, after)))
        if checked:
            checked_relations.append(rel)
    create_sql, deferred = [], []
    for rel, group in sorted(fks_by_table.items()):
        entries = []
        for fk in group:
            # Only between plain tables: PostgreSQL refuses NOT VALID on a partitioned table, and
            # VALIDATE leaves the partition copies of an FK referencing one NOT VALID.
            if fk_validation == "after_commit" and fk.validated and relkinds.get(rel) == relkinds.get(
                    fk.ref_relation) == "r":
                entries.append((fk.name, q.with_not_valid(fk.definition)))
                deferred.append((rel, fk.name))
            else:
                entries.append((fk.name, fk.definition))
        create_sql.append(q.add_foreign_keys(rel, entries))
    for view in views:
        create_sql += q.create_view(view, current_user)
    for policy in policies:
        create_sql += q.create_policy(policy)
    for trigger in triggers:
        create_sql += q.create_trigger(trigger)
    for rule in rules:
        create_sql += q.create_rule(rule)
    create_sql += found.recreate_sql(later)
    post_commit = [(ix["relation"], q.create_index_concurrently(ix["definition"], ix["bare_name"]))
                   for ix in deferred_indexes]
    post_commit += [(ix["relation"], q.comment_on_index(ix["name"], ix["comment"]))
                    for ix in deferred_indexes if ix["comment"] is not None]
    post_commit += [(rel, q.validate_foreign_key(rel, name)) for rel, name in deferred]
    # A type change drops the statistics of the changed columns only: analyze those;
    # the whole table where an expression index was dropped (its statistics went with it).
    expressions = {ix["relation"] for ix in deferred_indexes if ix["has_expressions"]}
    post_commit += [(rel, f"ANALYZE {rel}" if rel in expressions
                     else f"ANALYZE {rel} ({', '.join(q.ident(d['column']) for d in cols)})")
                    for rel, cols in sorted(by_table.items())]

    tables = []
    for rel, cols in sorted(by_table.items()):
        tables.append({"relation": rel, "columns": [d["column"] for d in cols],
                       "total_bytes": cols[0]["table_bytes"], "estimated_rows": cols[0]["estimated_rows"],
                       "largest_index_bytes": cols[0]["largest_index_bytes"]})
    lock_relations = sorted(set(by_table) | {fk.relation for fk in fks}
                            | {fk.ref_relation for fk in fks}
                            # Views are not locked up front: LOCK TABLE on a view locks its
                            # base tables with the view owner's rights, which need not include
                            # LOCK. Their base tables are locked here; DROP VIEW takes the view.
                            | {p["relation"] for p in policies} | {t["relation"] for t in triggers}
                            | {r["relation"] for r in rules})
    rewrite_bytes = sum(t["total_bytes"] for t in tables)
    records_pending = bool(deferred_indexes or deferred)  # recorded in the list, in the transaction
    if not online:
        # Converting offline under an unfinished online expand would leave its shadows, sync
        # triggers and checks behind on converted tables.
        refusals += [f"table {item['relation']} carries an unfinished online expand: finish it (mode online) "
                     "or remove it (online_abort) first" for item in shadow_leftovers(reader.conn, request.schemas)
                     if "relation" in item]
    if list_error:  # a list found and not trusted may hold unfinished work: every run stops
        (refusals if list_error.list_found else notes).append(str(list_error))
    estimate = conversion_seconds(rewrite_bytes, len(tables), request.rewrite_mb_per_second)

    return Plan(source_fmt, target_fmt, request.collation, columns, already, tables, fks, views, policies,
                triggers, rules, refusals, unconverted, lock_relations, drop_sql, alter_sql, checked_relations,
                create_sql, post_commit, deferred, estimate, notes, deferred_indexes, records_pending, leftover,
                found.generated, found.rewrites.shown, writers)

