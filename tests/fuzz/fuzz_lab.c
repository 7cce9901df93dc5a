/* lab.yaml as bootd loads it (decode and checks), and a machines.d file checked against a
 * fixed lab as `bootctl machine adopt` does. */
#include "fuzz.h"
#include "../../lab/lab.h"

#include <stdio.h>
#include <unistd.h>

static const char base_lab[] =
    "cluster: {name: f, talos_version: v1.13.9, vip: 192.0.2.10}\n"
    "lan: {interface: eth0, dhcp: full, subnet: 192.0.2.0/24, boot_server: 192.0.2.5,"
    " range: [192.0.2.100, 192.0.2.200]}\n"
    "machines:\n  - {name: cp-1, mac: \"52:54:00:00:00:01\", role: controlplane}\n";

static char dir[64];

static char *write_tmp(const char *name, const void *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/bootd-fuzz-lab-XXXXXX");
        if (!mkdtemp(dir))
            abort();
    }
    char *path = bd_path_join(dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool machine_file = size && data[0] == 'M'; /* one corpus for both: M + machines.d */
    struct lab *lab;
    struct bd_err err;
    char *path;
    if (machine_file) {
        path = write_tmp("lab.yaml", base_lab, sizeof base_lab - 1);
        char *text = fuzz_text(data + 1, size - 1);
        if (lab_load(path, "machines.d/fuzz.yaml", text, &lab, &err) == 0)
            lab_free(lab);
        free(text);
    } else {
        path = write_tmp("lab.yaml", data, size);
        if (lab_load(path, NULL, NULL, &lab, &err) == 0)
            lab_free(lab);
    }
    free(path);
    return 0;
}
