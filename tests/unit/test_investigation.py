"""Row counts and rewrite size over partitions, and the per-key FK list in findings.md."""

from ansible.module_utils.investigation import conversion_seconds, row_counts, tables_to_rewrite
from ansible.module_utils.investigation_report import REFERENCING_SHOWN, referencing_line

MB = 1024 * 1024


def _table(name, total_bytes, estimated_rows, **extra):
    return {"schema": "public", "table": name, "total_bytes": total_bytes, "estimated_rows": estimated_rows,
            "partitioned": False, "is_partition": False, "leaf_partitions": None, "partition_root": None,
            **extra}


def _partitioned_events():
    """events partitioned into a small and a large leaf, as CatalogReader.tables() lists them."""
    small = _table("events_small", 1 * MB, 100, is_partition=True, partition_root=["public", "events"])
    large = _table("events_large", 500 * MB, 90_000, is_partition=True, partition_root=["public", "events"])
    leaves = [{k: t[k] for k in ("schema", "table", "total_bytes", "estimated_rows")} for t in (small, large)]
    parent = _table("events", small["total_bytes"] + large["total_bytes"], 90_100,
                    partitioned=True, leaf_partitions=leaves)
    return [parent, large, small]


class Counter:
    """Stands in for count(*): records which tables were counted, from known rows."""

    def __init__(self, rows):
        self.rows, self.calls = rows, []

    def __call__(self, schema, table):
        self.calls.append((schema, table))
        return self.rows[table]


def test_partitioned_parent_sums_leaves_each_counted_once_by_its_own_size():
    counter = Counter({"events_small": 104, "users": 7})
    tables = [*_partitioned_events(), _table("users", 2 * MB, 6)]
    rows = {t["table"]: t for t in row_counts(tables, 100 * MB, counter)}
    # The large leaf is over the threshold: estimated, never count(*)-ed; the
    # parent is never counted as a whole either.
    assert sorted(counter.calls) == [("public", "events_small"), ("public", "users")]
    assert rows["events_small"] == {**rows["events_small"], "rows": 104, "rows_exact": True}
    assert rows["events_large"]["rows"] == 90_000 and rows["events_large"]["rows_exact"] is False
    assert rows["events"]["rows"] == 104 + 90_000 and rows["events"]["rows_exact"] is False


def test_small_partitioned_table_is_exact_and_an_empty_one_is_zero():
    counter = Counter({"events_small": 3, "events_large": 4})
    parent, large, small = _partitioned_events()
    rows = {t["table"]: t for t in row_counts([parent, large, small], 10_000 * MB, counter)}
    assert rows["events"]["rows"] == 7 and rows["events"]["rows_exact"] is True
    empty = _table("archive", 0, 0, partitioned=True, leaf_partitions=[])
    assert row_counts([empty], 0, counter)[0]["rows"] == 0


def test_rewrite_counts_partition_data_once():
    table_rows = row_counts(_partitioned_events(), 0, Counter({}))
    parent = next(t for t in table_rows if t["table"] == "events")
    # The parent alone carries the partitions' bytes...
    assert [t["table"] for t in tables_to_rewrite(table_rows, {("public", "events")})] == ["events"]
    # ...and naming its partitions as well does not add them twice.
    both = tables_to_rewrite(table_rows, {("public", "events"), ("public", "events_large"),
                                          ("public", "events_small")})
    assert [t["table"] for t in both] == ["events"]
    assert sum(t["total_bytes"] for t in both) == parent["total_bytes"] == 501 * MB
    # A partition on its own is rewritten on its own.
    alone = tables_to_rewrite(table_rows, {("public", "events_small")})
    assert [(t["table"], t["total_bytes"]) for t in alone] == [("events_small", MB)]


def test_time_estimate_grows_with_bytes_and_tables():
    assert conversion_seconds(501 * MB, 1, 50.0) > conversion_seconds(1 * MB, 1, 50.0)
    assert conversion_seconds(0, 100, 50.0) > conversion_seconds(0, 1, 50.0)


def _key(count):
    return {"qualified": "public.users.id", "referenced_by": [
        {"name": f"t{i}_user_id_fkey", "table": f"public.t{i}", "columns": ["user_id"]} for i in range(count)]}


def test_referencing_fks_are_listed_by_column_and_name():
    line = referencing_line(_key(2))
    assert line == ("- `public.users.id` is referenced by: `public.t0.user_id` -> `t0_user_id_fkey`, "
                    "`public.t1.user_id` -> `t1_user_id_fkey`")


def test_long_fk_lists_are_capped_with_the_rest_counted():
    total = REFERENCING_SHOWN + 7
    line = referencing_line(_key(total))
    assert line.count(" -> ") == REFERENCING_SHOWN
    assert f"t{REFERENCING_SHOWN - 1}_user_id_fkey" in line and f"t{REFERENCING_SHOWN}_user_id_fkey" not in line
    assert line.endswith("... and 7 more (see findings.json)")
    assert "more" not in referencing_line(_key(REFERENCING_SHOWN))
