"""The local Render-like cluster: nothing trusted, SSL only, and `up`/`down` never half-done."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import psycopg2
import pytest

from localenv import cluster as pg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _hba_lines(cluster):
    with open(os.path.join(cluster.data_dir, "pg_hba.conf")) as handle:
        return [line.split() for line in handle if line.strip() and not line.lstrip().startswith("#")]


def test_pg_hba_has_no_trust_lines_and_only_scram_over_ssl(pg_cluster):
    lines = _hba_lines(pg_cluster)
    assert lines, "pg_hba.conf has rules"
    assert not [line for line in lines if "trust" in line]
    for kind, *_, method in lines:
        assert method in ("scram-sha-256", "reject"), (kind, method)
        assert kind in ("local", "hostssl") or method == "reject"


def test_a_connection_without_ssl_is_refused(pg_cluster):
    params = psycopg2.extensions.parse_dsn(pg_cluster.url())
    params["sslmode"] = "disable"
    params.pop("sslrootcert", None)
    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(**params, connect_timeout=5)
    # The same credentials over SSL get in, as the non-superuser owner.
    with psycopg2.connect(pg_cluster.url(), connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone()[0] is True
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone()[0] is False


def test_a_wrong_password_is_refused(pg_cluster):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(pg_cluster.url(password="not-the-password"), connect_timeout=5)


def _localenv(state_dir, *args, env=None):
    return subprocess.run([sys.executable, "-m", "localenv", "--dir", state_dir, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture
def scratch_tmp():
    """A TMPDIR of this test's own: the clusters `up` creates land here, so a
    leak is visible (the postgres OS user must reach it when we are root)."""
    path = tempfile.mkdtemp(prefix="localenv-test-")
    os.chmod(path, 0o711)  # noqa: S103 -- traversable by the postgres OS user, not listable
    yield path
    for name in os.listdir(path):  # only after a failed assertion
        if os.path.exists(os.path.join(path, name, pg.STATE_FILE)):
            pg.Cluster.load(os.path.join(path, name)).stop(remove=True)
    shutil.rmtree(path, ignore_errors=True)


def test_a_failed_fixture_load_leaves_nothing_up(tmp_path, scratch_tmp):
    state = str(tmp_path / "state")
    # A real server error mid-load: no schema to create the fixture's tables in.
    result = _localenv(state, "up", "--no-simulator",
                       env={"TMPDIR": scratch_tmp, "PGOPTIONS": "-c search_path=no_such_schema"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert re.fullmatch(r"error: the database refused: [^\n]*schema[^\n]*\n", result.stderr), result.stderr
    assert not os.path.exists(os.path.join(state, "cluster_dir"))
    assert not os.path.exists(os.path.join(state, "recovery_database_url"))
    assert os.listdir(scratch_tmp) == [], "the half-built cluster was removed"
    status = _localenv(state, "status")
    assert status.returncode == 1 and "not up" in status.stdout


def test_down_is_idempotent(tmp_path, scratch_tmp):
    state = str(tmp_path / "state")
    up = _localenv(state, "up", "--empty", "--no-simulator", env={"TMPDIR": scratch_tmp})
    assert up.returncode == 0, up.stdout + up.stderr
    assert len(os.listdir(scratch_tmp)) == 1
    first = _localenv(state, "down")
    assert first.returncode == 0 and "stopped and removed" in first.stdout
    assert os.listdir(scratch_tmp) == []
    for again in (_localenv(state, "down"), _localenv(str(tmp_path / "never-created"), "down")):
        assert again.returncode == 0, again.stderr
        assert "not up" in again.stdout


def test_bad_scale_is_one_clear_line(tmp_path):
    result = _localenv(str(tmp_path / "state"), "up", "--scale", "0")
    assert result.returncode == 2
    assert "must be >= 1" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "state")


def test_binaries_command_names_the_server_binaries(tmp_path):
    # `make postgres` runs this: a path on success, else one message and exit 1.
    result = _localenv(str(tmp_path), "binaries")
    assert result.returncode == 0, result.stderr
    assert os.access(os.path.join(result.stdout.strip(), "initdb"), os.X_OK)
