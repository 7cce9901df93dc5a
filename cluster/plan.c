/* bootctl plan: for each installed machine, what differs between the config bootd would
 * serve now and the one the machine last got (redacted), and what Talos says it would do
 * with the new one (ApplyConfiguration with dry_run, mode AUTO: applies live, needs a
 * reboot, or is refused). Nothing is changed on any machine. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cluster_applied_prepare(const struct talos_cluster *tc, const struct lab *lab,
                            const char *text, size_t len, char sha[65], char **redacted,
                            struct bd_err *err)
{
    uint8_t key[32];
    talos_redact_key_of(tc, lab->cluster.name, key);
    if (talos_config_redact(text, len, key, redacted, err) < 0)
        return -1;
    bd_sha256_hex(text, len, sha);
    return 0;
}

int cluster_applied_record(struct state_db *st, const struct talos_cluster *tc,
                           const struct lab *lab, const struct lab_machine *m, const char *text,
                           size_t len, const char *how, struct bd_err *err)
{
    char *red, sha[65], mac[18];
    if (cluster_applied_prepare(tc, lab, text, len, sha, &red, err) < 0)
        return bd_err_prefix(err, "%s", m->name);
    bd_mac_format(&m->mac, mac);
    int rc = state_applied_put(st, mac, sha, red, how, err);
    free(red);
    return rc;
}

/* Talos's verdict from mode_details and the mode it chose; the first line of the
 * details only: the rest of a dry run is Talos's own diff, which is not redacted. */
static void summary_of(const char *details, char *out, size_t n)
{
    const char *p = details;
    if (!strncmp(p, "Dry run summary:\n", 17))
        p += 17;
    size_t len = strcspn(p, "\n");
    snprintf(out, n, "%.*s", (int)len, p);
}

const char *cluster_verdict(int rc, int code, enum talos_apply_mode mode)
{
    if (rc == 0)
        return mode == TALOS_APPLY_NO_REBOOT ? "live" : "reboot";
    return code == TALOS_INVALID_ARGUMENT ? "refused" : "unknown";
}

static void dry_run(struct cluster *c, const struct cluster_lab *l, const struct lab_machine *m,
                    const char *cfg, size_t len, cJSON *e)
{
    cJSON *t = cJSON_AddObjectToObject(e, "talos");
    char ip[16];
    if (!l->creds) {
        cJSON_AddStringToObject(t, "verdict", "unknown");
        cJSON_AddStringToObject(t, "error", l->creds_error ? l->creds_error : "no credentials");
        return;
    }
    if (!cluster_machine_addr(c->env.store, m, ip)) {
        cJSON_AddStringToObject(t, "verdict", "unknown");
        cJSON_AddStringToObject(t, "error", "no known address");
        return;
    }
    struct talos_node n = cluster_node_at(c, l, ip);
    struct talos_apply_result res;
    int code;
    struct bd_err err;
    int rc = c->env.talos_apply_config(c->env.ud, &n, cfg, len, TALOS_APPLY_AUTO, true, 0, &res,
                                       &code, &err);
    cJSON_AddStringToObject(t, "verdict", cluster_verdict(rc, code, res.mode));
    if (rc == 0) {
        char sum[512];
        summary_of(res.details, sum, sizeof sum);
        cJSON_AddStringToObject(t, "mode", talos_apply_mode_name(res.mode));
        cJSON_AddStringToObject(t, "details", sum);
    } else {
        cJSON_AddStringToObject(t, "error", err.msg);
    }
}

static bool wanted(const struct lab_machine *m, const char *const *names, size_t nnames)
{
    for (size_t i = 0; i < nnames; i++)
        if (!strcmp(names[i], m->name))
            return true;
    return nnames == 0;
}

/* One machine's entry; *changed when its config differs from what it last got. */
static cJSON *plan_machine(struct cluster *c, const struct cluster_lab *l,
                           const struct lab_machine *m, bool *changed)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", m->name);
    cJSON_AddStringToObject(e, "role", lab_role_name(m->role));
    enum state_lifecycle st = cluster_stored_state(c, m);
    cJSON_AddStringToObject(e, "state", state_lifecycle_name(st));
    char mac[18];
    bd_mac_format(&m->mac, mac);
    struct state_applied a;
    struct bd_err err;
    int have = state_applied_get(c->env.store, mac, &a, &err);
    *changed = false;
    if (have < 0) {
        cJSON_AddStringToObject(e, "status", "error");
        cJSON_AddStringToObject(e, "error", err.msg);
        return e;
    }
    if (!have && st < STATE_INSTALLING) {
        cJSON_AddStringToObject(e, "status", "not-installed");
        return e;
    }
    char *cfg = NULL, *red = NULL, *diff = NULL, sha[65];
    size_t len;
    if (talos_machine_config(l->talos, m, &cfg, &len, &err) < 0 ||
        cluster_applied_prepare(l->talos, l->lab, cfg, len, sha, &red, &err) < 0) {
        cJSON_AddStringToObject(e, "status", "error");
        cJSON_AddStringToObject(e, "error", err.msg);
        goto out;
    }
    if (have) {
        cJSON *ap = cJSON_AddObjectToObject(e, "applied");
        cJSON_AddStringToObject(ap, "how", a.how);
        bd_json_add_time(ap, "at", a.applied_ms);
        cJSON_AddStringToObject(ap, "sha256", a.sha256);
    } else {
        cJSON_AddNullToObject(e, "applied");
    }
    cJSON_AddStringToObject(e, "sha256", sha);
    if (have && !strcmp(a.sha256, sha)) {
        cJSON_AddStringToObject(e, "status", "unchanged");
        goto out;
    }
    *changed = true;
    cJSON_AddStringToObject(e, "status", have ? "changed" : "unrecorded");
    if (have && talos_text_diff(a.redacted, red, m->name, &diff, &err) < 0)
        cJSON_AddStringToObject(e, "error", err.msg);
    bd_json_add_str_or_null(e, "diff", diff);
    dry_run(c, l, m, cfg, len, e);
out:
    free(cfg);
    free(red);
    free(diff);
    if (have)
        state_applied_clear(&a);
    return e;
}

struct cJSON *cluster_plan(struct cluster *c, const char *const *names, size_t nnames,
                           struct bd_err *err)
{
    struct cluster_lab l;
    c->env.lab_get(c->env.ud, &l);
    cJSON *o = NULL;
    for (size_t i = 0; i < nnames; i++)
        if (!lab_machine_by_name(l.lab, names[i])) {
            bd_err_set(err, "no machine named \"%s\" in %s", names[i], l.lab->path);
            goto out;
        }
    o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "machines");
    int nchanged = 0;
    for (size_t i = 0; i < l.lab->nmachines; i++) {
        const struct lab_machine *m = &l.lab->machines[i];
        if (!wanted(m, names, nnames))
            continue;
        bool changed;
        cJSON_AddItemToArray(arr, plan_machine(c, &l, m, &changed));
        nchanged += changed;
    }
    cJSON_AddNumberToObject(o, "changed", nchanged);
out:
    c->env.lab_put(c->env.ud, &l);
    return o;
}
