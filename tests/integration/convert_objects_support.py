"""What the object-kind conversion tests (test_convert_keys_objects.py,
test_convert_keys_categories.py) share: building a schema with uuid keys next to its native
varchar(36) twin, converting it check mode first, comparing catalogs, and refusals by name."""

import pprint
from contextlib import closing

import psycopg2
import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import ConversionError, RunOptions, convert, plan_only

from tests.db_connections import app_conn
from tests.db_fingerprint import fingerprint

VARCHAR = "character varying(36)"


def run_sql(url: str, statements: str) -> None:
    with closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
        cur.execute(statements)


def build(make_database, template: str, **params) -> tuple[str, dict]:
    """The schema with uuid keys (its URL), and the catalog of the same schema
    built natively with varchar(36) keys: what a conversion must arrive at."""
    url = make_database()
    run_sql(url, template.format(key="uuid", **params))
    native = make_database()
    run_sql(native, template.format(key="varchar(36)", **params))
    return url, fingerprint(native, extended=True)


def changed_types(before: dict, after: dict) -> dict:
    return {col: after["types"].get(col) for col, typ in before["types"].items()
            if after["types"].get(col) != typ}


def catalog_differences(before: dict, after: dict) -> dict:
    """Per catalog entry, the rows only before and only after (empty when equal)."""
    differences = {}
    for name in sorted(set(before["catalog"]) | set(after["catalog"])):
        was, now = before["catalog"].get(name, []), after["catalog"].get(name, [])
        if was != now:
            differences[name] = {"before": [r for r in was if r not in now],
                                 "after": [r for r in now if r not in was]}
    return differences


def assert_same_catalog(expected: dict, actual: dict) -> None:
    differences = catalog_differences(expected, actual)
    assert differences == {}, pprint.pformat(differences, width=120)


def convert_checked(url: str, request: ConversionRequest) -> tuple[dict, dict, dict]:
    """Check mode first (it must change nothing), then the conversion:
    (outcome, fingerprint before, fingerprint after)."""
    before = fingerprint(url, extended=True)
    conn = app_conn(url)
    try:
        planned = plan_only(conn, request)["plan"]
        assert planned.refusals == []
        assert fingerprint(url, extended=True) == before
        outcome = convert(conn, request, RunOptions())
    finally:
        conn.close()
    assert outcome["changed"] is True
    # The plan check mode showed is the one that ran.
    assert outcome["plan"].sql == planned.sql
    return outcome, before, fingerprint(url, extended=True)


def assert_refused(url: str, request: ConversionRequest, fragment: str) -> None:
    """Refused in check mode and in a run, by name, and nothing changed."""
    before = fingerprint(url, extended=True)
    conn = app_conn(url)
    try:
        planned = plan_only(conn, request)["plan"]
        assert any(fragment in refusal for refusal in planned.refusals), planned.refusals
        with pytest.raises(ConversionError, match="refused before any change") as err:
            convert(conn, request, RunOptions())
    finally:
        conn.close()
    assert fragment in str(err.value)
    assert fingerprint(url, extended=True) == before
