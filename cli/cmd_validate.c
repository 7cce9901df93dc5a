/* bootctl validate: the whole lab checked offline, exactly as bootd would load it. */
#include "cli.h"

#include <string.h>

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
    size_t ncp = 0;
    for (size_t i = 0; i < lab->nmachines; i++)
        ncp += lab->machines[i].role == LAB_ROLE_CONTROLPLANE;
    printf("%s: ok: cluster %s, %zu machines (%zu controlplane, %zu worker), dhcp %s\n", argv[1],
           lab->cluster.name, lab->nmachines, ncp, lab->nmachines - ncp,
           lab->lan.dhcp == LAB_DHCP_FULL ? "full" : "proxy");
    lab_free(lab);
    return 0;
}
