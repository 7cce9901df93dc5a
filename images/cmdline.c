/* Reading the kernel command line Image Factory published for an image. */
#include "images.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *images_cached_cmdline(int cache_fd, const char *schematic, const char *version,
                            const char *arch)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s/cmdline-metal-%s", schematic, version, arch);
    int fd = openat(cache_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return n ? bd_xstrdup(buf) : NULL;
}
