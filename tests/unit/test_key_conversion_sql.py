"""SQL text builders for the conversion: quoting, one ALTER per table, recreation."""

import pytest
from ansible.module_utils import key_conversion_sql as q


def test_identifiers_and_literals_are_quoted():
    assert q.ident('Org "Id"') == '"Org ""Id"""'
    assert q.literal("it's") == "'it''s'"
    assert q.literal(None) == "NULL"


def test_one_alter_per_table_carries_every_column():
    sql = q.alter_columns('public."Users"', [("ID", "varchar(36)"), ("org_id", "varchar(36)[]")])
    assert sql == ('ALTER TABLE public."Users" ALTER COLUMN "ID" TYPE varchar(36) USING "ID"::varchar(36), '
                   'ALTER COLUMN "org_id" TYPE varchar(36)[] USING "org_id"::varchar(36)[]')


def test_value_check_rides_along_the_rewrite_and_is_dropped_after():
    sql = q.alter_columns("public.t", [("id", "varchar(36)"), ("Org", "varchar(36)")], checked=["id", "Org"])
    assert sql.endswith(', ADD CONSTRAINT "key_conversion_value_check" '
                        'CHECK ("id"::uuid::text = "id" AND "Org"::uuid::text = "Org")')
    assert sql.count("ALTER TABLE") == 1  # still one statement, one rewrite
    assert q.drop_value_check("public.t") == 'ALTER TABLE public.t DROP CONSTRAINT "key_conversion_value_check"'


def test_foreign_keys_drop_and_add_grouped():
    assert q.drop_foreign_keys("public.t", ["a", "B"]) == (
        'ALTER TABLE public.t DROP CONSTRAINT "a", DROP CONSTRAINT "B"')
    assert q.add_foreign_keys("public.t", [("a", "FOREIGN KEY (x) REFERENCES public.u(id)")]) == (
        'ALTER TABLE public.t ADD CONSTRAINT "a" FOREIGN KEY (x) REFERENCES public.u(id)')
    assert q.with_not_valid("FOREIGN KEY (x) REFERENCES public.u(id) NOT VALID").count("NOT VALID") == 1
    assert q.with_not_valid("FOREIGN KEY (x) REFERENCES public.u(id)").endswith(" NOT VALID")


def view(**overrides):
    base = {"relation": "public.v", "kind": "view", "definition": " SELECT 1;", "options": [],
            "owner": "app", "acl": None, "grants": [], "comment": None, "column_details": [],
            "indexes": [], "populated": True, "tablespace": None}
    return base | overrides


def test_view_recreated_with_options_owner_grants_and_comments():
    statements = q.create_view(view(
        options=["security_barrier=true"], owner="other", acl="{other=arwdDxt/other,reader=r/other}",
        grants=[{"grantee": "other", "privilege": "SELECT", "grantable": False},
                {"grantee": "reader", "privilege": "SELECT", "grantable": True}],
        comment="a view", column_details=[{"column": "Id", "comment": "the key"}]), current_user="app")
    assert statements == [
        "CREATE VIEW public.v WITH (security_barrier=true) AS\nSELECT 1",
        'ALTER VIEW public.v OWNER TO "other"',
        'REVOKE ALL ON TABLE public.v FROM "other"',
        'GRANT SELECT ON TABLE public.v TO "other"',
        'GRANT SELECT ON TABLE public.v TO "reader" WITH GRANT OPTION',
        "COMMENT ON VIEW public.v IS 'a view'",
        'COMMENT ON COLUMN public.v."Id" IS \'the key\'',
    ]


def test_default_acl_needs_no_grants():
    assert q.create_view(view(), current_user="app") == ["CREATE VIEW public.v AS\nSELECT 1"]


def test_materialized_view_keeps_populated_state_and_indexes():
    statements = q.create_view(view(kind="materialized view", populated=False, indexes=[
        {"definition": "CREATE UNIQUE INDEX mi ON public.v USING btree (id)", "name": "public.mi",
         "comment": "one"}]), current_user="app")
    assert statements[0].endswith("WITH NO DATA")
    assert statements[1:] == ["CREATE UNIQUE INDEX mi ON public.v USING btree (id)",
                              "COMMENT ON INDEX public.mi IS 'one'"]
    assert q.drop_view(view(kind="materialized view")) == "DROP MATERIALIZED VIEW public.v"


def test_policy_trigger_and_rule_recreation():
    policy = {"name": "Org", "relation": "public.d", "permissive": False, "command": "r",
              "roles": ["PUBLIC"], "using": "(a = b)", "with_check": None, "comment": "c"}
    assert q.create_policy(policy) == [
        'CREATE POLICY "Org" ON public.d AS RESTRICTIVE FOR SELECT TO PUBLIC USING ((a = b))',
        "COMMENT ON POLICY \"Org\" ON public.d IS 'c'"]
    trigger = {"name": "t", "relation": "public.d", "definition": "CREATE TRIGGER t ...",
               "enabled": "D", "comment": None}
    assert q.create_trigger(trigger) == ["CREATE TRIGGER t ...", 'ALTER TABLE public.d DISABLE TRIGGER "t"']
    rule = {"name": "r", "relation": "public.d", "definition": "CREATE RULE r AS ...;", "enabled": "O",
            "comment": None}
    assert q.create_rule(rule) == ["CREATE RULE r AS ..."]
    assert q.drop_rule(rule) == 'DROP RULE "r" ON public.d'


@pytest.mark.parametrize("definition, name, expected", [
    ("CREATE INDEX ix_a ON public.t USING btree (a)", "ix_a",
     'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_a" ON public.t USING btree (a)'),
    ('CREATE INDEX "Odd ""Name"" ON x" ON "S"."T" USING btree (lower(b)) WHERE (c IS NULL)', 'Odd "Name" ON x',
     'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Odd ""Name"" ON x" ON "S"."T" USING btree (lower(b)) '
     "WHERE (c IS NULL)"),
])
def test_an_index_definition_becomes_a_concurrent_build_that_names_its_index(definition, name, expected):
    statement = q.create_index_concurrently(definition, name)
    assert statement == expected
    assert q.concurrent_index_name(statement) == name
    assert q.concurrent_index_name("ANALYZE public.t") is None


def test_only_plain_index_definitions_are_rebuilt_concurrently():
    with pytest.raises(ValueError, match="not a plain CREATE INDEX"):
        q.create_index_concurrently("CREATE UNIQUE INDEX u ON public.t USING btree (a)", "u")


def test_the_shape_value_check_is_length_and_hyphens_in_the_same_one_statement():
    sql = q.alter_columns("public.t", [("id", "varchar(36)")], checked=["id"], value_check="shape")
    assert sql.endswith('CHECK ((octet_length("id") = 36 AND "id" COLLATE "C" LIKE '
                        '\'________-____-____-____-____________\'))')
    assert sql.count("ALTER TABLE") == 1
