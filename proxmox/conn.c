/* The connection to the Proxmox VE API: token, TLS settings, one request at a time. */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void proxmox_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* USER@REALM!TOKENID=SECRET, as pveum prints it (an optional PVEAPIToken= is dropped). */
static int read_token(const char *path, char **out, struct bd_err *err)
{
    if (bd_file_check_private(path, err) < 0)
        return bd_err_prefix(err, "proxmox.token_file");
    char *text;
    size_t len;
    if (bd_file_read(path, &text, &len, err) < 0)
        return bd_err_prefix(err, "proxmox.token_file");
    while (len && isspace((unsigned char)text[len - 1]))
        text[--len] = '\0';
    const char *t = text;
    if (strncmp(t, "PVEAPIToken=", 12) == 0)
        t += 12;
    const char *at = strchr(t, '@'), *bang = at ? strchr(at, '!') : NULL;
    const char *eq = bang ? strchr(bang, '=') : NULL;
    bool ok = at && bang && eq && at > t && bang > at + 1 && eq > bang + 1 && eq[1];
    for (const char *p = t; ok && *p; p++)
        ok = !isspace((unsigned char)*p) && !iscntrl((unsigned char)*p);
    if (!ok) {
        free(text);
        return bd_err_set(err, "proxmox.token_file %s: expected one line USER@REALM!TOKENID=SECRET "
                               "(as `pveum user token add` prints it)", path);
    }
    *out = bd_xasprintf("Authorization: PVEAPIToken=%s", t);
    explicit_bzero(text, len);
    free(text);
    return 0;
}

int proxmox_open(const struct proxmox_cfg *cfg, struct proxmox **out, struct bd_err *err)
{
    *out = NULL;
    if (!cfg->api || strncmp(cfg->api, "https://", 8) != 0)
        return bd_err_set(err, "proxmox.api: an https:// URL is required (got %s)",
                          cfg->api ? cfg->api : "nothing");
    if (!cfg->token_file)
        return bd_err_set(err, "proxmox.token_file: required");
    struct proxmox *px = bd_xcalloc(1, sizeof *px);
    if (cfg->fingerprint && proxmox_fingerprint_normalise(cfg->fingerprint, px->seen_fp) < 0) {
        free(px);
        return bd_err_set(err, "proxmox.fingerprint: \"%s\" is not a SHA-256 fingerprint "
                               "(32 hex bytes, AA:BB:..., as the node's certificate page shows)",
                          cfg->fingerprint);
    }
    if (read_token(cfg->token_file, &px->auth, err) < 0) {
        free(px);
        return -1;
    }
    px->api = bd_xstrdup(cfg->api);
    size_t l = strlen(px->api);
    while (l && px->api[l - 1] == '/')
        px->api[--l] = '\0';
    /* the API's base path is bootd's to add; accept a URL that already has it */
    if (l >= 10 && !strcmp(px->api + l - 10, "/api2/json"))
        px->api[l - 10] = '\0';
    px->ca_file = cfg->ca_file ? bd_xstrdup(cfg->ca_file) : NULL;
    px->fingerprint = cfg->fingerprint ? bd_xstrdup(px->seen_fp) : NULL;
    px->seen_fp[0] = '\0';
    px->verify_tls = cfg->verify_tls;
    px->cancel = cfg->cancel;
    px->task_timeout_ms = (cfg->task_timeout_s > 0 ? cfg->task_timeout_s : 600) * 1000;
    px->lock_timeout_ms = (cfg->lock_timeout_s > 0 ? cfg->lock_timeout_s : 120) * 1000;
    bd_curl_global_init();
    px->curl = curl_easy_init();
    if (!px->curl) {
        proxmox_close(px);
        return bd_err_set(err, "cannot initialise libcurl");
    }
    *out = px;
    return 0;
}

void proxmox_close(struct proxmox *px)
{
    if (!px)
        return;
    if (px->curl)
        curl_easy_cleanup(px->curl);
    if (px->auth) {
        explicit_bzero(px->auth, strlen(px->auth));
        free(px->auth);
    }
    free(px->api);
    free(px->ca_file);
    free(px->fingerprint);
    free(px);
}

void proxmox_params_add(struct proxmox_params *p, const char *key, const char *fmt, ...)
{
    if (p->n == sizeof p->v / sizeof p->v[0])
        abort(); /* a programming error: every caller sends a fixed, small set */
    va_list ap;
    va_start(ap, fmt);
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    p->v[p->n].key = key;
    p->v[p->n].value = bd_buf_steal(&b);
    p->n++;
}

void proxmox_params_free(struct proxmox_params *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].value);
    p->n = 0;
}

void proxmox_resp_free(struct proxmox_resp *r)
{
    cJSON_Delete(r->root);
    free(r->body);
    memset(r, 0, sizeof *r);
}

const char *proxmox_message(const struct proxmox_resp *r)
{
    const cJSON *m = r->root ? cJSON_GetObjectItemCaseSensitive(r->root, "message") : NULL;
    return cJSON_IsString(m) ? m->valuestring : "";
}

