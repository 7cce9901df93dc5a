/* gRPC over libcurl, as apid speaks it: HTTP/2 negotiated by ALPN "h2" over TLS 1.2 or
 * later (grpc-go refuses peers that do not negotiate ALPN), the node's certificate
 * verified against the os CA alone, bootd's os:admin client certificate presented.
 * Messages are framed by hand (a flag byte and a big-endian length before each), and the
 * call's outcome is the grpc-status trailer (or header, for "trailers-only" answers),
 * which libcurl hands to the header callback like any other header. Framing follows
 * grpc/grpc doc/PROTOCOL-HTTP2.md. */
#include "internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* grpc-go's default receive limit is 4 MiB; Talos streams chunks of a few KiB. */
#define GRPC_MAX_MESSAGE (16u << 20)
#define UNARY_TIMEOUT_S 30L
#define STALL_S 60L /* a stream that sends nothing for this long has failed */

struct call_ctx {
    const struct talos_grpc_call *call;
    struct bd_buf pending; /* the start of a message whose end has not arrived */
    int grpc_status;       /* -1 until grpc-status arrives */
    char grpc_message[512];
    char content_type[64];
    bool failed; /* a message could not be used: err says why */
    struct bd_err *err;
};

static const char *const code_names[] = {
    "OK",           "Canceled",          "Unknown",     "InvalidArgument", "DeadlineExceeded",
    "NotFound",     "AlreadyExists",     "PermissionDenied", "ResourceExhausted",
    "FailedPrecondition", "Aborted",     "OutOfRange",  "Unimplemented",   "Internal",
    "Unavailable",  "DataLoss",          "Unauthenticated",
};

