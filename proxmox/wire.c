/* What travels on the wire and needs reading: UPIDs, error bodies, property strings. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* UPID:<node>:<pid hex>:<pstart hex>:<starttime hex>:<type>:<id>:<user>@<realm>[!token]: */
int proxmox_upid_parse(const char *s, struct proxmox_upid *out)
{
    memset(out, 0, sizeof *out);
    if (strncmp(s, "UPID:", 5) != 0)
        return -1;
    const char *p = s + 5;
    const char *field[7];
    size_t len[7];
    for (int i = 0; i < 7; i++) {
        const char *c = strchr(p, ':');
        if (!c)
            return -1;
        field[i] = p;
        len[i] = (size_t)(c - p);
        p = c + 1;
    }
    if (*p)
        return -1;
    for (int i = 1; i <= 3; i++) { /* pid, pstart, starttime: hex */
        if (len[i] == 0)
            return -1;
        for (size_t k = 0; k < len[i]; k++)
            if (!isxdigit((unsigned char)field[i][k]))
                return -1;
    }
    if (len[0] == 0 || len[0] >= sizeof out->node || len[4] == 0 || len[4] >= sizeof out->type ||
        len[5] >= sizeof out->id || len[6] >= sizeof out->user || !memchr(field[6], '@', len[6]))
        return -1;
    for (size_t k = 0; k < len[0]; k++)
        if (!isalnum((unsigned char)field[0][k]) && field[0][k] != '-' && field[0][k] != '.')
            return -1;
    memcpy(out->node, field[0], len[0]);
    memcpy(out->type, field[4], len[4]);
    memcpy(out->id, field[5], len[5]);
    memcpy(out->user, field[6], len[6]);
    return 0;
}

static const char *param_value(const struct proxmox_params *params, const char *key)
{
    for (size_t i = 0; params && i < params->n; i++)
        if (!strcmp(params->v[i].key, key))
            return params->v[i].value;
    return NULL;
}

/* PVE's messages end in "\n" and may hold several lines: one line each, "; " between. */
static void append_lines(struct bd_buf *b, const char *text)
{
    bool first = true;
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\r\n");
        if (n) {
            bd_buf_printf(b, "%s%.*s", first ? "" : "; ", (int)n, p);
            first = false;
        }
        p += n;
        p += strspn(p, "\r\n");
    }
}

char *proxmox_error_sentence(const char *what, const char *action, long status,
                             const char *body, const struct proxmox_params *params)
{
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_printf(&b, "%s: %s: Proxmox answered %ld", what, action, status);
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(root, "message");
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    if (cJSON_IsString(msg) && msg->valuestring[0]) {
        bd_buf_puts(&b, ": ");
        append_lines(&b, msg->valuestring);
    } else if (status == 401) {
        bd_buf_puts(&b, ": authentication failure");
    }
    const cJSON *e;
    bool first = true;
    cJSON_ArrayForEach(e, errors)
    {
        bd_buf_printf(&b, "%s parameter %s", first ? " —" : ";", e->string);
        const char *sent = param_value(params, e->string);
        if (sent)
            bd_buf_printf(&b, " = \"%s\"", sent);
        bd_buf_puts(&b, ": ");
        if (cJSON_IsString(e))
            append_lines(&b, e->valuestring);
        first = false;
    }
    cJSON_Delete(root);
    return bd_buf_steal(&b);
}

static bool is_nic_model(const char *s, size_t n)
{
    static const char *const models[] = {"virtio", "e1000", "e1000e", "rtl8139", "vmxnet3",
                                         "ne2k_pci", "pcnet", "i82551", NULL};
    for (int i = 0; models[i]; i++)
        if (strlen(models[i]) == n && !memcmp(models[i], s, n))
            return true;
    return false;
}

char *proxmox_prop_get(const char *prop, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = prop; p && *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        bool first = p == prop;
        if (eq) {
            size_t kn = (size_t)(eq - p);
            const char *v = eq + 1;
            size_t vn = n - kn - 1;
            if (kn == klen && !memcmp(p, key, kn))
                return bd_xstrndup(v, vn);
            /* net[n]'s "<model>=<mac>" */
            if (first && is_nic_model(p, kn)) {
                if (!strcmp(key, "model"))
                    return bd_xstrndup(p, kn);
                if (!strcmp(key, "macaddr"))
                    return bd_xstrndup(v, vn);
            }
        } else if (first && (!strcmp(key, "file") || !strcmp(key, "model") ||
                             !strcmp(key, "legacy"))) {
            return bd_xstrndup(p, n); /* the default key's value */
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return NULL;
}

int proxmox_volume_owner(const char *volname)
{
    /* (^|-|/)vm-([1-9][0-9]{2,8})(-|$), as PVE::Storage parses a volume's owner */
    for (const char *p = volname; (p = strstr(p, "vm-")) != NULL; p++) {
        if (p != volname && p[-1] != '-' && p[-1] != '/' && p[-1] != ':')
            continue;
        const char *d = p + 3;
        size_t n = strspn(d, "0123456789");
        if (n < 3 || n > 9 || d[0] == '0' || (d[n] != '-' && d[n] != '\0'))
            continue;
        return atoi(d);
    }
    return 0;
}
