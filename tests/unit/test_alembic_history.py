"""True-revision detection from indicator tables, and parsing versions/ with ast."""

import os
import textwrap

import pytest
from ansible.module_utils.alembic_history import (
    HistoryError,
    ordered_chain,
    parse_migration_source,
    parse_versions_dir,
    true_revision,
)

CHAIN = [
    {"revision": "c3", "down_revision": "b2", "tables": ["folders"]},
    {"revision": "a1", "down_revision": None, "tables": ["users", "organizations"]},
    {"revision": "d4", "down_revision": "c3", "tables": []},
    {"revision": "b2", "down_revision": "a1", "tables": ["documents"]},
    {"revision": "e5", "down_revision": "d4", "tables": ["questions"]},
]


def test_chain_is_ordered_from_base():
    assert [r["revision"] for r in ordered_chain(CHAIN)] == ["a1", "b2", "c3", "d4", "e5"]


def test_true_revision_is_last_with_all_indicators():
    result = true_revision(CHAIN, {"users", "organizations", "documents"}, ["e5"])
    assert result["true"] == "b2"
    assert result["matches"] is False
    assert result["pending"] == ["c3", "d4", "e5"]
    assert result["contradictions"] == []


def test_revision_without_indicators_is_assumed_and_listed():
    result = true_revision(CHAIN, {"users", "organizations", "documents", "folders"}, ["d4"])
    assert result["true"] == "d4"
    assert result["matches"] is True
    assert result["assumed_without_indicators"] == ["d4"]


def test_later_table_with_earlier_missing_is_a_contradiction():
    result = true_revision(CHAIN, {"users", "organizations", "questions"}, ["a1"])
    assert result["true"] == "a1"
    assert len(result["contradictions"]) == 1
    assert "e5" in result["contradictions"][0] and "documents" in result["contradictions"][0]


def test_partly_present_revision_is_not_applied():
    result = true_revision(CHAIN, {"users"}, [])
    assert result["true"] is None
    assert result["pending"] == ["a1", "b2", "c3", "d4", "e5"]
    assert result["matches"] is True  # nothing applied, nothing stored


def test_unknown_stored_revision_is_reported():
    result = true_revision(CHAIN, {"users", "organizations"}, ["zzz"])
    assert result["stored_unknown"] == ["zzz"]


@pytest.mark.parametrize("revisions, message", [
    ([{"revision": "a", "down_revision": None}, {"revision": "b", "down_revision": None}], "one base"),
    ([{"revision": "a", "down_revision": None}, {"revision": "b", "down_revision": "x"}], "unknown parent"),
    ([{"revision": "a", "down_revision": None}, {"revision": "b", "down_revision": "a"},
      {"revision": "c", "down_revision": "a"}], "several children"),
    ([{"revision": "a", "down_revision": None}, {"revision": "m", "down_revision": ["a", "b"]}], "merges"),
    ([{"revision": "a", "down_revision": None}, {"revision": "a", "down_revision": None}], "twice"),
])
def test_unusable_histories_are_refused(revisions, message):
    with pytest.raises(HistoryError, match=message):
        ordered_chain(revisions)


def test_parse_migration_source_finds_created_tables():
    source = textwrap.dedent('''
        """create folders"""
        from alembic import op
        import sqlalchemy as sa

        revision: str = "3c1d2e4f5a6b"
        down_revision = "ba1a5bcdb110"

        def upgrade():
            op.create_table("folders", sa.Column("id", sa.String(36), primary_key=True))
            op.create_index("ix", "folders", ["id"])
            op.create_table("folder_items", sa.Column("id", sa.String(36)))

        def downgrade():
            op.create_table("not_an_indicator")
        ''')
    assert parse_migration_source(source) == {
        "revision": "3c1d2e4f5a6b", "down_revision": "ba1a5bcdb110",
        "tables": ["folders", "folder_items"], "dropped_tables": []}


def test_parse_ignores_helpers_and_reports_syntax_errors(tmp_path):
    assert parse_migration_source("x = 1\n") is None
    (tmp_path / "broken.py").write_text("revision = 'a'\ndef upgrade(:\n")
    with pytest.raises(HistoryError, match="not valid Python"):
        parse_versions_dir(str(tmp_path))


def test_parse_versions_dir_missing():
    with pytest.raises(HistoryError, match="not found"):
        parse_versions_dir("/nonexistent/versions")


def test_parse_versions_dir_empty(tmp_path):
    with pytest.raises(HistoryError, match="no alembic revisions"):
        parse_versions_dir(str(tmp_path))


