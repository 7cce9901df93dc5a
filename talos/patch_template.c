/* Template patches (*.tftpl) filled in per machine as Terraform's templatefile()
 * fills them (the language: tmpl_parse.c, tmpl_eval.c, tmpl_func.c). */
#include "internal.h"

#include <stdlib.h>

int talos_patch_fill_template(const struct talos_patch *p, const struct patch_vars *vars,
                        struct bd_buf *out, struct bd_err *err)
{
    struct bd_arena a = {0};
    struct tv **values = bd_arena_alloc(&a, (vars->n + 1) * sizeof *values);
    for (size_t i = 0; i < vars->n; i++)
        values[i] = talos_tv_from_node(&a, vars->values[i]);
    int rc = talos_tmpl_render(p->tmpl, vars->n, vars->names, values, &a, out, err);
    bd_arena_free(&a);
    return rc;
}
