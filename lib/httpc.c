/* Outbound HTTP through libcurl: one call, one answer. */
#include "bd.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void bd_curl_global_init(void)
{
    pthread_once(&curl_once, curl_init);
}

size_t bd_curl_to_buf(char *p, size_t sz, size_t n, void *buf)
{
    bd_buf_append(buf, p, sz * n);
    return sz * n;
}

struct body_ctx {
    CURL *curl;
    const struct bd_http_req *req;
    struct bd_http_resp *resp;
    bool sink_failed;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct body_ctx *b = ud;
    long status = 0;
    if (b->req->sink)
        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status / 100 != 2)
        return bd_curl_to_buf(p, sz, n, &b->resp->body);
    if (b->req->sink(p, sz * n, b->req->sink_ud) < 0) {
        b->sink_failed = true;
        return 0;
    }
    return sz * n;
}

int bd_http(const struct bd_http_req *req, struct bd_http_resp *resp, struct bd_err *err)
{
    memset(resp, 0, sizeof *resp);
    bd_buf_init(&resp->body);
    CURL *c = bd_curl_easy(10000L);
    if (!c)
        return bd_err_set(err, "cannot initialise libcurl");
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    if (req->bearer) {
        auth = bd_xasprintf("Authorization: Bearer %s", req->bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (req->content_type) {
        char *ct = bd_xasprintf("Content-Type: %s", req->content_type);
        hdrs = curl_slist_append(hdrs, ct);
        free(ct);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method ? req->method : "GET");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    struct body_ctx bctx = {.curl = c, .req = req, .resp = resp};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bctx);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    if (req->timeout_s >= 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT, req->timeout_s ? req->timeout_s : 30L);
    } else { /* a long download: give up only when it stalls for a minute */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    }
    if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
    }
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (bctx.sink_failed)
        ret = bd_err_set(err, "%s: the answer could not be stored", req->url);
    else if (rc != CURLE_OK)
        ret = bd_err_set(err, "%s: %s", req->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(hdrs);
    free(auth);
    curl_easy_cleanup(c);
    if (ret < 0)
        bd_buf_free(&resp->body);
    return ret;
}

void bd_http_resp_free(struct bd_http_resp *r)
{
    bd_buf_free(&r->body);
}

void *bd_curl_easy(long connect_timeout_ms)
{
    bd_curl_global_init();
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_USERAGENT, "bootd");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    return e;
}

static void set_blob(CURL *e, CURLoption opt, const char *pem)
{
    struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(e, opt, &b);
}

void bd_curl_tls(void *curl, const char *ca_pem, const char *cert_pem, const char *key_pem)
{
    CURL *e = curl;
    curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    /* only ca_pem: without these libcurl would also trust the system's CA directory */
    curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    set_blob(e, CURLOPT_CAINFO_BLOB, ca_pem);
    if (cert_pem && key_pem) {
        set_blob(e, CURLOPT_SSLCERT_BLOB, cert_pem);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        set_blob(e, CURLOPT_SSLKEY_BLOB, key_pem);
        curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
}

static int on_cancel_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load((const atomic_bool *)ud) ? 1 : 0;
}

void bd_curl_cancel_on(void *curl, const atomic_bool *cancel)
{
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_cancel_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)cancel);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}
