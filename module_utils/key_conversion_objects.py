"""The objects depending on the converted columns, for the plan: views (and
views on them), policies, triggers, rules, check constraints, indexes with
expressions, generated columns. What cannot be recreated with the same
meaning is refused here, by name, from the catalog alone."""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible.module_utils import key_conversion_generated as generated
from ansible.module_utils import key_conversion_sql as q
from ansible.module_utils.key_conversion_rewrites import Rewrites
from ansible.module_utils.pg_catalog import Column

# Rebuilt by ALTER COLUMN TYPE itself, or handled as FKs.
HANDLED = {"index", "primary key", "unique constraint", "foreign key", "default",
           "extended statistics", "sequence", "exclusion constraint"}
RECREATED = {"view", "materialized view", "policy", "trigger", "rule", "check constraint", "generated column"}


@dataclass
class Dependents:
    views: list = field(default_factory=list)
    policies: list = field(default_factory=list)
    triggers: list = field(default_factory=list)
    rules: list = field(default_factory=list)
    generated: list = field(default_factory=list)  # generated column details, "expression_after" added
    rewrites: Rewrites | None = None
    refusals: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def generated_names(self, relation: str) -> set:
        return {g["column"] for g in self.generated if g["relation"] == relation}

    def table_clauses(self, relation: str, columns: list[dict]) -> tuple[list[str], list[str]]:
        """Clauses of the table's one ALTER besides its type changes: (drops, additions)."""
        checks = self.rewrites.checks.get(relation, []) if self.rewrites else []
        new_types = {d["column"]: d["new_type"] for d in columns}
        gen = [g for g in self.generated if g["relation"] == relation]
        before = [f"DROP CONSTRAINT {q.ident(c['name'])}" for c in checks]
        before += [generated.drop_clause(g) for g in gen]
        after = [clause for g in gen
                 for clause in generated.add_clauses(g, new_types.get(g["column"]), g["expression_after"])]
        after += [f"ADD CONSTRAINT {q.ident(c['name'])} {c['definition']}" for c in checks]
        for d in columns:
            if d.get("set_default") is not None:
                after.append(f"ALTER COLUMN {q.ident(d['column'])} SET DEFAULT {d['set_default']}")
            if d.get("set_not_null"):
                after.append(f"ALTER COLUMN {q.ident(d['column'])} SET NOT NULL")
        return before, after

    def recreate_sql(self, skip_indexes=()) -> list[str]:
        """Inside the transaction, after the ALTERs: retyped indexes, what the
        generated columns' drop took, comments of retyped checks."""
        statements = []
        for index in (self.rewrites.indexes if self.rewrites else []):
            statements.append(index["definition"])
            if index["comment"] is not None:
                statements.append(q.comment_on_index(index["name"], index["comment"]))
        for relation, checks in sorted(self.rewrites.checks.items() if self.rewrites else []):
            statements += [f"COMMENT ON CONSTRAINT {q.ident(c['name'])} ON {relation} IS {q.literal(c['comment'])}"
                           for c in checks if c["comment"] is not None]
        for column in self.generated:
            statements += generated.restore_sql(column, skip_indexes)
        return statements


