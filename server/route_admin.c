/* /api/v1/...: the admin API behind a bearer token. */
#include "server.h"

#include "../cluster/cluster.h"
#include "../netsvc/netsvc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One machine as the API shows it: what lab.yaml says merged with what bootd saw. At
 * least one of lm and sm is set. */
static cJSON *machine_json(struct server *s, const struct lab *lab, const struct lab_machine *lm,
                           const struct state_machine *sm)
{
    cJSON *o = cJSON_CreateObject();
    char mac[18] = "";
    if (lm)
        bd_mac_format(&lm->mac, mac);
    else if (sm)
        snprintf(mac, sizeof mac, "%s", sm->mac);
    bd_json_add_str_or_null(o, "name", lm ? lm->name : NULL);
    cJSON_AddStringToObject(o, "mac", mac);
    bd_json_add_str_or_null(o, "role", lm ? lab_role_name(lm->role) : NULL);
    cJSON_AddStringToObject(o, "state", state_lifecycle_name(sm ? sm->state : STATE_ASSIGNED));
    if (lm && lm->has_ip) {
        char ip[16];
        bd_ipv4_format(lm->ip, ip);
        cJSON_AddStringToObject(o, "ip", ip);
    } else {
        bd_json_add_str_or_null(o, "ip", sm ? sm->ip : NULL);
    }
    bd_json_add_str_or_null(o, "hostname", lm ? lm->hostname : (sm ? sm->hostname : NULL));
    bd_json_add_str_or_null(o, "uuid", sm && sm->uuid[0] ? sm->uuid : (lm ? lm->uuid : NULL));
    bd_json_add_str_or_null(o, "arch", sm ? sm->arch : NULL);
    bd_json_add_str_or_null(o, "firmware", sm ? sm->firmware : NULL);
    cJSON_AddBoolToObject(o, "in_lab", lm != NULL);
    cJSON_AddBoolToObject(o, "reinstall", sm && sm->reinstall);
    bd_json_add_time(o, "first_seen", sm ? sm->first_seen_ms : 0);
    bd_json_add_time(o, "last_seen", sm ? sm->last_seen_ms : 0);
    bd_json_add_time(o, "state_since", sm ? sm->state_since_ms : 0);
    server_vmwatch_json(s, o, mac);
    char failed[320];
    int64_t failed_at;
    if (server_bootwatch_failed(s, mac, failed, sizeof failed, &failed_at)) {
        cJSON *f = cJSON_AddObjectToObject(o, "boot_failed");
        cJSON_AddStringToObject(f, "message", failed);
        bd_json_add_time(f, "time", failed_at);
    }
    (void)lab;
    return o;
}

static cJSON *events_json(const struct state_events *ev)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < ev->n; i++) {
        cJSON *e = cJSON_CreateObject();
        bd_json_add_time(e, "time", ev->v[i].ts_ms);
        bd_json_add_str_or_null(e, "mac", ev->v[i].mac);
        cJSON_AddStringToObject(e, "source", ev->v[i].source);
        cJSON_AddStringToObject(e, "kind", ev->v[i].kind);
        cJSON_AddStringToObject(e, "message", ev->v[i].message);
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

cJSON *server_api_machines_json(struct server *s, const struct lab *lab, struct bd_err *err)
{
    struct state_machine *rows;
    size_t n;
    if (state_machine_list(s->store, &rows, &n, err) < 0)
        return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        struct bd_mac mac;
        bd_mac_parse(rows[i].mac, &mac);
        cJSON_AddItemToArray(arr, machine_json(s, lab, lab_machine_by_mac(lab, &mac), &rows[i]));
    }
    free(rows);
    return arr;
}

static enum MHD_Result list_machines(struct server *s, struct MHD_Connection *c, struct req *r,
                                     const struct lab *lab)
{
    struct bd_err err;
    cJSON *arr = server_api_machines_json(s, lab, &err);
    if (!arr)
        return server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "machines", arr);
    return server_reply_json(c, r, MHD_HTTP_OK, o);
}

cJSON *server_api_audit_json(struct server *s, size_t max, struct bd_err *err)
{
    struct state_events ev;
    if (state_events_for(s->store, NULL, max, &ev, err) < 0)
        return NULL;
    cJSON *a = events_json(&ev);
    state_events_free(&ev);
    return a;
}

