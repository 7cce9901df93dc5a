#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char fixture_machines[] =
    "machines:\n"
    "  - {name: cp-1, mac: \"52:54:00:00:00:01\", role: controlplane, ip: 192.0.2.11}\n"
    "  - {name: w-1, mac: \"52:54:00:00:00:02\", role: worker, ip: 192.0.2.12}\n";

char *fixture_lab(const char *cluster_extra, const char *machines)
{
    char *dir = tmpdir_new();
    char *text = bd_xasprintf("cluster:\n"
                              "  name: base\n"
                              "  endpoint: https://base:6443\n"
                              "  talos_version: v1.13.9\n"
                              "  kubernetes_version: 1.28.0\n"
                              "%s"
                              "lan:\n"
                              "  interface: br0\n"
                              "  dhcp: full\n"
                              "  subnet: 192.0.2.0/24\n"
                              "  range: [192.0.2.100, 192.0.2.199]\n"
                              "  gateway: 192.0.2.1\n"
                              "  dns: [192.0.2.53]\n"
                              "  boot_server: 192.0.2.1\n"
                              "%s",
                              cluster_extra ? cluster_extra : "", machines ? machines : fixture_machines);
    free(write_file(dir, "lab.yaml", text));
    free(text);
    fixture_secrets(dir);
    return dir;
}

void fixture_secrets(const char *dir)
{
    char *bundle = read_text(FIXTURES "secrets-reference.yaml");
    char *path = write_file(dir, "secrets.yaml", bundle);
    cr_assert_eq(chmod(path, 0600), 0);
    free(path);
    free(bundle);
}

void fixture_done(struct talos_cluster *tc, struct lab *lab, char *dir)
{
    talos_cluster_free(tc);
    lab_free(lab);
    tmpdir_remove(dir);
    free(dir);
}

struct talos_cluster *fixture_cluster(const char *dir, struct lab **lab)
{
    struct bd_err err;
    *lab = load_lab(dir, &err);
    cr_assert_not_null(*lab, "%s", err.msg);
    struct talos_cluster *tc;
    cr_assert_eq(talos_cluster_new(*lab, VANILLA, &tc, &err), 0, "%s", err.msg);
    return tc;
}

const char *fixture_cluster_error(const char *dir, struct bd_err *err)
{
    struct lab *lab = load_lab(dir, err);
    cr_assert_not_null(lab, "%s", err->msg);
    struct talos_cluster *tc;
    cr_assert_eq(talos_cluster_new(lab, VANILLA, &tc, err), -1, "expected an error");
    cr_assert_null(tc);
    lab_free(lab);
    return err->msg;
}

char *fixture_render(const struct talos_cluster *tc, const struct lab *lab, const char *name)
{
    const struct lab_machine *m = lab_machine_by_name(lab, name);
    cr_assert_not_null(m, "no machine %s", name);
    char *out;
    size_t len;
    struct bd_err err;
    cr_assert_eq(talos_machine_config(tc, m, &out, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(strlen(out), len);
    return out;
}

struct bd_yaml_doc fixture_parse(const char *text)
{
    struct bd_yaml_doc d;
    struct bd_err err;
    cr_assert_eq(bd_yaml_parse(text, strlen(text), "config", &d, &err), 0, "%s", err.msg);
    return d;
}

long fixture_doc(const struct bd_yaml_doc *d, const char *kind)
{
    for (size_t i = 0; i < d->ndocs; i++) {
        const char *k = talos_tree_str_at(d->docs[i], "kind");
        if (k && !strcmp(k, kind))
            return (long)i;
    }
    return -1;
}
