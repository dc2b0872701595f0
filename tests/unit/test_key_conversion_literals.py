"""Reading stored parse trees and retyping uuid constants in printed SQL: pure logic."""

from collections import Counter

from ansible.module_utils.key_conversion_literals import analyse, rewrite_constants
from ansible.module_utils.pg_node_tree import parse, tokens, uuid_text

# pg_constraint.conbin of CHECK (id <> '0000000a-...'::uuid) on a table whose id is column 1.
NOT_NIL = ("{OPEXPR :opno 2973 :opfuncid 2959 :opresulttype 16 :opretset false :opcollid 0 :inputcollid 0 "
           ":args ({VAR :varno 1 :varattno 1 :vartype 2950 :vartypmod -1 :varcollid 0 :varlevelsup 0 "
           ":varnosyn 1 :varattnosyn 1 :location 70} {CONST :consttype 2950 :consttypmod -1 :constcollid 0 "
           ":constlen 16 :constbyval false :constisnull false :location 76 "
           ":constvalue 16 [ 0 0 0 10 0 0 0 0 0 0 0 0 0 0 0 0 ]}) :location 73}")
ORDERED = NOT_NIL.replace(":opno 2973", ":opno 2975")  # id > '...'::uuid
NIL = "0000000a-0000-0000-0000-000000000000"
VARCHAR = "character varying(36)"


def test_a_node_tree_reads_into_tags_fields_lists_and_datums():
    tree = parse(NOT_NIL)
    assert tree["_tag"] == "OPEXPR" and tree["opno"] == "2973"
    var, const = tree["args"]
    assert var["_tag"] == "VAR" and var["varattno"] == "1"
    assert uuid_text(const["constvalue"]) == NIL
    assert parse("<>") is None
    assert tokens(r'{ALIAS :aliasname my\ name :colnames ("a b" "c")}') == [
        "{", "ALIAS", ":aliasname", "my name", ":colnames", "(", '"a b', '"c', ")", "}"]
    assert uuid_text([-1 & 0xFF] * 16) == "ffffffff-ffff-ffff-ffff-ffffffffffff"


def analysis_of(tree, converted=frozenset({(42, 1)})):
    return analyse([tree], converted=set(converted), equality_ops={2972, 2973}, source_oid=2950, base_relid=42,
                   column_names={(42, 1): "public.t.id"})


def test_equality_with_a_uuid_constant_is_safe_and_retyped_in_the_printed_text():
    analysis = analysis_of(NOT_NIL)
    assert analysis.problems == [] and analysis.safe == Counter({NIL: 1})
    text, problem = rewrite_constants(f"CHECK ((id <> '{NIL}'::uuid))", analysis.safe, analysis.other_constants,
                                      "uuid", VARCHAR)
    assert problem is None and text == f"CHECK ((id <> '{NIL}'::{VARCHAR}))"


def test_an_ordering_or_an_unconverted_column_is_not_provably_the_same():
    assert analysis_of(ORDERED).problems == ["public.t.id is used by OPEXPR (operator 2975)"]
    # The column is not converted: nothing to prove, nothing to retype.
    untouched = analysis_of(NOT_NIL, converted=frozenset())
    assert untouched.problems == [] and not untouched.safe and untouched.other_constants == {NIL}


def test_constants_inside_strings_or_also_used_elsewhere_are_not_rewritten():
    safe = Counter({NIL: 1})
    # The same text inside a string literal is left alone; the count must match the tree.
    inside = f"CHECK (((note <> 'x''{NIL}''::uuid') AND (id <> '{NIL}'::uuid)))"
    text, problem = rewrite_constants(inside, safe, set(), "uuid", VARCHAR)
    assert problem is None and text.count(f"::{VARCHAR}") == 1 and f"''{NIL}''::uuid'" in text
    # Twice in the text, once in the tree: refused rather than guessed.
    twice = f"CHECK (((id <> '{NIL}'::uuid) AND (other <> '{NIL}'::uuid)))"
    assert rewrite_constants(twice, safe, set(), "uuid", VARCHAR)[1] == (
        f"the uuid {NIL} could not be located in the printed definition")
    assert "appears both" in rewrite_constants(twice, safe, {NIL}, "uuid", VARCHAR)[1]
    # uuid[] constants are not uuid constants.
    array = f"CHECK ((id <> '{NIL}'::uuid[]))"
    assert rewrite_constants(array, safe, set(), "uuid", VARCHAR)[1] is not None


def test_a_domain_columns_cast_to_its_base_type_becomes_a_cast_to_the_target():
    text = 'FROM (public.sessions s JOIN public.users u ON ((u.id = (s.user_id)::uuid)))'
    new, problem = rewrite_constants(text, Counter(), set(), "uuid", VARCHAR, Counter({"user_id": 1}))
    assert problem is None and new.endswith(f"(s.user_id)::{VARCHAR})))")


def test_an_unreadable_tree_is_a_problem_not_a_crash():
    assert analysis_of("{OPEXPR :opno").problems == ["its stored parse tree could not be read"]


def test_a_scalar_subquery_of_a_converted_column_carries_its_type():
    """WHERE other = (SELECT id ...): the subquery's result is the converted
    column's, compared with a column that stays uuid: not provably the same."""
    def var(relno):
        return f"{{VAR :varno {relno} :varattno 1 :vartype 2950 :vartypmod -1 :varcollid 0 :varlevelsup 0}}"

    def rte(relid):
        return f"{{RANGETBLENTRY :rtekind 0 :relid {relid}}}"

    sub = (f"{{SUBLINK :subLinkType 4 :subLinkId 0 :testexpr <> :operName <> :subselect {{QUERY :rtable ({rte(42)}) "
           f":targetList ({{TARGETENTRY :expr {var(1)} :resno 1 :resjunk false}})}}}}")
    query = (f"({{QUERY :rtable ({rte(7)}) :jointree {{FROMEXPR :fromlist <> :quals {{OPEXPR :opno 2972 "
             f":args ({var(1)} {sub})}}}} :targetList <>}})")
    analysis = analyse([query], converted={(42, 1)}, equality_ops={2972, 2973}, source_oid=2950)
    assert analysis.problems == ["a converted column is compared with an expression of the old type"]
    both = analyse([query], converted={(42, 1), (7, 1)}, equality_ops={2972, 2973}, source_oid=2950)
    assert both.problems == []
