/* The status page's files, built into bootd from server/ui/ by server/ui/embed.c. */
#ifndef UI_ASSETS_H
#define UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *path;         /* "/ui/app.js"; "/" for the page itself */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

extern const struct ui_asset server_ui_assets[];
extern const size_t server_ui_nassets;

#endif
