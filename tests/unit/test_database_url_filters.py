"""The URL filters: parts for modules, a masked form for reports, safe errors."""

import pytest
from ansible.errors import AnsibleFilterError

from filter_plugins.recovery_filters import FilterModule

FILTERS = FilterModule().filters()
URL = "postgresql://app_user:s3cr%40t-pw@dpg-abc-a.oregon-postgres.render.com:5432/app_db"


def test_params_from_render_url():
    params = FILTERS["database_url_params"](URL)
    assert params == {
        "login_host": "dpg-abc-a.oregon-postgres.render.com",
        "login_port": 5432,
        "login_user": "app_user",
        "login_password": "s3cr@t-pw",
        "login_db": "app_db",
        "ssl_mode": "require",
        "ca_cert": None,
    }


def test_params_honour_sslmode_and_rootcert():
    params = FILTERS["database_url_params"](
        "postgres://u:p@127.0.0.1:6543/db?sslmode=verify-full&sslrootcert=/etc/ssl/render-ca.crt")
    assert params["login_port"] == 6543
    assert params["ssl_mode"] == "verify-full"
    assert params["ca_cert"] == "/etc/ssl/render-ca.crt"


def test_default_port():
    assert FILTERS["database_url_params"]("postgresql://u:p@h/db")["login_port"] == 5432


def test_mask_hides_password_only():
    masked = FILTERS["mask_database_url"](URL)
    assert "s3cr" not in masked
    assert masked == "postgresql://app_user:********@dpg-abc-a.oregon-postgres.render.com:5432/app_db"


def test_mask_without_password_is_unchanged():
    assert FILTERS["mask_database_url"]("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize("bad, message", [
    ("mysql://u:topsecret@h/db", "must start with postgresql://"),
    ("postgresql://u:topsecret@/db", "no host"),
    ("postgresql://u:topsecret@h/", "names no database"),
    ("postgresql://:topsecret@h/db", "names no user"),
    ("postgresql://u:topsecret@h:notaport/db", "invalid port"),
    ("postgresql://u:topsecret@h:99999/db", "invalid port"),
    ("postgresql://u:topsecret@h:0/db", "invalid port"),
    ("postgresql://u:topsecret@[::1/db", "malformed"),
    ("", "non-empty"),
    (None, "non-empty"),
])
def test_bad_urls_fail_without_echoing_the_password(bad, message):
    # Masking needs no user; every other fault stops both filters.
    names = ["database_url_params"] + ([] if message == "names no user" else ["mask_database_url"])
    for name in names:
        with pytest.raises(AnsibleFilterError) as err:
            FILTERS[name](bad)
        assert message in str(err.value), name
        assert "topsecret" not in str(err.value)


def test_password_query_parameter_is_masked_and_used():
    url = "postgresql://u@h:6543/db?sslmode=verify-full&password=top%26secret&sslrootcert=/etc/ca.crt"
    masked = FILTERS["mask_database_url"](url)
    assert "top" not in masked and "secret" not in masked
    assert masked == "postgresql://u@h:6543/db?sslmode=verify-full&password=********&sslrootcert=/etc/ca.crt"
    params = FILTERS["database_url_params"](url)
    assert params["login_password"] == "top&secret"
    assert params["ssl_mode"] == "verify-full" and params["ca_cert"] == "/etc/ca.crt"


def test_password_in_both_places_is_masked_twice_and_the_query_wins():
    url = "postgresql://u:userinfo-pw@h/db?password=query-pw"
    assert FILTERS["mask_database_url"](url) == "postgresql://u:********@h/db?password=********"
    assert FILTERS["database_url_params"](url)["login_password"] == "query-pw"


def test_user_query_parameter_names_the_user():
    assert FILTERS["database_url_params"]("postgresql://h/db?user=app&password=p")["login_user"] == "app"



@pytest.mark.parametrize("bad, message", [
    ("postgresql://u:topsecret@h:99999/db", "invalid port"),
    ("mysql://u:topsecret@h/db", "must start with postgresql://"),
    (None, "non-empty"),
])
def test_url_error_says_why_without_raising_or_echoing(bad, message):
    reason = FILTERS["database_url_error"](bad)
    assert message in reason and "topsecret" not in reason
    assert FILTERS["database_url_error"](URL) == ""


def test_the_url_mask_is_the_one_mask_of_redaction():
    # pg_url.py spells it out (its filter loads it alone); redaction.py is its home.
    from ansible.module_utils.pg_url import MASK as URL_MASK
    from ansible.module_utils.redaction import MASK

    assert URL_MASK == MASK


def test_secret_values_add_a_database_urls_password_alone():
    other = "postgresql://u:new%2Fpw@h/db?password=from-query"
    assert FILTERS["secret_values"]([URL, "", None, "rnd_key", other, "rnd_key", "notaurl"]) == [
        URL, "s3cr@t-pw", "rnd_key", other, "from-query", "notaurl"]
    assert FILTERS["secret_values"]([]) == []