static void encode(CURL *c, struct bd_buf *b, const struct proxmox_params *params)
{
    for (size_t i = 0; params && i < params->n; i++) {
        char *k = curl_easy_escape(c, params->v[i].key, 0);
        char *v = curl_easy_escape(c, params->v[i].value, 0);
        bd_buf_printf(b, "%s%s=%s", i ? "&" : "", k, v);
        curl_free(k);
        curl_free(v);
    }
}

static void set_tls(struct proxmox *px)
{
    CURL *c = px->curl;
    if (px->fingerprint) {
        /* PVE's own client: with a pinned fingerprint, only the leaf counts; neither the
         * chain nor the host name (a self-signed node certificate has neither). */
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, proxmox_tls_pin_ctx);
        curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, px);
    } else if (px->ca_file || px->verify_tls) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        if (px->ca_file)
            curl_easy_setopt(c, CURLOPT_CAINFO, px->ca_file);
    } else {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

static int transport_error(struct proxmox *px, CURLcode rc, const char *errbuf, struct bd_err *err)
{
    if (px->pin_failed)
        return bd_err_set(err, "proxmox.fingerprint: %s presented a certificate with SHA-256 "
                               "fingerprint %s, but proxmox.fingerprint pins %s; nothing was "
                               "sent (if the node's certificate was renewed, pin the new one)",
                          px->api, px->seen_fp[0] ? px->seen_fp : "(none)", px->fingerprint);
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_SSL_CONNECT_ERROR)
        return bd_err_set(err, "proxmox.api %s: TLS verification failed (%s); set "
                               "proxmox.ca_file to the cluster CA (/etc/pve/pve-root-ca.pem) or "
                               "proxmox.fingerprint to the node certificate's SHA-256",
                          px->api, why);
    return bd_err_set(err, "proxmox.api %s: %s", px->api, why);
}

int proxmox_request(struct proxmox *px, const char *method, const char *path,
               const struct proxmox_params *params, struct proxmox_resp *r, struct bd_err *err)
{
    memset(r, 0, sizeof *r);
    CURL *c = px->curl;
    struct bd_buf url, form, body;
    bd_buf_init(&url);
    bd_buf_init(&form);
    bd_buf_init(&body);
    bool in_query = !strcmp(method, "GET") || !strcmp(method, "DELETE");
    encode(c, &form, params);
    bd_buf_printf(&url, "%s/api2/json%s", px->api, path);
    if (in_query && form.len)
        bd_buf_printf(&url, "?%s", form.data);
    struct curl_slist *hdrs = curl_slist_append(NULL, px->auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (!in_query)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
    int attempts = strcmp(method, "GET") ? 1 : 3;
    CURLcode rc = CURLE_OK;
    char errbuf[CURL_ERROR_SIZE];
    for (int i = 0; i < attempts; i++) {
        curl_easy_reset(c);
        set_tls(px);
        errbuf[0] = '\0';
        bd_buf_reset(&body);
        px->pin_failed = false;
        curl_easy_setopt(c, CURLOPT_URL, url.data);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bd_curl_to_buf);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
        if (px->cancel)
            bd_curl_cancel_on(c, px->cancel);
        if (!in_query) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, form.data ? form.data : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)form.len);
        }
        rc = curl_easy_perform(c);
        /* only a transport failure on a GET is retried, never a TLS refusal */
        if (rc == CURLE_OK || px->pin_failed || rc == CURLE_PEER_FAILED_VERIFICATION ||
            rc == CURLE_ABORTED_BY_CALLBACK)
            break;
        if (i + 1 < attempts)
            proxmox_sleep_ms(500 << i);
    }
    int ret = 0;
    if (rc != CURLE_OK) {
        ret = transport_error(px, rc, errbuf, err);
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        r->body = bd_buf_steal(&body);
        r->root = cJSON_Parse(r->body ? r->body : "");
        if (r->root)
            r->data = cJSON_GetObjectItemCaseSensitive(r->root, "data");
    }
    curl_slist_free_all(hdrs);
    bd_buf_free(&url);
    bd_buf_free(&form);
    bd_buf_free(&body);
    return ret;
}

int proxmox_call(struct proxmox *px, const char *method, const char *path,
            const struct proxmox_params *params, const char *what, const char *action,
            struct proxmox_resp *r, struct bd_err *err)
{
    if (proxmox_request(px, method, path, params, r, err) < 0)
        return bd_err_prefix(err, "%s: %s", what, action);
    if (r->status / 100 == 2) {
        if (!r->root)
            return bd_err_set(err, "%s: %s: %s %s answered %ld with a body that is not JSON",
                              what, action, method, path, r->status);
        return 0;
    }
    char *s = proxmox_error_sentence(what, action, r->status, r->body, params);
    bd_err_set(err, "%s", s);
    free(s);
    if (r->status == 401)
        bd_err_prefix(err, "proxmox.token_file: the API token was refused");
    return -1;
}
