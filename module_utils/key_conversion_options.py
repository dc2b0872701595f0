"""The options of a key conversion, one home for every module that runs one.

pg_convert_keys and pg_convert_keys_rehearsal take the same request (documented
in doc_fragments/key_conversion.py) so that a rehearsal runs exactly the plan
the real run will.
"""

from __future__ import annotations

from ansible.module_utils.key_conversion_plan import FK_VALIDATION, INDEX_BUILD, SCOPES, VALUE_CHECKS, ConversionRequest
from ansible.module_utils.key_conversion_run import RunOptions


def conversion_argument_spec() -> dict:
    # The request's defaults have one home, ConversionRequest (the bench reads them there too).
    default = ConversionRequest
    return {
        "keys": {"type": "list", "elements": "str", "default": ["auto"]},
        "scope": {"type": "str", "choices": list(SCOPES), "default": default.scope},
        "allow_unconverted_writers": {"type": "bool", "default": default.allow_unconverted_writers},
        "source_type": {"type": "str", "default": default.source_type},
        "target_type": {"type": "str", "default": default.target_type},
        "collation": {"type": "str"},
        "schemas": {"type": "list", "elements": "str", "default": ["public"]},
        "include_columns": {"type": "list", "elements": "str", "default": []},
        "include_arrays": {"type": "bool", "default": default.include_arrays},
        "fk_validation": {"type": "str", "choices": list(FK_VALIDATION), "default": default.fk_validation},
        "index_build": {"type": "str", "choices": list(INDEX_BUILD), "default": default.index_build},
        "value_check": {"type": "str", "choices": list(VALUE_CHECKS), "default": default.value_check},
        "lock_timeout": {"type": "int", "default": 5000},
        "lock_retries": {"type": "int", "default": 5},
        "lock_retry_delay": {"type": "float", "default": 1.0},
        "statement_timeout": {"type": "int", "default": 0},
        "maintenance_work_mem": {"type": "str", "default": "auto"},
        "after_commit_workers": {"type": "int", "default": 2},
        "rewrite_mb_per_second": {"type": "float", "default": default.rewrite_mb_per_second},
    }


def request_from_params(p: dict) -> ConversionRequest:
    """The request the options describe; ValueError names the first bad input."""
    request = ConversionRequest(
        keys=p["keys"], scope=p["scope"], source_type=p["source_type"], target_type=p["target_type"],
        schemas=p["schemas"], include_columns=p["include_columns"], include_arrays=p["include_arrays"],
        fk_validation=p["fk_validation"], index_build=p["index_build"], value_check=p["value_check"],
        rewrite_mb_per_second=p["rewrite_mb_per_second"],
        allow_unconverted_writers=p["allow_unconverted_writers"],
        collation=p["collation"] or None)
    request.check()
    if p["lock_timeout"] <= 0 or p["lock_retries"] < 0 or p["statement_timeout"] < 0:
        raise ValueError("lock_timeout must be > 0, lock_retries and statement_timeout >= 0")
    if not 1 <= p["after_commit_workers"] <= 16:
        raise ValueError("after_commit_workers must be between 1 and 16")
    return request


def run_options_from_params(p: dict, *, connect=None, progress=None) -> RunOptions:
    return RunOptions(lock_timeout_ms=p["lock_timeout"], lock_retries=p["lock_retries"],
                      retry_base_seconds=p["lock_retry_delay"], statement_timeout_ms=p["statement_timeout"],
                      maintenance_work_mem=p["maintenance_work_mem"], progress=progress, connect=connect,
                      after_commit_workers=p["after_commit_workers"])