def gather(reader, columns: list[dict], *, source_name: str, source_fmt: str, target_fmt: str,
           current_user: str) -> Dependents:
    found = Dependents()
    refusals, notes = found.refusals, found.notes
    convert_keys = [Column(d["schema"], d["table"], d["column"]) for d in columns]
    dependents = reader.column_dependents(convert_keys)
    direct_views = sorted({d.name for d in dependents if d.kind in ("view", "materialized view")})
    depths = {v: 0 for v in direct_views}
    for nested in reader.dependent_relations(direct_views):
        depths[nested["relation"]] = max(depths.get(nested["relation"], 0), nested["depth"])
    views = reader.relation_details(list(depths))
    for view in views:
        view["depth"] = depths[view["relation"]]
        if view["unsupported"]:
            refusals.append(f"{view['kind']} {view['relation']} has triggers, rules or column defaults "
                            f"({', '.join(view['unsupported'])}) that a recreation would not restore")
        if not view["owned_by_us"]:
            refusals.append(f"{view['kind']} {view['relation']} is owned by {view['owner']}, not by "
                            f"{current_user}: only its owner can drop and recreate it")
        if any(c["acl"] for c in view["column_details"]):
            refusals.append(f"{view['kind']} {view['relation']} has column-level grants")
        if any(g["grantor"] != view["owner"] for g in view["grants"]):
            refusals.append(f"{view['kind']} {view['relation']} has grants made by another role")
    views.sort(key=lambda v: (v["depth"], v["relation"]))
    if target_fmt == "uuid":
        notes += [f"{v['kind']} {v['relation']} is recreated from its definition over the text columns: casts "
                  "PostgreSQL printed there (such as ::text on a key) stay, and comparisons through them stop "
                  "using uuid indexes; review it after the change" for v in views]
    notes += [f"materialized view {v['relation']} is recreated WITH DATA: its rows are computed afresh, as "
              "REFRESH would, so rows it held from before its last refresh are not kept"
              for v in views if v["kind"] == "materialized view" and v["populated"]]

    policies = reader.policy_details(sorted({d.objid for d in dependents if d.kind == "policy"}))
    triggers = reader.trigger_details(sorted({d.objid for d in dependents if d.kind == "trigger"}))
    rules = reader.rule_details(sorted({d.objid for d in dependents if d.kind == "rule"}))
    refusals += [f"trigger {t['name']} on {t['relation']} is a constraint trigger"
                 for t in triggers if t["constraint_trigger"]]
    checks = {(dep.relation, dep.name): dep for dep in dependents if dep.kind == "check constraint"}
    refusals += [f"{dep.kind} {dep.name} depends on {dep.column} and cannot be recreated safely by this tool: "
                 "change it by hand first"
                 for dep in dependents if dep.kind not in HANDLED | RECREATED]

    # Uses of the columns that must mean the same over the new type; uuid
    # constants compared with them retyped in the text each is recreated from.
    # Columns of the target type already (a collation change only) keep their meaning.
    retyped = [d for d in columns if d["type"] not in (target_fmt, target_fmt + "[]")]
    rewrites = Rewrites(reader, source_name, source_fmt, target_fmt, retyped)
    rewrites.views(views)
    rewrites.constant_defaults(retyped)
    rewrites.objects("policy", policies, ["using", "with_check"])
    rewrites.objects("trigger", triggers, ["definition"])
    rewrites.objects("rule", rules, ["definition"])
    rewrites.check_constraints(sorted(checks))
    rewrites.expression_indexes(sorted(rewrites.relids()))
    gen_keys = sorted({(dep.relation, dep.name) for dep in dependents if dep.kind == "generated column"})
    for column in generated.generated_columns(reader, gen_keys):
        refusals += generated.refusals(column)
        column["expression_after"] = rewrites.generated_expression(column)
        notes.append(generated.note(column))
        found.generated.append(column)
    refusals += rewrites.refusals

    # Policies and check constraints are re-parsed over the new types: each
    # must still type-check (probed with a SELECT, no DDL).
    new_types = {(d["relation"], d["column"]): d["new_type"] for d in columns}
    table_columns = reader.table_columns(sorted({p["relation"] for p in policies}
                                                | {relation for relation, _ in checks}))

    def probe(relation: str, expression: str) -> str | None:
        cols = [(c, new_types.get((relation, c), t)) for c, t in table_columns[relation]]
        return reader.probe_expression(cols, relation.rsplit(".", 1)[-1].strip('"'), expression)

    for policy in policies:
        for clause in ("using", "with_check"):
            error = probe(policy["relation"], policy[clause]) if policy[clause] else None
            if error:
                refusals.append(f"policy {policy['name']} on {policy['relation']} would not survive "
                                f"the change ({error}): rewrite it for {target_fmt} first")
    new_checks = {(rel, c["name"]): c["definition"] for rel, group in rewrites.checks.items() for c in group}
    for (relation, name), dep in sorted(checks.items()):
        definition = new_checks.get((relation, name), dep.definition)
        error = probe(relation, q.check_expression(definition))
        if error:
            refusals.append(f"check constraint {name} on {relation} would fail after the change ({error}): "
                            f"{definition}; rewrite it for {target_fmt} first")
    found.views, found.policies, found.triggers, found.rules = views, policies, triggers, rules
    found.rewrites = rewrites
    return found
