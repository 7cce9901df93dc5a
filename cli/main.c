/* bootctl: the admin CLI for bootd. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Commands whose own -o names an output file rather than the global table|json (sub:
 * the word after the command, or NULL). */
static bool own_dash_o(const char *cmd, const char *sub)
{
    return cmd && (!strcmp(cmd, "gen") || !strcmp(cmd, "kubeconfig") ||
                   !strcmp(cmd, "secrets") || (!strcmp(cmd, "vm") && sub && !strcmp(sub, "csi")) ||
                   (!strcmp(cmd, "machine") && sub && !strcmp(sub, "uki")));
}

/* How many words a global option at argv[i] takes (1 or 2), or 0 for none. */
static int global_opt(char **argv, int argc, int i, const char *cmd, const char *sub)
{
    static const char *const with_value[] = {"--url", "--token-file", "--output"};
    const char *a = argv[i];
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
        size_t n = strlen(with_value[k]);
        if (!strncmp(a, with_value[k], n) && a[n] == '=')
            return 1;
        if (!strcmp(a, with_value[k]))
            return i + 1 < argc ? 2 : 1;
    }
    if (!strncmp(a, "-o", 2) && !own_dash_o(cmd, sub))
        return a[2] ? 1 : (i + 1 < argc ? 2 : 1);
    if (!strcmp(a, "--version"))
        return 1;
    if (!cmd && (!strcmp(a, "-h") || !strcmp(a, "--help")))
        return 1;
    return 0;
}

/* Global options may stand anywhere ("bootctl machines -o json"): they are moved in
 * front of the command, where getopt reads them; "--" ends the search. */
static void globals_first(int argc, char **argv)
{
    char **globals = bd_xcalloc((size_t)argc, sizeof *globals);
    char **rest = bd_xcalloc((size_t)argc, sizeof *rest);
    int ng = 0, nr = 0;
    const char *cmd = NULL, *sub = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            while (i < argc)
                rest[nr++] = argv[i++];
            break;
        }
        int n = global_opt(argv, argc, i, cmd, sub);
        if (n) {
            for (int k = 0; k < n; k++)
                globals[ng++] = argv[i + k];
            i += n - 1;
            continue;
        }
        if (cmd && !sub && argv[i][0] != '-')
            sub = argv[i];
        if (!cmd && argv[i][0] != '-')
            cmd = argv[i];
        rest[nr++] = argv[i];
    }
    memcpy(argv + 1, globals, (size_t)ng * sizeof *argv);
    memcpy(argv + 1 + ng, rest, (size_t)nr * sizeof *argv);
    free(globals);
    free(rest);
}

