"""The alter_role rotation's decisions, without a server: the leaked-password fingerprints,
what a URL allows (SSL, a password), the plan, and the generated passwords. The rotation
itself runs against the real cluster in tests/integration/test_role_password.py."""

import hashlib

import pytest
from ansible.module_utils.pg_scram import PRINTABLE_ASCII_RE
from ansible.module_utils.role_password import (
    RolePasswordError,
    generate_password,
    is_authentication_failure,
    is_leaked,
    login_of,
    normalize_password_fingerprints,
    plan,
)

URL = "postgresql://app:leaked-pw@db.example:5433/app?sslmode=verify-full"
FP = hashlib.sha256(b"leaked-pw").hexdigest()


def test_generated_passwords_are_strong_url_safe_and_unique():
    made = {generate_password() for _ in range(50)}
    assert len(made) == 50
    for password in made:
        assert len(password) >= 43 and PRINTABLE_ASCII_RE.match(password)
        assert set(password) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_fingerprints_are_normalized_and_a_pasted_password_is_never_echoed():
    assert normalize_password_fingerprints([f"sha256:{FP.upper()}", FP, f" {FP} "]) == [FP]
    with pytest.raises(RolePasswordError) as err:
        normalize_password_fingerprints([FP, "leaked-pw"])
    assert "#2" in str(err.value) and "leaked-pw" not in str(err.value)


def test_plan_rotates_only_a_leaked_password():
    assert plan(URL, [FP]) == {"role": "app", "rotate": True, "where": "db.example:5433/app"}
    assert plan(URL, [hashlib.sha256(b"other").hexdigest()])["rotate"] is False
    assert plan(URL, [])["rotate"] is False
    assert is_leaked("leaked-pw", [FP]) and not is_leaked("leaked-pwx", [FP])


@pytest.mark.parametrize(("url", "why"), [
    ("postgresql://app:pw@db/app?sslmode=disable", "needs SSL"),
    ("postgresql://app:pw@db/app?sslmode=prefer", "needs SSL"),
    ("postgresql://app@db/app", "holds no password"),
    ("mysql://app:pw@db/app", "unusable"),
])
def test_urls_the_rotation_cannot_use_are_refused_without_the_password(url, why):
    with pytest.raises(RolePasswordError) as err:
        login_of(url)
    assert why in str(err.value) and ":pw@" not in str(err.value)


def test_a_url_without_sslmode_requires_ssl():
    assert login_of("postgresql://app:pw@db/app")["ssl_mode"] == "require"


def test_a_leaked_password_that_could_not_be_restored_is_refused_up_front():
    url = "postgresql://app:caf%C3%A9%20x@db/app"
    with pytest.raises(RolePasswordError, match="not printable ASCII"):
        plan(url, [hashlib.sha256("café x".encode()).hexdigest()])


def test_authentication_failures_are_told_apart():
    assert is_authentication_failure(Exception('FATAL:  password authentication failed for user "app"'))
    assert not is_authentication_failure(Exception("could not connect to server: Connection refused"))
