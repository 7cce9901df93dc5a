/* /config/<token>: a machine's Talos config, for the machine the token was minted for,
 * from the address it is bound to, until a short while after its first download. Every
 * refusal is a 403 and an audit event. */
#include "server.h"

#include "../talos/talos.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char denied_body[] = "config token refused; see bootctl events\n";

static enum MHD_Result deny(struct server *s, struct MHD_Connection *c, struct req *r,
                            const char *mac, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result deny(struct server *s, struct MHD_Connection *c, struct req *r,
                            const char *mac, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    state_event_note(s->store, mac, "http", "audit", msg);
    bd_warn("config: refused: %s", msg);
    atomic_fetch_add(&s->metrics.config[CFG_DENIED], 1);
    return server_reply_text(c, r, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8", denied_body,
                      sizeof denied_body - 1);
}

static bool token_format_ok(const char *t)
{
    if (strlen(t) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!isxdigit((unsigned char)t[i]) || isupper((unsigned char)t[i]))
            return false;
    return true;
}

enum MHD_Result server_route_config(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *token)
{
    char ip[16];
    uint32_t addr = server_client_ipv4(c);
    bd_ipv4_format(addr, ip);
    if (!token_format_ok(token))
        return deny(s, c, r, NULL, "malformed config token from %s", ip);
    struct state_token_info t;
    struct bd_err err;
    int found = state_token_lookup(s->store, token, &t, &err);
    if (found < 0) {
        atomic_fetch_add(&s->metrics.config[CFG_ERROR], 1);
        bd_error("config: %s", err.msg);
        return server_reply_text(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "try again\n", 10);
    }
    if (!found)
        return deny(s, c, r, NULL, "unknown config token from %s", ip);
    if (t.superseded)
        return deny(s, c, r, t.mac, "stale config token for %s from %s: a newer boot replaced it",
                    t.name, ip);

    struct lab_snap *snap = server_lab(s);
    const struct lab *lab = snap->lab;
    int64_t now = bd_now_ms();
    enum MHD_Result rc;
    char bound[24];
    bd_ipv4_format(t.bind.addr, bound);
    struct bd_mac mac;
    bd_mac_parse(t.mac, &mac);
    const struct lab_machine *m = lab_machine_by_mac(lab, &mac);
    if (t.first_download_ms && now > t.first_download_ms + lab->boot.token_grace_s * 1000) {
        rc = deny(s, c, r, t.mac, "expired config token for %s from %s: first downloaded %lld s ago",
                  t.name, ip, (long long)((now - t.first_download_ms) / 1000));
    } else if (!t.first_download_ms && now > t.issued_ms + lab->boot.token_max_age_s * 1000) {
        rc = deny(s, c, r, t.mac, "expired config token for %s from %s: never used in %lld s",
                  t.name, ip, (long long)lab->boot.token_max_age_s);
    } else if (!bd_ipv4_in(addr, t.bind.addr, t.bind.prefix)) {
        rc = deny(s, c, r, t.mac, "config token for %s presented from %s, bound to %s/%d (replay?)",
                  t.name, ip, bound, t.bind.prefix);
    } else if (!m) {
        rc = deny(s, c, r, t.mac, "config token for %s: lab.yaml no longer has that machine",
                  t.mac);
    } else {
        char *cfg;
        size_t len;
        if (talos_machine_config(snap->talos, m, &cfg, &len, &err) < 0) {
            atomic_fetch_add(&s->metrics.config[CFG_ERROR], 1);
            state_event_note(s->store, t.mac, "http", "error", err.msg);
            bd_error("config: %s", err.msg);
            rc = server_reply_text(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                            "bootd cannot build this machine's config; see bootctl events\n",
                            strlen("bootd cannot build this machine's config; see bootctl events\n"));
        } else {
            snprintf(r->config_token, sizeof r->config_token, "%s", token);
            rc = server_reply_text(c, r, MHD_HTTP_OK, "application/yaml", cfg, len);
            free(cfg);
        }
    }
    server_lab_put(s, snap);
    return rc;
}

void server_route_config_completed(struct server *s, struct req *r)
{
    struct bd_err err;
    atomic_fetch_add(&s->metrics.config[CFG_SERVED], 1);
    if (state_token_downloaded(s->store, r->config_token, &err) < 0)
        bd_error("config: %s", err.msg);
}