/* A machine by lab name or by MAC; fills mac_out. 0 when neither matches. */
static int find_machine(struct server *s, const struct lab *lab, const char *id,
                        const struct lab_machine **lm, struct state_machine *sm, bool *have_sm,
                        char mac_out[18])
{
    struct bd_mac mac;
    struct bd_err err;
    *lm = lab_machine_by_name(lab, id);
    if (*lm)
        mac = (*lm)->mac;
    else if (bd_mac_parse(id, &mac) == 0)
        *lm = lab_machine_by_mac(lab, &mac);
    else
        return 0;
    bd_mac_format(&mac, mac_out);
    *have_sm = state_machine_get(s->store, mac_out, sm, &err) == 1;
    return *lm || *have_sm;
}

static enum MHD_Result machine_route(struct server *s, struct MHD_Connection *c, struct req *r,
                                     const struct lab *lab, const char *rest, const char *method)
{
    char id[80];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n >= sizeof id)
        return server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "no such machine");
    memcpy(id, rest, n);
    id[n] = 0;
    const char *sub = slash ? slash + 1 : "";
    const struct lab_machine *lm;
    struct state_machine sm;
    bool have_sm;
    char mac[18];
    if (!find_machine(s, lab, id, &lm, &sm, &have_sm, mac))
        return server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "no machine named or with MAC \"%s\"",
                                id);
    struct bd_err err;
    if (!strcmp(sub, "uki")) {
        if (strcmp(method, "GET"))
            return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
        if (!lm)
            return server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s is not in lab.yaml", id);
        return server_uki_download(s, c, r, lm->name);
    }
    if (!strcmp(sub, "reinstall")) {
        if (strcmp(method, "POST"))
            return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
        if (!lm)
            return server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s is not in lab.yaml", id);
        if (!have_sm && state_machine_seen(s->store, mac, NULL, &err) < 0)
            return server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
        if (state_machine_set_reinstall(s->store, mac, true, &err) < 0 ||
            state_event_add(s->store, mac, "api", "info",
                            "reinstall requested: the next network boot installs again", &err) < 0)
            return server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
        have_sm = state_machine_get(s->store, mac, &sm, &err) == 1;
        return server_reply_json(c, r, MHD_HTTP_OK, machine_json(s, lab, lm, have_sm ? &sm : NULL));
    }
    if (!strcmp(sub, "replace")) {
        if (strcmp(method, "POST"))
            return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
        if (!lm)
            return server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s is not in lab.yaml", id);
        cJSON *o = cluster_machine_replace(s->cluster, lm->name, &err);
        return o ? server_reply_json(c, r, MHD_HTTP_OK, o)
                 : server_reply_error_json(c, r, MHD_HTTP_CONFLICT, "%s", err.msg);
    }
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
    if (!strcmp(sub, "logs")) {
        struct log_line *lines;
        size_t nlines;
        server_logsink_lines(s, mac, &lines, &nlines);
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < nlines; i++) {
            cJSON *l = cJSON_CreateObject();
            bd_json_add_time(l, "time", lines[i].ts_ms);
            cJSON_AddStringToObject(l, "msg", lines[i].msg);
            cJSON_AddItemToArray(arr, l);
        }
        server_log_lines_free(lines, nlines);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mac", mac);
        cJSON_AddItemToObject(o, "lines", arr);
        return server_reply_json(c, r, MHD_HTTP_OK, o);
    }
    struct state_events ev;
    if (state_events_for(s->store, mac, 1000, &ev, &err) < 0)
        return server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
    cJSON *events = events_json(&ev);
    state_events_free(&ev);
    if (!strcmp(sub, "events")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "events", events);
        return server_reply_json(c, r, MHD_HTTP_OK, o);
    }
    if (*sub) {
        cJSON_Delete(events);
        return server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "not found");
    }
    cJSON *o = machine_json(s, lab, lm, have_sm ? &sm : NULL);
    cJSON_AddItemToObject(o, "events", events);
    return server_reply_json(c, r, MHD_HTTP_OK, o);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum MHD_Result adopt(struct server *s, struct MHD_Connection *c, struct req *r)
{
    cJSON *body = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        return server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST,
                                "body must be a JSON object {\"mac\", \"name\", \"role\"}");
    }
    struct bd_err err;
    int status = MHD_HTTP_CREATED;
    const char *mac = json_str(body, "mac"), *name = json_str(body, "name");
    const char *role = json_str(body, "role"), *ip = json_str(body, "ip");
    enum MHD_Result rc;
    if (!mac || !name || !role) {
        rc = server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "mac, name and role are required");
    } else if (server_adopt(s, mac, name, role, ip, &err, &status) < 0) {
        rc = server_reply_error_json(c, r, (unsigned)status, "%s", err.msg);
    } else {
        struct lab_snap *snap = server_lab(s);
        const struct lab_machine *lm = lab_machine_by_name(snap->lab, name);
        struct state_machine sm;
        char m[18];
        bd_mac_format(&lm->mac, m);
        bool have = state_machine_get(s->store, m, &sm, &err) == 1;
        rc = server_reply_json(c, r, MHD_HTTP_CREATED, machine_json(s, snap->lab, lm, have ? &sm : NULL));
        server_lab_put(s, snap);
    }
    cJSON_Delete(body);
    return rc;
}

