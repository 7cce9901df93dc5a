/* Waiting: UPID tasks until they stop, VM locks until they clear. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Polls start quick (most tasks end within a second) and settle at bpg's 1 s. */
static int64_t next_delay(int64_t d)
{
    return d >= 1000 ? 1000 : d * 2;
}

/* The last lines of the task's log (bpg puts the first 50 into its error; the end is
 * where the reason is). */
static void log_tail(struct proxmox *px, const char *path, struct bd_buf *out)
{
    struct proxmox_params q = {0};
    proxmox_params_add(&q, "start", "0");
    proxmox_params_add(&q, "limit", "500");
    struct proxmox_resp r;
    struct bd_err ignored;
    char *lp = bd_xasprintf("%s/log", path);
    if (proxmox_request(px, "GET", lp, &q, &r, &ignored) == 0 && r.status == 200 &&
        cJSON_IsArray(r.data)) {
        int n = cJSON_GetArraySize(r.data);
        int from = n > 6 ? n - 6 : 0;
        for (int i = from; i < n; i++) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(r.data, i), "t");
            if (cJSON_IsString(t))
                bd_buf_printf(out, "%s%s", out->len ? " | " : "", t->valuestring);
        }
    }
    proxmox_resp_free(&r);
    free(lp);
    proxmox_params_free(&q);
}

int proxmox_task_wait(struct proxmox *px, const char *upid, const char *what, const char *action,
                 struct bd_err *err)
{
    struct proxmox_upid u;
    if (proxmox_upid_parse(upid, &u) < 0)
        return bd_err_set(err, "%s: %s: Proxmox answered a task id that is not a UPID: \"%s\"",
                          what, action, upid);
    char *esc = curl_easy_escape(px->curl, upid, 0);
    char *path = bd_xasprintf("/nodes/%s/tasks/%s", u.node, esc);
    char *sp = bd_xasprintf("%s/status", path);
    curl_free(esc);
    int64_t deadline = bd_mono_ms() + px->task_timeout_ms, delay = 100;
    int ret = -1;
    for (;;) {
        struct proxmox_resp r;
        if (proxmox_request(px, "GET", sp, NULL, &r, err) < 0) {
            bd_err_prefix(err, "%s: %s: waiting for task %s", what, action, upid);
            break;
        }
        /* 400 right after the dispatch: the task is not visible yet (bpg retries it) */
        if (r.status != 200 && r.status != 400) {
            char *s = proxmox_error_sentence(what, action, r.status, r.body, NULL);
            bd_err_set(err, "%s (reading task %s)", s, upid);
            free(s);
            proxmox_resp_free(&r);
            break;
        }
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(r.data, "status");
        const cJSON *ex = cJSON_GetObjectItemCaseSensitive(r.data, "exitstatus");
        if (r.status == 200 && cJSON_IsString(st) && !strcmp(st->valuestring, "stopped")) {
            const char *x = cJSON_IsString(ex) ? ex->valuestring : "";
            if (!strcmp(x, "OK") || (!strncmp(x, "WARNINGS: ", 10) && !strstr(x, "ERROR"))) {
                ret = 0;
            } else {
                struct bd_buf tail;
                bd_buf_init(&tail);
                log_tail(px, path, &tail);
                bd_err_set(err, "%s: %s: task %s failed: %s%s%s", what, action, u.type,
                           x[0] ? x : "(no exit status)", tail.len ? " — log: " : "",
                           tail.len ? tail.data : "");
                bd_buf_free(&tail);
            }
            proxmox_resp_free(&r);
            break;
        }
        proxmox_resp_free(&r);
        if (bd_mono_ms() + delay > deadline) {
            bd_err_set(err, "%s: %s: task %s still running after %llds (%s)", what, action,
                       u.type, (long long)(px->task_timeout_ms / 1000), upid);
            break;
        }
        proxmox_sleep_ms(delay);
        delay = next_delay(delay);
    }
    free(sp);
    free(path);
    return ret;
}

int proxmox_wait_unlocked(struct proxmox *px, const char *node, int vmid, const char *what,
                     struct bd_err *err)
{
    char *path = bd_xasprintf("/nodes/%s/qemu/%d/status/current", node, vmid);
    int64_t deadline = bd_mono_ms() + px->lock_timeout_ms, delay = 100;
    int ret = -1;
    for (;;) {
        struct proxmox_resp r;
        if (proxmox_call(px, "GET", path, NULL, what, "status", &r, err) < 0) {
            proxmox_resp_free(&r);
            break;
        }
        const cJSON *lock = cJSON_GetObjectItemCaseSensitive(r.data, "lock");
        if (!cJSON_IsString(lock) || !lock->valuestring[0]) {
            proxmox_resp_free(&r);
            ret = 0;
            break;
        }
        if (bd_mono_ms() + delay > deadline) {
            bd_err_set(err, "%s: still locked (%s) after %llds; another task holds it", what,
                       lock->valuestring, (long long)(px->lock_timeout_ms / 1000));
            proxmox_resp_free(&r);
            break;
        }
        proxmox_resp_free(&r);
        proxmox_sleep_ms(delay);
        delay = next_delay(delay);
    }
    free(path);
    return ret;
}

int proxmox_status(struct proxmox *px, const char *node, int vmid, char **status,
                   struct bd_err *err)
{
    *status = NULL;
    char *path = bd_xasprintf("/nodes/%s/qemu/%d/status/current", node, vmid);
    char *what = bd_xasprintf("VM %d", vmid);
    struct proxmox_resp r;
    int ret = proxmox_call(px, "GET", path, NULL, what, "status", &r, err);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r.data, "status");
    if (ret == 0 && cJSON_IsString(st))
        *status = bd_xstrdup(st->valuestring);
    else if (ret == 0)
        ret = bd_err_set(err, "%s: status: the answer has no status", what);
    proxmox_resp_free(&r);
    free(path);
    free(what);
    return ret;
}

int proxmox_check_node(struct proxmox *px, const char *field, const char *node,
                       struct bd_err *err)
{
    struct proxmox_resp r;
    if (proxmox_call(px, "GET", "/nodes", NULL, px->api, "list nodes", &r, err) < 0) {
        proxmox_resp_free(&r);
        return -1;
    }
    struct bd_buf names;
    bd_buf_init(&names);
    bool found = false;
    const cJSON *n;
    cJSON_ArrayForEach(n, r.data)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(n, "node");
        if (!cJSON_IsString(name))
            continue;
        found = found || !strcmp(name->valuestring, node);
        bd_buf_printf(&names, "%s%s", names.len ? ", " : "", name->valuestring);
    }
    int ret = found ? 0
                    : bd_err_set(err, "%s: no node \"%s\" in the Proxmox cluster at %s (it has: %s)",
                                 field, node, px->api, names.len ? names.data : "none");
    bd_buf_free(&names);
    proxmox_resp_free(&r);
    return ret;
}
