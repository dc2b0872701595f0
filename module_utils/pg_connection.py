"""Connection options and connect() shared by every PostgreSQL module.

Modelled on community.postgresql's module_utils/postgres.py: one argument spec
extended by each module, one connect() that turns libpq failures into a message
an operator can act on. The password is only ever passed to libpq, never logged.
"""

from __future__ import annotations

from ansible.module_utils.pg_url import DatabaseUrlError, database_url_params

try:
    import psycopg2
    import psycopg2.extras
    HAS_PSYCOPG2 = True
except ImportError:  # reported by ensure_psycopg2()
    psycopg2 = None
    HAS_PSYCOPG2 = False

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def connection_argument_spec() -> dict:
    """Options every database module takes: a URL, or its parts (which win)."""
    return {
        "database_url": {"type": "str", "no_log": True},
        "login_host": {"type": "str"},
        "login_port": {"type": "int"},
        "login_user": {"type": "str"},
        "login_password": {"type": "str", "no_log": True},
        "login_db": {"type": "str"},
        "ssl_mode": {"type": "str", "choices": SSL_MODES},
        "ca_cert": {"type": "path", "aliases": ["ssl_rootcert"]},
        "connect_timeout": {"type": "int", "default": 10},
    }


CONNECTION_DEFAULTS = {"login_port": 5432, "ssl_mode": "require", "login_password": ""}


def resolve_connection(params: dict) -> dict:
    """Module params with the URL's parts filled in; ValueError names what is missing."""
    resolved = dict(CONNECTION_DEFAULTS)
    if params.get("database_url"):
        try:
            resolved.update({k: v for k, v in database_url_params(params["database_url"]).items()
                             if v is not None})
        except DatabaseUrlError as exc:
            raise ValueError(str(exc)) from None
    resolved.update({k: v for k, v in params.items()
                     if k in connection_argument_spec() and v is not None and k != "database_url"})
    missing = [k for k in ("login_host", "login_user", "login_db") if not resolved.get(k)]
    if missing:
        raise ValueError(f"no database given: set database_url or {', '.join(missing)}")
    return resolved


def connection_params(params: dict) -> dict:
    """libpq keyword parameters from module params."""
    params = resolve_connection(params)
    conn = {
        "host": params["login_host"],
        "port": params["login_port"],
        "user": params["login_user"],
        "dbname": params["login_db"],
        "sslmode": params["ssl_mode"],
        "connect_timeout": params["connect_timeout"],
        "application_name": "render-key-recovery",
    }
    if params.get("login_password"):
        conn["password"] = params["login_password"]
    if params.get("ca_cert"):
        conn["sslrootcert"] = params["ca_cert"]
    return conn


class ConnectionFailure(Exception):
    """A connection failed; the message is safe to show (no password)."""


def describe_failure(exc: Exception, params: dict) -> str:
    where = f"{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    text = str(exc).strip()
    if "password authentication failed" in text:
        return f"password rejected for {where}: check the database URL's credentials"
    if "does not exist" in text and "database" in text:
        return f"database {params['dbname']!r} does not exist on {params['host']}:{params['port']}"
    if "Connection refused" in text or "could not translate host name" in text or "timeout" in text:
        return f"database server unreachable at {params['host']}:{params['port']}: {text.splitlines()[0]}"
    if "SSL" in text or "certificate" in text:
        return f"SSL negotiation with {where} failed: {text.splitlines()[0]}"
    return f"cannot connect to {where}: {text.splitlines()[0] if text else type(exc).__name__}"


def connect(params: dict, *, autocommit: bool = False):
    """A psycopg2 connection; raises ConnectionFailure with a clear message."""
    try:
        conn_params = connection_params(params)
    except ValueError as exc:
        raise ConnectionFailure(str(exc)) from None
    try:
        conn = psycopg2.connect(**conn_params)
    except psycopg2.Error as exc:
        raise ConnectionFailure(describe_failure(exc, conn_params)) from None
    conn.autocommit = autocommit
    return conn


def ensure_psycopg2(module) -> None:
    if not HAS_PSYCOPG2:
        module.fail_json(msg="psycopg2 is required on the host that runs this module: "
                             "pip install -r requirements.txt")
