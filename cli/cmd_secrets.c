/* bootctl secrets export NAMESPACE/NAME -o FILE: a live Secret saved as a manifest for
 * cluster.bootstrap_secrets (0600, written atomically): the backup step to run once
 * after the sealed-secrets controller first starts, so that a fresh rebuild can put its
 * key pair back before GitOps applies the first SealedSecret. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: bootctl secrets export NAMESPACE/NAME -o FILE\n", f);
}

int cli_cmd_secrets(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'}, {0}};
    const char *out = NULL;
    if (argc < 2 || strcmp(argv[1], "export")) {
        usage(stderr);
        return 2;
    }
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc - 1, argv + 1, "o:", opts, NULL)) != -1) {
        if (ch != 'o') {
            usage(stderr);
            return 2;
        }
        out = optarg;
    }
    const char *id = optind + 1 == argc - 1 ? argv[1 + optind] : NULL;
    const char *slash = id ? strchr(id, '/') : NULL;
    if (!out || !slash || slash == id || !slash[1] || strchr(slash + 1, '/')) {
        usage(stderr);
        return 2;
    }
    char ns[64], name[254];
    snprintf(ns, sizeof ns, "%.*s", (int)(slash - id), id);
    snprintf(name, sizeof name, "%s", slash + 1);
    if (!bd_dns_label_ok(ns) || !bd_dns_name_ok(name)) {
        fprintf(stderr, "bootctl: %s: not NAMESPACE/NAME\n", id);
        return 2;
    }
    char *path = bd_xasprintf("/cluster/secret?namespace=%s&name=%s", ns, name);
    int code;
    cJSON *j = cli_call(c, "GET", path, NULL, &code);
    free(path);
    if (!j)
        return code;
    struct bd_node *n = bd_node_from_json(j);
    cJSON_Delete(j);
    struct bd_buf y;
    bd_buf_init(&y);
    bd_yaml_emit(&y, n);
    bd_node_free(n);
    struct bd_err err;
    int rc = 0;
    if (cli_put(out, y.data, y.len, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        rc = 1;
    } else if (strcmp(out, "-")) {
        printf("Secret %s/%s saved to %s (0600); list it under cluster.bootstrap_secrets and keep "
               "it with secrets.yaml, off the cluster\n",
               ns, name, out);
    }
    bd_buf_free(&y);
    return rc;
}
