/* lab.yaml's proxmox: sections: the values Proxmox itself would refuse (vmid range,
 * VLAN, tag syntax, fingerprint form, volume sizes and names), caught at load with
 * file:line:col instead of at the first API call. */
#include "internal.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Proxmox's own ranges; 9999 is the Proxmox CSI plugin's volume owner: a VM with that id
 * must never exist, since destroying it would free every persistent volume. */
int lab_proxmox_vmid(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    if (lab_int(c, n, 100, 999999999, dst) < 0)
        return -1;
    if (*(int *)dst == 9999)
        return lab_fail(c, n, "9999 is the Proxmox CSI plugin's volume owner (vm-9999-*); bootd "
                              "never makes a VM with that id");
    return 0;
}

int lab_proxmox_vlan(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    return lab_int(c, n, 1, 4094, dst);
}

int lab_proxmox_memory(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    return lab_int(c, n, 16, 1 << 30, dst);
}

int lab_proxmox_vmids(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_proxmox *p = (struct lab_proxmox *)((char *)dst - offsetof(struct lab_proxmox, nprotected));
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of VM ids, got %s", bd_node_kind_name(n));
    p->nprotected = n->n;
    p->protected_vmids = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof(int));
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        if (lab_int(c, n->kids[i], 100, 999999999, &p->protected_vmids[i]) < 0)
            return -1;
        lab_path_pop(c, old);
    }
    return 0;
}

/* PVE's tag syntax: [a-z0-9_][a-z0-9_+.-]* */
int lab_proxmox_tags(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_strlist *l = dst;
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of tags, got %s", bd_node_kind_name(n));
    if (n->n > 15)
        return lab_fail(c, n, "at most 15 tags (besides bootd's own)");
    l->n = n->n;
    l->v = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof(char *));
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        const char *s = lab_scalar(c, n->kids[i], "a tag");
        if (!s)
            return -1;
        bool ok = *s && s[0] != '-' && s[0] != '+' && s[0] != '.';
        for (const char *q = s; ok && *q; q++)
            ok = islower((unsigned char)*q) || isdigit((unsigned char)*q) || strchr("_+.-", *q);
        if (!ok)
            return lab_fail(c, n->kids[i], "\"%s\" is not a Proxmox tag (lower-case letters, "
                                           "digits, _ + . -; not starting with + . -)", s);
        l->v[i] = bd_arena_strdup(&c->lab->arena, s);
        lab_path_pop(c, old);
    }
    return 0;
}

/* SHA-256 as PVE shows it: 32 hex bytes, colon-separated. */
int lab_proxmox_fingerprint(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    const char *s = lab_scalar(c, n, "a SHA-256 fingerprint");
    if (!s)
        return -1;
    bool ok = strlen(s) == 95;
    for (size_t i = 0; ok && i < 95; i++)
        ok = i % 3 == 2 ? s[i] == ':' : isxdigit((unsigned char)s[i]) != 0;
    if (!ok)
        return lab_fail(c, n, "\"%s\" is not a SHA-256 fingerprint (32 hex bytes AA:BB:..., as "
                              "`openssl x509 -noout -fingerprint -sha256` prints it)", s);
    char *up = bd_arena_strdup(&c->lab->arena, s);
    for (char *q = up; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    *(char **)dst = up;
    return 0;
}

/* "4G", "512M": PVE's size syntax with a unit; the CSI plugin's volumes are whole sizes. */
int lab_proxmox_size(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_proxmox_volume *v = (struct lab_proxmox_volume *)((char *)dst - offsetof(struct lab_proxmox_volume, size_text));
    const char *s = lab_scalar(c, n, "a size");
    if (!s)
        return -1;
    char *end;
    long long num = strtoll(s, &end, 10);
    const char *units = "KMGT", *u = *end ? strchr(units, *end) : NULL;
    if (!isdigit((unsigned char)s[0]) || num <= 0 || !u || end[1] || num > (1LL << 30))
        return lab_fail(c, n, "\"%s\" is not a size (a whole number and K, M, G or T, e.g. 4G)", s);
    v->size = (int64_t)num << (10 * (u - units + 1));
    v->size_text = bd_arena_strdup(&c->lab->arena, s);
    return 0;
}

/* PVE volume names: vm-9999-<name>, <name> of [a-z0-9._-] */
int lab_proxmox_volname(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    const char *s = lab_scalar(c, n, "a volume name");
    if (!s)
        return -1;
    bool ok = *s && strlen(s) <= 64 && isalnum((unsigned char)s[0]);
    for (const char *q = s; ok && *q; q++)
        ok = islower((unsigned char)*q) || isdigit((unsigned char)*q) || strchr("._-", *q);
    if (!ok)
        return lab_fail(c, n, "\"%s\" is not a volume name (lower-case letters, digits, . _ -; "
                              "the disk becomes vm-9999-<name>)", s);
    *(char **)dst = bd_arena_strdup(&c->lab->arena, s);
    return 0;
}

#define STRUCT struct lab_proxmox_volume
static const struct lab_field volume_fields[] = {
    F(T_CUSTOM, "name", name, true, (const void *)lab_proxmox_volname),
    F(T_CUSTOM, "size", size_text, true, (const void *)lab_proxmox_size),
    F(T_STR, "storage", storage, false, NULL),
    F(T_STR, "node", node, false, NULL),
    {0},
};
#undef STRUCT

int lab_proxmox_volumes(struct lab_ctx *c, const struct bd_node *n, void *dst)
{
    struct lab_proxmox *p = (struct lab_proxmox *)((char *)dst - offsetof(struct lab_proxmox, nvolumes));
    if (n->kind != BD_NODE_SEQ)
        return lab_fail(c, n, "expected a list of {name, size}, got %s", bd_node_kind_name(n));
    p->nvolumes = n->n;
    p->volumes = bd_arena_alloc(&c->lab->arena, (n->n + 1) * sizeof *p->volumes);
    for (size_t i = 0; i < n->n; i++) {
        size_t old = lab_path_push(c, "[%zu]", i);
        if (lab_decode_map(c, n->kids[i], volume_fields, &p->volumes[i]) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->volumes[j].name, p->volumes[i].name))
                return lab_fail(c, n->kids[i], "duplicate volume name \"%s\"", p->volumes[i].name);
        lab_path_pop(c, old);
    }
    return 0;
}

