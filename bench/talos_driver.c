/* Timing driver for bench_talos.py, built by it against libbootd.a:
 *   talos_driver render LAB.yaml SCHEMATIC MACHINE COUNT  -> one render time (ns) a line
 *   talos_driver secrets COUNT                            -> one generation time (ns) a line
 * Renders go through talos_machine_config as bootd's /config route calls it, with the
 * lab prepared once (as bootd does per lab snapshot). */
#include "../talos/talos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int render(const char *lab_path, const char *schematic, const char *name, int count)
{
    struct lab *lab;
    struct talos_cluster *tc;
    struct bd_err err;
    if (lab_load(lab_path, NULL, NULL, &lab, &err) < 0 ||
        talos_cluster_new(lab, schematic, &tc, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const struct lab_machine *m = lab_machine_by_name(lab, name);
    if (!m) {
        fprintf(stderr, "no machine %s\n", name);
        return 1;
    }
    size_t size = 0;
    for (int i = 0; i < count; i++) {
        char *out;
        long long t0 = (bd_mono_us() * 1000LL);
        if (talos_machine_config(tc, m, &out, &size, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        long long t1 = (bd_mono_us() * 1000LL);
        free(out);
        printf("%lld\n", t1 - t0);
    }
    fprintf(stderr, "%zu bytes\n", size);
    talos_cluster_free(tc);
    lab_free(lab);
    return 0;
}

static int secrets(int count)
{
    for (int i = 0; i < count; i++) {
        struct talos_secrets *s;
        struct bd_err err;
        long long t0 = (bd_mono_us() * 1000LL);
        if (talos_secrets_generate(&s, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        printf("%lld\n", (bd_mono_us() * 1000LL) - t0);
        talos_secrets_free(s);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "render"))
        return render(argv[2], argv[3], argv[4], atoi(argv[5]));
    if (argc == 3 && !strcmp(argv[1], "secrets"))
        return secrets(atoi(argv[2]));
    fprintf(stderr, "usage: talos_driver render LAB SCHEMATIC MACHINE COUNT | secrets COUNT\n");
    return 2;
}
