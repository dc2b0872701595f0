"""webhook_notify through ansible-playbook against the simulator's receiver: the
payload arrives as sent, a failing or unreachable receiver never fails the play,
and no secret appears in the output at -vvv or in what was received."""

import json

from localenv.cluster import free_port
from localenv.render_sim import testing
from tests.playbook_runner import run_playbook

PLAY = """
- name: Notify
  hosts: app_environments
  gather_facts: false
  tasks:
    - name: Notify {{ item.name }}
      webhook_notify:
        url: "{{ item.url }}"
        event: failure
        environment: production
        step: Convert the keys
        duration_seconds: 12.5
        report: reports/production/r1/run-report.md
        message: "stopped: {{ secret_url }}"
        secrets: ["{{ secret_url }}", "{{ api_key }}"]
      loop: "{{ receivers }}"
      loop_control:
        label: "{{ item.name }}"
      register: notified
      no_log: true

    - name: Show what happened (no secret in these fields)
      ansible.builtin.debug:
        msg: "{{ notified.results | map(attribute='delivered') | list }} {{ notified.results | map(attribute='status')
              | list }} {{ notified.results | map(attribute='error') | list }}"
"""


def test_delivered_once_failures_reported_never_fatal_and_no_secret(pg_cluster, tmp_path):
    play = tmp_path / "notify.yml"
    play.write_text(PLAY)
    with testing.running(pg_cluster) as (server, _names, key):
        root = f"http://127.0.0.1:{server.port}/__sim__/webhook"
        secret_url = "postgresql://app:fake-pw-for-tests@127.0.0.1:5432/app"
        extra = {"secret_url": secret_url, "api_key": key, "receivers": [
            {"name": "chat", "url": f"{root}/T000-hook-token"},
            {"name": "down", "url": f"{root}/fail"},
            {"name": "unreachable", "url": f"http://127.0.0.1:{free_port()}/hook"}]}
        run = run_playbook(str(play), extra, verbosity=3)
        received = testing.Control(server, key).webhooks()

    assert run.rc == 0, run.output[-3000:]
    assert "[True, False, False] [200, 500, None]" in run.output
    assert "the webhook answered HTTP 500" in run.output and "could not be reached" in run.output
    assert [r["name"] for r in received] == ["T000-hook-token"]
    body = received[0]["body"]
    assert body["text"].startswith("render-key-recovery: production: recovery FAILED at 'Convert the keys' after 12 s")
    assert body["report"] == "reports/production/r1/run-report.md"
    for secret in ("fake-pw-for-tests", key, "T000-hook-token"):
        assert secret not in run.output, secret
        assert secret not in json.dumps(body), secret
