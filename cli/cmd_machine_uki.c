/* bootctl machine uki NAME -o FILE: the UKI bootd would serve a machine, signed as bootd
 * signs it, for a USB stick or a check with sbverify. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct uki_sink {
    struct bd_file_atomic f;
    struct bd_err err;
    uint64_t size;
    bool failed;
};

static int uki_write(const void *p, size_t n, void *ud)
{
    struct uki_sink *x = ud;
    if (bd_file_atomic_write(&x->f, p, n, &x->err) < 0) {
        x->failed = true;
        return -1;
    }
    x->size += n;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bootctl machine uki NAME -o FILE [--arch amd64|arm64] "
                    "[--config-token]\n");
    return 2;
}

int cli_machine_uki(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"arch", required_argument, NULL, 'a'},
                                         {"config-token", no_argument, NULL, 't'},
                                         {0}};
    const char *out = NULL, *arch = NULL;
    bool token = false;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (ch == 'o')
            out = optarg;
        else if (ch == 'a')
            arch = optarg;
        else if (ch == 't')
            token = true;
        else
            return usage();
    }
    if (!out || optind != argc - 1 || !strcmp(out, "-"))
        return usage();
    const char *id = argv[optind];
    if (arch && strcmp(arch, "amd64") && strcmp(arch, "arm64"))
        return usage();
    char *base = cli_machine_path("/machines/%s/uki", id);
    char *path = bd_xasprintf("%s?config=%s%s%s", base, token ? "token" : "none",
                              arch ? "&arch=" : "", arch ? arch : "");
    free(base);
    /* 0600 either way: with a token the file is a key to the machine's config */
    struct uki_sink x = {0};
    struct bd_err err;
    if (bd_file_atomic_begin(&x.f, out, 0600, &err) < 0) {
        free(path);
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    int rc = cli_download(c, path, uki_write, &x, &err);
    free(path);
    if (x.failed)
        err = x.err;
    if (rc < 0 || x.failed) {
        bd_file_atomic_abort(&x.f);
        fprintf(stderr, "bootctl: machine uki %s: %s\n", id, err.msg);
        return 1;
    }
    if (bd_file_atomic_commit(&x.f, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    printf("%s: UKI saved to %s (%llu bytes)\n", id, out, (unsigned long long)x.size);
    if (token)
        printf("it carries a config token: it boots %s once, from %s's own address, within "
               "boot.token_max_age; each download replaces the machine's earlier token\n",
               id, id);
    else
        printf("no talos.config= in its command line: Talos starts in maintenance mode "
               "(--config-token for one that fetches its config)\n");
    return 0;
}
