"""Rotating a self-managed PostgreSQL role's own password with ALTER ROLE.

The run logs in with the database URL (old password), sets a new random password as a
SCRAM-SHA-256 verifier computed here (pg_scram: the plaintext never reaches the server or
its log), then proves the new password logs in over SSL and the old one is rejected with
an authentication error. A failed proof puts the old password back from the still-open
session, so nothing is left half-applied.

Which passwords leaked is the operator's word, as SHA-256 fingerprints (never the
passwords): a URL whose password is not a leaked one has nothing to rotate, so a re-run
after the vault holds the new URL changes nothing. No message ever holds a secret.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from ansible.module_utils.credential_rotation import is_authentication_failure, with_credentials
from ansible.module_utils.pg_scram import PRINTABLE_ASCII_RE, scram_verifier
from ansible.module_utils.pg_url import DatabaseUrlError, database_url_params

FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")
SSL_MODES = ("require", "verify-ca", "verify-full")
PASSWORD_BYTES = 32  # 43 URL-safe characters, 256 bits
MIN_SERVER_VERSION = 100000  # SCRAM-SHA-256 verifiers: PostgreSQL 10


class RolePasswordError(ValueError):
    """The rotation cannot go on or did not hold; the message is safe to show (no secret)."""


def generate_password() -> str:
    """A strong URL-safe password: nothing in it needs quoting in a URL or a .env file."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def password_fingerprint(password: str) -> str:
    return hashlib.sha256(str(password).encode("utf-8")).hexdigest()


def normalize_password_fingerprints(values) -> list[str]:
    out = []
    for position, value in enumerate(values or [], start=1):
        text = str(value).strip().lower()
        text = text[len("sha256:"):] if text.startswith("sha256:") else text
        if not FINGERPRINT_RE.match(text):
            # Never echo the value: someone may have pasted the password itself.
            raise RolePasswordError(
                f"leaked password fingerprint #{position} is not a SHA-256 hex digest (64 characters 0-9a-f); "
                "record `printf %s \"$PASSWORD\" | sha256sum`, never the password")
        if text not in out:
            out.append(text)
    return out


def login_of(url: str) -> dict:
    """The URL's role and password, checked for what the rotation needs."""
    try:
        params = database_url_params(url)
    except DatabaseUrlError as exc:
        raise RolePasswordError(f"the database URL is unusable: {exc}") from None
    if params["ssl_mode"] not in SSL_MODES:
        raise RolePasswordError(f"the database URL's sslmode is {params['ssl_mode']}: a password rotation needs "
                                f"SSL ({', '.join(SSL_MODES)})")
    if not params["login_password"]:
        raise RolePasswordError(f"the database URL holds no password for {params['login_user']}")
    return params


def is_leaked(password: str, fingerprints) -> bool:
    return password_fingerprint(password) in normalize_password_fingerprints(fingerprints)


def plan(url: str, fingerprints) -> dict:
    """What a run would do, from the URL and the fingerprints alone (no connection)."""
    login = login_of(url)
    leaked = is_leaked(login["login_password"], fingerprints)
    if leaked and not PRINTABLE_ASCII_RE.match(login["login_password"]):
        # A failed proof restores the old password from a verifier computed here.
        raise RolePasswordError(f"the current password of {login['login_user']} is not printable ASCII: the run "
                                "could not restore it after a failed check; change it by hand")
    return {"role": login["login_user"], "rotate": leaked,
            "where": f"{login['login_host']}:{login['login_port']}/{login['login_db']}"}


class SelfRotation:
    """One rotation over a DB-API ``connect(url)`` (psycopg2.connect in the module)."""

    def __init__(self, url: str, connect, sql):
        self.url, self._connect, self._sql = url, connect, sql
        self.login = login_of(url)
        self.role = self.login["login_user"]
        self.session = None

    def open(self) -> None:
        """Log in with the old password; RolePasswordError when it is rejected."""
        try:
            self.session = self._connect(self.url)
        except Exception as exc:  # psycopg2.Error; the text holds no password
            if is_authentication_failure(exc):
                raise RolePasswordError(
                    f"the password in the database URL is rejected for {self.role}: when an earlier run rotated it, "
                    "put the URL it wrote to the .env files into the vault (vault_recovery_database_url) and "
                    "re-run") from None
            raise RolePasswordError(f"cannot log in as {self.role}: {str(exc).strip().splitlines()[0]}") from None
        self.session.autocommit = True
        user, version = self._one("SELECT session_user, current_setting('server_version_num')::int")
        if user != self.role:
            raise RolePasswordError(f"logged in as {user}, not {self.role}")
        if version < MIN_SERVER_VERSION:
            raise RolePasswordError(f"PostgreSQL {version} has no SCRAM-SHA-256 verifiers (10 or later needed)")

    def _one(self, query, args=None, session=None):
        with (session or self.session).cursor() as cur:
            cur.execute(query, args)
            return cur.fetchone()

    def set_password(self, password: str) -> None:
        # Only the verifier is in the statement: safe under log_statement = all.
        statement = self._sql.SQL("ALTER ROLE {} PASSWORD %s").format(self._sql.Identifier(self.role))
        with self.session.cursor() as cur:
            cur.execute(statement, [scram_verifier(password)])

    def prove(self, new_url: str) -> dict:
        """The new password logs in over SSL as the role; the old one fails authentication."""
        try:
            conn = self._connect(new_url)
        except Exception as exc:
            raise RolePasswordError(f"the new password of {self.role} does not log in: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
        try:
            user, ssl = self._one("SELECT session_user, coalesce((SELECT ssl FROM pg_stat_ssl "
                                  "WHERE pid = pg_backend_pid()), false)", session=conn)
        finally:
            conn.close()
        if user != self.role or not ssl:
            raise RolePasswordError(f"the new login is {user} over {'SSL' if ssl else 'no SSL'}, not {self.role} "
                                    "over SSL")
        try:
            self._connect(self.url).close()
        except Exception as exc:
            if is_authentication_failure(exc):
                return {"new_password_logs_in": True, "ssl": True, "old_password_rejected": True}
            raise RolePasswordError(f"the old password's rejection could not be proven: "
                                    f"{str(exc).strip().splitlines()[0]}") from None
        raise RolePasswordError(f"the old password of {self.role} still logs in: pg_hba.conf does not ask this "
                                "connection for a password (trust?)")

    def rotate(self) -> dict:
        """Set a new password and prove it; on a failed proof the old password is back."""
        password = generate_password()
        new_url = with_credentials(self.url, self.role, password)
        try:
            self.set_password(password)
        except Exception as exc:  # psycopg2.Error: the server's text never echoes the statement
            raise RolePasswordError(f"ALTER ROLE {self.role} PASSWORD failed: {str(exc).strip().splitlines()[0]}; "
                                    "nothing changed") from None
        try:
            proof = self.prove(new_url)
        except RolePasswordError as exc:
            try:
                self.set_password(self.login["login_password"])
            except Exception as restore:  # the session died: say so, the password stays unknown
                raise RolePasswordError(f"{exc}; restoring the old password failed too "
                                        f"({str(restore).strip().splitlines()[0]}): reset it as a superuser") from None
            raise RolePasswordError(f"{exc}; the old password was put back, nothing changed") from None
        return {"role": self.role, "password": password, "database_url": new_url, "proof": proof}

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
