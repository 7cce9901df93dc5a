/* Template patches in Terraform's template language: every fixture under
 * tests/fixtures/talos/tmpl renders to its .want text with the variables of vars.yaml,
 * and mistakes are errors naming file:line:col. */
#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMPL FIXTURES "tmpl/"

/* Renders text (named file in messages) with vars.yaml; returns the output, or NULL
 * with err set. */
static char *render(const char *file, const char *text, struct bd_err *err)
{
    char *vtext = read_text(TMPL "vars.yaml");
    struct bd_yaml_doc vars;
    cr_assert_eq(bd_yaml_parse(vtext, strlen(vtext), "vars.yaml", &vars, err), 0, "%s", err->msg);
    const struct bd_node *map = vars.docs[0];
    struct patch_vars pv = {.n = map->n};
    pv.names = bd_xcalloc(map->n, sizeof *pv.names);
    pv.values = bd_xcalloc(map->n, sizeof *pv.values);
    for (size_t i = 0; i < map->n; i++) {
        pv.names[i] = map->kids[2 * i]->str;
        pv.values[i] = map->kids[2 * i + 1];
    }
    struct talos_patch p = {.file = bd_xstrdup(file), .is_template = true};
    char *out = NULL;
    p.tmpl = talos_tmpl_parse(file, text, err);
    struct bd_buf b;
    bd_buf_init(&b);
    if (p.tmpl && talos_patch_fill_template(&p, &pv, &b, err) == 0)
        out = bd_xstrdup(b.data ? b.data : "");
    bd_buf_free(&b);
    talos_patch_free(&p);
    free(pv.names);
    free(pv.values);
    bd_yaml_doc_free(&vars);
    free(vtext);
    return out;
}

static void fixture(const char *name)
{
    char *tpath = bd_xasprintf(TMPL "%s.tftpl", name), *wpath = bd_xasprintf(TMPL "%s.want", name);
    char *text = read_text(tpath), *want = read_text(wpath);
    struct bd_err err;
    char *got = render(tpath, text, &err);
    cr_assert_not_null(got, "%s: %s", name, err.msg);
    cr_assert_str_eq(got, want, "%s:\n--- got ---\n%s--- want ---\n%s", name, got, want);
    free(got);
    free(want);
    free(text);
    free(wpath);
    free(tpath);
}

Test(tmpl, interpolation_and_escapes) { fixture("interpolation"); }
Test(tmpl, indent) { fixture("indent"); }
Test(tmpl, jsonencode) { fixture("jsonencode"); }
Test(tmpl, yamlencode) { fixture("yamlencode"); }
Test(tmpl, string_functions) { fixture("strings"); }
Test(tmpl, if_else_for_and_strip_markers) { fixture("directives"); }
Test(tmpl, expressions) { fixture("expressions"); }

static void assert_error(const char *text, const char *want)
{
    struct bd_err err;
    char *got = render("t.tftpl", text, &err);
    cr_assert_null(got, "expected an error for %s, got:\n%s", text, got);
    assert_has(err.msg, want);
}

Test(tmpl, errors_name_file_line_and_column)
{
    assert_error("a: 1\nb: ${nope}\n", "t.tftpl:2:6: no variable \"nope\" (there are: hostname, ip");
    assert_error("vip: ${no_vip}\n", "t.tftpl:1:8: \"no_vip\" is null, which cannot go into the text");
    assert_error("vip: ${coalesce(no_vip, null)}\n", "coalesce(): no non-null");
    assert_error("vip: ${no_vip == null ? null : 1}\n", "t.tftpl:1:8: the expression is null");
    assert_error("x: ${ hostname\n", "t.tftpl:2:1: expected \"}\" to end the interpolation");
    assert_error("a\n%{ if enabled }x\n", "t.tftpl:2:1: %{ if } without %{ endif }");
    assert_error("%{ endfor }", "t.tftpl:1:1: %{ endfor } without a matching %{ for }");
    assert_error("%{ if enabled }%{ endfor }", "t.tftpl:1:16: %{ endfor } where this %{ if } needs");
    assert_error("x: ${foo(1)}", "t.tftpl:1:6: there is no function foo() in bootd's templates");
    assert_error("x: ${nodes}", "t.tftpl:1:6: \"nodes\" is a list, which cannot go into the text as it is");
    assert_error("%{ if hostname }x%{ endif }", "t.tftpl:1:7: an if condition must be a bool");
    assert_error("%{ while x }", "t.tftpl:1:4: unknown template directive \"while\"");
    assert_error("${join(\",\", hostname)}", "t.tftpl:1:13: join(): argument 2 must be a list");
    assert_error("${indent(2)}", "t.tftpl:1:3: indent(): takes 2 arguments, not 1");
    assert_error("${upper(no_vip)}", "upper(): argument 1 must not be null");
    assert_error("${coalesce(no_vip, empty)}", "coalesce(): no non-null, non-empty-string");
    assert_error("${nodes[5]}", "index 5 is out of range: the list has 2 elements");
    assert_error("${labels.nope}", "the map has no attribute \"nope\"");
    /* columns count characters: é is one */
    assert_error("x\n  é ${\"a${b}\"}", "t.tftpl:2:11: no variable \"b\"");
    assert_error("${\"a${hostname\"}", "t.tftpl:1:3: unterminated string");
    assert_error("${[for n in hostname : n]}", "t.tftpl:1:13: a for expression walks a list or a map");
    assert_error("${{for n in nodes : \"k\" => n}}", "t.tftpl:1:21: the key \"k\" comes twice");
    assert_error("${[for n in nodes n]}", "t.tftpl:1:19: expected \":\" in a for expression");
    assert_error("%{ for x nodes }%{ endfor }", "t.tftpl:1:10: expected \"in\"");
}

/* The reference homelab's patches, with the values its Terraform passed, render to
 * what templatefile() made of them. */
Test(tmpl, homelab_vip_patch_renders_unchanged)
{
    const char *text = "machine:\n"
                       "  network:\n"
                       "    hostname: ${hostname}\n"
                       "%{ if vip != null ~}\n"
                       "    interfaces:\n"
                       "      - deviceSelector:\n"
                       "          hardwareAddr: ${jsonencode(mac_address)}\n"
                       "        addresses: [${ip}/24]\n"
                       "        vip:\n"
                       "          ip: ${vip}\n"
                       "%{~ endif }\n";
    struct bd_err err;
    char *got = render("vip.tftpl", text, &err);
    cr_assert_not_null(got, "%s", err.msg);
    cr_assert_str_eq(got, "machine:\n"
                          "  network:\n"
                          "    hostname: ctrl-00\n"
                          "interfaces:\n"
                          "      - deviceSelector:\n"
                          "          hardwareAddr: \"bc:24:11:e6:ba:07\"\n"
                          "        addresses: [10.25.150.11/24]\n"
                          "        vip:\n"
                          "          ip: 10.25.150.10\n");
    free(got);
}
