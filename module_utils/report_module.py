"""The glue the report modules share (library/run_report.py, library/verify_report.py): their
common options (doc_fragments/report_module.py) and how they answer. Each assembles its report
from the evidence it is given; neither writes it (the roles do), so both return changed=false.
"""

from __future__ import annotations


def report_argument_spec(**options) -> dict:
    """evidence, environment, commands, host, secrets, and the module's own options."""
    return {
        "evidence": {"type": "dict", "required": True},
        "environment": {"type": "str", "required": True},
        "commands": {"type": "dict", "default": {}},
        "host": {"type": "str", "required": True},
        "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
        **options,
    }


def given_secrets(params) -> list[str]:
    """The non-empty secrets (an unset vault value arrives as "")."""
    return [secret for secret in params["secrets"] if secret]


def exit_with_report(module, report: dict, markdown: str, summary: str, failing: int, **more) -> None:
    """Answer with the report as a dict and as Markdown, its one-line summary and its failure count."""
    module.exit_json(changed=False, report=report, markdown=markdown, summary=summary, failing=failing, **more)