const char *talos_code_name(int code)
{
    if (code >= 0 && (size_t)code < sizeof code_names / sizeof code_names[0])
        return code_names[code];
    return code == TALOS_CALL_FAILED ? "no answer" : "unknown code";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* grpc-message is percent-encoded. */
static void percent_decode(const char *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        int hi, lo;
        if (v[i] == '%' && i + 2 < n && (hi = hexval(v[i + 1])) >= 0 && (lo = hexval(v[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = v[i];
        }
    }
    out[o] = 0;
}

/* Headers and, after the body, trailers: the same callback sees both. */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct call_ctx *x = ud;
    size_t len = sz * n;
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len; /* the status line or the blank line after a header block */
    size_t klen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - klen - 1;
    while (vlen && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (klen == 11 && !strncasecmp(p, "grpc-status", 11)) {
        char num[12];
        size_t m = vlen < sizeof num - 1 ? vlen : sizeof num - 1;
        memcpy(num, v, m);
        num[m] = 0;
        char *end;
        long s = strtol(num, &end, 10);
        x->grpc_status = (end != num && *end == 0 && s >= 0 && s < 1000) ? (int)s : 2 /* Unknown */;
    } else if (klen == 12 && !strncasecmp(p, "grpc-message", 12)) {
        percent_decode(v, vlen, x->grpc_message, sizeof x->grpc_message);
    } else if (klen == 12 && !strncasecmp(p, "content-type", 12)) {
        snprintf(x->content_type, sizeof x->content_type, "%.*s", (int)vlen, v);
    }
    return len;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Hands every complete message to on_msg; keeps a partial one for the next call. */
static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct call_ctx *x = ud;
    bd_buf_append(&x->pending, p, sz * n);
    const uint8_t *b = (const uint8_t *)x->pending.data;
    size_t off = 0, len = x->pending.len;
    while (len - off >= 5) {
        uint32_t mlen = be32(b + off + 1);
        if (b[off] & 1) {
            bd_err_set(x->err, "a compressed message arrived, though bootd asks for none");
            goto fail;
        }
        if (mlen > GRPC_MAX_MESSAGE) {
            bd_err_set(x->err, "a message of %u bytes is over bootd's limit of %u", mlen,
                       GRPC_MAX_MESSAGE);
            goto fail;
        }
        if (len - off - 5 < mlen)
            break;
        if (x->call->on_msg(b + off + 5, mlen, x->call->ud, x->err) < 0)
            goto fail;
        off += 5 + (size_t)mlen;
    }
    memmove(x->pending.data, x->pending.data + off, len - off);
    x->pending.len = len - off;
    return sz * n;
fail:
    x->failed = true;
    return 0; /* libcurl stops the transfer */
}

static void set_tls(CURL *e, const struct talos_creds *cr)
{
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_SSL_ENABLE_ALPN, 1L);
    /* only the os CA; apid's certificate names the node's IPs */
    bd_curl_tls(e, cr->ca_pem, cr->crt_pem, cr->key_pem);
}

/* Why no gRPC answer came, in words that point at the cause. */
static void transport_error(CURL *e, CURLcode rc, const char *errbuf, const struct talos_grpc_call *c,
                            struct bd_err *err)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    long http = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        bd_err_set(err, "cannot connect: %s", detail);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        bd_err_set(err, "cancelled: bootd is stopping");
        break;
    case CURLE_OPERATION_TIMEDOUT:
        bd_err_set(err, "no answer in time: %s", detail);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        bd_err_set(err,
                   "TLS: the node's certificate is not one the cluster's os CA (secrets.yaml "
                   "certs.os) issued for %s: %s. Is it another cluster's node, or Talos in "
                   "maintenance mode?",
                   c->node->host, detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
        bd_err_set(err, "TLS handshake failed: %s", detail);
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_PARTIAL_FILE:
        if (http == 0)
            bd_err_set(err,
                       "the connection closed before an answer: %s (apid closes TLS connections "
                       "whose client certificate it refuses)",
                       detail);
        else
            bd_err_set(err, "the connection broke: %s", detail);
        break;
    default:
        bd_err_set(err, "%s", detail);
    }
}

/* After a transfer that completed: was it a gRPC answer, and what was its status? */
static int check_answer(CURL *e, struct call_ctx *x, int *code, struct bd_err *err)
{
    long version = 0, http = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
    if (version != CURL_HTTP_VERSION_2_0)
        return bd_err_set(err, "the server answered over HTTP/1.x, not HTTP/2 (ALPN h2): it is "
                               "not a Talos API");
    if (x->grpc_status < 0) {
        if (http != 200)
            return bd_err_set(err, "HTTP %ld without a gRPC status: not a Talos API", http);
        if (strncmp(x->content_type, "application/grpc", 16))
            return bd_err_set(err, "content-type \"%s\" is not gRPC", x->content_type);
        return bd_err_set(err, "the answer ended without a grpc-status trailer");
    }
    if (x->grpc_status != 0) {
        *code = x->grpc_status;
        return bd_err_set(err, "%s: %s", talos_code_name(x->grpc_status),
                          x->grpc_message[0] ? x->grpc_message : "(no message)");
    }
    if (x->pending.len)
        return bd_err_set(err, "the answer ends inside a message (%zu bytes left over)",
                          x->pending.len);
    *code = TALOS_OK;
    return 0;
}

int talos_grpc_call(const struct talos_grpc_call *c, int *code, struct bd_err *err)
{
    *code = TALOS_CALL_FAILED;
    const struct talos_node *n = c->node;
    CURL *e = bd_curl_easy(n->connect_timeout_ms > 0 ? n->connect_timeout_ms : 5000L);
    if (!e)
        return bd_err_set(err, "cannot initialise libcurl");
    const char *method = strrchr(c->method, '/') + 1;

    struct bd_buf body; /* the request: one length-prefixed message */
    bd_buf_init(&body);
    uint8_t prefix[5] = {0, (uint8_t)(c->req->len >> 24), (uint8_t)(c->req->len >> 16),
                         (uint8_t)(c->req->len >> 8), (uint8_t)c->req->len};
    bd_buf_append(&body, prefix, sizeof prefix);
    bd_buf_append(&body, c->req->data, c->req->len);

    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/grpc");
    h = curl_slist_append(h, "TE: trailers");
    h = curl_slist_append(h, "Expect:");
    if (!c->stream)
        h = curl_slist_append(h, "grpc-timeout: 30S");
    char *url = bd_xasprintf("https://%s:%d%s", n->host, n->port, c->method);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct call_ctx x = {.call = c, .grpc_status = -1, .err = err};
    bd_buf_init(&x.pending);

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    if (c->stream) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, STALL_S);
    } else {
        curl_easy_setopt(e, CURLOPT_TIMEOUT, UNARY_TIMEOUT_S);
    }
    set_tls(e, n->creds);
    if (n->cancel)
        bd_curl_cancel_on(e, n->cancel);

    CURLcode rc = curl_easy_perform(e);
    int ret;
    if (x.failed)
        ret = -1; /* on_data filled err */
    else if (rc != CURLE_OK)
        ret = (transport_error(e, rc, errbuf, c, err), -1);
    else
        ret = check_answer(e, &x, code, err);
    if (ret < 0)
        bd_err_prefix(err, "Talos API %s:%d: %s", n->host, n->port, method);

    bd_buf_free(&x.pending);
    bd_buf_free(&body);
    curl_slist_free_all(h);
    free(url);
    curl_easy_cleanup(e);
    return ret;
}