/* dnsmasq's --dhcp-script, through bootctl dhcp-event: a lease was added, renewed
 * ("old") or removed. Unknown MACs become discovered machines. */
static enum MHD_Result dhcp_event(struct server *s, struct MHD_Connection *c, struct req *r)
{
    cJSON *body = cJSON_ParseWithLength(r->body.data ? r->body.data : "", r->body.len);
    const char *action = json_str(body, "action"), *mac_in = json_str(body, "mac");
    const char *ip = json_str(body, "ip"), *hostname = json_str(body, "hostname");
    struct bd_mac mac;
    uint32_t addr;
    enum MHD_Result rc;
    if (!action || !mac_in || !ip || bd_mac_parse(mac_in, &mac) < 0 || bd_ipv4_parse(ip, &addr) < 0) {
        rc = server_reply_error_json(c, r, MHD_HTTP_BAD_REQUEST, "need action, mac and an IPv4 ip");
    } else if (!strcmp(action, "del")) {
        rc = server_reply_json(c, r, MHD_HTTP_OK, cJSON_CreateObject());
    } else {
        char m[18];
        bd_mac_format(&mac, m);
        struct state_sighting seen = {
            .ip = ip,
            .hostname = hostname && *hostname ? hostname : NULL,
            .firmware = server_firmware_name(netsvc_arch_from_tags(json_str(body, "tags"))),
        };
        if (seen.firmware) { /* the firmware, not a kernel, is asking: any UKI it ran is gone */
            char what[80];
            snprintf(what, sizeof what, "asked DHCP for a boot file again (%s firmware)",
                     seen.firmware);
            server_bootwatch_again(s, m, SERVER_BOOT_FAILED_DHCP_AGAIN, what);
        }
        struct bd_err err;
        int ok = state_machine_seen(s->store, m, &seen, &err);
        if (ok == 0 && !strcmp(action, "add")) {
            char msg[160];
            snprintf(msg, sizeof msg, "DHCP lease %s%s%s", ip, seen.hostname ? " as " : "",
                     seen.hostname ? seen.hostname : "");
            ok = state_event_add(s->store, m, "dhcp", "lease", msg, &err);
        }
        rc = ok < 0 ? server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg)
                    : server_reply_json(c, r, MHD_HTTP_OK, cJSON_CreateObject());
    }
    cJSON_Delete(body);
    return rc;
}

enum api_scope server_api_scope_of(struct server *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    /* RFC 9110 11.1: the scheme is case-insensitive, and one or more spaces follow it */
    if (!h || strncasecmp(h, "Bearer ", 7))
        return SCOPE_NONE;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    /* both compared, whatever the first gives: the time says nothing about which matched */
    bool admin = bd_secret_equal(t, s->admin_token);
    bool viewer = bd_secret_equal(t, s->viewer_token);
    return admin ? SCOPE_ADMIN : viewer ? SCOPE_VIEWER : SCOPE_NONE;
}

bool server_api_scope_allows(enum api_scope scope, const char *sub, const char *method)
{
    if (scope == SCOPE_ADMIN)
        return true;
    if (scope != SCOPE_VIEWER || (strcmp(method, "GET") && strcmp(method, "HEAD")))
        return false;
    /* secrets stay with the admin, and so do boot images (one may carry a config token) */
    size_t n = strlen(sub);
    bool uki = !strncmp(sub, "/machines/", 10) && n > 4 && !strcmp(sub + n - 4, "/uki");
    return strncmp(sub, "/cluster/", 9) != 0 && !uki;
}

