"""Which dependents keep their meaning over the new type, and the uuid
literals to retype in their text.

ALTER COLUMN TYPE re-parses (or we recreate) every view, policy, trigger WHEN,
rule, check constraint and index expression over a converted column from its
printed text. Over varchar(36), a comparison with ``'...'::uuid`` no longer
resolves and a ``max(id)`` would order differently. From the stored parse tree
(pg_node_tree, the parser's own output) each use of a converted column is
classified; a use not on the list below is not provably the same, and the
object is refused by name, in the plan:

- an output column of a view (its type follows the column), a join alias,
  IS [NOT] NULL, a cast through text (``id::text``: uuid_out prints exactly
  the text the new column holds), count(...);
- ``=``, ``<>``, IS DISTINCT FROM, IN (...) with another converted
  column, a subquery's converted column, or a uuid constant. Such a constant
  is rewritten to the target type: the converted column holds uuid_out's text
  (lower-case, hyphenated), and the constant is printed by the same function,
  so text equality is uuid equality.

Everything else (ordering comparisons, functions taking uuid, casts of other
expressions to uuid) is refused. Only the uuid -> text direction is analysed.
"""

from __future__ import annotations

import re
from collections import Counter

from ansible.module_utils.pg_node_tree import parse, uuid_text

BASE = "base"  # a stack frame: every Var at this level is a column of the object's table
COUNT_ANY = "2147"  # count("any")
TEXT_OUTPUT = {"TARGETENTRY", "NULLTEST", "COERCEVIAIO", "RANGETBLENTRY"}
EQUALITY_NODES = {"OPEXPR", "DISTINCTEXPR"}  # boolean results: the new type goes no further
VALUE_SUBLINKS = {"4", "6"}  # (SELECT col ...) and ARRAY(SELECT col ...): they carry the column's type


