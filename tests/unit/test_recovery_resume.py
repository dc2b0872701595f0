"""Where a recovery stands: done only when the schema is converted, alembic_version is at
head and the newest deploy is live; otherwise the first false one is where a run resumes."""

from filter_plugins.recovery_filters import FilterModule

STATE = FilterModule().filters()["recovery_resume_state"]
HEAD = "b354d12d1e7d"


def findings(*, needed=False, stored=(HEAD,), true=HEAD):
    return {"conversion_needed": needed,
            "alembic": {"stored": list(stored), "true": true, "head": HEAD, "matches": list(stored) == [true]}}


LIVE = {"id": "dep-1", "status": "live"}
FAILED = {"id": "dep-2", "status": "pre_deploy_failed"}


def test_done_only_when_all_three_hold():
    state = STATE(findings(), LIVE, True)
    assert state["work"] is False and state["resume_from"] is None
    assert state["summary"].endswith("-> nothing left to do")


def test_a_failed_deploy_after_the_conversion_resumes_at_the_deploy_with_migrations_pending():
    # What the first run leaves when its deploy failed: converted, alembic at the true revision, not head.
    state = STATE(findings(stored=("ba1a5bcdb110",), true="ba1a5bcdb110"), FAILED, True)
    assert (state["schema_converted"], state["alembic_at_head"], state["deploy_live"]) == (True, False, False)
    assert state["resume_from"] == "alembic_at_head" and state["database_work"] is False
    assert state["work"] and state["deploy_needed"] and state["deploy_trigger"] == "always"


def test_only_the_deploy_left_deploys_unless_live():
    state = STATE(findings(), FAILED, True)
    assert state["resume_from"] == "deploy_live" and state["deploy_trigger"] == "unless_live"
    assert state["deploy_needed"] and not state["database_work"]


def test_an_unconverted_schema_is_the_first_thing_to_do_even_with_a_live_deploy():
    state = STATE(findings(needed=True, stored=("f867c7e3d51c",), true="ba1a5bcdb110"), LIVE, True)
    assert state["resume_from"] == "schema_converted" and state["database_work"] and state["deploy_needed"]
    assert state["deploy_trigger"] == "always"


def test_without_render_only_the_database_work_counts():
    state = STATE(findings(stored=("ba1a5bcdb110",), true="ba1a5bcdb110"), None, False)
    assert state["deploy_live"] is None and not state["deploy_needed"] and not state["work"]
    assert "the newest deploy is live: unknown" in state["summary"]


def test_no_revision_map_is_not_a_reason_to_act():
    state = STATE({"conversion_needed": False, "alembic": None}, LIVE, True)
    assert state["alembic_at_head"] is None and not state["work"]
