"""Keeping secrets out of what the collection writes or sends: reports, notifications.

One rule: every known secret is replaced wherever it appears, in its plain and its
URL-encoded spelling (a password inside a URL is percent-encoded), and any
credential a URL or a PGPASSWORD= assignment carries is masked even when nobody
named it as a secret.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible.module_utils.pg_url import MASK  # its one spelling (pg_url stands alone for the filters)

REDACTED = "[redacted]"
_CREDENTIALS = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(@)|(\bPGPASSWORD=)\S+")


def _spellings(secrets) -> list[str]:
    found = set()
    for secret in secrets or []:
        if isinstance(secret, str) and secret:
            found.update({secret, quote(secret, safe=""), quote(secret, safe="/:")})
    # Longest first: a secret containing another is replaced whole.
    return sorted(found, key=len, reverse=True)


def mask_credentials(text: str) -> str:
    """text with the password of every URL's user info and of PGPASSWORD= masked."""
    def mask(found):
        if found.group(3):
            return found.group(3) + MASK
        return found.group(1) + MASK + found.group(2)

    return _CREDENTIALS.sub(mask, text)


def redact(value, secrets, *, mask_urls: bool = False):
    """value with every spelling of each non-empty secret replaced, recursively
    through dicts and lists; with mask_urls, URL credentials masked as well."""
    spellings = _spellings(secrets)

    def walk(item):
        if isinstance(item, str):
            for secret in spellings:
                item = item.replace(secret, REDACTED)
            return mask_credentials(item) if mask_urls else item
        if isinstance(item, dict):
            return {walk(k): walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value) if spellings or mask_urls else value


MIN_CREDENTIAL = 4  # shorter values (a header "X-Debug: 1") are no credential: redacting them garbles every line


def credential_parts(values) -> list[str]:
    """What of each secret header value must never be shown: the value and, for an
    "<scheme> <credentials>" value (Authorization: Bearer ...), the credentials alone."""
    found = set()
    for value in values or []:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            found.update(p for p in (text, text.split(" ", 1)[-1].strip()) if len(p) >= MIN_CREDENTIAL)
    return sorted(found)
