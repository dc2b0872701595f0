"""verify.yml as AWX runs it: through ansible-runner (a private data dir, an
inventory, extra vars), with the exit status in the artifacts and the results as
JUnit XML for CI systems; no secret in the artifacts or the XML."""

from __future__ import annotations

import glob
import os
import sys
import xml.etree.ElementTree as ET

import ansible_runner
import psycopg2

from tests.playbook_runner import ROOT

VERSIONS_DIR = os.path.join(ROOT, "demoapp", "migrations", "versions")
INVENTORY = {"app_environments": {"hosts": {"test-env": {"ansible_connection": "local"}}}}


def test_verify_through_ansible_runner_reports_drift_in_artifacts_and_junit(environment, tmp_path):
    junit_dir = tmp_path / "junit"
    extravars = {
        "recovery_environment": "local",
        "recovery_database_url": environment["recovery_database_url"],
        "render_api_base_url": environment["render_api_url"],
        "render_api_key": environment["render_api_key"],
        "render_service_id": "srv-d0simulatedapi00000",
        "render_postgres_id": "dpg-d0simulateddb000000-a",
        "investigate_alembic_versions_dir": VERSIONS_DIR,
        "investigate_report_dir": str(tmp_path / "reports"),
        "backup_dir": str(tmp_path / "backups"),
        # The venv's Python, where psycopg2 and requests are (an EE's own interpreter in AWX).
        "ansible_python_interpreter": sys.executable,
    }
    private_data_dir = tmp_path / "runner"
    private_data_dir.mkdir(mode=0o700)  # it receives the extra vars, secrets included
    run = ansible_runner.run(
        private_data_dir=str(private_data_dir), project_dir=ROOT, playbook="playbooks/verify.yml",
        inventory=INVENTORY, extravars=extravars, quiet=True,
        envvars={"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
                 "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
                 "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,ansible.builtin.junit",
                 "JUNIT_OUTPUT_DIR": str(junit_dir), "JUNIT_FAIL_ON_CHANGE": "true"})

    # The broken environment drifts: the job fails, and its artifacts say so.
    assert run.status == "failed" and run.rc != 0
    artifacts = private_data_dir / "artifacts" / run.config.ident
    assert (artifacts / "status").read_text() == "failed"
    assert int((artifacts / "rc").read_text()) == run.rc
    assert "DRIFT: local: 3 check(s) failed" in (artifacts / "stdout").read_text()

    # JUnit XML: one test case per task; the failed task (an <error> for the junit
    # callback, unless named with JUNIT_TEST_CASE_PREFIX) names what drifted.
    reports = glob.glob(str(junit_dir / "*.xml"))
    assert len(reports) == 1
    suites = ET.parse(reports[0]).getroot()  # noqa: S314 - the XML this test's own run just wrote
    failures = [case for case in suites.iter("testcase")
                if case.find("failure") is not None or case.find("error") is not None]
    assert failures, ET.tostring(suites, encoding="unicode")[:3000]
    failed_text = " ".join(ET.tostring(case, encoding="unicode") for case in failures)
    assert "DRIFT" in failed_text

    secrets = (psycopg2.extensions.parse_dsn(environment["recovery_database_url"])["password"],
               environment["render_api_key"])
    for path in glob.glob(str(artifacts / "**" / "*"), recursive=True) + reports:
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                text = handle.read().decode(errors="replace")
            for secret in secrets:
                assert secret not in text, path
