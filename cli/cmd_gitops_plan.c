/* bootctl gitops plan: offline, the groups bootd derives from ArgoCD Applications and
 * ApplicationSets (gitops.argocd: true) under a repository checkout, in the order it
 * applies them. Each PATH is a group of its own, as in lab.yaml. */
#include "cli.h"

#include "../gitops/gitops.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                                      \
    "usage: bootctl gitops plan [--root DIR] [--kustomize TOOL|builtin] [--helm HELM]\n"           \
    "                           [--helm-cache DIR] PATH...\n"

static cJSON *group_json(const struct gitops_plan *p, size_t i, const struct gitops_objs *objs)
{
    const struct gitops_plan_group *g = &p->groups[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", g->name);
    cJSON *paths = cJSON_AddArrayToObject(o, "paths");
    for (size_t k = 0; k < g->npaths; k++)
        cJSON_AddItemToArray(paths, cJSON_CreateString(g->paths[k]));
    cJSON_AddNumberToObject(o, "wave", (double)g->wave);
    cJSON_AddNumberToObject(o, "depth", g->depth);
    if (g->parent < p->n)
        cJSON_AddStringToObject(o, "parent", p->groups[g->parent].name);
    else
        cJSON_AddNullToObject(o, "parent");
    if (g->from)
        cJSON_AddStringToObject(o, "from", g->from);
    else
        cJSON_AddNullToObject(o, "from");
    if (g->dest_ns)
        cJSON_AddStringToObject(o, "namespace", g->dest_ns);
    else
        cJSON_AddNullToObject(o, "namespace");
    cJSON_AddBoolToObject(o, "create_namespace", g->create_ns);
    size_t n = 0;
    for (size_t k = 0; k < objs->n; k++)
        n += objs->v[k].group == i;
    cJSON_AddNumberToObject(o, "objects", (double)n);
    if (g->error)
        cJSON_AddStringToObject(o, "error", g->error);
    else
        cJSON_AddNullToObject(o, "error");
    return o;
}

static void print_table(const struct gitops_plan *p)
{
    const char *hdr[] = {"ORDER", "GROUP", "WAVE", "NAMESPACE", "PATHS"};
    struct table *t = cli_table_new(5, hdr);
    for (size_t i = 0; i < p->n; i++) {
        const struct gitops_plan_group *g = &p->groups[i];
        char order[24], wave[24], *name, *ns;
        snprintf(order, sizeof order, "%zu", i + 1);
        snprintf(wave, sizeof wave, "%ld", g->wave);
        name = bd_xasprintf("%*s%s", 2 * (g->depth > 1 ? g->depth - 1 : 0), "", g->name);
        ns = bd_xasprintf("%s%s", g->dest_ns ? g->dest_ns : "-",
                          g->create_ns && g->dest_ns ? " (created)" : "");
        struct bd_buf paths;
        bd_buf_init(&paths);
        for (size_t k = 0; k < g->npaths; k++)
            bd_buf_printf(&paths, "%s%s", k ? " " : "", g->paths[k]);
        const char *row[] = {order, name, wave, ns, paths.data ? paths.data : ""};
        cli_table_add(t, row);
        bd_buf_free(&paths);
        free(name);
        free(ns);
    }
    cli_table_print(t, stdout);
    for (size_t i = 0; i < p->n; i++)
        if (p->groups[i].error)
            printf("\n%s: does not render here: %s\n", p->groups[i].name, p->groups[i].error);
}

int cli_cmd_gitops_plan(int argc, char **argv, bool json)
{
    const char *root = ".";
    struct gitops_render_opts ro = {0};
    if (cli_gitops_render_opts(argc, argv, &ro, &root) < 0)
        return 2;
    char *abs = realpath(root, NULL);
    if (optind >= argc || !abs) {
        fprintf(stderr, abs ? USAGE : "bootctl: %s: no such directory\n", root);
        free(abs);
        return 2;
    }
    struct gitops_cfg cfg = {
        .checkout_dir = abs, .argocd = true, .ngroups = (size_t)(argc - optind)};
    cfg.groups = bd_xcalloc(cfg.ngroups + 1, sizeof *cfg.groups);
    for (size_t i = 0; i < cfg.ngroups; i++) {
        cfg.groups[i].name = argv[optind + (int)i];
        cfg.groups[i].npaths = 1;
        cfg.groups[i].paths = &argv[optind + (int)i];
    }
    struct gitops_plan plan;
    struct gitops_objs objs = {0};
    struct bd_err err;
    int rc = gitops_argocd_plan(&cfg, &ro, true, &plan, &objs, &err);
    if (rc < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
    } else if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(o, "groups");
        for (size_t i = 0; i < plan.n; i++)
            cJSON_AddItemToArray(arr, group_json(&plan, i, &objs));
        cli_print_json(o);
        cJSON_Delete(o);
    } else {
        print_table(&plan);
    }
    gitops_plan_free(&plan);
    gitops_objs_free(&objs);
    free(cfg.groups);
    free(abs);
    return rc < 0 ? 1 : 0;
}
