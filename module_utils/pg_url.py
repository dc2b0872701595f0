"""Database URLs as Render hands them out: postgresql://user:pass@host:port/db.

Parsing and masking live here once; modules use them directly and the
filter plugins load this same file. Error messages never contain the URL,
since it may hold a password.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("postgres", "postgresql")
MASK = "********"


class DatabaseUrlError(ValueError):
    """The URL is unusable; the message is safe to print."""


def _split(url):
    if not isinstance(url, str) or not url:
        raise DatabaseUrlError("database URL must be a non-empty string")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise DatabaseUrlError(
            f"database URL must start with postgresql:// or postgres://, not {parts.scheme or '(none)'}://")
    if not parts.hostname:
        raise DatabaseUrlError("database URL has no host")
    if not parts.path.strip("/"):
        raise DatabaseUrlError("database URL names no database")
    return parts


def mask_database_url(url: str) -> str:
    """The URL with its password replaced, safe for reports and logs."""
    parts = _split(url)
    if parts.password is None:
        return url
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def database_url_params(url: str) -> dict:
    """Connection options (login_host, login_user, ...) from a URL."""
    parts = _split(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        port = parts.port or 5432
    except ValueError:
        raise DatabaseUrlError("database URL has an invalid port") from None
    params = {
        "login_host": parts.hostname,
        "login_port": port,
        "login_user": unquote(parts.username or ""),
        "login_password": unquote(parts.password or ""),
        "login_db": unquote(parts.path.lstrip("/")),
        # Render's external URLs need SSL; libpq's default 'prefer' could fall back.
        "ssl_mode": query.get("sslmode", "require"),
        "ca_cert": query.get("sslrootcert"),
    }
    if not params["login_user"]:
        raise DatabaseUrlError("database URL names no user")
    return params
