"""Bad conversion input is refused before any connection work, naming what is wrong."""

import pytest
from ansible.module_utils.key_conversion_plan import ConversionRequest
from ansible.module_utils.key_conversion_run import UUID_DEFAULT
from ansible.module_utils.pg_catalog import split_type_spelling


@pytest.mark.parametrize(("spelling", "parts"), [
    ("varchar(36)", ("varchar", "(36)", False)),
    ("character varying( 36 )", ("character varying", "(36)", False)),
    ("  uuid ", ("uuid", "", False)),
    ("text[]", ("text", "", True)),
    ("numeric(10, 2)", ("numeric", "(10,2)", False)),
    ("public.my_type", ("public.my_type", "", False)),
])
def test_plain_type_spellings_are_split(spelling, parts):
    assert split_type_spelling(spelling) == parts


@pytest.mark.parametrize("spelling", [
    "varchar(36) USING NULL; --",
    "varchar(36)); DROP TABLE users; --",
    'varchar(36) COLLATE "C"',
    "text USING id::text",
    "varchar(x)",
    "'uuid'",
    "",
])
def test_anything_but_a_plain_type_is_refused(spelling):
    with pytest.raises(ValueError, match="not a plain type name"):
        split_type_spelling(spelling)
    with pytest.raises(ValueError, match="not a plain type name"):
        ConversionRequest(target_type=spelling).check()
    with pytest.raises(ValueError, match="not a plain type name"):
        ConversionRequest(source_type=spelling).check()


@pytest.mark.parametrize(("request_fields", "message"), [
    ({"scope": "everything"}, "scope must be one of keys, all"),
    ({"fk_validation": "never"}, "fk_validation must be one of"),
    ({"keys": ["users.id"]}, "schema.table.column: users.id"),
    ({"include_columns": ["public.users"]}, "schema.table.column: public.users"),
    ({"keys": []}, "keys must list"),
    ({"schemas": []}, "schemas must not be empty"),
])
def test_bad_requests_name_the_problem(request_fields, message):
    with pytest.raises(ValueError, match=message):
        ConversionRequest(**request_fields).check()


@pytest.mark.parametrize(("default", "generates_uuid"), [
    ("gen_random_uuid()", True),
    ("public.uuid_generate_v4()", True),
    ('"Ext".uuid_generate_v1mc()', True),
    ("(gen_random_uuid())::character varying(36)", True),
    ("uuidv7()", True),
    ("nextval('public.seq'::regclass)", False),
    ("'00000000-0000-0000-0000-000000000000'::uuid", False),
])
def test_uuid_generating_defaults_are_recognised_qualified_or_not(default, generates_uuid):
    assert bool(UUID_DEFAULT.match(default)) is generates_uuid
