/* bootd: serves PXE boot scripts, Talos images and machine configs for one lab. */
#include "server.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: bootd --lab PATH [options]\n"
          "\n"
          "  --lab PATH              lab.yaml to serve (required)\n"
          "  --state-dir DIR         state.db, image cache, admin token (default /var/lib/bootd)\n"
          "  --assets DIR            image cache to serve under /assets (default STATE/images)\n"
          "  --admin-token-file F    bearer token for /api/v1 (default STATE/admin.token,\n"
          "                          created 0600 on first start)\n"
          "  --viewer-token-file F   read-only token for /api/v1 (default STATE/viewer.token,\n"
          "                          created 0600 on first start)\n"
          "  --admin-port N          the admin API over TLS on port N (a certificate bootd\n"
          "                          makes; bootctl pins it)\n"
          "  --admin-tls-cert F      with --admin-tls-key F: the admin API's certificate (PEM,\n"
          "                          leaf first) and key (PEM, unencrypted, mode 0600)\n"
          "  --admin-plain-lan       serve /api/v1 in clear text to the LAN too (by default\n"
          "                          only to this host: the token would cross the LAN)\n"
          "  --listen ADDR           IPv4 address to listen on (default 0.0.0.0)\n"
          "  --port N                port (default lan.http_port from lab.yaml)\n"
          "  --threads N             HTTP worker threads (default: one per CPU)\n"
          "  --dnsmasq PATH          dnsmasq binary (default: dnsmasq on PATH)\n"
          "  --talos-port N          port of the Talos API on every machine (default 50000;\n"
          "                          for tests and port-forwarded labs)\n"
          "  --events-max N          events kept in state.db, newest first (default 100000)\n"
          "  --events-max-age D      and for how long, e.g. 30d (default 90d)\n"
          "  --discovered-max N      machines outside lab.yaml recorded (default 4096)\n"
          "  --boot-window D         a UKI sent whose config is not asked for within D is\n"
          "                          a failed boot (default 180s)\n"
          "  --debug                 verbose logging\n"
          "  --version               print bootd's version\n"
          "\n"
          "Signals: SIGHUP reloads lab.yaml (a broken one is refused and the old one kept);\n"
          "SIGTERM and SIGINT stop.\n",
          f);
}

int main(int argc, char **argv)
{
    struct server_opts o = {.state_dir = "/var/lib/bootd", .port = -1, .talos_port = 50000};
    static const struct option longopts[] = {
        {"lab", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'},
        {"assets", required_argument, NULL, 'a'},
        {"admin-token-file", required_argument, NULL, 't'},
        {"viewer-token-file", required_argument, NULL, 'V'},
        {"admin-port", required_argument, NULL, 'S'},
        {"admin-tls-cert", required_argument, NULL, 'C'},
        {"admin-tls-key", required_argument, NULL, 'K'},
        {"admin-plain-lan", no_argument, NULL, 'N'},
        {"listen", required_argument, NULL, 'L'},
        {"port", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 'T'},
        {"dnsmasq", required_argument, NULL, 'D'},
        {"talos-port", required_argument, NULL, 'P'},
        {"events-max", required_argument, NULL, 'E'},
        {"events-max-age", required_argument, NULL, 'A'},
        {"discovered-max", required_argument, NULL, 'M'},
        {"boot-window", required_argument, NULL, 'W'},
        {"debug", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l': o.lab_path = optarg; break;
        case 's': o.state_dir = optarg; break;
        case 'a': o.assets_dir = optarg; break;
        case 't': o.admin_token_file = optarg; break;
        case 'V': o.viewer_token_file = optarg; break;
        case 'S': o.admin_port = atoi(optarg); break;
        case 'C': o.admin_tls_cert = optarg; break;
        case 'K': o.admin_tls_key = optarg; break;
        case 'N': o.admin_plain_lan = true; break;
        case 'L': o.listen_addr = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'T': o.threads = (unsigned)atoi(optarg); break;
        case 'D': o.dnsmasq = optarg; break;
        case 'P': o.talos_port = atoi(optarg); break;
        case 'E': o.events_max = atoll(optarg); break;
        case 'A':
            if (bd_duration_parse(optarg, &o.events_max_age_s) < 0) {
                fprintf(stderr, "bootd: --events-max-age: \"%s\" is not a duration\n", optarg);
                return 2;
            }
            break;
        case 'M': o.discovered_max = atoll(optarg); break;
        case 'W': {
            int64_t sec;
            if (bd_duration_parse(optarg, &sec) < 0 || sec <= 0) {
                fprintf(stderr, "bootd: --boot-window: \"%s\" is not a duration\n", optarg);
                return 2;
            }
            o.boot_window_ms = sec * 1000;
            break;
        }
        case 'd': bd_log_set_level(BD_LOG_DEBUG); break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("bootd %s\n", BD_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.lab_path || optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Signals are taken synchronously by this thread; the HTTP threads never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    static struct server s;
    struct bd_err err;
    if (server_start(&s, &o, &err) < 0) {
        fprintf(stderr, "bootd: %s\n", err.msg);
        server_stop(&s);
        return 1;
    }
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            bd_info("lab: SIGHUP, reloading %s", o.lab_path);
            if (server_reload(&s, &err) < 0)
                continue; /* logged, kept for status; the previous lab goes on */
        } else {
            bd_info("bootd: stopping");
            break;
        }
    }
    server_stop(&s);
    return 0;
}
