/* The Kubernetes API over libcurl (OpenSSL): TLS 1.2+ (Talos 1.14+ API servers take only
 * 1.3, which OpenSSL offers first), the server verified against the cluster CA, a
 * client certificate from PEM in memory. Calls run several at once on one multi
 * handle, so connections (and HTTP/2 streams, where the server speaks it) are reused
 * from call to call. */
#include "kube.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enough to hide round trips without crowding a busy API server (over HTTP/2 they share
 * one connection). */
#define KUBE_PARALLEL 4
#define KUBE_TIMEOUT_S 30L

struct kube {
    struct kube_target t;
    const atomic_bool *cancel; /* NULL: never */
    CURLM *multi;
    CURL *easy[KUBE_PARALLEL];
    struct kube_call *busy[KUBE_PARALLEL];
    struct curl_slist *hdrs[KUBE_PARALLEL];
};

/* What every call of this client shares: TLS (the blobs are parsed once per
 * connection, and connections are kept), timeouts, the body callback. */
static CURL *easy_new(const struct kube_target *t)
{
    CURL *e = bd_curl_easy(10000L);
    if (!e)
        bd_fatal("kube: libcurl cannot make a handle");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bd_curl_to_buf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, KUBE_TIMEOUT_S);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    bd_curl_tls(e, t->ca_pem, t->cert_pem, t->key_pem);
    return e;
}

struct kube *kube_new(const struct kube_target *t)
{
    bd_curl_global_init();
    struct kube *k = bd_xcalloc(1, sizeof *k);
    kube_target_copy(&k->t, t);
    size_t n = strlen(k->t.server);
    while (n && k->t.server[n - 1] == '/')
        k->t.server[--n] = 0;
    k->multi = curl_multi_init();
    curl_multi_setopt(k->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(k->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)KUBE_PARALLEL);
    for (int i = 0; i < KUBE_PARALLEL; i++)
        k->easy[i] = easy_new(&k->t);
    return k;
}

void kube_set_cancel(struct kube *k, const atomic_bool *cancel)
{
    k->cancel = cancel;
}

void kube_free(struct kube *k)
{
    if (!k)
        return;
    for (int i = 0; i < KUBE_PARALLEL; i++)
        curl_easy_cleanup(k->easy[i]);
    curl_multi_cleanup(k->multi);
    kube_target_free(&k->t);
    free(k);
}

void kube_call_clear(struct kube_call *c)
{
    free(c->path);
    free(c->body);
    bd_buf_free(&c->resp);
    memset(c, 0, sizeof *c);
}



/* Points slot i at call c (the TLS setup stays from kube_new) and adds it to the multi
 * handle. */
static void start(struct kube *k, int i, struct kube_call *c)
{
    CURL *e = k->easy[i];
    c->status = 0;
    c->err[0] = 0;
    bd_buf_reset(&c->resp);
    char *url = bd_xasprintf("%s%s", k->t.server, c->path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* forgets the previous call's body */
    if (c->body) {
        char *ct = bd_xasprintf("Content-Type: %s", c->content_type);
        h = curl_slist_append(h, ct);
        free(ct);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
    }
    if (k->t.token) {
        char *auth = bd_xasprintf("Authorization: Bearer %s", k->t.token);
        h = curl_slist_append(h, auth);
        free(auth);
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    k->busy[i] = c;
    k->hdrs[i] = h;
    curl_multi_add_handle(k->multi, e);
}

static void finish(struct kube *k, CURL *e, CURLcode rc)
{
    for (int i = 0; i < KUBE_PARALLEL; i++) {
        if (k->easy[i] != e)
            continue;
        struct kube_call *c = k->busy[i];
        if (rc == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
        else if (!c->err[0])
            snprintf(c->err, sizeof c->err, "%s", curl_easy_strerror(rc));
        curl_multi_remove_handle(k->multi, e);
        curl_slist_free_all(k->hdrs[i]);
        k->hdrs[i] = NULL;
        k->busy[i] = NULL;
        return;
    }
}

/* Ends the calls in flight and fails the rest: bootd is stopping. */
static void cancel_all(struct kube *k, struct kube_call *calls, size_t next, size_t n)
{
    for (int i = 0; i < KUBE_PARALLEL; i++)
        if (k->busy[i]) {
            snprintf(k->busy[i]->err, sizeof k->busy[i]->err, "cancelled");
            finish(k, k->easy[i], CURLE_ABORTED_BY_CALLBACK);
        }
    for (; next < n; next++) {
        calls[next].status = 0;
        snprintf(calls[next].err, sizeof calls[next].err, "cancelled");
    }
}

void kube_run(struct kube *k, struct kube_call *calls, size_t n)
{
    size_t next = 0, active = 0;
    while (next < n || active) {
        if (k->cancel && atomic_load(k->cancel)) {
            cancel_all(k, calls, next, n);
            return;
        }
        for (int i = 0; i < KUBE_PARALLEL && next < n; i++)
            if (!k->busy[i]) {
                start(k, i, &calls[next++]);
                active++;
            }
        int running;
        curl_multi_perform(k->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(k->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            finish(k, m->easy_handle, m->data.result);
            active--;
        }
        if (active && running)
            curl_multi_poll(k->multi, NULL, 0, 1000, NULL);
    }
}

const char *kube_call_error(const struct kube_call *c, char *buf, size_t n)
{
    if (!c->status) {
        snprintf(buf, n, "%s %s: %s", c->method, c->path, c->err[0] ? c->err : "no answer");
        return buf;
    }
    cJSON *j = cJSON_ParseWithLength(c->resp.data ? c->resp.data : "", c->resp.len);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(msg))
        snprintf(buf, n, "HTTP %ld: %s", c->status, msg->valuestring);
    else
        snprintf(buf, n, "HTTP %ld from %s %s", c->status, c->method, c->path);
    cJSON_Delete(j);
    return buf;
}
