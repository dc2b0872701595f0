"""Rotating leaked Render Postgres credentials.

Render has no password reset (shared/reference/RENDER_API.md section 6): a leaked
password is replaced by creating a new user, which becomes the database's default
user, pointing the services at it, deploying, and deleting the leaked users once
nothing uses them. (The Render API key in use is checked against the leaked ones in
credential_rotation_api_key.py.)

Everything here is pure and decides from what the API listed: which users still have
to go, which user the services move to (reusing one an interrupted run created), which
services still need a deploy (a re-run after a later step failed does not deploy again),
the order of the steps, the URLs derived from the new connection info, and whether a
leaked password is proven dead. No secret is ever part of a message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from ansible.module_utils.credential_rotation_api_key import UNKNOWN_VAULT, RotationError
from ansible.module_utils.pg_url import DatabaseUrlError, database_url_params

# Render's rule for usernames (as its API and the simulator check them).
USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_USERNAME = 63

# The steps of a rotation, in the only safe order: the services move to the new user and
# run with it before any leaked user is deleted, so nothing is cut off mid-way.
STEPS = ("create_user", "wait_default", "read_connection_info", "update_env_vars", "deploy",
         "wait_idle", "delete_leaked_users", "verify_deleted")


# -- users -----------------------------------------------------------------------------------

def validate_usernames(names, what="leaked user") -> list[str]:
    """The names, deduplicated in order; RotationError for one Render would not accept."""
    out = []
    for name in names or []:
        if not isinstance(name, str) or not USERNAME_RE.match(name):
            raise RotationError(f"{what} {name!r} is not a Render username "
                                "(lowercase letters, digits and _, starting with a letter or _, at most 63)")
        if name not in out:
            out.append(name)
    return out


def derive_username(prefix: str, run_id: str, taken=()) -> str:
    """``<prefix>_<run id>``, lower-cased to what Render accepts; ``_2``, ``_3``... when taken.

    Deterministic: the same run id on the same listed users gives the same name, so a
    re-run of an interrupted run asks for the same user.
    """
    prefix = validate_usernames([prefix], "user prefix")[0]
    suffix = re.sub(r"[^a-z0-9_]", "", str(run_id).lower())
    if not suffix:
        raise RotationError(f"run id {run_id!r} holds no letter or digit to name the new user with")
    base = f"{prefix}_{suffix}"[:MAX_USERNAME]
    taken = set(taken)
    name, counter = base, 1
    while name in taken:
        counter += 1
        tail = f"_{counter}"
        name = base[:MAX_USERNAME - len(tail)] + tail
    return name


def url_username(url) -> str | None:
    """The user a postgres URL logs in as (``?user=`` wins, as in libpq); None if unusable."""
    if not url:
        return None
    try:
        return database_url_params(url)["login_user"] or None
    except DatabaseUrlError:
        return None


def default_user(credentials) -> str | None:
    return next((c.get("username") for c in credentials or [] if c.get("default")), None)


def parse_time(value) -> datetime | None:
    """An API timestamp (ISO 8601, ``Z`` or an offset) as an aware datetime; None if unusable."""
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def deploy_decision(service: str, variable_users, newest_deploy, *, new_user: str, credentials,
                    create_user: bool) -> dict:
    """Whether ``service`` must be deployed for its instances to log in as ``new_user``.

    ``variable_users``: the users its variables name before this run changes them;
    ``newest_deploy``: its newest deploy as listed (None: none). A deploy is the default.
    It is left out only on proof that the service already runs with the new user, as a
    re-run finds it after the first run's deploy went live and a later step (health, drain,
    delete) failed: every variable already names the new user, the newest deploy is live
    and was made after the new user existed (so it started with the variables the rotation
    set), and the new user has open connections (only the services hold its password). A
    deploy someone else made in the seconds between the user's creation and the variable
    update would pass too; the drain step still refuses to delete a leaked user in use.
    """
    deploy = newest_deploy or {}
    users = list(variable_users or [])
    created = next((c.get("createdAt") for c in credentials or [] if c.get("username") == new_user), None)
    connections = next((int(c.get("openConnections") or 0) for c in credentials or []
                        if c.get("username") == new_user), 0)
    started, made = parse_time(deploy.get("createdAt")), parse_time(created)
    if create_user:
        reason = f"{new_user} is still to be created"
    elif not users or any(user != new_user for user in users):
        reason = f"its variables move to {new_user} in this run"
    elif not deploy:
        reason = "it has no deploy"
    elif deploy.get("status") != "live":
        reason = f"its newest deploy {deploy.get('id')} is {deploy.get('status')}"
    elif started is None or made is None:
        reason = f"when its live deploy {deploy.get('id')} and {new_user} were made is not known"
    elif started <= made:
        reason = f"its live deploy {deploy.get('id')} was made before {new_user} existed"
    elif connections <= 0:
        reason = f"nothing logs in as {new_user}, so no running instance is proven to use it"
    else:
        return {"service": service, "deploy": False, "live_deploy": deploy.get("id"),
                "reason": (f"its live deploy {deploy.get('id')} was made after {new_user} existed, its variables "
                           f"name {new_user} and {connections} connection(s) log in as {new_user}")}
    return {"service": service, "deploy": True, "live_deploy": None, "reason": reason}


def plan_rotation(credentials, leaked, *, prefix: str, run_id: str, env_users=None, newest_deploys=None) -> dict:
    """What is left to do, from the listed credentials alone.

    ``credentials``: ``GET /postgres/{id}/credentials``; ``leaked``: the leaked usernames;
    ``env_users``: ``{"<service> <KEY>": user the variable's URL names, or None}``;
    ``newest_deploys``: ``{service: its newest deploy or None}``.

    The services move to the default user when it is not a leaked one (a user an
    interrupted run created is the default, so it is reused); otherwise a new user is
    created. There is work while a leaked user is still listed or a variable still names
    one; then every step runs again except those already proven done: the new user is not
    created twice, a variable already on it is not set again, and a service already
    running with it is not deployed again (deploy_decision).
    """
    leaked = validate_usernames(leaked)
    listed = [c.get("username") for c in credentials or []]
    remaining = [name for name in leaked if name in listed]
    env_users = dict(env_users or {})
    env_on_leaked = sorted(where for where, user in env_users.items() if user in leaked)
    current = default_user(credentials)
    if current and current not in leaked:
        new_user, create = current, False
    else:
        new_user, create = derive_username(prefix, run_id, taken=listed), True
    if new_user in leaked:
        raise RotationError(f"the new user {new_user} is one of the leaked users; choose another prefix")
    rotate = bool(remaining or env_on_leaked)
    env_to_update = sorted(where for where, user in env_users.items() if user != new_user) if rotate else []
    services = list(newest_deploys or {}) or sorted({where.split(" ", 1)[0] for where in env_users})
    deploys = [deploy_decision(service, [user for where, user in env_users.items()
                                         if where.split(" ", 1)[0] == service],
                               (newest_deploys or {}).get(service), new_user=new_user, credentials=credentials,
                               create_user=create) for service in services] if rotate else []
    skipped = {"create_user": not create, "update_env_vars": not env_to_update and bool(env_users),
               "deploy": bool(deploys) and not any(d["deploy"] for d in deploys)}
    steps = [s for s in STEPS if rotate and not skipped.get(s)]
    return {
        "rotate": rotate,
        "leaked_users": leaked,
        "remaining": remaining,
        "gone": [name for name in leaked if name not in listed],
        "default_user": current,
        "new_user": new_user,
        "create_user": rotate and create,
        "env_on_leaked": env_on_leaked,
        "env_to_update": env_to_update,
        "deploys": deploys,
        "steps": steps,
        "summary": plan_summary(rotate=rotate, remaining=remaining, gone=[n for n in leaked if n not in listed],
                                new_user=new_user, create=create, steps=steps, deploys=deploys),
    }


def plan_summary(*, rotate: bool, remaining, gone, new_user: str, create: bool, steps, deploys) -> str:
    """One line for the operator: what the run will do, and why each service is deployed or not."""
    if not rotate:
        return (f"nothing to rotate: no leaked user left ({', '.join(gone) or 'none given'} gone); "
                "the API key in use is not a leaked one")
    services = "; ".join(f"{d['service']}: {'deploy' if d['deploy'] else 'no deploy'} ({d['reason']})"
                         for d in deploys)
    return (f"rotate: leaked users {', '.join(remaining)} -> {'new' if create else 'existing'} user {new_user}; "
            f"steps: {', '.join(steps)}" + (f"; {services}" if services else ""))


def busy_users(credentials, users) -> dict:
    """``{user: openConnections}`` for the given users that still have sessions."""
    wanted = set(users or [])
    return {c["username"]: int(c.get("openConnections") or 0) for c in credentials or []
            if c.get("username") in wanted and int(c.get("openConnections") or 0) > 0}


def still_listed(credentials, users) -> list[str]:
    listed = {c.get("username") for c in credentials or []}
    return [name for name in users or [] if name in listed]


# -- URLs from the new connection info ---------------------------------------------------------

def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` logging in as ``user``/``password``; host, port, database and options kept."""
    database_url_params(url)  # validates; its errors never hold the URL
    parts = urlsplit(url)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    # libpq's ?user= and ?password= would win over the user part: drop them.
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("user", "password")]
    return parts._replace(netloc=netloc, query=urlencode(query, safe="/")).geturl()


