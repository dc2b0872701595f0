"""Apply the literal analysis (key_conversion_literals) to a plan's dependents:
retype proven-safe uuid constants in the text each is recreated from, and
refuse by name, before any change, every dependent whose use of a converted
column is not provably the same over the new type."""

from __future__ import annotations

import re

from ansible.module_utils import key_conversion_dependents as deps
from ansible.module_utils.key_conversion_literals import analyse, rewrite_constants, view_output_columns

# How pg_get_expr prints a uuid constant: uuid_out's text (lower-case, hyphenated).
UUID_CONSTANT = re.compile(r"^'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'::uuid$")


class Rewrites:
    def __init__(self, reader, source_name: str, source_fmt: str, target_fmt: str, columns: list[dict]):
        self.reader = reader
        self.active = source_name == "uuid"  # the direction whose text output is known (uuid_out)
        self.source_fmt, self.target_fmt = source_fmt, target_fmt
        self.refusals: list[str] = []
        self.shown: list[dict] = []  # {"object", "before", "after"}
        self.checks: dict = {}  # relation -> [{"name", "definition", "comment"}] re-added in its ALTER
        self.indexes: list[dict] = []  # dropped before, created after the ALTERs
        if not self.active:
            return
        self.source_oid = deps.type_oid(reader, source_name)
        self.ops = deps.equality_operators(reader, self.source_oid)
        self.names = deps.column_numbers(reader, [(d["relation"], d["column"]) for d in columns])
        self.attnames = {key: name for key, name in zip(
            self.names, [n.rsplit(".", 1)[-1].strip('"').replace('""', '"') for n in self.names.values()],
            strict=True)}
        self.converted = set(self.names)

    def _analyse(self, trees, base_relid=None, top_level_ok=False):
        return analyse(trees, converted=self.converted, equality_ops=self.ops, source_oid=self.source_oid,
                       base_relid=base_relid, column_names=self.names, attnames=self.attnames,
                       top_level_ok=top_level_ok)

    def _text(self, label: str, analysis, text: str | None) -> str | None:
        """The text with its safe constants retyped; a refusal when it cannot be."""
        for problem in analysis.problems:
            self.refusals.append(f"{label} would not keep its meaning over {self.target_fmt}: {problem}; "
                                 "change it by hand first")
        if analysis.problems or text is None or not (analysis.safe or +analysis.relabels):
            return text
        new, problem = rewrite_constants(text, analysis.safe, analysis.other_constants, "uuid", self.target_fmt,
                                         analysis.relabels)
        if problem:
            self.refusals.append(f"{label}: {problem}; change it by hand first")
            return text
        if new != text:
            self.shown.append({"object": label, "before": text, "after": new})
        return new

    def views(self, views: list[dict]) -> None:
        """In place: each view's definition (views in dependency order)."""
        if not self.active or not views:
            return
        trees = deps.view_trees(self.reader, [v["relation"] for v in views])
        for view in views:
            oid, tree = trees[view["relation"]]
            analysis = self._analyse([tree])
            view["definition"] = self._text(f"{view['kind']} {view['relation']}", analysis, view["definition"])
            self.converted |= view_output_columns(oid, analysis)

    def objects(self, kind: str, items: list[dict], fields: list[str]) -> None:
        """In place: policies (using, with_check), triggers or rules (definition)."""
        if not self.active or not items:
            return
        trees = deps.object_trees(self.reader, kind, [item["oid"] for item in items])
        for item in items:
            relid, texts = trees[item["oid"]]
            label = f"{kind} {item['name']} on {item['relation']}"
            if kind == "policy":  # one tree per clause
                for field, tree in zip(fields, texts, strict=True):
                    item[field] = self._text(label, self._analyse([tree], relid), item[field])
            else:  # a trigger's OLD and NEW, a rule's qualification: the table itself
                item[fields[0]] = self._text(label, self._analyse(texts, relid), item[fields[0]])

    def check_constraints(self, keys) -> None:
        if not self.active:
            return
        for check in deps.check_constraints(self.reader, keys):
            label = f"check constraint {check['name']} on {check['relation']}"
            new = self._text(label, self._analyse([check["tree"]], check["relid"]), check["definition"])
            if new != check["definition"]:
                if not check["local"]:
                    self.refusals.append(f"{label} is inherited: retype it on its parent table")
                    continue
                self.checks.setdefault(check["relation"], []).append(
                    {"name": check["name"], "definition": new, "comment": check["comment"]})

    def expression_indexes(self, relids) -> None:
        if not self.active:
            return
        for index in deps.expression_indexes(self.reader, relids):
            label = f"index {index['name']}"
            new = self._text(label, self._analyse(index["trees"], index["relid"]), index["definition"])
            if new == index["definition"]:
                continue
            if index["unsupported"]:
                self.refusals.append(f"{label} holds uuid constants to retype, and {', '.join(index['unsupported'])}"
                                     ": change it by hand first")
                continue
            self.indexes.append(index | {"definition": new})

    def constant_defaults(self, columns: list[dict]) -> None:
        """In place: a converted column whose default is one uuid constant (as
        PostgreSQL prints a Const) gets that constant retyped, SET in its ALTER.
        The column stores uuid_out's text of it either way; this keeps the
        default from depending on uuid."""
        if not self.active:
            return
        for column in columns:
            match = UUID_CONSTANT.match(column["default"] or "")
            if match and not column.get("is_array"):
                after = f"'{match[1]}'::{self.target_fmt}"
                self.shown.append({"object": f"default of {column['qualified']}", "before": column["default"],
                                   "after": after})
                column["set_default"] = after
                column["default"] = after

    def generated_expression(self, column: dict) -> str:
        if not self.active:
            return column["expression"]
        label = f"generated column {column['column']} on {column['relation']}"
        # The expression is the column's value: a bare converted column is fine if this one converts too.
        itself = (column["relid"], column["attnum"]) in self.converted
        return self._text(label, self._analyse([column["tree"]], column["relid"], itself), column["expression"])

    def relids(self) -> set[int]:
        return {relid for relid, _ in self.names} if self.active else set()