def test_parse_demo_app_chain():
    versions = os.path.join(os.path.dirname(__file__), "..", "..", "demoapp", "migrations", "versions")
    if not os.path.isdir(versions):
        pytest.skip("demo app not present")
    chain = [r["revision"] for r in ordered_chain(parse_versions_dir(versions))]
    assert chain[0] == "ba1a5bcdb110" and chain[-1] == "b354d12d1e7d"
    assert "f867c7e3d51c" in chain


def _write_versions(path, migrations):
    """A synthetic versions/ directory: (revision, down_revision, upgrade body) per file."""
    for old in path.glob("*.py"):
        old.unlink()
    for number, (revision, down, body) in enumerate(migrations):
        lines = ["from alembic import op", "", f"revision = {revision!r}", f"down_revision = {down!r}",
                 "", "", "def upgrade():", *[f"    {line}" for line in body.splitlines()],
                 "", "", "def downgrade():", '    op.drop_table("never_an_indicator")', ""]
        (path / f"{number:03d}_{revision}.py").write_text("\n".join(lines))
    return parse_versions_dir(str(path))


HISTORY = [
    ("r1", None, 'op.create_table("users")\nop.create_table("legacy_notes")'),
    ("r2", "r1", 'op.create_table("folders")'),
    ("r3", "r2", 'op.rename_table("folders", "collections")'),
    ("r4", "r3", 'op.drop_table("legacy_notes")\nop.create_table("tags")'),
    ("r5", "r4", 'op.create_table("scratch")\nop.drop_table(table_name="scratch")'),
]


def test_drop_and_rename_are_parsed_in_source_order(tmp_path):
    parsed = {r["revision"]: r for r in _write_versions(tmp_path, HISTORY)}
    assert parsed["r3"]["tables"] == ["collections"] and parsed["r3"]["dropped_tables"] == ["folders"]
    assert parsed["r4"]["dropped_tables"] == ["legacy_notes"] and parsed["r4"]["tables"] == ["tags"]
    # Created and dropped within one upgrade leaves no trace either way.
    assert parsed["r5"]["tables"] == [] and parsed["r5"]["dropped_tables"] == []


@pytest.mark.parametrize("existing, expected", [
    # At r2 the table still has its first name and legacy_notes is still there.
    ({"users", "legacy_notes", "folders"}, "r2"),
    # The rename moved the indicator to r3: the new name proves r3, the old one is gone.
    ({"users", "legacy_notes", "collections"}, "r3"),
    # legacy_notes dropped by r4 no longer counts against r1 once r4 ran.
    ({"users", "collections", "tags"}, "r5"),
    # r4 created tags, but legacy_notes, which it drops, is still there: not applied.
    ({"users", "legacy_notes", "collections", "tags"}, "r3"),
])
def test_true_revision_follows_drops_and_renames(tmp_path, existing, expected):
    result = true_revision(_write_versions(tmp_path, HISTORY), existing, [expected])
    assert result["true"] == expected
    assert result["matches"] is True


def test_dropped_table_is_not_an_indicator_of_its_creator(tmp_path):
    walk = {w["revision"]: w for w in true_revision(
        _write_versions(tmp_path, HISTORY), {"users", "collections", "tags"}, [])["walk"]}
    assert walk["r1"]["tables"] == ["users"]  # legacy_notes is dropped later by r4
    assert walk["r2"]["tables"] == [] and not walk["r2"]["verified"]  # folders renamed away by r3
    assert walk["r4"]["dropped_tables"] == ["legacy_notes"] and walk["r4"]["present"]


def test_table_dropped_then_recreated_proves_the_recreating_revision(tmp_path):
    history = [("a", None, 'op.create_table("items")'),
               ("b", "a", 'op.drop_table("items")'),
               ("c", "b", 'op.create_table("items")')]
    revisions = _write_versions(tmp_path, history)
    assert true_revision(revisions, {"items"}, [])["true"] == "c"
    # Without items, b (drop) may have run; c (re-create) has not.
    assert true_revision(revisions, set(), [])["true"] == "b"


def test_contradiction_names_a_dropped_table_still_present(tmp_path):
    result = true_revision(_write_versions(tmp_path, HISTORY),
                           {"users", "legacy_notes", "collections", "tags", "later"},
                           [])
    assert result["true"] == "r3" and result["contradictions"] == []
    history = [*HISTORY, ("r6", "r5", 'op.create_table("later")')]
    result = true_revision(_write_versions(tmp_path, history),
                           {"users", "legacy_notes", "collections", "tags", "later"}, [])
    assert result["true"] == "r3"
    assert len(result["contradictions"]) == 1
    assert "r6" in result["contradictions"][0] and "still has ['legacy_notes']" in result["contradictions"][0]
