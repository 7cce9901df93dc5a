/* Private to proxmox/: the pieces its files share. Nothing outside proxmox/ includes this. */
#ifndef PROXMOX_INTERNAL_H
#define PROXMOX_INTERNAL_H

#include "proxmox.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

struct proxmox {
    char *api;      /* without a trailing slash */
    char *auth;     /* "Authorization: PVEAPIToken=..." */
    char *ca_file, *fingerprint;
    bool verify_tls;
    int64_t task_timeout_ms, lock_timeout_ms;
    CURL *curl;     /* one handle: its connection is kept between calls */
    char seen_fp[96]; /* the leaf fingerprint the server presented, when pinning */
    bool pin_failed;
    const atomic_bool *cancel;
};

/* One answer: status, the "data" member (NULL when absent), the whole body. */
struct proxmox_resp {
    long status;
    cJSON *root;
    const cJSON *data;
    char *body;
};
void proxmox_resp_free(struct proxmox_resp *r);

/* Sends one request: params go in the query for GET/DELETE, in a form body otherwise.
 * Fails (-1) only when no answer came (unreachable, TLS refused); transport errors on GET
 * are retried. */
int proxmox_request(struct proxmox *px, const char *method, const char *path,
               const struct proxmox_params *params, struct proxmox_resp *r, struct bd_err *err) BD_MUST_CHECK;
/* proxmox_request, and a non-2xx answer becomes an error sentence naming what and action. */
int proxmox_call(struct proxmox *px, const char *method, const char *path,
            const struct proxmox_params *params, const char *what, const char *action,
            struct proxmox_resp *r, struct bd_err *err) BD_MUST_CHECK;
/* The message of an error answer ("" when none). */
const char *proxmox_message(const struct proxmox_resp *r);

/* Polls a UPID until the task stops; fails with the exit status and the log's tail. */
int proxmox_task_wait(struct proxmox *px, const char *upid, const char *what, const char *action,
                 struct bd_err *err) BD_MUST_CHECK;
/* Waits until status/current shows no lock (bpg's WaitForVMConfigUnlock). */
int proxmox_wait_unlocked(struct proxmox *px, const char *node, int vmid, const char *what,
                     struct bd_err *err) BD_MUST_CHECK;

void proxmox_params_add(struct proxmox_params *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void proxmox_sleep_ms(int64_t ms);

/* The TLS leaf check for fingerprint pinning, installed through CURLOPT_SSL_CTX_FUNCTION. */
CURLcode proxmox_tls_pin_ctx(CURL *curl, void *sslctx, void *ud);
/* "aa:bb..", "AABB..": upper-case colon hex of 32 bytes; -1 if not a SHA-256. */
int proxmox_fingerprint_normalise(const char *in, char out[96]);

#endif
