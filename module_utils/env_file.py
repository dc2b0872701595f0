"""Rewriting named keys of a local .env file, keeping everything else as it was.

A .env file is ``KEY=value`` lines (optionally ``export KEY=value``), comments and blank
lines. Only the named keys' values change: comments, order, other keys, an ``export``
prefix and a trailing comment stay; a named key the file lacks is appended. Values are
written bare when that is safe, else single-quoted, else double-quoted with escapes, as
dotenv readers and POSIX shells both read them. Writes are atomic (a temp file in the
same directory, fsync, rename) at mode 0600, after a 0600 backup of the old file.

Secret values never leave this module: results and diffs name keys, values masked.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time

from ansible.module_utils.redaction import MASK

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LINE_RE = re.compile(r"^(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?P<eq>\s*=\s*)(?P<rest>.*)$")
BARE_SAFE_RE = re.compile(r"^[A-Za-z0-9_./:@%+,=~?&\-]*$")
MODE = 0o600


class EnvFileError(ValueError):
    """The file or a key cannot be rewritten; the message holds no value."""


def check_keys(values: dict) -> None:
    if not values:
        raise EnvFileError("no key to update")
    bad = [key for key in values if not KEY_RE.match(str(key))]
    if bad:
        raise EnvFileError(f"not .env key names (letters, digits, _, not starting with a digit): {', '.join(bad)}")
    empty = [key for key, value in values.items() if value is None]
    if empty:
        raise EnvFileError(f"no value for {', '.join(empty)}")


def check_path(path: str) -> os.stat_result:
    """The file's lstat; EnvFileError for a missing file, a symlink or anything not a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise EnvFileError(f"{path} does not exist: name an existing .env file (it is never created)") from None
    except OSError as exc:
        raise EnvFileError(f"{path} cannot be read: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise EnvFileError(f"{path} is a symbolic link: name the file it points to (a rewrite would replace the link)")
    if not stat.S_ISREG(info.st_mode):
        raise EnvFileError(f"{path} is not a regular file")
    if not os.access(path, os.R_OK) or not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
        raise EnvFileError(f"{path} cannot be rewritten: its directory must be writable (the new file replaces it)")
    return info


def unquote(raw: str) -> tuple[str, str]:
    """(value, trailing comment) of the text after ``=``; EnvFileError on an unterminated quote."""
    raw = raw.rstrip("\n")
    stripped = raw.strip()
    if stripped[:1] == "'":
        end = stripped.find("'", 1)
        if end < 0:
            raise EnvFileError("unterminated single quote")
        return stripped[1:end], stripped[end + 1:]
    if stripped[:1] == '"':
        out, i = [], 1
        while i < len(stripped):
            char = stripped[i]
            if char == "\\" and i + 1 < len(stripped):
                out.append({"n": "\n"}.get(stripped[i + 1], stripped[i + 1]))
                i += 2
                continue
            if char == '"':
                return "".join(out), stripped[i + 1:]
            out.append(char)
            i += 1
        raise EnvFileError("unterminated double quote")
    value, hash_sign, comment = stripped.partition(" #")
    return value.rstrip(), (" #" + comment) if hash_sign else ""


def quote(value: str) -> str:
    """``value`` as a .env reader and a POSIX shell read back unchanged."""
    value = str(value)
    if BARE_SAFE_RE.match(value):
        return value
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return '"' + escaped.replace("\n", "\\n") + '"'


def rewrite(text: str, values: dict) -> tuple[str, dict]:
    """The new text and ``{"changed": [...], "added": [...], "unchanged": [...]}`` (key names only).

    Every occurrence of a named key is set (dotenv readers let a later duplicate win)."""
    check_keys(values)
    out, seen, changed = [], [], []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        match = LINE_RE.match(line.rstrip("\n"))
        if not match or match["key"] not in values:
            out.append(line)
            continue
        key, wanted = match["key"], str(values[match["key"]])
        try:
            current, comment = unquote(match["rest"])
        except EnvFileError as exc:
            raise EnvFileError(f"line {number} ({key}): {exc}; fix the file by hand") from None
        if key not in seen:
            seen.append(key)
        if current == wanted:
            out.append(line)
            continue
        if key not in changed:
            changed.append(key)
        out.append(f"{match['lead']}{key}{match['eq']}{quote(wanted)}{comment}{_newline(line)}")
    added = [key for key in values if key not in seen]
    if added and out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    out.extend(f"{key}={quote(values[key])}\n" for key in added)
    return "".join(out), {"changed": changed, "added": added, "unchanged": [k for k in seen if k not in changed]}


def _newline(line: str) -> str:
    return "\n" if line.endswith("\n") else ""


def masked_diff(path: str, changed_keys, added_keys) -> dict:
    """An Ansible diff naming the keys that change, every value masked."""
    before = "".join(f"{key}={MASK}\n" for key in changed_keys)
    after = "".join(f"{key}={MASK} (new value)\n" for key in [*changed_keys, *added_keys])
    return {"before_header": f"{path} (values masked)", "after_header": f"{path} (values masked)",
            "before": before, "after": after}


def backup_name(path: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    name = f"{path}.{stamp}.bak"
    counter = 1
    while os.path.lexists(name):
        counter += 1
        name = f"{path}.{stamp}.{counter}.bak"
    return name


def _write_private(path: str, data: bytes, info: os.stat_result | None = None) -> None:
    """``data`` into ``path`` atomically, mode 0600, the old owner kept when we may."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, MODE)
        if info is not None and os.geteuid() == 0:
            os.fchown(fd, info.st_uid, info.st_gid)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_env_file(path: str, values: dict, *, check_mode: bool = False, backup: bool = True) -> dict:
    """Rewrite ``values``' keys in ``path``; the result names keys and the backup, never a value."""
    check_keys(values)
    info = check_path(path)
    with open(path, "rb") as handle:
        original = handle.read()
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvFileError(f"{path} is not UTF-8 text") from None
    new_text, summary = rewrite(text, values)
    mode_wrong = stat.S_IMODE(info.st_mode) != MODE
    changed = new_text != text or mode_wrong
    result = {"path": path, "changed": changed, "changed_keys": summary["changed"], "added_keys": summary["added"],
              "unchanged_keys": summary["unchanged"], "mode_fixed": mode_wrong, "backup_file": None}
    if not changed or check_mode:
        return result
    if backup and new_text != text:
        result["backup_file"] = backup_name(path)
        _write_private(result["backup_file"], original, info)
    _write_private(path, new_text.encode("utf-8"), info)
    return result
