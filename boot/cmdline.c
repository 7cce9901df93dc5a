/* The Talos kernel command line for a machine. */
#include "boot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct args {
    size_t n, cap;
    char **v;
    size_t *layer;
};

static size_t key_len(const char *arg)
{
    const char *eq = strchr(arg, '=');
    return eq ? (size_t)(eq - arg) : strlen(arg);
}

static bool same_key(const char *a, const char *b)
{
    size_t la = key_len(a);
    return la == key_len(b) && !strncmp(a, b, la);
}

/* Adds arg in layer; the first time a layer sets a key, values of that key from
 * earlier layers go (so one console= in lab.yaml replaces all image consoles). */
static void args_add(struct args *a, const char *arg, size_t layer)
{
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->layer[i] < layer && same_key(a->v[i], arg)) {
            free(a->v[i]);
            continue;
        }
        a->v[w] = a->v[i];
        a->layer[w++] = a->layer[i];
    }
    a->n = w;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->v = bd_xrealloc(a->v, a->cap * sizeof *a->v);
        a->layer = bd_xrealloc(a->layer, a->cap * sizeof *a->layer);
    }
    a->v[a->n] = bd_xstrdup(arg);
    a->layer[a->n++] = layer;
}

static void args_add_line(struct args *a, const char *line, size_t layer)
{
    char *copy = bd_xstrdup(line), *save = NULL;
    for (char *t = strtok_r(copy, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
        args_add(a, t, layer);
    free(copy);
}

static void args_add_list(struct args *a, const struct lab_strlist *l, const char *prefix,
                          size_t layer)
{
    for (size_t i = 0; i < l->n; i++) {
        char *arg = bd_xasprintf("%s%s", prefix, l->v[i]);
        args_add(a, arg, layer);
        free(arg);
    }
}

void boot_default_cmdline(struct bd_buf *out, const char *talos_version, const char *arch)
{
    int major = 1, minor = 13;
    sscanf(talos_version, "v%d.%d", &major, &minor);
    bool before_1_14 = major < 1 || (major == 1 && minor < 14);
    bool amd64 = !strcmp(arch, "amd64");
    bd_buf_puts(out, "talos.platform=metal");
    bd_buf_puts(out, amd64 ? " console=tty0" : " console=ttyAMA0 console=tty0");
    if (before_1_14)
        bd_buf_puts(out, " init_on_alloc=1");
    /* pti=on on every arch: Talos's kernel arg checks want it on arm64 too */
    bd_buf_puts(out, " slab_nomerge pti=on");
    bd_buf_puts(out, " consoleblank=0");
    if (before_1_14)
        bd_buf_puts(out, " nvme_core.io_timeout=4294967295");
    bd_buf_puts(out, " printk.devkmsg=on selinux=1 module.sig_enforce=1 proc_mem.force_override=never");
}

/* The schematic's customization.extraKernelArgs, which Image Factory appends to its
 * command line: the built-in one stands in for that, so it needs them too. The file
 * was checked when the lab was loaded; one that no longer reads adds nothing. */
static void args_add_schematic(struct args *a, const struct lab *lab, size_t layer)
{
    struct bd_yaml_doc doc;
    struct bd_err err;
    if (!lab->images.schematic_file || bd_yaml_parse_file(lab->images.schematic_file, &doc, &err) < 0)
        return;
    const struct bd_node *c = doc.ndocs ? bd_node_get(doc.docs[0], "customization") : NULL;
    const struct bd_node *l = c ? bd_node_get(c, "extraKernelArgs") : NULL;
    for (size_t i = 0; l && l->kind == BD_NODE_SEQ && i < l->n; i++)
        if (l->kids[i]->kind == BD_NODE_SCALAR)
            args_add(a, l->kids[i]->str, layer);
    bd_yaml_doc_free(&doc);
}

void boot_kernel_args(struct bd_buf *out, const struct boot_kernel_args *k)
{
    struct args a = {0};
    size_t layer = 0;
    if (k->initrd_name) {
        char *arg = bd_xasprintf("initrd=%s", k->initrd_name);
        args_add(&a, arg, layer);
        free(arg);
    }
    if (k->base_cmdline) {
        args_add_line(&a, k->base_cmdline, ++layer);
    } else {
        struct bd_buf b;
        bd_buf_init(&b);
        boot_default_cmdline(&b, k->lab->cluster.talos_version, k->arch);
        args_add_line(&a, b.data, ++layer);
        bd_buf_free(&b);
        args_add_schematic(&a, k->lab, ++layer);
    }
    args_add_list(&a, &k->lab->boot.console, "console=", ++layer);
    args_add_list(&a, &k->lab->boot.kernel_args, "", ++layer);
    if (k->machine)
        args_add_list(&a, &k->machine->kernel_args, "", ++layer);
    ++layer;
    if (k->log_sink) {
        char *arg = bd_xasprintf("talos.logging.kernel=tcp://%s/", k->log_sink);
        args_add(&a, arg, layer);
        free(arg);
    }
    if (k->config_url) {
        char *arg = bd_xasprintf("talos.config=%s", k->config_url);
        args_add(&a, arg, layer);
        free(arg);
    }
    for (size_t i = 0; i < a.n; i++) {
        bd_buf_printf(out, "%s%s", i ? " " : "", a.v[i]);
        free(a.v[i]);
    }
    free(a.v);
    free(a.layer);
}
