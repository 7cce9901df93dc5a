/* One file from Image Factory (or a mirror) into its partial download with libcurl:
 * resumed with Range from what the partial file holds, hashed as the bytes arrive,
 * retried from where it stopped when the connection drops mid-file, and given up with
 * a message that says what happened when the server stalls or the disk fills. */
#include "images.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ATTEMPTS 5     /* per file, each one having made progress */
#define PROGRESS_MS 100
#define BUFFER_SIZE (512 * 1024)

struct xfer {
    struct images_fetch *f;
    CURL *c;
    int fd;
    uint64_t off;   /* bytes in the partial file */
    uint64_t start; /* where this attempt began */
    struct images_hash_follow *hf;
    bool decided, body_ok;
    int write_errno;
    struct bd_buf errbody; /* the start of an error answer, for the message */
    char errbuf[CURL_ERROR_SIZE];
    int64_t progress_ms;
    int64_t unsatisfiable_size; /* the file size a 416 names in Content-Range, or -1 */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nm;
    if (!x->decided) {
        long status = 0;
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
        x->body_ok = status == 200 || status == 206 || status == 0; /* 0: file:// */
        x->decided = true;
    }
    if (!x->body_ok) {
        if (x->errbody.len < 512)
            bd_buf_append(&x->errbody, p, n < 512 ? n : 512);
        return n;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = pwrite(x->fd, p + done, n - done, (off_t)(x->off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            x->write_errno = errno;
            return 0; /* libcurl stops with CURLE_WRITE_ERROR */
        }
        done += (size_t)w;
    }
    x->off += n;
    images_hash_follow_grow(x->hf, x->off);
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nm;
    static const char name[] = "content-range:";
    if (n < sizeof name || strncasecmp(p, name, sizeof name - 1))
        return n;
    char value[64];
    snprintf(value, sizeof value, "%.*s", (int)(n - (sizeof name - 1)), p + sizeof name - 1);
    long long size;
    char slash;
    if (sscanf(value, " bytes *%c%lld", &slash, &size) == 2 && slash == '/')
        x->unsatisfiable_size = size;
    return n;
}

static void report(struct xfer *x, uint64_t total)
{
    const struct images_pull_opts *o = x->f->o;
    if (!o->progress)
        return;
    struct images_progress p = {.file = x->f->name, .done = x->off, .total = total};
    o->progress(o->ud, &p);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dlnow, (void)ultotal, (void)ulnow;
    struct xfer *x = ud;
    const struct images_pull_opts *o = x->f->o;
    if (o->cancel && atomic_load(o->cancel))
        return 1;
    int64_t now = bd_now_ms();
    if (x->body_ok && now - x->progress_ms >= PROGRESS_MS) {
        x->progress_ms = now;
        report(x, dltotal > 0 ? x->start + (uint64_t)dltotal : 0);
    }
    return 0;
}

static void setup(struct xfer *x)
{
    const struct images_pull_opts *o = x->f->o;
    CURL *c = x->c;
    long timeout = o->timeout_s > 0 ? o->timeout_s : 30;
    curl_easy_setopt(c, CURLOPT_URL, x->f->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L); /* Image Factory may send a CDN */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    /* a download may take long; only silence is a failure */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, timeout);
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)BUFFER_SIZE);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
}

/* Drops what the partial file holds and starts the hash again. */
static int restart(struct xfer *x, struct bd_err *err)
{
    char discard[65];
    struct bd_err ignored;
    if (images_hash_follow_finish(x->hf, x->f->part, discard, &ignored) < 0)
        bd_debug("images: %s", ignored.msg); /* the hash of what is thrown away */
    x->hf = NULL;
    if (ftruncate(x->fd, 0) < 0)
        return bd_err_set(err, "%s/%s: truncate: %s", x->f->dir, x->f->part, strerror(errno));
    x->off = 0;
    x->hf = images_hash_follow_start(x->fd, 0);
    return 0;
}

/* The first line of an error answer, printable characters only. */
static void first_line(const struct bd_buf *b, char *out, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < b->len && b->data[i] != '\n' && w + 1 < n; i++)
        if ((unsigned char)b->data[i] >= 0x20 && b->data[i] != 0x7f)
            out[w++] = b->data[i];
    out[w] = 0;
}

static bool dropped(CURLcode rc)
{
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_SEND_ERROR;
}

