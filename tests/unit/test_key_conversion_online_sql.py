"""The online conversion's SQL text: names within PostgreSQL's limit and distinct, the
proof check that lets SET NOT NULL skip its scan, shadow index definitions."""

from ansible.module_utils import key_conversion_online_sql as sql


def _column(name="id", not_null=True, array=False):
    return {"column": name, "shadow": sql.shadow_column(name), "new_type": "varchar(36)", "is_array": array,
            "needs_not_null": not_null, "default": None}


def test_long_names_fit_63_bytes_and_stay_distinct():
    first, second = sql.shadow_column("a" * 60 + "x"), sql.shadow_column("a" * 60 + "y")
    assert len(first.encode()) <= 63 and len(second.encode()) <= 63
    assert first != second and first.endswith(sql.SHADOW_SUFFIX)
    assert sql.shadow_column("id") == "id__kc_new"


def test_proof_check_states_equality_bytewise_and_not_null_where_the_column_was():
    condition = sql.proof_condition([_column("id"), _column("parent_id", not_null=False)])
    assert '"id__kc_new" COLLATE "C" IS NOT DISTINCT FROM ("id")::varchar(36) COLLATE "C"' in condition
    assert '"id__kc_new" IS NOT NULL' in condition
    assert '"parent_id__kc_new" IS NOT NULL' not in condition


def test_sync_trigger_sorts_after_ordinary_trigger_names_and_fires_always():
    assert sql.SYNC_TRIGGER > "audit_trigger" and sql.SYNC_TRIGGER > "set_updated_at"
    create, enable = sql.create_sync_trigger("public", "public.users")
    assert "BEFORE INSERT OR UPDATE" in create and "ENABLE ALWAYS TRIGGER" in enable


def test_shadow_index_keeps_order_include_options_and_predicate():
    index = {"bare_name": "ix", "unique": True, "am": "btree", "key_count": 2, "options": ["fillfactor=80"],
             "predicate": "(deleted_at IS NULL)",
             "keys": [{"name": "org_id", "option": 3}, {"name": "created", "option": 0},
                      {"name": "title", "option": 0}]}
    statement = sql.create_shadow_index("public.t", index, {"org_id": "org_id__kc_new"})
    assert statement == ('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "ix__kc_ix" ON public.t USING btree '
                         '("org_id__kc_new" DESC, "created") INCLUDE ("title") WITH (fillfactor=80) '
                         'WHERE (deleted_at IS NULL)')


def test_swap_sets_not_null_before_dropping_the_old_column_then_renames():
    statements = sql.swap_columns("public", "public.users", [_column("id") | {"default": "gen_random_uuid()"}])
    order = [next(i for i, s in enumerate(statements) if word in s)
             for word in ("DROP TRIGGER", "SET NOT NULL", "DROP COLUMN", "RENAME COLUMN", "SET DEFAULT",
                          "DROP FUNCTION")]
    assert order == sorted(order)


def test_primary_key_attaches_by_using_index_with_its_timing():
    index = {"bare_name": "users_pkey", "constraint": "users_pkey", "constraint_type": "u", "deferrable": True,
             "deferred": False, "constraint_comment": None, "comment": "c", "replica_identity": True,
             "clustered": False}
    statements = sql.attach_index("public.users", '"public"', index)
    assert statements[0] == ('ALTER TABLE public.users ADD CONSTRAINT "users_pkey" UNIQUE USING INDEX '
                             '"users_pkey__kc_ix" DEFERRABLE INITIALLY IMMEDIATE')
    assert "REPLICA IDENTITY USING INDEX" in statements[-1]


def test_lock_order_puts_each_table_before_the_tables_it_references():
    from collections import namedtuple

    from ansible.module_utils.key_conversion_online_plan import fk_lock_order

    fk = namedtuple("fk", "relation ref_relation")
    fks = [fk("users", "organizations"), fk("documents", "users"), fk("documents", "organizations"),
           fk("organizations", "users"), fk("users", "users")]
    order = fk_lock_order(["organizations", "users", "documents", "tags"], fks)
    assert order[0] == "documents" and set(order) == {"organizations", "users", "documents", "tags"}
    assert order.index("documents") < order.index("users") and order.index("documents") < order.index("organizations")


def _index(**override):
    index = {"name": "public.ix", "unique": False, "constraint_type": None, "constraint": None, "am": "btree",
             "own_tablespace": False, "valid": True, "uses_in_expression": False, "has_expressions": False,
             "keys": [{"attnum": 2, "name": "org_id", "default_opclass": True, "own_collation": False}]}
    return index | override


def test_each_index_goes_to_the_shadows_after_the_swap_or_is_refused_by_name():
    from ansible.module_utils.key_conversion_online_plan import index_handling

    assert index_handling(_index()) == ("shadow", None)
    assert index_handling(_index(unique=True, constraint_type="p", constraint="t_pkey")) == ("shadow", None)
    assert index_handling(_index(uses_in_expression=True)) == ("after", None)
    assert index_handling(_index(am="gin")) == ("after", None)
    how, why = index_handling(_index(unique=True, has_expressions=True))
    assert how == "refuse" and "unique index public.ix" in why
    assert index_handling(_index(constraint_type="x", constraint="no_overlap"))[0] == "refuse"
    assert index_handling(_index(valid=False))[0] == "refuse"
