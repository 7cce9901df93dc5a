/* bootctl gen secureboot: the lab's Secure Boot keys and what firmware enrolls. */
#include "cli.h"

#include "../boot/boot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_gen_secureboot(const struct lab *lab, const char *out_dir, struct bd_err *err)
{
    char *lab_dir = bd_path_dir(lab->path);
    char *dir = out_dir ? bd_xstrdup(out_dir) : bd_path_join(lab_dir, "secureboot");
    free(lab_dir);
    char *probe = bd_path_join(dir, "db.key");
    int rc = -1;
    if (access(probe, F_OK) == 0) {
        bd_err_set(err,
                   "%s already exists; bootctl never replaces Secure Boot keys (machines that "
                   "enrolled them would refuse every new image). Move %s away first if you mean it",
                   probe, dir);
        goto out;
    }
    struct boot_sb_material m;
    if (boot_secureboot_generate(lab->cluster.name, (int64_t)time(NULL), &m, err) < 0)
        goto out;
    if (bd_mkdir_p(dir, 0700, err) == 0) {
        rc = 0;
        for (size_t i = 0; i < m.n && rc == 0; i++) {
            char *path = bd_path_join(dir, m.files[i].name);
            rc = bd_file_write_atomic(path, m.files[i].data, m.files[i].len,
                                      m.files[i].secret ? 0600 : 0644, err);
            free(path);
        }
    }
    boot_secureboot_free(&m);
    if (rc == 0)
        printf("wrote %s: PK, KEK and db keys (.key, 0600), certificates (.crt, .cer), signature "
               "lists (.esl) and signed updates (.auth).\n"
               "Enroll db, KEK, then PK in each machine's firmware (docs/boot-paths.md), and set\n"
               "  boot.secureboot: {cert: %s/db.crt, key: %s/db.key}\nin lab.yaml.\n",
               dir, dir, dir);
out:
    free(probe);
    free(dir);
    return rc;
}
