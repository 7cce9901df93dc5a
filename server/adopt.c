/* Adopting a discovered machine: a new file in machines.d, checked together with the
 * whole lab before it is written. bootd never rewrites lab.yaml itself. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t adopt_mu = PTHREAD_MUTEX_INITIALIZER;

static int adopt_locked(struct server *s, const char *mac_in, const char *name, const char *role_in,
                        const char *ip, struct bd_err *err, int *status)
{
    struct bd_mac mac;
    enum lab_role role;
    char mac_s[18];
    *status = MHD_HTTP_BAD_REQUEST;
    if (bd_mac_parse(mac_in, &mac) < 0)
        return bd_err_set(err, "mac: \"%s\" is not a MAC address", mac_in);
    if (!bd_dns_label_ok(name))
        return bd_err_set(err, "name: \"%s\" is not a valid name (lower-case letters, digits, '-')",
                          name);
    if (lab_role_parse(role_in, &role) < 0)
        return bd_err_set(err, "role: \"%s\" is not controlplane or worker", role_in);
    uint32_t addr;
    if (ip && bd_ipv4_parse(ip, &addr) < 0)
        return bd_err_set(err, "ip: \"%s\" is not an IPv4 address", ip);
    bd_mac_format(&mac, mac_s);

    struct lab_snap *snap = server_lab(s);
    const struct lab_machine *by_mac = lab_machine_by_mac(snap->lab, &mac);
    const struct lab_machine *by_name = lab_machine_by_name(snap->lab, name);
    char *machines_dir = bd_xstrdup(snap->lab->machines_dir);
    const char *lab_path = snap->lab->path;
    char *lab_path_copy = bd_xstrdup(lab_path);
    int rc = 0;
    *status = MHD_HTTP_CONFLICT;
    if (by_mac)
        rc = bd_err_set(err, "%s is already in lab.yaml as %s", mac_s, by_mac->name);
    else if (by_name)
        rc = bd_err_set(err, "the name %s is already taken (%s:%d)", name, by_name->where.file,
                        by_name->where.line);
    server_lab_put(s, snap);
    struct state_machine sm;
    if (rc == 0) {
        int found = state_machine_get(s->store, mac_s, &sm, err);
        if (found < 0) {
            *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            rc = -1;
        } else if (!found) {
            *status = MHD_HTTP_NOT_FOUND;
            rc = bd_err_set(err,
                            "bootd has not seen %s; only discovered machines can be adopted "
                            "(add others to lab.yaml)",
                            mac_s);
        }
    }
    char *file = bd_xasprintf("%s.yaml", name);
    char *path = bd_path_join(machines_dir, file);
    if (rc == 0 && access(path, F_OK) == 0)
        rc = bd_err_set(err, "%s already exists", path);
    char *text = NULL;
    struct lab *lab = NULL;
    if (rc == 0) {
        text = bd_xasprintf("# adopted with bootctl; edit freely, then bootctl reload\n"
                            "name: %s\nmac: \"%s\"\nrole: %s\n%s%s%s",
                            name, mac_s, lab_role_name(role), ip ? "ip: " : "", ip ? ip : "",
                            ip ? "\n" : "");
        *status = MHD_HTTP_UNPROCESSABLE_CONTENT;
        rc = lab_load(lab_path_copy, file, text, &lab, err);
    }
    if (rc == 0) {
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        rc = bd_mkdir_p(machines_dir, 0755, err);
        if (rc == 0)
            rc = bd_file_write_atomic(path, text, strlen(text), 0644, err);
        if (rc == 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "adopted as %s (%s) into %s", name, lab_role_name(role), path);
            state_event_note(s->store, mac_s, "api", "info", msg);
            rc = server_install_lab(s, lab, err);
            lab = NULL;
        }
    }
    lab_free(lab);
    free(text);
    free(path);
    free(file);
    free(machines_dir);
    free(lab_path_copy);
    if (rc == 0)
        *status = MHD_HTTP_CREATED;
    return rc;
}

int server_adopt(struct server *s, const char *mac, const char *name, const char *role,
                 const char *ip, struct bd_err *err, int *http_status)
{
    pthread_mutex_lock(&adopt_mu);
    int rc = adopt_locked(s, mac, name, role, ip, err, http_status);
    pthread_mutex_unlock(&adopt_mu);
    return rc;
}