class Analysis:
    """Uses of converted columns in one object's trees: the uuid constants
    compared with them (safe to retype), other uuid constants, and problems."""

    def __init__(self, converted: set, equality_ops: set, source_oid: int, base_relid: int | None):
        self.converted = converted
        self.ops = {str(op) for op in equality_ops}
        self.source = str(source_oid)
        self.base = base_relid
        self.safe: Counter = Counter()
        self.other_constants: set = set()
        self.problems: list[str] = []
        self._safe_ids: set = set()
        self._constants: list = []
        self.trees: list = []  # as parsed, in the order given
        self.top_level_ok = False
        self.columns: dict = {}  # (relid, attno) -> printable name, for messages
        self.attnames: dict = {}  # (relid, attno) -> column name
        self.relabels: Counter = Counter()  # column name -> casts of it to the source type

    # -- resolving a Var to (relation oid, column number) ------------------

    def resolve(self, var: dict, stack: list):
        levels = int(var.get("varlevelsup") or 0)
        if levels >= len(stack):
            return None
        frame = stack[levels]
        attno = int(var["varattno"])
        if frame == BASE:
            return (self.base, attno)
        varno = int(var["varno"])
        if not 0 < varno <= len(frame):
            return None
        rte = frame[varno - 1]
        kind = rte.get("rtekind")
        if kind == "0":
            return (int(rte["relid"]), attno)
        if kind == "2" and 0 < attno <= len(rte.get("joinaliasvars") or []):
            alias = _unwrap(rte["joinaliasvars"][attno - 1], self.source)
            return self.resolve(alias, stack[levels:]) if _tag(alias) == "VAR" else None
        if kind == "1" and rte.get("subquery"):
            sub = rte["subquery"]
            entry = next((t for t in sub.get("targetList") or [] if t.get("resno") == str(attno)), None)
            expr = _unwrap(entry["expr"], self.source) if entry else None
            return self.resolve(expr, [sub.get("rtable") or [], *stack[levels:]]) if _tag(expr) == "VAR" else None
        return None

    def is_converted(self, node, stack, ancestors) -> bool:
        node = _unwrap(node, self.source)
        if _tag(node) == "VAR":
            key = self.resolve(node, stack)
            return key is not None and (key in self.converted or (key[1] == 0 and key[0] in
                                                                  {r for r, _ in self.converted}))
        if _tag(node) == "SUBLINK" and node.get("subLinkType") in VALUE_SUBLINKS and node.get("subselect"):
            sub = node["subselect"]
            first = next((t for t in sub.get("targetList") or [] if t.get("resjunk") != "true"), None)
            return bool(first) and self.is_converted(first["expr"], [sub.get("rtable") or [], *stack], ancestors)
        if _tag(node) == "PARAM" and node.get("paramkind") == "2":  # a subquery's output column
            link = next((a for a in reversed(ancestors) if _tag(a) == "SUBLINK"), None)
            sub = link.get("subselect") if link else None
            if sub:
                entry = next((t for t in sub.get("targetList") or [] if t.get("resno") == node.get("paramid")), None)
                return bool(entry) and self.is_converted(entry["expr"], [sub.get("rtable") or [], *stack], ancestors)
        return False

    # -- classifying each use ------------------------------------------------

    def visit(self, tree, stack: list, ancestors=()):
        if isinstance(tree, list):
            for item in tree:
                self.visit(item, stack, ancestors)
            return
        if not isinstance(tree, dict):
            return
        if tree["_tag"] == "QUERY":
            stack = [tree.get("rtable") or [], *stack]
        if tree["_tag"] in ("VAR", "SUBLINK") and self.is_converted(tree, stack, ancestors):
            self.classify(tree, stack, ancestors)
        if tree["_tag"] == "CONST" and tree.get("consttype") == self.source and tree.get("constvalue"):
            self._constants.append(tree)
        for key, value in tree.items():
            if key != "_tag":
                self.visit(value, stack, (*ancestors, tree))

    def classify(self, node, stack, ancestors):
        parent = ancestors[-1] if ancestors else None
        tag = _tag(parent)
        if parent is None and self.top_level_ok:  # a generated column's whole expression, itself converted
            return None
        name = self.column_name(node, stack)
        if tag == "RELABELTYPE" and parent.get("resulttype") == self.source:
            # A domain column seen as its base type: printed as a cast, (col)::uuid.
            self.relabels[self.attnames.get(self.resolve(_unwrap(node, self.source), stack), "")] += 1
            return self.classify(parent, stack, ancestors[:-1])
        if tag == "TARGETENTRY":
            holder = _tag(ancestors[-2]) if len(ancestors) > 1 else None
            if len(ancestors) > 3 and _tag(ancestors[-3]) == "RANGETBLENTRY" and ancestors[-4].get("setOperations"):
                # UNION and the like: the other branches' columns must change type too.
                return self.problems.append(f"{name} is an output of one branch of a UNION, INTERSECT or EXCEPT")
            if holder == "QUERY" or (holder == "AGGREF" and ancestors[-2].get("aggfnoid") == COUNT_ANY):
                return None
            return self.problems.append(f"{name} is passed to {holder or 'an expression'}")
        if tag in TEXT_OUTPUT:
            return None
        if tag in EQUALITY_NODES and parent.get("opno") in self.ops:
            others = [arg for arg in parent.get("args") or [] if arg is not node]
            if len(others) == 1 and self.comparable(others[0], stack, ancestors):
                return None
            return self.problems.append(f"{name} is compared with an expression of the old type")
        if tag == "SCALARARRAYOPEXPR" and parent.get("opno") in self.ops:
            args = parent.get("args") or []
            elements = args[1].get("elements") if len(args) == 2 and _tag(args[1]) == "ARRAYEXPR" else None
            if args and args[0] is node and elements is not None and all(
                    self.comparable(element, stack, ancestors) for element in elements):
                return None
            return self.problems.append(f"{name} is compared with a list that is not of uuid constants")
        operator = f" (operator {parent.get('opno')})" if parent and parent.get("opno") else ""
        return self.problems.append(f"{name} is used by {tag or 'the expression itself'}{operator}")

    def comparable(self, other, stack, ancestors) -> bool:
        """The other side of an equality: converted too, or a uuid constant (retyped)."""
        other = _unwrap(other, self.source)
        if _tag(other) == "CONST" and other.get("consttype") == self.source:
            if other.get("constvalue"):
                self.safe[uuid_text(other["constvalue"])] += 1
                self._safe_ids.add(id(other))
            return True
        return self.is_converted(other, stack, ancestors)

    def column_name(self, node, stack) -> str:
        node = _unwrap(node, self.source)
        key = self.resolve(node, stack) if _tag(node) == "VAR" else None
        return self.columns.get(key, "a converted column")


def _tag(node) -> str | None:
    return node.get("_tag") if isinstance(node, dict) else None


def _unwrap(node, source: str):
    """A domain column's Var is relabelled to its base type before uuid operators."""
    while _tag(node) == "RELABELTYPE" and node.get("resulttype") == source:
        node = node.get("arg")
    return node


