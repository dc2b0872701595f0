"""Render faults on every call that maintenance.yml, deploy.yml and rotate_credentials.yml
make: each API operation's first call answers a 429 (Retry-After, or Ratelimit-Reset alone),
a 500/503, a dropped connection, or loses its answer after the change was made. Every run
still succeeds, each 429's wait is honoured, no resource is made twice, and rotation never
points a service at a deleted user. Five faults in a row on one call: the run stops with a
clear message after a bounded number of attempts, and a re-run resumes where it stopped: for
the rotation, after the new user, after the variable moved and after the deploy went live,
with one new user, one variable change and one deploy over both runs, and the leaked
passwords proven dead.

The scenarios run concurrently (each in its own simulator world): most of their time is the
client's backoff, which costs no CPU. Each test asserts on its own scenario's result."""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from localenv.render_sim.server import ROUTES
from tests.faults.conftest import render_world
from tests.playbook_runner import run_playbook

STEPS = [
    ("playbooks/maintenance.yml", {"maintenance": "on"}),
    ("playbooks/maintenance.yml", {"maintenance": "off"}),
    ("playbooks/deploy.yml", {"deploy_trigger": "always"}),
    ("playbooks/rotate_credentials.yml", {}),
]
RATE_LIMITED = {"id": "rate_limited", "message": "rate limit exceeded"}
# Each kind, for the i-th operation of the simulator's route table.
KINDS = {
    "429 with Retry-After": lambda i: {"status": 429, "headers": {"Retry-After": "1"}, "body": RATE_LIMITED},
    "429 with Ratelimit-Reset only": lambda i: {"status": 429, "headers": {"Ratelimit-Reset": "1"},
                                                "body": RATE_LIMITED},
    "500 and 503": lambda i: {"status": 500 if i % 2 else 503},
    "dropped connection": lambda i: {"drop": True},
    "answer lost after the change (503 or drop)": lambda i: {"apply": True,
                                                             **({"drop": True} if i % 2 else {"status": 503})},
}
# Five failures in a row on one call (the client makes at most five attempts).
IN_A_ROW = [{"status": 503}, {"status": 500}, {"status": 429, "headers": {"Retry-After": "0"}, "body": RATE_LIMITED},
            {"status": 429, "headers": {"Retry-After": "0"}, "body": RATE_LIMITED}, {"status": 503}]
EXHAUSTED = {  # scenario: (step, operation); the rotation's in the order it reaches them
    "maintenance PATCH": (0, "PATCH /services/{serviceId}"),
    # Stops after the new user, before the variable moves.
    "rotation GET connection-info": (3, "GET /postgres/{postgresId}/connection-info"),
    "rotation PUT env var": (3, "PUT /services/{serviceId}/env-vars/{envVarKey}"),
    # Stops after the variable moved, before any deploy.
    "rotation POST deploy": (3, "POST /services/{serviceId}/deploys"),
    # Stops after the deploy went live with the new user, before the leaked users are gone.
    "rotation DELETE credential": (3, "DELETE /postgres/{postgresId}/credentials/{username}"),
}
PUT_ENV_VAR = "PUT /services/{serviceId}/env-vars/{envVarKey}"


def when(entry) -> datetime.datetime:
    return datetime.datetime.fromisoformat(entry["at"].rstrip("Z"))


def user_of(url: str | None) -> str | None:
    return psycopg2.extensions.parse_dsn(url)["user"] if url else None


def can_log_in(world, user: str) -> bool:
    try:
        psycopg2.connect(world["cluster"].url(world["names"]["database"], user=user,
                                              password=world["passwords"][user]), connect_timeout=5).close()
    except psycopg2.OperationalError:
        return False
    return True


def snapshot(world) -> dict:
    service, instance = world["service"], world["instance"]
    return {"maintenance": service.maintenance["enabled"], "deploys": len(service.deploys),
            "env_user": user_of(service.env.get("DATABASE_URL")),
            "live_user": user_of(service.live_env.get("DATABASE_URL")),
            "users": sorted(c["username"] for c in instance.credentials)}


def faults_left(control) -> dict:
    resp = requests.get(f"{control.root}/faults", headers=control.headers, timeout=10)
    resp.raise_for_status()
    return resp.json()


