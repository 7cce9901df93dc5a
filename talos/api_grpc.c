/* gRPC over libcurl, as apid speaks it: HTTP/2 negotiated by ALPN "h2" over TLS 1.2 or
 * later (grpc-go refuses peers that do not negotiate ALPN), the node's certificate
 * verified against the os CA alone, bootd's os:admin client certificate presented.
 * Messages are framed by hand (a flag byte and a big-endian length before each), and the
 * call's outcome is the grpc-status trailer (or header, for "trailers-only" answers),
 * which libcurl hands to the header callback like any other header. Framing follows
 * grpc/grpc doc/PROTOCOL-HTTP2.md; api_grpc_wire.c reads it. */
#include "internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNARY_TIMEOUT_S 30L
#define STALL_S 60L /* a stream that sends nothing for this long has failed */

struct call_ctx {
    const struct talos_grpc_call *call;
    struct bd_buf out; /* a client stream: framed messages not yet handed to libcurl */
    size_t out_off;
    bool out_done;
    struct talos_grpc_answer a;
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

/* Headers and, after the body, trailers: the same callback sees both. */
static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct call_ctx *x = ud;
    talos_grpc_header(&x->a, p, sz * n);
    return sz * n;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    struct call_ctx *x = ud;
    if (talos_grpc_data(&x->a, p, sz * n, x->call->on_msg, x->call->ud, x->err) < 0) {
        x->failed = true;
        return 0; /* libcurl stops the transfer */
    }
    return sz * n;
}

static void set_tls(CURL *e, const struct talos_creds *cr)
{
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_SSL_ENABLE_ALPN, 1L);
    /* only the os CA; apid's certificate names the node's IPs */
    bd_curl_tls(e, cr->ca_pem, cr->crt_pem, cr->key_pem);
}

static void frame(struct bd_buf *b, const void *msg, size_t len)
{
    uint8_t prefix[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                         (uint8_t)len};
    bd_buf_append(b, prefix, sizeof prefix);
    bd_buf_append(b, msg, len);
}

/* A client stream's body: each message next_msg makes, framed, until it says the end. */
static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    struct call_ctx *x = ud;
    if (x->out_off == x->out.len && !x->out_done) {
        struct bd_buf msg;
        bd_buf_init(&msg);
        int rc = x->call->next_msg(&msg, x->call->next_ud, x->err);
        bd_buf_reset(&x->out);
        x->out_off = 0;
        if (rc > 0)
            frame(&x->out, msg.data, msg.len);
        else
            x->out_done = true;
        bd_buf_free(&msg);
        if (rc < 0) {
            x->failed = true;
            return CURL_READFUNC_ABORT;
        }
    }
    size_t m = x->out.len - x->out_off < sz * n ? x->out.len - x->out_off : sz * n;
    memcpy(buf, x->out.data + x->out_off, m);
    x->out_off += m;
    return m; /* 0 once the stream is over: the end of the body */
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
    if (x->a.grpc_status < 0) {
        if (http != 200)
            return bd_err_set(err, "HTTP %ld without a gRPC status: not a Talos API", http);
        if (strncmp(x->a.content_type, "application/grpc", 16))
            return bd_err_set(err, "content-type \"%s\" is not gRPC", x->a.content_type);
        return bd_err_set(err, "the answer ended without a grpc-status trailer");
    }
    if (x->a.grpc_status != 0) {
        *code = x->a.grpc_status;
        return bd_err_set(err, "%s: %s", talos_code_name(x->a.grpc_status),
                          x->a.grpc_message[0] ? x->a.grpc_message : "(no message)");
    }
    if (x->a.pending.len)
        return bd_err_set(err, "the answer ends inside a message (%zu bytes left over)",
                          x->a.pending.len);
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
    if (!c->next_msg)
        frame(&body, c->req->data, c->req->len);

    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/grpc");
    h = curl_slist_append(h, "TE: trailers");
    h = curl_slist_append(h, "Expect:");
    if (!c->stream)
        h = curl_slist_append(h, "grpc-timeout: 30S");
    char *url = bd_xasprintf("https://%s:%d%s", n->host, n->port, c->method);
    char errbuf[CURL_ERROR_SIZE] = "";
    struct call_ctx x = {.call = c, .err = err};
    talos_grpc_answer_init(&x.a);
    bd_buf_init(&x.out);

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    if (c->next_msg) { /* HTTP/2 frames the body: no length needed, no chunked encoding */
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, &x);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body.len);
    }
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

    bd_buf_free(&x.a.pending);
    bd_buf_free(&x.out);
    bd_buf_free(&body);
    curl_slist_free_all(h);
    free(url);
    curl_easy_cleanup(e);
    return ret;
}
