#include "helpers.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *tmpdir_new(void)
{
    char *t = bd_xstrdup("/tmp/bootd-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(t));
    return t;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

void tmpdir_remove(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *read_text(const char *path)
{
    char *text;
    struct bd_err err;
    cr_assert_eq(bd_file_read(path, &text, NULL, &err), 0, "%s", err.msg);
    return text;
}

char *write_file(const char *dir, const char *name, const char *text)
{
    char *path = bd_path_join(dir, name);
    char *parent = bd_path_dir(path);
    struct bd_err err;
    cr_assert_eq(bd_mkdir_p(parent, 0755, &err), 0, "%s", err.msg);
    free(parent);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

const char lab_head[] = "cluster:\n"
                        "  name: test\n"
                        "  talos_version: v1.13.9\n"
                        "lan:\n"
                        "  interface: br0\n"
                        "  dhcp: full\n"
                        "  subnet: 192.0.2.0/24\n"
                        "  range: [192.0.2.100, 192.0.2.199]\n"
                        "  gateway: 192.0.2.1\n"
                        "  boot_server: 192.0.2.1\n";

struct lab *load_lab(const char *dir, struct bd_err *err)
{
    char *path = bd_path_join(dir, "lab.yaml");
    struct lab *lab = NULL;
    if (lab_load(path, NULL, NULL, &lab, err) < 0)
        lab = NULL;
    free(path);
    return lab;
}
