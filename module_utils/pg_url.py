"""Database URLs as Render hands them out: postgresql://user:pass@host:port/db.

Parsing and masking live here once; modules use them directly and the
filter plugins load this same file. Error messages never contain the URL,
since it may hold a password.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

SCHEMES = ("postgres", "postgresql")
# What stands for a masked credential, everywhere (redaction.py takes it from here: this file
# stands alone, no imports, because filter_plugins/recovery_filters.py loads it from its file).
MASK = "********"
# Query parameters holding a secret (libpq accepts ?password=...).
SECRET_QUERY_KEYS = ("password",)


class DatabaseUrlError(ValueError):
    """The URL is unusable; the message is safe to print."""


def _split(url):
    if not isinstance(url, str) or not url:
        raise DatabaseUrlError("database URL must be a non-empty string")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in an IPv6 host; its text may echo the URL
        raise DatabaseUrlError("database URL is malformed (check the host part)") from None
    if parts.scheme not in SCHEMES:
        raise DatabaseUrlError(
            f"database URL must start with postgresql:// or postgres://, not {parts.scheme or '(none)'}://")
    if not parts.hostname:
        raise DatabaseUrlError("database URL has no host")
    if not parts.path.strip("/"):
        raise DatabaseUrlError("database URL names no database")
    _port(parts)
    return parts


def _port(parts) -> int | None:
    """The URL's port, None when it names none; DatabaseUrlError when unusable."""
    try:
        port = parts.port
    except ValueError:  # not a number, or outside 0-65535
        raise DatabaseUrlError("database URL has an invalid port (expected 1-65535)") from None
    if port == 0:
        raise DatabaseUrlError("database URL has an invalid port (expected 1-65535)")
    return port


def _query(parts) -> list[tuple[str, str]]:
    return parse_qsl(parts.query, keep_blank_values=True)


def mask_database_url(url: str) -> str:
    """The URL with its password (in the user part or ?password=) replaced,
    safe for reports and logs."""
    parts = _split(url)
    query = _query(parts)
    secret_in_query = any(key in SECRET_QUERY_KEYS for key, _ in query)
    if parts.password is None and not secret_in_query:
        return url
    if secret_in_query:
        masked = [(key, MASK if key in SECRET_QUERY_KEYS else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="/*"))
    if parts.password is not None:
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        port = _port(parts)
        netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{port}" if port else "")
        parts = parts._replace(netloc=netloc)
    return parts.geturl()


def database_url_params(url: str) -> dict:
    """Connection options (login_host, login_user, ...) from a URL. As in libpq,
    ?user= and ?password= query parameters win over the user part."""
    parts = _split(url)
    query = dict(_query(parts))
    params = {
        "login_host": parts.hostname,
        "login_port": _port(parts) or 5432,
        "login_user": query.get("user") or unquote(parts.username or ""),
        "login_password": query.get("password") or unquote(parts.password or ""),
        "login_db": unquote(parts.path.lstrip("/")),
        # Render's external URLs need SSL; libpq's default 'prefer' could fall back.
        "ssl_mode": query.get("sslmode", "require"),
        "ca_cert": query.get("sslrootcert"),
    }
    if not params["login_user"]:
        raise DatabaseUrlError("database URL names no user")
    return params


def database_url_error(url) -> str:
    """Why the URL is unusable, safe to print (no password), or "" when it is fine.
    Lets a playbook check a secret under no_log and show the reason without it."""
    try:
        database_url_params(url)
    except DatabaseUrlError as exc:
        return str(exc)
    return ""


def secret_values(values) -> list[str]:
    """The secrets a run's credentials hold, for redaction: each non-empty value
    and, of a database URL, its password alone as well (a message can hold the
    password without its URL). A value that is no usable URL is kept whole."""
    found = []
    for value in values or []:
        if not isinstance(value, str) or not value:
            continue
        found.append(value)
        try:
            password = database_url_params(value)["login_password"]
        except DatabaseUrlError:
            continue
        if password:
            found.append(password)
    return list(dict.fromkeys(found))