def rotation_urls(connection_info: dict, new_user: str, leaked, *, database_url: str | None = None,
                  env_connection_string: str = "internal") -> dict:
    """The services' new value and the run's database URL, from ``GET .../connection-info``.

    Refuses when the connection info is not the new user's (the default changed under the
    run). ``database_url`` (the run's own, e.g. recovery_database_url) is moved to the new
    user only when it logs in as a leaked user; ``login_url`` is it with the new user's
    credentials in any case, to prove the new login before the services get it.
    """
    key = f"{env_connection_string}ConnectionString"
    value = (connection_info or {}).get(key)
    password = (connection_info or {}).get("password")
    if not value or not password:
        raise RotationError(f"the connection info has no {key} or password")
    named = url_username(value)
    if named != new_user:
        raise RotationError(f"the connection info is for user {named}, not the new default user {new_user}: "
                            "the default user changed during the run; re-run to pick it up")
    result = {"env_value": value, "database_url": database_url, "database_url_changed": False,
              "login_url": None}
    if database_url:
        result["login_url"] = with_credentials(database_url, new_user, password)
        if url_username(database_url) in set(leaked or []):
            result.update(database_url=result["login_url"], database_url_changed=True)
    return result


# -- proof that a leaked password is dead ----------------------------------------------------------

