"""The online conversion stopped at each phase (expand, backfill, index build, inside the
swap's transaction, after its commit): the app's columns are either all the old ones
(before the swap commits) or all the new ones (after), never a mix, and the next run
finishes with the same result as the offline mode."""

from __future__ import annotations

import psycopg2
import pytest
from ansible.module_utils.key_conversion_online_run import convert_online
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import RunOptions, convert

from tests.db_fingerprint import fingerprint


class Stopped(BaseException):
    """The run dies here, as a killed ansible-playbook's module would (a BaseException,
    like the KeyboardInterrupt or SystemExit of a signal: no handler of the run's own
    errors catches it)."""


def _options(**extra) -> RunOptions:
    return RunOptions(**({"lock_timeout_ms": 2000, "lock_retries": 5, "retry_base_seconds": 0.1} | extra))


# Progress messages each phase says as it starts; the run dies right there.
PHASES = {"expand of the second table": "expand 2/",
          "a shadow index build": "building index",
          "inside the swap's transaction, locks held": "swap: ",
          "after the swap's commit": "swap committed"}


@pytest.mark.parametrize("phase", list(PHASES))
def test_online_run_stopped_at_each_phase_leaves_old_or_new_columns_and_a_rerun_finishes(
        phase, make_database, broken_template, figures):
    reference, url = make_database(template=broken_template), make_database(template=broken_template)
    conn = psycopg2.connect(reference)
    convert(conn, ConversionRequest(), _options())
    conn.close()
    before = fingerprint(url, column_order=False)
    marker = PHASES[phase]

    def die(message):
        if message.startswith(marker) and ("statements under the lock" in message or marker != "swap: "):
            raise Stopped(message)

    conn = psycopg2.connect(url)
    with pytest.raises(Stopped):
        convert_online(conn, ConversionRequest(), _options(progress=die), batch_rows=500, pause_seconds=0,
                       allow_rewrite=False)
    conn.close()  # the server rolls back whatever the dead run had open

    swapped = phase == "after the swap's commit"
    now = fingerprint(url, column_order=False)["types"]
    # Every column the app has is of its old type (shadows beside them), or every one of its new type.
    want = fingerprint(reference)["types"] if swapped else before["types"]
    assert {column: now.get(column) for column in want} == want
    conn = psycopg2.connect(url)
    outcome = convert_online(conn, ConversionRequest(), _options(), batch_rows=500, pause_seconds=0,
                             allow_rewrite=False)
    conn.close()
    assert not outcome["post_commit_errors"]
    assert fingerprint(url, column_order=False) == fingerprint(reference, column_order=False)
    figures.record(f"online conversion stopped at: {phase}", columns=("new" if swapped else "old"),
                   rerun_matches_offline=True, exclusive_lock_s=outcome["timings"].get("exclusive_lock", 0.0))