static int explain(struct xfer *x, CURLcode rc, struct bd_err *err)
{
    struct images_fetch *f = x->f;
    long timeout = f->o->timeout_s > 0 ? f->o->timeout_s : 30;
    const char *what = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    char kept[160];
    snprintf(kept, sizeof kept, "%" PRIu64 " bytes kept in %s/%s, the next pull resumes there",
             x->off, f->dir, f->part);
    if (rc == CURLE_WRITE_ERROR && x->write_errno) {
        unlinkat(f->dir_fd, f->part, 0); /* a full disk is better off without it */
        return bd_err_set(err,
                          "%s: writing %s/%s: %s; the partial download was removed, the "
                          "cached files are unchanged",
                          f->name, f->dir, f->part, strerror(x->write_errno));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connected = 0;
        curl_easy_getinfo(x->c, CURLINFO_CONNECT_TIME_T, &connected);
        if (!connected)
            return bd_err_set(err, "%s: %s: could not connect within %ld s", f->name, f->url,
                              timeout);
        return bd_err_set(err,
                          "%s: %s: no data for %ld s, the server stalled (images.timeout); %s",
                          f->name, f->url, timeout, kept);
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return bd_err_set(err, "%s: cancelled; %s", f->name, kept);
    if (dropped(rc))
        return bd_err_set(err, "%s: %s: the connection broke off (%s); %s", f->name, f->url, what,
                          kept);
    return bd_err_set(err, "%s: %s: %s", f->name, f->url, what);
}

static int transfer(struct xfer *x, struct bd_err *err)
{
    struct images_fetch *f = x->f;
    bool restarted = false;
    for (int attempt = 1;; attempt++) {
        x->errbuf[0] = 0;
        x->start = x->off;
        x->decided = x->body_ok = false;
        x->write_errno = 0;
        x->unsatisfiable_size = -1;
        bd_buf_reset(&x->errbody);
        curl_easy_setopt(x->c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x->off);
        CURLcode rc = curl_easy_perform(x->c);
        curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &f->status);
        bool progressed = x->off > x->start;
        if (rc == CURLE_OK && (x->body_ok || (!x->decided && f->status < 300)))
            return 0; /* body_ok, or nothing left to send after the resume point */
        if (rc == CURLE_OK && f->status == 416 && x->unsatisfiable_size == (int64_t)x->off)
            return 0; /* the partial file is the whole file already */
        /* the server cannot resume from there (416, or it sends the whole file): the
         * partial file is stale; start once from zero */
        if ((rc == CURLE_RANGE_ERROR || (rc == CURLE_OK && f->status == 416)) && !restarted &&
            x->start > 0) {
            restarted = true;
            if (restart(x, err) < 0)
                return -1;
            continue;
        }
        if (rc == CURLE_OK) {
            char line[200];
            first_line(&x->errbody, line, sizeof line);
            return bd_err_set(err, "%s: %s: HTTP %ld%s%s", f->name, f->url, f->status,
                              line[0] ? ": " : "", line);
        }
        if (dropped(rc) && progressed && attempt < MAX_ATTEMPTS) {
            bd_debug("images: %s: %s after %" PRIu64 " bytes; resuming", f->name,
                     x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc), x->off);
            continue;
        }
        return explain(x, rc, err);
    }
}

int images_fetch(struct images_fetch *f, struct bd_err *err)
{
    pthread_once(&curl_once, curl_init);
    f->status = 0;
    struct xfer x = {.f = f, .fd = -1};
    bd_buf_init(&x.errbody);
    x.fd = openat(f->dir_fd, f->part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (x.fd < 0)
        return bd_err_set(err, "%s/%s: %s", f->dir, f->part, strerror(errno));
    struct stat sb;
    int rc = fstat(x.fd, &sb) < 0 ? bd_err_set(err, "%s: %s", f->part, strerror(errno)) : 0;
    x.off = rc == 0 ? (uint64_t)sb.st_size : 0;
    x.hf = images_hash_follow_start(x.fd, x.off); /* what is there already, meanwhile */
    long timeout_s = x.f->o->timeout_s > 0 ? x.f->o->timeout_s : 30;
    x.c = rc == 0 ? bd_curl_easy(timeout_s * 1000) : NULL;
    if (rc == 0 && !x.c)
        rc = bd_err_set(err, "cannot initialise libcurl");
    if (rc == 0) {
        setup(&x);
        rc = transfer(&x, err);
        curl_easy_cleanup(x.c);
    }
    if (rc == 0 && fsync(x.fd) < 0)
        rc = bd_err_set(err, "%s/%s: fsync: %s", f->dir, f->part, strerror(errno));
    char sha[65];
    struct bd_err herr;
    if (x.hf && images_hash_follow_finish(x.hf, f->part, sha, &herr) < 0 && rc == 0)
        rc = bd_err_set(err, "%s", herr.msg);
    if (rc == 0) {
        report(&x, x.off);
        memcpy(f->sha256, sha, sizeof sha);
        f->size = x.off;
    }
    bd_buf_free(&x.errbody);
    close(x.fd);
    return rc;
}
