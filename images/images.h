/* images/ — the Talos image cache: schematic ids, downloads, verification, import and
 * the paths bootd serves them under. */
#ifndef IMAGES_H
#define IMAGES_H

#include "../lib/bd.h"

#define IMAGES_VANILLA_SCHEMATIC "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"

/* The lab's schematic id (lower-case hex SHA-256), computed locally the way Image
 * Factory computes it. */
int images_schematic_id(const struct lab *lab, char out[65], struct bd_err *err);

/* The cached cmdline-metal-<arch> for the lab's image, trimmed; NULL when not cached
 * (caller frees). cache_fd is the cache root directory. */
char *images_cached_cmdline(int cache_fd, const char *schematic, const char *version,
                            const char *arch);

#endif
