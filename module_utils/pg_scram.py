"""PostgreSQL SCRAM-SHA-256 password verifiers, computed on the client.

``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'`` stores a verifier as given, so the
plaintext password never travels to the server nor reaches its log (even with
``log_statement = all`` the statement holds only the verifier). The format is
PostgreSQL's (src/common/scram-common.c, RFC 5802 and RFC 7677):

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

    SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
    StoredKey      = SHA-256(HMAC(SaltedPassword, "Client Key"))
    ServerKey      = HMAC(SaltedPassword, "Server Key")

PostgreSQL runs the password through SASLprep first; for printable ASCII (every password
this collection generates) SASLprep changes nothing, so other passwords are refused
rather than risking a verifier the server would not match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

PREFIX = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096  # PostgreSQL's scram_iterations default
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
VERIFIER_RE = re.compile(
    r"^SCRAM-SHA-256\$(?P<iterations>[0-9]+):(?P<salt>[A-Za-z0-9+/=]+)"
    r"\$(?P<stored_key>[A-Za-z0-9+/=]+):(?P<server_key>[A-Za-z0-9+/=]+)$")
PRINTABLE_ASCII_RE = re.compile(r"^[\x21-\x7e]+$")


class ScramError(ValueError):
    """An unusable password or verifier; the message never holds the password."""


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(StoredKey, ServerKey) of a password for a salt and iteration count."""
    if not isinstance(password, str) or not PRINTABLE_ASCII_RE.match(password):
        raise ScramError("the password must be non-empty printable ASCII without spaces "
                         "(SASLprep would not leave other text unchanged)")
    if iterations < 1:
        raise ScramError("SCRAM iterations must be at least 1")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS) -> str:
    """The verifier PostgreSQL stores for ``password``; a random 16-byte salt unless given."""
    if salt is None:
        salt = os.urandom(SALT_BYTES)
    if not salt:
        raise ScramError("the SCRAM salt must not be empty")
    stored_key, server_key = scram_keys(password, salt, iterations)
    return f"{PREFIX}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def parse_verifier(verifier: str) -> dict:
    """{iterations, salt, stored_key, server_key} (bytes) of a verifier string."""
    match = VERIFIER_RE.match(verifier or "")
    if not match:
        raise ScramError("not a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)")
    try:
        return {
            "iterations": int(match["iterations"]),
            "salt": base64.b64decode(match["salt"], validate=True),
            "stored_key": base64.b64decode(match["stored_key"], validate=True),
            "server_key": base64.b64decode(match["server_key"], validate=True),
        }
    except ValueError:
        raise ScramError("the SCRAM verifier holds invalid base64") from None


def verifier_matches(verifier: str, password: str) -> bool:
    """Whether ``password`` is the one ``verifier`` was computed from (constant-time compare)."""
    parts = parse_verifier(verifier)
    stored_key, server_key = scram_keys(password, parts["salt"], parts["iterations"])
    return hmac.compare_digest(stored_key, parts["stored_key"]) and hmac.compare_digest(
        server_key, parts["server_key"])
