#include "helpers.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Test(file, atomic_write_replaces_and_sets_mode)
{
    char *dir = tmpdir_new();
    char *path = bd_path_join(dir, "secrets.yaml");
    struct bd_err err;
    cr_assert_eq(bd_file_write_atomic(path, "one\n", 4, 0600, &err), 0, "%s", err.msg);
    cr_assert_eq(bd_file_write_atomic(path, "two\n", 4, 0600, &err), 0, "%s", err.msg);
    char *text;
    size_t len;
    cr_assert_eq(bd_file_read(path, &text, &len, &err), 0);
    cr_assert_str_eq(text, "two\n");
    struct stat sb;
    stat(path, &sb);
    cr_assert_eq(sb.st_mode & 0777, 0600);
    cr_assert_eq(bd_file_check_private(path, &err), 0);
    chmod(path, 0644);
    cr_assert_eq(bd_file_check_private(path, &err), -1);
    cr_assert(strstr(err.msg, "run: chmod 600"), "%s", err.msg);
    /* no temp files left behind */
    char *cmd = bd_xasprintf("test $(ls -A %s | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
    free(text);
    free(path);
    free(dir);
}

Test(file, atomic_write_failure_keeps_old_file)
{
    char *dir = tmpdir_new();
    char *path = write_file(dir, "f", "old\n");
    chmod(dir, 0500); /* no new files in the directory */
    struct bd_err err;
    if (geteuid() == 0) {
        /* root ignores directory modes; use a missing directory instead */
        char *bad = bd_path_join(dir, "missing/f");
        cr_assert_eq(bd_file_write_atomic(bad, "new\n", 4, 0600, &err), -1);
        free(bad);
    } else {
        cr_assert_eq(bd_file_write_atomic(path, "new\n", 4, 0600, &err), -1);
    }
    cr_assert(strstr(err.msg, "cannot create temporary file"), "%s", err.msg);
    chmod(dir, 0700);
    char *text;
    cr_assert_eq(bd_file_read(path, &text, NULL, &err), 0);
    cr_assert_str_eq(text, "old\n");
    free(text);
    free(path);
    free(dir);
}

Test(file, read_names_the_path)
{
    struct bd_err err;
    char *text;
    cr_assert_eq(bd_file_read("/nonexistent/lab.yaml", &text, NULL, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/lab.yaml: No such file"), "%s", err.msg);
}
