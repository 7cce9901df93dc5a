/* Where a machine's config comes from. */
#include "talos.h"

int talos_machine_config(const struct lab *lab, const struct lab_machine *m, char **out,
                         size_t *len, struct bd_err *err)
{
    const char *file = m->config_file ? m->config_file : lab->cluster.roles[m->role].config_file;
    if (!file)
        return bd_err_set(err,
                          "no Talos config for %s: set config on the machine or "
                          "cluster.%s.config in lab.yaml",
                          m->name, lab_role_name(m->role));
    return bd_file_read(file, out, len, err);
}