cJSON *server_api_status_json(struct server *s, const struct lab *lab)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "lab", lab->path);
    cJSON_AddStringToObject(o, "cluster", lab->cluster.name);
    cJSON_AddNumberToObject(o, "machines_in_lab", (double)lab->nmachines);
    pthread_mutex_lock(&s->mu);
    bd_json_add_str_or_null(o, "reload_error", s->reload_error);
    bd_json_add_time(o, "reload_at", s->reload_at_ms);
    pthread_mutex_unlock(&s->mu);
    char dnsmasq[512];
    server_services_status(s, dnsmasq, sizeof dnsmasq);
    cJSON_AddStringToObject(o, "dnsmasq", dnsmasq);
    int64_t counts[STATE_COUNT];
    struct bd_err err;
    if (state_machine_counts(s->store, counts, &err) == 0) {
        cJSON *st = cJSON_AddObjectToObject(o, "states");
        for (int i = 0; i < STATE_COUNT; i++)
            cJSON_AddNumberToObject(st, state_lifecycle_name((enum state_lifecycle)i), (double)counts[i]);
    }
    cJSON_AddItemToObject(o, "cluster_state", cluster_status(s->cluster));
    return o;
}

enum MHD_Result server_api_refuse(struct MHD_Connection *c, struct req *r, enum api_scope scope)
{
    static const char none[] = "{\"error\": \"missing or wrong admin token\"}\n";
    static const char viewer[] =
        "{\"error\": \"the viewer token only reads; this needs the admin token\"}\n";
    bool v = scope == SCOPE_VIEWER;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        v ? sizeof viewer - 1 : sizeof none - 1, (void *)(v ? viewer : none),
        MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (!v)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"bootd\"");
    return server_reply(c, r, v ? MHD_HTTP_FORBIDDEN : MHD_HTTP_UNAUTHORIZED, resp);
}

enum MHD_Result server_route_api(struct server *s, struct MHD_Connection *c, struct req *r,
                          const char *url, const char *method)
{
    enum api_scope scope = server_api_scope_of(s, c);
    if (!server_api_scope_allows(scope, url, method))
        return server_api_refuse(c, r, scope);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    if (!strcmp(url, "/reload")) {
        if (!post)
            return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
        if (!r->reload) {
            r->reload = bd_xcalloc(1, sizeof *r->reload);
            if (server_reloader_submit(s, c, r->reload))
                return MHD_YES; /* answered once the reload thread resumes it */
            snprintf(r->reload->error, sizeof r->reload->error, "bootd is stopping");
            r->reload->failed = true;
        }
        if (r->reload->failed)
            return server_reply_error_json(c, r, MHD_HTTP_UNPROCESSABLE_CONTENT,
                                    "%s (bootd keeps serving the previous lab)",
                                    r->reload->error);
    }
    if (!strcmp(url, "/images/refresh")) {
        if (!post)
            return server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
        server_refresh(s);
        return server_reply_json(c, r, MHD_HTTP_OK, cJSON_CreateObject());
    }
    if (!strcmp(url, "/overview"))
        return get ? server_route_overview(s, c, r)
                   : server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
    if (!strcmp(url, "/watch"))
        return get ? server_route_watch(s, c, r)
                   : server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
    if (!strncmp(url, "/gitops", 7) && (!url[7] || url[7] == '/'))
        return server_route_gitops(s, c, r, url + 7, method);
    if (!strncmp(url, "/cluster/", 9))
        return server_route_cluster(s, c, r, url + 9, method);
    if (!strcmp(url, "/machines/adopt"))
        return post ? adopt(s, c, r)
                    : server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
    if (!strcmp(url, "/dhcp/events"))
        return post ? dhcp_event(s, c, r)
                    : server_reply_error_json(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");

    struct lab_snap *snap = server_lab(s);
    enum MHD_Result rc;
    if (!strcmp(url, "/reload") || (!strcmp(url, "/status") && get)) {
        rc = server_reply_json(c, r, MHD_HTTP_OK, server_api_status_json(s, snap->lab));
    } else if (!strcmp(url, "/machines") && get) {
        rc = list_machines(s, c, r, snap->lab);
    } else if (!strncmp(url, "/machines/", 10)) {
        rc = machine_route(s, c, r, snap->lab, url + 10, method);
    } else if (!strcmp(url, "/events") && get) {
        struct bd_err err;
        cJSON *a = server_api_audit_json(s, 1000, &err);
        if (!a) {
            rc = server_reply_error_json(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "events", a);
            rc = server_reply_json(c, r, MHD_HTTP_OK, o);
        }
    } else {
        rc = server_reply_error_json(c, r, MHD_HTTP_NOT_FOUND, "no such API route");
    }
    server_lab_put(s, snap);
    return rc;
}
