/* SHA-256 of image files through OpenSSL, whose SHA-NI code keeps hashing off the
 * critical path of a download (mbedTLS 2.28 hashes at a fraction of the speed). */
#include "images.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct images_hash {
    EVP_MD_CTX *ctx;
};

struct images_hash *images_hash_new(void)
{
    struct images_hash *h = bd_xcalloc(1, sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL)) {
        bd_error("images: OpenSSL cannot hash with SHA-256");
        abort();
    }
    return h;
}

void images_hash_update(struct images_hash *h, const void *p, size_t n)
{
    EVP_DigestUpdate(h->ctx, p, n);
}

void images_hash_final(struct images_hash *h, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, d, &n);
    bd_hex(d, n, out);
    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

void images_hash_free(struct images_hash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int images_hash_fd(int fd, const char *name, struct images_hash *h, uint64_t *size,
                   struct bd_err *err)
{
    enum { CHUNK = 1 << 20 };
    char *buf = bd_xmalloc(CHUNK);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, CHUNK, (off_t)total);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = bd_err_set(err, "%s: read: %s", name, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        images_hash_update(h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    free(buf);
    *size = total;
    return rc;
}

/* ---- following a file as it grows ---- */

struct images_hash_follow {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;
    uint64_t avail, hashed;
    bool done, waiting;
    int read_errno;
    struct images_hash *h;
};

static void *follow(void *arg)
{
    struct images_hash_follow *hf = arg;
    enum { CHUNK = 1 << 20 };
    char *buf = bd_xmalloc(CHUNK);
    pthread_mutex_lock(&hf->mu);
    for (;;) {
        while (hf->hashed == hf->avail && !hf->done) {
            hf->waiting = true;
            pthread_cond_wait(&hf->cv, &hf->mu);
            hf->waiting = false;
        }
        if (hf->hashed == hf->avail || hf->read_errno)
            break;
        uint64_t want = hf->avail - hf->hashed, at = hf->hashed;
        pthread_mutex_unlock(&hf->mu);
        ssize_t r = pread(hf->fd, buf, want < CHUNK ? (size_t)want : CHUNK, (off_t)at);
        if (r > 0)
            images_hash_update(hf->h, buf, (size_t)r);
        pthread_mutex_lock(&hf->mu);
        if (r > 0)
            hf->hashed += (uint64_t)r;
        else if (r == 0 || errno != EINTR)
            hf->read_errno = r == 0 ? EIO : errno; /* the file shrank under us */
    }
    pthread_mutex_unlock(&hf->mu);
    free(buf);
    return NULL;
}

struct images_hash_follow *images_hash_follow_start(int fd, uint64_t size)
{
    struct images_hash_follow *hf = bd_xcalloc(1, sizeof *hf);
    hf->fd = fd;
    hf->avail = size;
    hf->h = images_hash_new();
    pthread_mutex_init(&hf->mu, NULL);
    pthread_cond_init(&hf->cv, NULL);
    if (pthread_create(&hf->thread, NULL, follow, hf) != 0) {
        bd_error("images: cannot start a hashing thread");
        abort();
    }
    return hf;
}

void images_hash_follow_grow(struct images_hash_follow *hf, uint64_t size)
{
    pthread_mutex_lock(&hf->mu);
    hf->avail = size;
    if (hf->waiting)
        pthread_cond_signal(&hf->cv);
    pthread_mutex_unlock(&hf->mu);
}

int images_hash_follow_finish(struct images_hash_follow *hf, const char *name, char out[65],
                              struct bd_err *err)
{
    pthread_mutex_lock(&hf->mu);
    hf->done = true;
    pthread_cond_signal(&hf->cv);
    pthread_mutex_unlock(&hf->mu);
    pthread_join(hf->thread, NULL);
    int rc = 0;
    if (hf->read_errno)
        rc = bd_err_set(err, "%s: read: %s", name, strerror(hf->read_errno));
    else
        images_hash_final(hf->h, out);
    images_hash_free(hf->h);
    pthread_mutex_destroy(&hf->mu);
    pthread_cond_destroy(&hf->cv);
    free(hf);
    return rc;
}
