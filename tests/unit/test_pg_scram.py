"""SCRAM-SHA-256 verifiers as PostgreSQL stores them, checked against a fixed-salt vector;
libpq's own verifiers (PQencryptPasswordConn) and a real server accepting ours are in
tests/integration/test_role_password.py."""

import base64

import pytest
from ansible.module_utils.pg_scram import (
    ScramError,
    parse_verifier,
    scram_verifier,
    verifier_matches,
)

# RFC 7677's example password and salt; StoredKey/ServerKey as PostgreSQL computes them
# (the same values libpq's PQencryptPasswordConn gives for this salt).
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
PENCIL = ("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=="
          "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")


def test_the_fixed_salt_vector():
    assert scram_verifier("pencil", salt=RFC_SALT) == PENCIL


def test_random_salt_and_format():
    one, two = scram_verifier("secret-one"), scram_verifier("secret-one")
    assert one != two  # a fresh salt each time
    parts = parse_verifier(one)
    assert parts["iterations"] == 4096 and len(parts["salt"]) == 16
    assert len(parts["stored_key"]) == 32 and len(parts["server_key"]) == 32
    assert "secret-one" not in one
    assert verifier_matches(one, "secret-one") and not verifier_matches(one, "secret-two")


@pytest.mark.parametrize("password", ["", "with space", "caf\u00e9", None])
def test_refuses_passwords_saslprep_could_change(password):
    with pytest.raises(ScramError) as err:
        scram_verifier(password)
    assert "printable ASCII" in str(err.value)


@pytest.mark.parametrize("verifier", ["md5abc", "SCRAM-SHA-256$4096:@@$a:b", ""])
def test_refuses_what_is_not_a_verifier(verifier):
    with pytest.raises(ScramError):
        parse_verifier(verifier)
