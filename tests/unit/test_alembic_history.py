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
        "tables": ["folders", "folder_items"]}


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
