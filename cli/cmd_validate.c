/* bootctl validate: the whole lab checked offline, exactly as bootd checks it when it
 * loads the lab: lab.yaml, the image schematic, the secrets bundle, and every machine's
 * Talos config rendered (patches, templates, Talos's rules, what a PXE-booted machine
 * will not have). */
#include "cli.h"

#include "../images/images.h"
#include "../talos/talos.h"

#include <net/if.h>
#include <string.h>
#include <unistd.h>

int cli_cmd_validate(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bootctl validate PATH/lab.yaml\n");
        return 2;
    }
    struct lab *lab;
    struct bd_err err;
    if (lab_load(argv[1], NULL, NULL, &lab, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* bootd refuses a secrets bundle others can read, also when no config needs it: so
     * does validate */
    struct talos_secrets *secrets = NULL;
    if (lab->cluster.secrets_file && access(lab->cluster.secrets_file, F_OK) == 0 &&
        talos_secrets_load(lab->cluster.secrets_file, &secrets, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        lab_free(lab);
        return 1;
    }
    talos_secrets_free(secrets);
    char schematic[65];
    struct talos_cluster *tc = NULL;
    if (images_schematic_id(lab, schematic, &err) < 0 ||
        talos_cluster_new(lab, schematic, &tc, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        lab_free(lab);
        return 1;
    }
    size_t ncp = 0, generated = 0;
    for (size_t i = 0; i < lab->nmachines; i++) {
        const struct lab_machine *m = &lab->machines[i];
        ncp += m->role == LAB_ROLE_CONTROLPLANE;
        generated += !m->config_file && !lab->cluster.roles[m->role].config_file;
    }
    printf("%s: ok: cluster %s, %zu machines (%zu controlplane, %zu worker), dhcp %s, "
           "%zu Talos configs rendered\n",
           argv[1], lab->cluster.name, lab->nmachines, ncp, lab->nmachines - ncp,
           lab->lan.dhcp == LAB_DHCP_FULL ? "full" : "proxy", generated);
    /* a lab is often checked on another machine than bootd's (CI, a laptop): say it, do
     * not fail */
    if (lab->lan.interface && if_nametoindex(lab->lan.interface) == 0)
        fprintf(stderr,
                "%s: note: lan.interface %s does not exist on this host; bootd refuses to "
                "start here until it does\n",
                argv[1], lab->lan.interface);
    talos_cluster_free(tc);
    lab_free(lab);
    return 0;
}
