/* /config/<token>: a machine's Talos config, for the machine the token was minted for,
 * from the address it is bound to, until a short while after its first download. Every
 * refusal is a 403 and an audit event. */
#include "server.h"

#include "../cluster/cluster.h"
#include "../talos/talos.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char denied_body[] = "config token refused; see bootctl events\n";

/* why: the kind of refusal, for counting repeats */
static enum MHD_Result deny(struct server *s, struct MHD_Connection *c, struct req *r,
                            const char *mac, const char *why, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static enum MHD_Result deny(struct server *s, struct MHD_Connection *c, struct req *r,
                            const char *mac, const char *why, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    server_refusal(s, mac, why, msg);
    atomic_fetch_add(&s->metrics.config[CFG_DENIED], 1);
    return server_reply_text(c, r, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8", denied_body,
                      sizeof denied_body - 1);
}

/* A config on its way out. The download is recorded before its last piece is handed to
 * the socket: once the machine can have every byte, the config-served mark is already in
 * state.db, even if bootd is killed the next instant. (Recorded when the response
 * completes instead, a kill in between lost it: 3 rounds in 100.) */
struct config_body {
    struct server *s;
    char *data;
    size_t len;
    bool marked;
    char token[33];
    /* what bootctl plan compares with later: the machine has this config now */
    char mac[18], sha256[65];
    char *redacted;
};

static void mark_downloaded(struct config_body *b)
{
    struct bd_err err;
    if (state_token_downloaded(b->s->store, b->token, &err) < 0)
        bd_error("config: %s", err.msg);
    if (b->redacted && state_applied_put(b->s->store, b->mac, b->sha256, b->redacted, "pxe",
                                         &err) < 0)
        bd_error("config: %s", err.msg);
    b->marked = true;
}

static ssize_t config_chunk(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct config_body *b = cls;
    if (pos >= b->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = b->len - (size_t)pos < max ? b->len - (size_t)pos : max;
    if (pos + n == b->len && !b->marked)
        mark_downloaded(b);
    memcpy(buf, b->data + pos, n);
    return (ssize_t)n;
}

static void config_body_free(void *cls)
{
    struct config_body *b = cls;
    free(b->data);
    free(b->redacted);
    free(b);
}

/* Takes cfg. */
static enum MHD_Result send_config(struct server *s, struct MHD_Connection *c, struct req *r,
                                   const struct lab_snap *snap, const char *mac,
                                   const char *token, char *cfg, size_t len)
{
    struct config_body *b = bd_xcalloc(1, sizeof *b);
    b->s = s;
    b->data = cfg;
    b->len = len;
    snprintf(b->token, sizeof b->token, "%s", token);
    snprintf(b->mac, sizeof b->mac, "%s", mac);
    struct bd_err err;
    if (cluster_applied_prepare(snap->talos, snap->lab, cfg, len, b->sha256, &b->redacted,
                                &err) < 0)
        bd_error("config: %s: not recorded as applied: %s", mac, err.msg);
    if (!len) /* no last piece to wait for */
        mark_downloaded(b);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(len, 16384, config_chunk, b, config_body_free);
    if (!resp) {
        config_body_free(b);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/yaml");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->bytes = len;
    return server_reply(c, r, MHD_HTTP_OK, resp);
}

enum MHD_Result server_route_config(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *token)
{
    char ip[16];
    uint32_t addr = server_client_ipv4(c);
    bd_ipv4_format(addr, ip);
    if (!server_config_token_ok(token))
        return deny(s, c, r, NULL, "config-malformed", "malformed config token from %s", ip);
    struct state_token_info t;
    struct bd_err err;
    int found = state_token_lookup(s->store, token, &t, &err);
    if (found < 0) {
        atomic_fetch_add(&s->metrics.config[CFG_ERROR], 1);
        bd_error("config: %s", err.msg);
        return server_reply_text(c, r, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", "try again\n", 10);
    }
    if (!found)
        return deny(s, c, r, NULL, "config-unknown", "unknown config token from %s", ip);
    if (t.superseded)
        return deny(s, c, r, t.mac, "config-stale",
                    "stale config token for %s from %s: a newer boot replaced it", t.name, ip);

    struct lab_snap *snap = server_lab(s);
    const struct lab *lab = snap->lab;
    int64_t now = bd_now_ms();
    server_bootwatch_config(s, token); /* whatever the answer: that boot's kernel ran */
    enum MHD_Result rc;
    char bound[24], why[256];
    bd_ipv4_format(t.bind.addr, bound);
    struct bd_mac mac;
    bd_mac_parse(t.mac, &mac);
    const struct lab_machine *m = lab_machine_by_mac(lab, &mac);
    if (t.first_download_ms && now > t.first_download_ms + lab->boot.token_grace_s * 1000) {
        rc = deny(s, c, r, t.mac, "config-expired",
                  "expired config token for %s from %s: first downloaded %lld s ago", t.name, ip,
                  (long long)((now - t.first_download_ms) / 1000));
    } else if (!t.first_download_ms && now > t.issued_ms + lab->boot.token_max_age_s * 1000) {
        rc = deny(s, c, r, t.mac, "config-expired",
                  "expired config token for %s from %s: never used in %lld s", t.name, ip,
                  (long long)lab->boot.token_max_age_s);
    } else if (!bd_ipv4_in(addr, t.bind.addr, t.bind.prefix)) {
        rc = deny(s, c, r, t.mac, "config-replay",
                  "config token for %s presented from %s, bound to %s/%d (replay?)", t.name, ip,
                  bound, t.bind.prefix);
    } else if (!m) {
        rc = deny(s, c, r, t.mac, "config-gone",
                  "config token for %s: lab.yaml no longer has that machine", t.mac);
    } else if (!server_claim_ok(lab, m, addr, why, sizeof why)) {
        rc = deny(s, c, r, t.mac, "config-claim", "config token presented by another host: %s",
                  why);
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
            rc = send_config(s, c, r, snap, t.mac, token, cfg, len);
        }
    }
    server_lab_put(s, snap);
    return rc;
}

void server_route_config_completed(struct server *s, struct req *r)
{
    (void)r;
    atomic_fetch_add(&s->metrics.config[CFG_SERVED], 1);
}
