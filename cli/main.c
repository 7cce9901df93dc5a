/* bootctl: the admin CLI for bootd. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: bootctl [--url URL] [--token-file FILE] [-o table|json] COMMAND ...\n"
          "\n"
          "Offline:\n"
          "  validate PATH                  check lab.yaml (and machines.d/) as bootd would\n"
          "  gen secrets LAB                a new cluster secrets bundle (cluster.secrets, 0600)\n"
          "  gen config LAB [--machine NAME] [-o DIR|FILE|-]\n"
          "                                 the Talos configs bootd serves (NAME.yaml each)\n"
          "  gen talosconfig LAB [-o FILE]  Talos API client config (os:admin), ./talosconfig\n"
          "  gen kubeconfig LAB [-o FILE]   admin kubeconfig, ./kubeconfig\n"
          "  image pull                     download the lab's Talos images, pinned in images.lock\n"
          "  image list                     what the image cache holds and what the lab uses\n"
          "  image import FILE...           add kernel/initramfs/cmdline files for offline labs\n"
          "  image gc [--dry-run]           remove images no machine in lab.yaml boots\n"
          "                                 (image commands take --lab PATH, --state-dir DIR,\n"
          "                                 --assets DIR; a running bootd is told of changes)\n"
          "  gitops render [--kustomize TOOL|builtin] PATH...\n"
          "                                 the objects bootd would apply from PATH\n"
          "\n"
          "Talking to bootd:\n"
          "  machines [list]                machines and their lifecycle state\n"
          "  machines show NAME|MAC         one machine and its timeline\n"
          "  machine adopt MAC --name NAME --role controlplane|worker [--ip ADDR]\n"
          "                                 add a discovered machine (writes machines.d/NAME.yaml)\n"
          "  machine reinstall NAME         install again on the next network boot\n"
          "  events [NAME|MAC]              a machine's timeline; without NAME, audit events\n"
          "  logs NAME|MAC                  the machine's kernel log, as Talos streamed it\n"
          "  reload                         re-read lab.yaml (a broken one is refused)\n"
          "  status                         what bootd serves, the cluster's phase and each\n"
          "                                 machine's state and Talos API\n"
          "  bootstrap [--timeout 10m]      bootstrap the cluster now (for cluster.bootstrap:\n"
          "                                 manual) and wait until Talos says it is done\n"
          "  kubeconfig [-o FILE|-] [--node NAME]\n"
          "                                 the admin kubeconfig from a control plane's Talos\n"
          "                                 API (./kubeconfig), compared with bootd's own\n"
          "  etcd snapshot FILE [--node NAME]\n"
          "                                 an etcd snapshot from a control plane, checked\n"
          "                                 against etcd's own SHA-256\n"
          "  gitops [status]                GitOps: revision, applied, pruned, unhealthy, errors\n"
          "  gitops sync [--wait]           sync now (and wait for the outcome)\n"
          "\n"
          "bootd's URL: --url, BOOTD_URL, `url:` in ~/.config/bootctl/config.yaml, or\n"
          "http://127.0.0.1:8080. Admin token: --token-file, BOOTD_TOKEN, BOOTD_TOKEN_FILE,\n"
          "`token_file:` in the config file, or /var/lib/bootd/admin.token.\n",
          f);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *token_file = NULL, *output = "table";
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token-file", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int ch;
    /* '+' stops at the command so its own options are left for it */
    while ((ch = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 't': token_file = optarg; break;
        case 'o': output = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(output, "table") && strcmp(output, "json")) {
        fprintf(stderr, "bootctl: -o takes table or json\n");
        return 2;
    }
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (!strcmp(cmd, "validate"))
        return cli_cmd_validate(sub_argc, sub_argv);
    if (!strcmp(cmd, "gen"))
        return cli_cmd_gen(sub_argc, sub_argv);
    if (!strcmp(cmd, "image")) {
        struct cli c = {.json = !strcmp(output, "json")};
        int rc = cli_cmd_image(&c, url, token_file, sub_argc, sub_argv);
        cli_free(&c);
        return rc;
    }
    if (!strcmp(cmd, "gitops") && sub_argc > 1 && !strcmp(sub_argv[1], "render"))
        return cli_cmd_gitops_render(sub_argc - 1, sub_argv + 1, !strcmp(output, "json"));

    static const struct {
        const char *name;
        int (*fn)(struct cli *, int, char **);
    } online[] = {
        {"machines", cli_cmd_machines}, {"machine", cli_cmd_machine}, {"events", cli_cmd_events},
        {"reload", cli_cmd_reload},     {"status", cli_cmd_status},     {"logs", cli_cmd_logs},
        {"dhcp-event", cli_cmd_dhcp_event}, {"gitops", cli_cmd_gitops},
        {"bootstrap", cli_cmd_bootstrap}, {"etcd", cli_cmd_etcd}, {"kubeconfig", cli_cmd_kubeconfig},
    };
    for (size_t i = 0; i < sizeof online / sizeof online[0]; i++) {
        if (strcmp(cmd, online[i].name))
            continue;
        struct cli c = {.json = !strcmp(output, "json")};
        struct bd_err err;
        int rc = 1;
        if (cli_resolve(&c, url, token_file, &err) < 0)
            fprintf(stderr, "bootctl: %s\n", err.msg);
        else
            rc = online[i].fn(&c, sub_argc, sub_argv);
        cli_free(&c);
        return rc;
    }
    fprintf(stderr, "bootctl: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
