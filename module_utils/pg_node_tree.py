"""Read PostgreSQL's stored parse trees (pg_node_tree, nodeToString output).

Views (pg_rewrite.ev_action), check constraints (conbin), policies (polqual,
polwithcheck), index expressions and predicates, trigger WHEN clauses and
column defaults are kept by the server as the parser's analysed output. Reading
that, rather than guessing on the printed SQL, tells exactly which column a
Var is, which operator compares what, and which constants have which type.

A node becomes a dict with its tag under ``"_tag"`` (``{"_tag": "VAR",
"varno": "1", ...}``); a list becomes a Python list; scalars stay strings;
``<>`` (a NULL pointer) becomes None; a datum (``16 [ 0 -1 ... ]``) becomes a
list of its bytes.
"""

from __future__ import annotations

import re

# A quoted string, a bracket, or a run of anything else; a backslash escapes one character.
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([(){}\[\]])|((?:[^\s(){}\[\]"\\]|\\.)+)', re.S)
ESCAPE = re.compile(r"\\(.)", re.S)


def _unescape(text: str) -> str:
    return ESCAPE.sub(r"\1", text) if "\\" in text else text


def tokens(text: str) -> list[str]:
    """Split nodeToString output: whitespace separates, brackets stand alone,
    a backslash escapes the next character, double quotes wrap a string
    (kept with a leading quote mark, so a string never reads as a bracket)."""
    out = []
    for match in TOKEN.finditer(text):
        quoted, bracket, word = match.groups()
        if quoted is not None:
            out.append('"' + _unescape(quoted))
        else:
            out.append(bracket or _unescape(word))
    return out


class _Reader:
    def __init__(self, items: list[str]):
        self.items = items
        self.pos = 0

    def peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self) -> str:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def value(self):
        item = self.take()
        if item == "{":
            return self.node()
        if item == "(":
            values = []
            while self.peek() != ")":
                values.append(self.value())
            self.take()
            return values
        if item == "<>":
            return None
        if self.peek() == "[":  # a datum: its length, then its bytes
            self.take()
            data = []
            while self.peek() != "]":
                data.append(int(self.take()) & 0xFF)
            self.take()
            return data
        return item

    def node(self) -> dict:
        result = {"_tag": self.take()}
        while self.peek() != "}":
            field = self.take()
            if not field.startswith(":"):
                raise ValueError(f"unexpected token {field!r} in a node tree")
            nxt = self.peek()
            # A field with no value at all (e.g. an empty Bitmapset prints "(b)").
            result[field[1:]] = None if nxt is None or nxt.startswith(":") or nxt == "}" else self.value()
        self.take()
        return result


def parse(text: str | None):
    """The tree of one pg_node_tree text (None for NULL)."""
    if text is None:
        return None
    return _Reader(tokens(text)).value()


def uuid_text(data: list[int]) -> str:
    """Canonical text of a uuid datum (16 bytes): what uuid_out prints."""
    hexed = bytes(data).hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
