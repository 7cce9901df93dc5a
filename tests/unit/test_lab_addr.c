/* Machine addresses no host can have or dnsmasq could lease away, and template vars in
 * lab.yaml: refused with file:line:col of both fields where two clash. */
#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* lab.yaml from the talos fixture's base with machines replaced; returns the error. */
static const char *refused(const char *cluster_extra, const char *machines, struct bd_err *err)
{
    char *dir = fixture_lab(cluster_extra, machines);
    char *path = bd_path_join(dir, "lab.yaml");
    struct lab *lab = NULL;
    cr_assert_eq(lab_load(path, NULL, NULL, &lab, err), -1, "expected an error");
    tmpdir_remove(dir);
    free(path);
    free(dir);
    return err->msg;
}

static const char *one(const char *machine)
{
    static char text[400];
    snprintf(text, sizeof text, "machines:\n  - {name: cp-1, mac: \"52:54:00:00:00:01\", "
                                "role: controlplane, ip: 192.0.2.11}\n  - %s\n",
             machine);
    return text;
}

Test(lab_addr, ip_that_no_host_can_have)
{
    struct bd_err err;
    /* lan.subnet is on line 9, column 11 of the fixture lab.yaml, lan.range on line 10; w-1 on line 16 */
    assert_has(refused(NULL, one("{name: w-1, mac: '52:54:00:00:00:02', role: worker, ip: 192.0.2.255}"), &err),
               "lab.yaml:16:61: machine w-1: ip 192.0.2.255 is the broadcast address of "
               "lan.subnet 192.0.2.0/24 (");
    assert_has(err.msg, "lab.yaml:9:11); no host can have it");
    assert_has(refused(NULL, one("{name: w-1, mac: '52:54:00:00:00:02', role: worker, ip: 192.0.2.0}"), &err),
               "machine w-1: ip 192.0.2.0 is the network address of lan.subnet 192.0.2.0/24");
}

Test(lab_addr, ip_inside_the_dhcp_range)
{
    struct bd_err err;
    assert_has(refused(NULL, one("{name: w-1, mac: '52:54:00:00:00:02', role: worker, ip: 192.0.2.150}"), &err),
               "lab.yaml:16:61: machine w-1: ip 192.0.2.150 is inside lan.range "
               "192.0.2.100-192.0.2.199 (");
    assert_has(err.msg, "lab.yaml:10:10), so bootd's dnsmasq could lease it to another machine");
}

Test(lab_addr, multicast_mac)
{
    struct bd_err err;
    assert_has(refused(NULL, one("{name: w-1, mac: '01:00:5e:00:00:02', role: worker}"), &err),
               "lab.yaml:16:22: machine w-1: mac 01:00:5e:00:00:02 is a multicast address");
}

Test(lab_addr, vars_names_and_kinds)
{
    struct bd_err err;
    assert_has(refused("  vars: {9lives: x}\n", NULL, &err),
               "cluster.vars.9lives: \"9lives\" is not a template variable name");
    assert_has(refused("  vars: [a, b]\n", NULL, &err),
               "cluster.vars: expected a mapping of name: value, got list");
}