def is_authentication_failure(error) -> bool:
    """A login refused for its credentials (a dropped role answers the same, by design);
    ``error`` is the driver's exception or its text."""
    text = str(error)
    return "password authentication failed" in text or ("SCRAM" in text and "authentication" in text)


def leaked_login_proof(user: str, error_text: str | None) -> str:
    """The proof line for a login attempt with ``user``'s leaked password; ``error_text`` is
    the failure (None: it logged in). RotationError when the password is not proven dead."""
    if error_text is None:
        raise RotationError(f"the leaked password of {user} still logs in although Render no longer lists {user}")
    if not is_authentication_failure(error_text):
        first = str(error_text).strip().splitlines()[0] if str(error_text).strip() else "no reason given"
        raise RotationError(f"the leaked password of {user} could not be proven dead (the login failed for "
                            f"another reason: {first}); try it by hand")
    return f"A login with the leaked password of {user} is rejected: that password no longer logs in."


def operator_actions(*, rotated: bool, database_url_changed: bool, new_user: str | None,
                     deleted, vault_file: str = "", proof=()) -> list[str]:
    """What the operator must do after the run; never a secret."""
    if not rotated:
        return []
    actions = [f"The leaked database users {', '.join(deleted) or '(none left)'} are deleted; "
               f"the services use {new_user}.", *proof]
    if database_url_changed:
        where = f"in {vault_file} (ansible-vault edit)" if vault_file else f"in {UNKNOWN_VAULT}"
        actions.append(f"Update vault_recovery_database_url {where} to the {new_user} connection string "
                       "(Render Dashboard > the database > Connections): the old one no longer logs in.")
    return actions
