"""The product's throwaway cluster (module_utils/pg_scratch_cluster.py, library/pg_scratch_cluster.py):
restore verification and the rehearsal restore into it, so it must be reached only over SSL with
scram-sha-256, give its superuser URL, and leave nothing behind once removed."""

import importlib.util
import os

import psycopg2
import pytest
from ansible.module_utils import pg_scratch_cluster as scratch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _module():
    spec = importlib.util.spec_from_file_location(
        "library_pg_scratch_cluster", os.path.join(ROOT, "library", "pg_scratch_cluster.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_started_gives_a_superuser_url_over_ssl_and_absent_removes_everything():
    module = _module()
    started = module.started(None, check_mode=False)
    try:
        assert started["changed"] and started["server"].isdigit()
        with psycopg2.connect(started["admin_url"], connect_timeout=5) as conn, conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone()[0] is True
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone()[0] is True
            cur.execute("SHOW password_encryption")
            assert cur.fetchone()[0] == "scram-sha-256"
        # Started again on its directory: the same cluster, no change.
        again = module.started(started["base_dir"], check_mode=False)
        assert not again["changed"] and again["admin_url"] == started["admin_url"]
        assert module.absent(started["base_dir"], check_mode=True) == {"changed": True,
                                                                       "base_dir": started["base_dir"]}
        assert os.path.isdir(started["base_dir"])
    finally:
        removed = module.absent(started["base_dir"], check_mode=False)
    assert removed["changed"] and not os.path.exists(started["base_dir"])
    assert module.absent(started["base_dir"], check_mode=False)["changed"] is False
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(started["admin_url"], connect_timeout=3)


def test_check_mode_starts_nothing_but_finds_the_binaries(monkeypatch):
    monkeypatch.setattr(scratch, "create", lambda *a, **k: pytest.fail("check mode created a cluster"))
    checked = _module().started(None, check_mode=True)
    assert checked["changed"] and checked["admin_url"] == "" and checked["base_dir"] == ""

    # Without server binaries check mode fails as the run would, naming what to install.
    monkeypatch.setattr(scratch, "find_client", lambda name: (_ for _ in ()).throw(scratch.ToolError(name)))
    with pytest.raises(scratch.ClusterError, match=r"initdb, pg_ctl.*apt-get install postgresql"):
        _module().started(None, check_mode=True)


def test_a_state_file_with_more_fields_is_still_loaded(pg_cluster):
    # localenv's Render-like cluster adds an app owner to the same state file.
    cluster = scratch.ScratchCluster.load(pg_cluster.base_dir)
    assert cluster.admin_url() == pg_cluster.admin_url()
    assert cluster.is_running()
