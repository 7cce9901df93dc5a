#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

static struct bd_yaml_doc parse_ok(const char *text)
{
    struct bd_yaml_doc d;
    struct bd_err err;
    cr_assert_eq(bd_yaml_parse(text, strlen(text), "t.yaml", &d, &err), 0, "%s", err.msg);
    return d;
}

static const char *parse_err(const char *text, struct bd_err *err)
{
    struct bd_yaml_doc d;
    cr_assert_eq(bd_yaml_parse(text, strlen(text), "t.yaml", &d, err), -1);
    return err->msg;
}

Test(yaml, keeps_order_types_and_lines)
{
    struct bd_yaml_doc d = parse_ok("b: 1\na:\n  - x\n  - 'y'\nc: ~\n");
    cr_assert_eq(d.ndocs, 1);
    struct bd_node *r = d.docs[0];
    cr_assert_eq(r->kind, BD_NODE_MAP);
    cr_assert_eq(r->n, 3);
    cr_assert_str_eq(r->kids[0]->str, "b");
    cr_assert_str_eq(r->kids[2]->str, "a");
    struct bd_node *a = bd_node_get(r, "a");
    cr_assert_eq(a->kind, BD_NODE_SEQ);
    cr_assert_eq(a->n, 2);
    cr_assert(a->kids[0]->plain);
    cr_assert_not(a->kids[1]->plain, "quoted scalars are never plain");
    cr_assert_eq(a->kids[1]->line, 4);
    cr_assert(bd_node_is_null(bd_node_get(r, "c")));
    cr_assert_null(bd_node_get(r, "missing"));
    bd_yaml_doc_free(&d);
}

Test(yaml, multiple_documents)
{
    struct bd_yaml_doc d = parse_ok("a: 1\n---\nb: 2\n---\n");
    cr_assert_eq(d.ndocs, 3);
    cr_assert_str_eq(d.docs[1]->kids[0]->str, "b");
    cr_assert(bd_node_is_null(d.docs[2]));
    bd_yaml_doc_free(&d);
}

Test(yaml, duplicate_key_names_both_lines)
{
    struct bd_err err;
    parse_err("a: 1\nb: 2\na: 3\n", &err);
    cr_assert(strstr(err.msg, "t.yaml:3:1: duplicate key \"a\" (first at line 1)"), "%s", err.msg);
}

Test(yaml, syntax_error_has_position)
{
    struct bd_err err;
    parse_err("a: [1, 2\nb: 3\n", &err);
    cr_assert(strncmp(err.msg, "t.yaml:", 7) == 0, "%s", err.msg);
}

Test(yaml, aliases_are_expanded)
{
    struct bd_yaml_doc d = parse_ok("x: &v {k: 1}\ny: *v\n");
    struct bd_node *y = bd_node_get(d.docs[0], "y");
    cr_assert_eq(y->kind, BD_NODE_MAP);
    cr_assert_str_eq(bd_node_get(y, "k")->str, "1");
    bd_yaml_doc_free(&d);
}

Test(yaml, alias_bomb_is_refused)
{
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_puts(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++)
        bd_buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                      i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    struct bd_err err;
    parse_err(b.data, &err);
    cr_assert(strstr(err.msg, "too many nodes"), "%s", err.msg);
    bd_buf_free(&b);
}

Test(yaml, complex_keys_are_refused)
{
    struct bd_err err;
    parse_err("? [a, b]\n: 1\n", &err);
    cr_assert(strstr(err.msg, "scalar mapping keys"), "%s", err.msg);
}
