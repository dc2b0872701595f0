"""Run ids: their one format and where a new one comes from.

A run id names what one run leaves: reports/<host>/<run id>/, backups/<host>/<run id>/,
the conversion's record, the rotation's new user (<prefix>_<run id>) and the verification's
verify-<run id> reports. recover.yml's steps share the investigation's; a step run alone
makes its own. Sortable text, UTC: 20261124T014249Z.

Pure: no I/O, no Ansible.
"""

from __future__ import annotations

from datetime import UTC, datetime

RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"


def new_run_id(moment: datetime | None = None) -> str:
    """The run id of now (or of moment)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(RUN_ID_FORMAT)


def run_id_or_new(given, part: str = "") -> str:
    """given when one was given (recover.yml passes its run's), else a new one; part "day", only
    its date (20261124): a standalone credential rotation names its new user after the day, so
    that a re-run the same day asks for the same user."""
    if given:
        return str(given)
    return new_run_id()[:8] if part == "day" else new_run_id()


def run_id_time(run_id: str) -> str | None:
    """The ISO time a run id like 20261124T014249Z names, or None."""
    try:
        moment = datetime.strptime(run_id or "", RUN_ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
