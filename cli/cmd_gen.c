/* bootctl gen secrets|config|talosconfig|kubeconfig: offline, from lab.yaml and its
 * secrets bundle. Everything is made in memory first; files are written only when all
 * of it worked, each atomically and readable by its owner only (they hold keys). */
#include "cli.h"

#include "../images/images.h"
#include "../talos/talos.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: bootctl gen secrets LAB.yaml\n"
    "       bootctl gen config LAB.yaml [--machine NAME] [-o DIR | -o FILE | -o -]\n"
    "       bootctl gen talosconfig LAB.yaml [-o FILE | -o -]\n"
    "       bootctl gen kubeconfig LAB.yaml [-o FILE | -o -]\n";

struct gen_args {
    const char *lab_path, *machine, *out;
};

static int parse_args(int argc, char **argv, bool with_machine, struct gen_args *a)
{
    static const struct option opts[] = {
        {"machine", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {0},
    };
    memset(a, 0, sizeof *a);
    optind = 0; /* glibc: 0 also resets the ordering mode main's "+" parse set */
    int ch;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (ch == 'm' && with_machine)
            a->machine = optarg;
        else if (ch == 'o')
            a->out = optarg;
        else
            return -1;
    }
    if (optind != argc - 1)
        return -1;
    a->lab_path = argv[optind];
    return 0;
}

static int gen_secrets(const struct gen_args *a, const struct lab *lab, struct bd_err *err)
{
    const char *path = lab->cluster.secrets_file;
    if (a->out)
        return bd_err_set(err, "gen secrets writes cluster.secrets from lab.yaml (%s); -o is not taken",
                          path);
    if (access(path, F_OK) == 0)
        return bd_err_set(err,
                          "%s already exists; bootctl never replaces a secrets bundle (a cluster "
                          "made from it would lose its CAs). Move it away first if you mean it",
                          path);
    struct talos_secrets *s;
    if (talos_secrets_generate(&s, err) < 0)
        return -1;
    struct bd_buf b;
    bd_buf_init(&b);
    talos_secrets_emit(s, &b);
    int rc = cli_put(path, b.data, b.len, err);
    bd_buf_free(&b);
    talos_secrets_free(s);
    return rc;
}

/* Every machine's config (or the one asked for), all rendered before any is written. */
static int gen_config(const struct gen_args *a, const struct lab *lab, struct bd_err *err)
{
    const struct lab_machine *only = NULL;
    if (a->machine && !(only = lab_machine_by_name(lab, a->machine)))
        return bd_err_set(err, "%s: no machine named \"%s\"", lab->path, a->machine);
    char schematic[65];
    struct talos_cluster *tc;
    if (images_schematic_id(lab, schematic, err) < 0 || talos_cluster_new(lab, schematic, &tc, err) < 0)
        return -1;
    size_t n = only ? 1 : lab->nmachines;
    char **texts = bd_xcalloc(n, sizeof *texts);
    size_t *lens = bd_xcalloc(n, sizeof *lens);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = talos_machine_config(tc, only ? only : &lab->machines[i], &texts[i], &lens[i], err);
    if (rc == 0 && !only && a->out)
        rc = bd_mkdir_p(a->out, 0700, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct lab_machine *m = only ? only : &lab->machines[i];
        char *file = NULL;
        if (only && (!a->out || !strcmp(a->out, "-")))
            file = bd_xstrdup("-");
        else if (only)
            file = bd_xstrdup(a->out);
        else {
            char *name = bd_xasprintf("%s.yaml", m->name);
            file = bd_path_join(a->out ? a->out : ".", name);
            free(name);
        }
        rc = cli_put(file, texts[i], lens[i], err);
        free(file);
    }
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    talos_cluster_free(tc);
    return rc;
}

static int gen_client(const struct gen_args *a, const struct lab *lab, bool kube, struct bd_err *err)
{
    struct talos_secrets *s;
    if (talos_secrets_load(lab->cluster.secrets_file, &s, err) < 0)
        return -1;
    struct bd_buf b;
    bd_buf_init(&b);
    int rc = kube ? talos_kubeconfig(lab, s, &b, err) : talos_talosconfig(lab, s, &b, err);
    if (rc == 0)
        rc = cli_put(a->out ? a->out : kube ? "kubeconfig" : "talosconfig", b.data, b.len, err);
    bd_buf_free(&b);
    talos_secrets_free(s);
    return rc;
}

int cli_cmd_gen(int argc, char **argv)
{
    static const char *const what[] = {"secrets", "config", "talosconfig", "kubeconfig", NULL};
    int which = -1;
    for (int i = 0; argc >= 2 && what[i]; i++)
        if (!strcmp(argv[1], what[i]))
            which = i;
    struct gen_args a;
    if (which < 0 || parse_args(argc - 1, argv + 1, which == 1, &a) < 0) {
        fputs(usage_text, stderr);
        return 2;
    }
    struct lab *lab;
    struct bd_err err;
    if (lab_load(a.lab_path, NULL, NULL, &lab, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = which == 0   ? gen_secrets(&a, lab, &err)
             : which == 1 ? gen_config(&a, lab, &err)
                          : gen_client(&a, lab, which == 3, &err);
    if (rc < 0)
        fprintf(stderr, "bootctl: %s\n", err.msg);
    lab_free(lab);
    return rc < 0 ? 1 : 0;
}
