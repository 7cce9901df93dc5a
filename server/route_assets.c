/* /assets/...: files from the image cache, straight from the file descriptor (sendfile),
 * with ETag, If-None-Match and a single Range. No request can name a file outside the
 * cache: each path component is opened with O_NOFOLLOW from the cache's own fd. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum MHD_Result refuse(struct MHD_Connection *c, struct req *r, unsigned status,
                              const char *msg)
{
    return server_reply_text(c, r, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* Opens rel below dirfd without following symlinks; -1 with errno set. */
static int open_below(int dirfd, const char *rel)
{
    int fd = dup(dirfd);
    const char *p = rel;
    while (fd >= 0) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!server_asset_component_ok(p, n)) {
            close(fd);
            errno = EINVAL;
            return -1;
        }
        char name[256];
        memcpy(name, p, n);
        name[n] = 0;
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (slash ? O_DIRECTORY : 0);
        int next = openat(fd, name, flags);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
        if (!slash)
            break;
        p = slash + 1;
    }
    return fd;
}

enum MHD_Result server_route_assets(struct server *s, struct MHD_Connection *c, struct req *r,
                             const char *url, const char *method)
{
    int fd = open_below(s->assets_fd, url);
    if (fd < 0) {
        if (errno == EINVAL)
            return refuse(c, r, MHD_HTTP_BAD_REQUEST, "invalid asset path\n");
        return refuse(c, r, MHD_HTTP_NOT_FOUND, "no such asset\n");
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return refuse(c, r, MHD_HTTP_NOT_FOUND, "no such asset\n");
    }
    uint64_t size = (uint64_t)sb.st_size;
    char etag[64];
    snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)sb.st_ino,
             size, (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec);

    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (server_etag_listed(inm, etag)) {
        close(fd);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        return server_reply(c, r, MHD_HTTP_NOT_MODIFIED, resp);
    }

    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    if (range && if_range && strcmp(if_range, etag))
        range = NULL; /* the file changed since the client's first part: send it whole */
    uint64_t off = 0, len = size;
    int rr = server_range_parse(range, size, &off, &len);
    if (rr < 0) {
        close(fd);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
        const char *msg = "range not satisfiable\n";
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        r->bytes = strlen(msg);
        return server_reply(c, r, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
    }
    /* MHD owns fd from here and sends it with sendfile */
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, off);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    if (rr > 0) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, off, off + len - 1, size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    r->bytes = strcmp(method, "HEAD") ? len : 0;
    return server_reply(c, r, rr > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
}