def run_step(world, tmp, step, faults: dict[str, list[dict]]) -> dict:
    control = world["control"]
    control.clear_faults()
    control.clear_journal()
    for operation, queued in faults.items():
        control.faults(operation, queued)
    playbook, extra = STEPS[step]
    result = run_playbook(playbook, {**world["extra"], **extra}, tmp_dir=tmp)
    journal = control.journal()
    left = faults_left(control)
    control.clear_faults()
    return {"playbook": f"{playbook} {extra}", "rc": result.rc, "output": result.output, "journal": journal,
            "faulted": sorted(op for op in faults if op not in left), "state": snapshot(world)}


def every_call_faulted(pg_cluster, tmp, kind) -> dict:
    with render_world(pg_cluster) as world:
        start = snapshot(world)
        faults = {f"{method} {template}": [KINDS[kind](i)] for i, (method, template, *_) in enumerate(ROUTES)}
        steps = [run_step(world, tmp, step, faults) for step in range(len(STEPS))]
        return {"start": start, "steps": steps, "leaked": world["leaked"], "new_user": world["new_user"]}


def in_a_row_then_rerun(pg_cluster, tmp, name) -> dict:
    step, operation = EXHAUSTED[name]
    with render_world(pg_cluster) as world:
        start = snapshot(world)
        failed = run_step(world, tmp, step, {operation: IN_A_ROW})
        rerun = run_step(world, tmp, step, {})
        return {"start": start, "failed": failed, "rerun": rerun, "leaked": world["leaked"],
                "new_user": world["new_user"],
                "leaked_log_in": [user for user in world["leaked"] if can_log_in(world, user)]}


SCENARIOS = {**{kind: (every_call_faulted, kind) for kind in KINDS},
             **{name: (in_a_row_then_rerun, name) for name in EXHAUSTED}}


@pytest.fixture(scope="module")
def scenarios(request, pg_cluster, tmp_path_factory):
    """Starts every selected scenario at once; {name: future}."""
    wanted = sorted({item.callspec.params["scenario"] for item in request.session.items
                     if hasattr(item, "callspec") and item.callspec.params.get("scenario") in SCENARIOS})
    pool = ThreadPoolExecutor(max(1, len(wanted)))
    futures = {name: pool.submit(SCENARIOS[name][0], pg_cluster, str(tmp_path_factory.mktemp("render")),
                                 SCENARIOS[name][1]) for name in wanted}
    yield futures
    pool.shutdown(wait=True)


def fault_answers(journal: list[dict]) -> list[dict]:
    return [e for e in journal if e.get("operation") and (e["status"] is None or e["status"] in (429, 500, 503))]


def check_end_state(result, *, deploys: int):
    """No duplicate: the deploys asked for and one new user; the service on a user that exists."""
    end = (result.get("rerun") or result["steps"][-1])["state"]
    new_users = sorted(set(end["users"]) - set(result["start"]["users"]))
    assert new_users == [result["new_user"]], end
    assert not set(result["leaked"]) & set(end["users"]), "a leaked user survived"
    assert end["env_user"] in end["users"] and end["live_user"] in end["users"], end
    assert end["deploys"] - result["start"]["deploys"] == deploys, "a deploy was made twice"


def never_points_at_a_deleted_user(journal: list[dict]):
    """The service's DATABASE_URL is moved (PUT) before any leaked user is deleted."""
    ops = [e.get("operation") for e in journal]
    puts = [i for i, op in enumerate(ops) if op == "PUT /services/{serviceId}/env-vars/{envVarKey}"]
    deletes = [i for i, op in enumerate(ops) if op == "DELETE /postgres/{postgresId}/credentials/{username}"]
    assert not puts or not deletes or max(puts) < min(deletes), "DATABASE_URL changed after a user was deleted"