def analyse(trees: list[str | None], *, converted: set, equality_ops: set, source_oid: int,
            base_relid: int | None = None, column_names: dict | None = None,
            attnames: dict | None = None, top_level_ok: bool = False) -> Analysis:
    """Classify every use of a converted column in the given trees (texts of
    pg_node_tree). base_relid: the table whose columns the trees' Vars are
    (checks, policies, indexes, triggers, defaults); None for a view or rule
    (its range table says)."""
    analysis = Analysis(converted, equality_ops, source_oid, base_relid)
    analysis.columns = column_names or {}
    analysis.attnames = attnames or {}
    analysis.top_level_ok = top_level_ok
    for text in trees:
        try:
            tree = parse(text)
        except (ValueError, IndexError):  # a node format this reader does not know: not provable
            analysis.problems.append("its stored parse tree could not be read")
            continue
        analysis.trees.append(tree)
        if tree is not None:
            analysis.visit(tree, [BASE] if base_relid is not None else [])
    # Constants seen before the column they are compared with are sorted out at the end.
    analysis.other_constants = {uuid_text(c["constvalue"]) for c in analysis._constants
                                if id(c) not in analysis._safe_ids}
    return analysis


def view_output_columns(view_oid: int, analysis: Analysis) -> set:
    """(view oid, column number) of a view's columns that are converted columns
    (the view's tree, as analysed): a view on top of it compares them as converted too."""
    tree = analysis.trees[0] if analysis.trees else None
    query = tree[0] if isinstance(tree, list) and tree else None
    if _tag(query) != "QUERY":
        return set()
    stack = [query.get("rtable") or []]
    return {(view_oid, int(entry["resno"])) for entry in query.get("targetList") or []
            if entry.get("resjunk") != "true" and analysis.is_converted(entry["expr"], stack, ())}


# -- the printed SQL ---------------------------------------------------------

def rewrite_constants(text: str, safe: Counter, other: set, source_print: str,
                      target_print: str, relabels: Counter | None = None) -> tuple[str, str | None]:
    """Retype each '<uuid>'::<source> constant the analysis proved safe, in the
    text PostgreSQL printed: (new text, None) or (text, why not). Every value
    must occur in the text exactly as often as the tree holds it, and never
    also where it is not safe, or the text is left alone and refused.
    ``relabels``: domain columns printed as ``(alias.col)::<source>``, cast to
    the target instead (the column is of the target type then)."""
    relabels = Counter({name: n for name, n in (relabels or {}).items() if n})
    if not safe and not relabels:
        return text, None
    found: dict = {}
    cast_found: Counter = Counter()
    out, i, n = [], 0, len(text)
    suffix = "::" + source_print
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _closing(text, i, '"')
            out.append(text[i:end])
            i = end
            continue
        if ch == "'":
            escaped = i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
            end = _closing(text, i, "'", backslash=escaped)
            value = text[i + 1:end - 1]
            after = text[end:end + len(suffix) + 1]
            if (value in safe and after.startswith(suffix)
                    and not (after[len(suffix):] and (after[len(suffix):].isalnum() or after[len(suffix):] in "_[."))):
                found[value] = found.get(value, 0) + 1
                out.append(f"'{value}'::{target_print}")
                i = end + len(suffix)
                continue
            out.append(text[i:end])
            i = end
            continue
        cast = RELABEL_CAST.match(text, i) if ch == "(" else None
        if cast and cast["name"].strip('"').replace('""', '"') in relabels and cast.end() - len(suffix) > i and \
                text[cast.end() - len(suffix):cast.end()] == suffix:
            cast_found[cast["name"].strip('"').replace('""', '"')] += 1
            out.append(text[i:cast.end() - len(suffix)] + "::" + target_print)
            i = cast.end()
            continue
        out.append(ch)
        i += 1
    if cast_found != relabels:
        return text, "a domain column's cast to its base type could not be located in the printed definition"
    for value, count in safe.items():
        if value in other:
            return text, f"the uuid {value} appears both compared with a converted column and elsewhere"
        if found.get(value, 0) != count:
            return text, f"the uuid {value} could not be located in the printed definition"
    return "".join(out), None


IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
RELABEL_CAST = re.compile(rf"\((?:{IDENT}\.)?(?P<name>{IDENT})\)::uuid(?![A-Za-z0-9_$\[])")


def _closing(text: str, start: int, quote: str, backslash: bool = False) -> int:
    """Index just past the quote that closes the one at start (doubled quotes inside)."""
    i = start + 1
    while i < len(text):
        if backslash and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if text[i + 1:i + 2] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)
