"""The closure of FK-linked columns that must change type together."""

from ansible.module_utils.key_graph import fks_touching, linked_closure
from ansible.module_utils.pg_catalog import ForeignKey


def fk(name, table, cols, ref_table, ref_cols, *, schema="public", ref_schema="public", inherited=False):
    return ForeignKey(name, schema, table, tuple(cols), ref_schema, ref_table, tuple(ref_cols),
                      "", False, False, True, inherited, f"{schema}.{table}")


FKS = [
    fk("users_org", "users", ["organization_id"], "organizations", ["id"]),
    fk("org_owner", "organizations", ["owner_id"], "users", ["id"]),
    fk("users_inviter", "users", ["invited_by"], "users", ["id"]),
    fk("share_doc", "shares", ["organization_id", "document_id"], "documents", ["organization_id", "id"]),
    fk("doc_org", "documents", ["organization_id"], "organizations", ["id"]),
    fk("audit_user", "audit", ["user_id"], "users", ["id"], schema="audit"),
    fk("tags_tag", "document_tags", ["tag_id"], "tags", ["id"]),
    fk("part_copy", "events_2024", ["user_id"], "users", ["id"], inherited=True),
]


def test_closure_follows_cycles_self_refs_composites_and_schemas():
    closure = linked_closure([("public", "users", "id")], FKS)
    assert closure == {
        ("public", "users", "id"), ("public", "organizations", "owner_id"),
        ("public", "users", "invited_by"), ("audit", "audit", "user_id"),
    }
    closure = linked_closure([("public", "organizations", "id")], FKS)
    assert ("public", "shares", "organization_id") in closure
    assert ("public", "documents", "organization_id") in closure
    assert ("public", "shares", "document_id") not in closure  # other column pair of the composite


def test_partition_copies_are_not_followed():
    assert ("public", "events_2024", "user_id") not in linked_closure([("public", "users", "id")], FKS)


def test_unrelated_keys_stay_out():
    closure = linked_closure([("public", "users", "id")], FKS)
    assert ("public", "tags", "id") not in closure


def test_fks_touching():
    names = {f.name for f in fks_touching({("public", "users", "id")}, FKS)}
    assert names == {"org_owner", "users_inviter", "audit_user", "part_copy"}


def test_a_key_nobody_references_is_its_own_closure():
    assert linked_closure([("public", "lonely", "id")], FKS) == {("public", "lonely", "id")}
