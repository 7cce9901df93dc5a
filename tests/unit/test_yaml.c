#include "helpers.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
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

static char *round_trip(const char *text)
{
    struct bd_yaml_doc d = parse_ok(text);
    struct bd_buf b;
    bd_buf_init(&b);
    bd_yaml_emit_docs(&b, d.docs, d.ndocs);
    bd_yaml_doc_free(&d);
    return bd_buf_steal(&b);
}

Test(yaml_emit, go_yaml_block_style)
{
    const char *in = "machine:\n"
                     "    type: controlplane\n"
                     "    certSANs: []\n"
                     "    features:\n"
                     "        kubePrism:\n"
                     "            enabled: true\n"
                     "            port: 7445\n"
                     "    nodeLabels:\n"
                     "        node.kubernetes.io/exclude-from-external-load-balancers: \"\"\n"
                     "cluster:\n"
                     "    network:\n"
                     "        podSubnets:\n"
                     "            - 10.244.0.0/16\n"
                     "    apiServer:\n"
                     "        admissionControl:\n"
                     "            - name: PodSecurity\n"
                     "              configuration:\n"
                     "                apiVersion: v1\n"
                     "                exemptions:\n"
                     "                    namespaces:\n"
                     "                        - kube-system\n"
                     "    inlineManifests:\n"
                     "        - name: cilium\n"
                     "          contents: |\n"
                     "            apiVersion: v1\n"
                     "            kind: ConfigMap\n";
    char *out = round_trip(in);
    cr_assert_str_eq(out, in);
    free(out);
}

Test(yaml_emit, quotes_what_would_change_type)
{
    struct bd_node *m = bd_node_new(BD_NODE_MAP);
    const char *strings[] = {"true", "no", "123", "1.5", "", "null", "a: b", "- x", "#c", " lead",
                             "0x1f", "ok", "a/b", "x#y", "on"};
    char key[8];
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        bd_node_map_set(m, key, bd_node_scalar(strings[i], false));
    }
    struct bd_buf b;
    bd_buf_init(&b);
    bd_yaml_emit(&b, m);
    cr_assert_str_eq(b.data, "k0: \"true\"\nk1: \"no\"\nk2: \"123\"\nk3: \"1.5\"\nk4: \"\"\n"
                             "k5: \"null\"\nk6: \"a: b\"\nk7: \"- x\"\nk8: \"#c\"\nk9: \" lead\"\n"
                             "k10: \"0x1f\"\nk11: ok\nk12: a/b\nk13: x#y\nk14: \"on\"\n");
    /* and they read back as the same strings */
    struct bd_yaml_doc d = parse_ok(b.data);
    for (size_t i = 0; i < d.docs[0]->n; i++)
        cr_assert_str_eq(d.docs[0]->kids[2 * i + 1]->str, strings[i]);
    bd_yaml_doc_free(&d);
    bd_buf_free(&b);
    bd_node_free(m);
}

Test(yaml_emit, schematic_canonical_form)
{
    char *out = round_trip("customization:\n  systemExtensions:\n    officialExtensions:\n"
                           "      - siderolabs/qemu-guest-agent\n");
    cr_assert_str_eq(out, "customization:\n    systemExtensions:\n        officialExtensions:\n"
                          "            - siderolabs/qemu-guest-agent\n");
    free(out);
}

Test(yaml_json, types_follow_yaml_1_2)
{
    struct bd_yaml_doc d = parse_ok("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: x\ng: [1, two]\n"
                                    "h: {}\ni: 0x10\n");
    cJSON *j = bd_node_to_json(d.docs[0]);
    char *s = cJSON_PrintUnformatted(j);
    cr_assert_str_eq(s, "{\"a\":1,\"b\":\"1\",\"c\":true,\"d\":null,\"e\":1.5,\"f\":\"x\","
                        "\"g\":[1,\"two\"],\"h\":{},\"i\":16}");
    struct bd_node *back = bd_node_from_json(j);
    struct bd_buf b;
    bd_buf_init(&b);
    bd_yaml_emit(&b, back);
    cr_assert_str_eq(b.data, "a: 1\nb: \"1\"\nc: true\nd: null\ne: 1.5\nf: x\ng:\n    - 1\n"
                             "    - two\nh: {}\ni: 16\n");
    bd_buf_free(&b);
    bd_node_free(back);
    free(s);
    cJSON_Delete(j);
    bd_yaml_doc_free(&d);
}

Test(yaml_emit, reproduces_talos_gen_config_output)
{
    const char *files[] = {"v1.13-base-controlplane.yaml", "v1.13-base-worker.yaml",
                           "v1.13-overrides-controlplane.yaml", "v1.15-base-controlplane.yaml",
                           "v1.15-overrides-worker.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = bd_xasprintf("tests/fixtures/talos/%s", files[i]);
        char *text;
        struct bd_err err;
        cr_assert_eq(bd_file_read(path, &text, NULL, &err), 0, "%s", err.msg);
        char *out = round_trip(text);
        cr_assert_str_eq(out, text, "%s differs", path);
        free(out);
        free(text);
        free(path);
    }
}
