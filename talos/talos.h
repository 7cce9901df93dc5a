/* talos/ — Talos machine configs, secrets and the Talos API. */
#ifndef TALOS_H
#define TALOS_H

#include "../lib/bd.h"

/* The Talos config a machine boots with (caller frees *out). Sources, first match wins:
 * the machine's own config file, then its role's config file from lab.yaml. */
int talos_machine_config(const struct lab *lab, const struct lab_machine *m, char **out,
                         size_t *len, struct bd_err *err);

#endif
