"""After COMMIT: one table's statements stay in order on one connection."""

from ansible.module_utils.key_conversion_after_commit import group_by_relation


def test_statements_are_grouped_per_table_in_order_largest_group_first():
    steps = [("public.a", "VALIDATE a1"), ("public.b", "VALIDATE b1"), ("public.a", "VALIDATE a2"),
             ("public.b", "ANALYZE b"), ("public.a", "ANALYZE a"), ("public.c", "ANALYZE c")]
    assert group_by_relation(steps) == [
        ("public.a", [(0, "VALIDATE a1"), (2, "VALIDATE a2"), (4, "ANALYZE a")]),
        ("public.b", [(1, "VALIDATE b1"), (3, "ANALYZE b")]),
        ("public.c", [(5, "ANALYZE c")]),
    ]
    assert group_by_relation([]) == []
