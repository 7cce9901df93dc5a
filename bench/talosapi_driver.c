/* Timing driver for bench_talosapi.py, built by it against libbootd.a:
 *   talosapi_driver version LAB.yaml HOST PORT COUNT   -> one Version call's time (ns) a line
 *   talosapi_driver snapshot LAB.yaml HOST PORT FILE   -> the EtcdSnapshot stream's time (ns)
 * Each call is what bootd's reconciler and admin API make: a new TLS connection with
 * bootd's os:admin certificate, minted once from the lab's secrets bundle. */
#include "../talos/talos.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: talosapi_driver version|snapshot LAB HOST PORT COUNT|FILE\n");
        return 2;
    }
    struct bd_err err;
    struct lab *lab;
    struct talos_cluster *tc;
    struct talos_creds cr;
    if (lab_load(argv[2], NULL, NULL, &lab, &err) < 0 ||
        talos_cluster_new(lab, "", &tc, &err) < 0 ||
        talos_api_creds(lab, talos_cluster_secrets(tc, NULL), &cr, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    struct talos_node n = {.host = argv[3], .port = atoi(argv[4]), .creds = &cr};
    int rc = 0, code;
    if (!strcmp(argv[1], "version")) {
        for (int i = 0; i < atoi(argv[5]) && rc == 0; i++) {
            struct talos_version v;
            long long t0 = (bd_mono_us() * 1000LL);
            rc = talos_api_version(&n, &v, &code, &err);
            printf("%lld\n", (bd_mono_us() * 1000LL) - t0);
        }
    } else {
        int fd = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        struct talos_snapshot_info info;
        long long t0 = (bd_mono_us() * 1000LL);
        rc = fd < 0 ? -1 : talos_api_etcd_snapshot(&n, fd, &info, &code, &err);
        printf("%lld\n", (bd_mono_us() * 1000LL) - t0);
        if (fd >= 0)
            close(fd);
    }
    if (rc < 0)
        fprintf(stderr, "%s\n", err.msg);
    talos_creds_free(&cr);
    talos_cluster_free(tc);
    lab_free(lab);
    return rc < 0 ? 1 : 0;
}
