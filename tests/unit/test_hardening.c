/* Numbers and lines from outside bootd that used to reach undefined behaviour or be
 * trusted too far: 20-digit YAML integers, absurd numbers in Kubernetes answers, neighbour
 * table lines. Run under `make unit SAN=1` to see the undefined behaviour itself. */
#include "helpers.h"
#include "../../gitops/gitops.h"
#include "../../netsvc/netsvc.h"
#include "../../server/server.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

Test(hardening, yaml_20_digit_integer_round_trips)
{
    const char *text = "n: 123456789012345678901\nm: -99999999999999999999\n";
    struct bd_yaml_doc d;
    struct bd_err err;
    cr_assert_eq(bd_yaml_parse(text, strlen(text), "t.yaml", &d, &err), 0, "%s", err.msg);
    cJSON *j = bd_node_to_json(d.docs[0]);
    struct bd_node *back = bd_node_from_json(j);
    cJSON *again = bd_node_to_json(back);
    cr_assert_float_eq(cJSON_GetObjectItem(again, "n")->valuedouble, 1.2345678901234568e20, 1e6);
    cr_assert_float_eq(cJSON_GetObjectItem(again, "m")->valuedouble, -1e20, 1e6);
    cJSON_Delete(again);
    bd_node_free(back);
    cJSON_Delete(j);
    bd_yaml_doc_free(&d);
}

Test(hardening, absurd_replica_counts_are_not_current)
{
    cJSON *o = cJSON_Parse(
        "{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"generation\": 1},"
        " \"spec\": {\"replicas\": 1e300},"
        " \"status\": {\"observedGeneration\": 1, \"replicas\": 1e300, \"updatedReplicas\": 1e300,"
        " \"availableReplicas\": -1e300, \"readyReplicas\": 1e300,"
        " \"conditions\": [{\"type\": \"Available\", \"status\": \"True\"}]}}");
    cr_assert_not_null(o);
    char msg[256];
    cr_assert_neq(gitops_health_of(o, msg, sizeof msg), GITOPS_CURRENT, "%s", msg);
    cJSON_Delete(o);
}

Test(hardening, neighbour_table_lines)
{
    uint32_t ip;
    struct bd_mac mac;
    char dev[32], text[18];
    cr_assert_eq(server_neigh_parse_line("192.0.2.10       0x1         0x2         "
                                        "52:54:00:aa:bb:cc     *        vmbr0\n",
                                        &ip, &mac, dev),
                 0);
    bd_mac_format(&mac, text);
    cr_assert_str_eq(text, "52:54:00:aa:bb:cc");
    cr_assert_str_eq(dev, "vmbr0");
    cr_assert_eq(ip, 0xc000020a);
    /* incomplete (no reply to ARP yet), the header, a device name too long to be one */
    cr_assert_eq(server_neigh_parse_line("192.0.2.11 0x1 0x0 00:00:00:00:00:00 * vmbr0", &ip,
                                        &mac, dev),
                 -1);
    cr_assert_eq(server_neigh_parse_line("IP address       HW type     Flags       HW address"
                                        "            Mask     Device",
                                        &ip, &mac, dev),
                 -1);
    cr_assert_eq(server_neigh_parse_line("192.0.2.12 0x1 0x2 52:54:00:aa:bb:cc *", &ip, &mac, dev),
                 -1);
}

/* dnsmasq runs the lease hook as root: paths with a quote stay one word each. */
Test(hardening, lease_hook_quotes_paths)
{
    char *dir = tmpdir_new();
    char *labdir = tmpdir_new();
    char *lab_path = write_file(labdir, "lab.yaml",
                                "cluster: {name: t, talos_version: v1.13.9, vip: 127.0.0.10}\n"
                                "lan: {interface: lo, dhcp: proxy, subnet: 127.0.0.0/8,"
                                " boot_server: 127.0.0.1}\n");
    struct bd_err err;
    struct lab *lab = load_lab(labdir, &err);
    cr_assert_not_null(lab, "%s", err.msg);
    struct netsvc_files f;
    netsvc_files_init(&f, dir);
    struct netsvc_hook hook = {"/bin/echo", "http://127.0.0.1:8080",
                               "/x/it's'; echo INJECTED; '"};
    bool cc, hc;
    cr_assert_eq(netsvc_prepare(lab, &f, &hook, &cc, &hc, &err), 0, "%s", err.msg);
    char *cmd = bd_xasprintf("sh '%s' add 52:54:00:00:00:01 127.0.0.5", f.hook);
    FILE *p = popen(cmd, "r");
    char out[512] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    cr_assert_str_eq(out, "--url http://127.0.0.1:8080 --token-file /x/it's'; echo INJECTED; '"
                          " dhcp-event add 52:54:00:00:00:01 127.0.0.5\n");
    free(cmd);
    netsvc_files_free(&f);
    lab_free(lab);
    free(lab_path);
    free(labdir);
    free(dir);
}