static void usage(FILE *f)
{
    fputs("usage: bootctl [--url URL] [--token-file FILE] [-o table|json] COMMAND ...\n"
          "       bootctl --version\n"
          "\n"
          "The global options may also follow the command (bootctl machines -o json).\n"
          "Every --timeout takes a duration: 30, 30s, 5m, 2h or 1d.\n"
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
          "  vm plan|apply [NAME...]        the lab's Proxmox VMs: what would change, make it so\n"
          "  vm start|stop|shutdown|reset|destroy [--yes] NAME...\n"
          "  vm volumes [--owner VMID]      volumes on proxmox.storage (the CSI plugin's vm-9999-*)\n"
          "                                 (vm commands take --lab PATH and talk to Proxmox)\n"
          "\n"
          "Talking to bootd:\n"
          "  machines [list]                machines and their lifecycle state\n"
          "  machines show NAME|MAC         one machine and its timeline\n"
          "  machine adopt MAC --name NAME --role controlplane|worker [--ip ADDR]\n"
          "                                 add a discovered machine (writes machines.d/NAME.yaml)\n"
          "  machine reinstall NAME         install again on the next network boot\n"
          "  machine uki NAME -o FILE [--arch A] [--config-token]\n"
          "                                 the signed UKI bootd would serve NAME (USB boot,\n"
          "                                 sbverify); --config-token: one that fetches its config\n"
          "  machine replace NAME           a dead machine's etcd member removed, the machine\n"
          "                                 reinstalled, followed until it has rejoined\n"
          "  plan [NAME...]                 per installed machine: the config it would get now\n"
          "                                 against the one it last got (secrets redacted),\n"
          "                                 and Talos's verdict (live, reboot, refused)\n"
          "  machine diff NAME              the same for one machine\n"
          "  apply [NAME...] [--mode auto|no-reboot|reboot|staged|try] [--timeout 10m]\n"
          "                                 push changed configs, control planes first, one\n"
          "                                 machine at a time, etcd healthy before each\n"
          "  upgrade talos VERSION [NAME...] [--timeout 10m]\n"
          "                                 rolling Talos upgrade, followed machine by machine\n"
          "  upgrade kubernetes VERSION [NAME...] [--timeout 10m]\n"
          "                                 rolling Kubernetes upgrade to lab.yaml's\n"
          "                                 cluster.kubernetes_version: configs applied, each\n"
          "                                 Node followed to kubelet VERSION and Ready\n"
          "  apply --status, upgrade status the day-2 job bootd runs (or ran last)\n"
          "  events [NAME|MAC]              a machine's timeline; without NAME, audit events\n"
          "  logs NAME|MAC                  the machine's kernel log, as Talos streamed it\n"
          "  reload                         re-read lab.yaml (a broken one is refused)\n"
          "  status                         what bootd serves, the cluster's phase and each\n"
          "                                 machine's state and Talos API\n"
          "  bootstrap [--timeout DURATION] bootstrap the cluster now (for cluster.bootstrap:\n"
          "                                 manual) and wait until Talos says it is done\n"
          "  kubeconfig [-o FILE|-] [--node NAME]\n"
          "                                 the admin kubeconfig from a control plane's Talos\n"
          "                                 API (./kubeconfig), compared with bootd's own\n"
          "  etcd snapshot FILE [--node NAME]\n"
          "                                 an etcd snapshot from a control plane, checked\n"
          "                                 against etcd's own SHA-256\n"
          "  secrets export NS/NAME -o FILE a live Secret as a cluster.bootstrap_secrets file\n"
          "  rebuild [--etcd-snapshot FILE|latest] [--skip-hash-check] [--yes]\n"
          "                                 reinstall every machine and restore etcd (or\n"
          "                                 bootstrap afresh); shows the plan first\n"
          "  etcd members                   etcd's members, through a control plane\n"
          "  etcd snapshots [--lab PATH]    the scheduled etcd backups (cluster.etcd_backup),\n"
          "                                 read from the backup dir; bootd need not run\n"
          "  gitops [status]                GitOps: revision, applied, pruned, unhealthy, errors\n"
          "  gitops sync [--wait] [--timeout DURATION]\n"
          "                                 sync now; --wait: for a sync that starts after\n"
          "                                 the request, its outcome (exit 1 when it fails\n"
          "                                 or none can run; --timeout 10m by default)\n"
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
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    globals_first(argc, argv);
    int ch;
    /* '+' stops at the command so its own options are left for it */
    while ((ch = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 't': token_file = optarg; break;
        case 'o': output = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("bootctl %s\n", BD_VERSION); return 0;
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
    if (!strcmp(cmd, "etcd") && sub_argc > 1 && !strcmp(sub_argv[1], "snapshots")) {
        struct cli c = {.json = !strcmp(output, "json")}; /* offline: the dir, not bootd */
        int rc = cli_etcd_snapshots(&c, sub_argc - 1, sub_argv + 1);
        cli_free(&c);
        return rc;
    }
    if (!strcmp(cmd, "vm"))
        return cli_cmd_vm(sub_argc, sub_argv, !strcmp(output, "json"));
    if (!strcmp(cmd, "gitops") && sub_argc > 1 && !strcmp(sub_argv[1], "render"))
        return cli_cmd_gitops_render(sub_argc - 1, sub_argv + 1, !strcmp(output, "json"));
    if (!strcmp(cmd, "gitops") && sub_argc > 1 && !strcmp(sub_argv[1], "plan"))
        return cli_cmd_gitops_plan(sub_argc - 1, sub_argv + 1, !strcmp(output, "json"));

    static const struct {
        const char *name;
        int (*fn)(struct cli *, int, char **);
    } online[] = {
        {"machines", cli_cmd_machines}, {"machine", cli_cmd_machine}, {"events", cli_cmd_events},
        {"reload", cli_cmd_reload},     {"status", cli_cmd_status},     {"logs", cli_cmd_logs},
        {"dhcp-event", cli_cmd_dhcp_event}, {"gitops", cli_cmd_gitops},
        {"bootstrap", cli_cmd_bootstrap}, {"etcd", cli_cmd_etcd}, {"kubeconfig", cli_cmd_kubeconfig},
        {"rebuild", cli_cmd_rebuild}, {"secrets", cli_cmd_secrets},
        {"plan", cli_cmd_plan}, {"apply", cli_cmd_apply}, {"upgrade", cli_cmd_upgrade},
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