@pytest.mark.parametrize("scenario", list(KINDS))
def test_every_call_survives_one_fault_without_duplicates(scenario, scenarios, figures):
    result = scenarios[scenario].result()
    retries, waits, covered = 0, [], set()
    for step in result["steps"]:
        assert step["rc"] == 0, f"{step['playbook']} failed under {scenario}:\n{step['output'][-3000:]}"
        journal = step["journal"]
        answers = fault_answers(journal)
        called = {e["operation"] for e in journal if e.get("operation")}
        assert set(step["faulted"]) == called, "every operation called got its fault"
        # Each operation saw its fault once: the retry (or the read after an ambiguous
        # answer) went through, nothing retried on and on.
        assert sorted(e["operation"] for e in answers) == sorted(called)
        retries += len(answers)
        covered |= {f"{step['playbook'].split()[0].split('/')[-1]}: {op}" for op in called}
        for answer in (a for a in answers if a["status"] == 429):
            after = [e for e in journal if e["path"] == answer["path"] and e["method"] == answer["method"]
                     and when(e) > when(answer)]
            if after:
                waits.append((when(after[0]) - when(answer)).total_seconds())
        never_points_at_a_deleted_user(journal)
    if scenario.startswith("429"):
        assert waits and min(waits) >= 1.0, f"a 429 asked for 1 s, the retry came after {min(waits):.2f} s"
    assert result["steps"][0]["state"]["maintenance"] is True
    assert result["steps"][1]["state"]["maintenance"] is False
    check_end_state(result, deploys=2)  # deploy.yml's, and the rotation's
    figures.record(f"Render: {scenario} on the first call of every operation", calls_faulted=retries,
                   operations_covered=len(covered), runs_succeeded=f"{len(result['steps'])} of {len(STEPS)}",
                   duplicates=0, service_on_deleted_user=0,
                   **({"min_wait_after_429_s": round(min(waits), 2)} if waits else {}))


@pytest.mark.parametrize("scenario", list(EXHAUSTED))
def test_five_faults_in_a_row_stop_the_run_clearly_and_a_rerun_resumes(scenario, scenarios, figures):
    result = scenarios[scenario].result()
    _, operation = EXHAUSTED[scenario]
    failed, rerun = result["failed"], result["rerun"]
    assert failed["rc"] != 0, failed["output"][-3000:]
    calls = [e for e in failed["journal"] if e.get("operation") == operation]
    # The first call met the five faults: five attempts, then the run stopped.
    attempts = [e for e in calls if e["path"] == calls[0]["path"]]
    assert len(attempts) == len(IN_A_ROW), f"{len(attempts)} attempts"
    assert all(e["status"] in (429, 500, 503) for e in attempts)
    assert "gave up after 5 attempts" in failed["output"], failed["output"][-3000:]
    stopped = failed["state"]
    assert stopped["env_user"] in stopped["users"], "the service points at a user that does not exist"
    never_points_at_a_deleted_user(failed["journal"] + rerun["journal"])
    assert rerun["rc"] == 0, rerun["output"][-3000:]
    if scenario == "maintenance PATCH":
        assert stopped["maintenance"] is False and rerun["state"]["maintenance"] is True
    else:
        # The re-run resumes where the first run stopped: one new user, one variable change and
        # one deploy over both runs (a live deploy already on the new user is not repeated),
        # and the leaked passwords are dead, which the re-run proves.
        both = failed["journal"] + rerun["journal"]
        check_end_state(result, deploys=1)
        created = [e for e in both if e.get("operation") == "POST /postgres/{postgresId}/credentials"
                   and e["status"] == 202]
        assert len(created) <= 1, "a second new user was made"
        moved = [e for e in both if e.get("operation") == PUT_ENV_VAR and e["status"] == 200]
        assert len(moved) == 1, f"DATABASE_URL was set {len(moved)} times"
        assert result["leaked_log_in"] == [], "a leaked password still logs in"
        # The run's database URL logs in as the second leaked user: the re-run tries it.
        proof = f"A login with the leaked password of {result['leaked'][1]} is rejected"
        assert proof in " ".join(rerun["output"].split()), rerun["output"][-3000:]
        if "DELETE" in operation:  # the deploy went live in the first run: only the delete is left
            assert "not deployed again" in rerun["output"], rerun["output"][-3000:]
    figures.record(f"Render: 5 faults in a row on {operation}", attempts=len(attempts),
                   deploys=rerun["state"]["deploys"] - result["start"]["deploys"],
                   stopped_with="gave up after 5 attempts", rerun="resumes and completes", duplicates=0,
                   **({} if scenario == "maintenance PATCH" else {"leaked_passwords_logging_in": 0}))
