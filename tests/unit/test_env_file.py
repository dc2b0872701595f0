"""Rewriting named keys of a .env file: everything else kept, values quoted as needed and
read back unchanged, atomic 0600 writes with a 0600 backup, refusals that name the file."""

import os
import stat
import subprocess

import pytest
from ansible.module_utils.env_file import (
    MASK,
    EnvFileError,
    masked_diff,
    quote,
    rewrite,
    unquote,
    update_env_file,
)

ORIGINAL = """\
# the app's settings
export DATABASE_URL="postgresql://app:old-secret@db:5432/app"  # rotated by ops
SECRET_KEY=keep-me

PGPASSWORD='old-secret'
DEBUG=false
"""


def test_only_the_named_keys_change():
    text, summary = rewrite(ORIGINAL, {"DATABASE_URL": "postgresql://app:n3w@db:5432/app", "PGPASSWORD": "n3w"})
    assert summary == {"changed": ["DATABASE_URL", "PGPASSWORD"], "added": [], "unchanged": []}
    lines = text.splitlines()
    assert lines[0] == "# the app's settings"
    assert lines[1] == "export DATABASE_URL=postgresql://app:n3w@db:5432/app  # rotated by ops"
    assert lines[2:] == ["SECRET_KEY=keep-me", "", "PGPASSWORD=n3w", "DEBUG=false"]
    assert "old-secret" not in text


def test_same_values_change_nothing_and_missing_keys_are_appended():
    text, summary = rewrite("A=1\nB='two words'", {"B": "two words", "C": "x y"})
    assert summary == {"changed": [], "added": ["C"], "unchanged": ["B"]}
    assert text == "A=1\nB='two words'\nC='x y'\n"


def test_every_occurrence_of_a_duplicated_key_is_set():
    text, summary = rewrite("K=a\nK=b\n", {"K": "b"})
    assert text == "K=b\nK=b\n" and summary["changed"] == ["K"]


@pytest.mark.parametrize("value", ["plain", "postgresql://u:p%40@h:5432/d?sslmode=require", "two words",
                                   "it's $HOME `x` \"q\" \\", "#hash", "", "line\nbreak"])
def test_quoting_reads_back_unchanged_in_dotenv_and_a_shell(value):
    written = quote(value)
    assert unquote(written)[0] == value
    if "\n" not in value:  # what `set -a; . .env` gives the app
        shell = subprocess.run(["bash", "-c", f"X={written}\nprintf %s \"$X\""], capture_output=True, text=True)
        assert shell.stdout == value


def test_unterminated_quote_is_refused_without_the_value():
    with pytest.raises(EnvFileError) as err:
        rewrite('K="abc-secret\n', {"K": "new"})
    assert "line 1 (K)" in str(err.value) and "abc-secret" not in str(err.value)


def test_bad_key_names_are_refused():
    with pytest.raises(EnvFileError, match="1BAD"):
        rewrite("", {"1BAD": "x"})


def test_atomic_write_with_a_private_backup(tmp_path):
    env = tmp_path / ".env"
    env.write_text(ORIGINAL)
    env.chmod(0o644)
    result = update_env_file(str(env), {"PGPASSWORD": "n3w"})
    assert result["changed"] and result["changed_keys"] == ["PGPASSWORD"] and result["mode_fixed"]
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    backup = result["backup_file"]
    assert backup.startswith(f"{env}.") and backup.endswith("Z.bak")
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    with open(backup) as handle:
        assert handle.read() == ORIGINAL
    assert "PGPASSWORD=n3w" in env.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".env", os.path.basename(backup)])

    again = update_env_file(str(env), {"PGPASSWORD": "n3w"})
    assert not again["changed"] and again["backup_file"] is None and again["unchanged_keys"] == ["PGPASSWORD"]


def test_check_mode_writes_nothing(tmp_path):
    env = tmp_path / ".env"
    env.write_text(ORIGINAL)
    before = env.stat()
    result = update_env_file(str(env), {"PGPASSWORD": "n3w"}, check_mode=True)
    assert result["changed"] and result["backup_file"] is None
    assert env.read_text() == ORIGINAL and env.stat().st_mtime_ns == before.st_mtime_ns
    assert list(tmp_path.iterdir()) == [env]


def test_refuses_missing_links_and_non_regular_files(tmp_path):
    with pytest.raises(EnvFileError, match="does not exist"):
        update_env_file(str(tmp_path / "nope.env"), {"A": "1"})
    (tmp_path / "real.env").write_text("A=1\n")
    os.symlink(tmp_path / "real.env", tmp_path / "link.env")
    with pytest.raises(EnvFileError, match="symbolic link"):
        update_env_file(str(tmp_path / "link.env"), {"A": "2"})
    with pytest.raises(EnvFileError, match="not a regular file"):
        update_env_file(str(tmp_path), {"A": "2"})
    assert (tmp_path / "real.env").read_text() == "A=1\n"


def test_the_diff_names_keys_and_masks_values():
    diff = masked_diff("/srv/.env", ["DATABASE_URL"], ["PGPASSWORD"])
    assert diff["before"] == f"DATABASE_URL={MASK}\n"
    assert diff["after"] == f"DATABASE_URL={MASK} (new value)\nPGPASSWORD={MASK} (new value)\n"
