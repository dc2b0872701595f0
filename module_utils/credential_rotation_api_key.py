"""The one check that the Render API key in use is not a leaked one.

API keys are dashboard-only (shared/reference/RENDER_API.md section 1): the collection
cannot revoke one, only prove that the key it runs with is not one the operator recorded
as leaked, by its SHA-256 fingerprint (never the key). recover.yml refuses such a key
before its first change (filter_plugins/recovery_filters.py loads this file) and the
credential_rotation_plan module before it uses the key; both through ``check_api_key``.

Standalone (no other module_utils import) so a filter can load it from its file. No
secret is ever part of a message.
"""

from __future__ import annotations

import hashlib
import re

FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")

API_KEY_LEAKED_MESSAGE = (
    "the Render API key in use matches leaked fingerprint #{index} (sha256 {short}...): revoke it in the "
    "Render Dashboard (Account Settings > API Keys), create a new key, put it in vault_render_api_key "
    "({vault}) and re-run. Nothing was changed.")
# Where the operator keeps the vault variables when credential_rotation_vault_file is empty.
UNKNOWN_VAULT = "your inventory's vault file"


class RotationError(ValueError):
    """Bad input or an inconsistent state; the message is safe to show (no secret)."""


def api_key_fingerprint(api_key: str) -> str:
    """What the operator records instead of a leaked key: sha256 of the key, in hex."""
    return hashlib.sha256(str(api_key).encode("utf-8")).hexdigest()


def normalize_fingerprints(values) -> list[str]:
    """Lower-case hex fingerprints; ``sha256:`` prefixes and blanks around are allowed."""
    out = []
    for position, value in enumerate(values or [], start=1):
        text = str(value).strip().lower()
        if text.startswith("sha256:"):
            text = text[len("sha256:"):]
        if not FINGERPRINT_RE.match(text):
            # Never echo the value: someone may have pasted the key itself.
            raise RotationError(
                f"leaked API key fingerprint #{position} is not a SHA-256 hex digest (64 characters 0-9a-f); "
                "record `printf %s \"$KEY\" | sha256sum`, never the key")
        if text not in out:
            out.append(text)
    return out


def leaked_key_index(api_key: str, fingerprints) -> int | None:
    """1-based position of the fingerprint the key matches, or None."""
    mine = api_key_fingerprint(api_key)
    for position, fingerprint in enumerate(normalize_fingerprints(fingerprints), start=1):
        if fingerprint == mine:
            return position
    return None


def check_api_key(api_key: str, fingerprints, vault_file: str = "") -> None:
    """Raise RotationError naming what to do when the key in use is a leaked one."""
    index = leaked_key_index(api_key, fingerprints)
    if index is not None:
        fingerprint = normalize_fingerprints(fingerprints)[index - 1]
        vault = f"ansible-vault edit {vault_file}" if vault_file else UNKNOWN_VAULT
        raise RotationError(API_KEY_LEAKED_MESSAGE.format(index=index, short=fingerprint[:12], vault=vault))


def leaked_api_key_error(api_key, fingerprints, vault_file: str = "") -> str:
    """``check_api_key`` as a message: "" when the key may be used, else what to do."""
    try:
        check_api_key(api_key, fingerprints, vault_file or "")
    except RotationError as exc:
        return str(exc)
    return ""
