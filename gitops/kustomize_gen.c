/* configMapGenerator and secretGenerator with generatorOptions: ConfigMaps and Secrets
 * from literals, files and env files, created, merged into or replacing one from the
 * resources (behavior), named with kustomize's content hash unless disabled. */
#include "kustomize_internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gen_opts {
    cJSON *labels, *annotations;
    bool no_hash, immutable;
};

static void opts_free(struct gen_opts *o)
{
    cJSON_Delete(o->labels);
    cJSON_Delete(o->annotations);
}

static bool truthy(const struct bd_node *n)
{
    return n && n->kind == BD_NODE_SCALAR && !strcmp(n->str, "true");
}

/* Reads generatorOptions or an entry's options; local labels win over global ones, a
 * global true cannot be turned off locally (kustomize's MergeGlobalOptionsIntoLocal). */
static int opts_read(const struct kust_at *at, const struct bd_node *n, struct gen_opts *o,
                     struct bd_err *err)
{
    if (bd_node_is_null(n))
        return 0;
    if (n->kind != BD_NODE_MAP)
        return gitops_kust_fail(at, err, "options: expected a mapping");
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->kids[2 * i]->str;
        const struct bd_node *v = n->kids[2 * i + 1];
        struct kust_at here = {at->kfile, n->kids[2 * i]->line, at->field};
        if (!strcmp(k, "labels") || !strcmp(k, "annotations")) {
            cJSON *m = gitops_kust_string_map(&here, v, err);
            if (!m)
                return -1;
            cJSON **dst = !strcmp(k, "labels") ? &o->labels : &o->annotations;
            if (!*dst) {
                *dst = m;
            } else {
                const cJSON *e;
                cJSON_ArrayForEach(e, m)
                {
                    if (!cJSON_GetObjectItemCaseSensitive(*dst, e->string))
                        gitops_kust_set_str(*dst, e->string, e->valuestring);
                }
                cJSON_Delete(m);
            }
        } else if (!strcmp(k, "disableNameSuffixHash")) {
            o->no_hash = o->no_hash || truthy(v);
        } else if (!strcmp(k, "immutable")) {
            o->immutable = o->immutable || truthy(v);
        } else {
            return gitops_kust_fail(&here, err,
                                    "options.%s: the built-in renderer does not know this "
                                    "option",
                                    k);
        }
    }
    return 0;
}

static bool key_ok(const char *k)
{
    if (!*k || strlen(k) > 253)
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '-' || *k == '_' || *k == '.'))
            return false;
    return true;
}

static bool utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xc2))
            return false;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        if (len == 3) {
            unsigned cp = (c & 0x0f) << 12 | (s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))
                return false;
        } else if (len == 4) {
            unsigned cp = (c & 0x07) << 18 | (s[i + 1] & 0x3f) << 12;
            if (cp < 0x10000 || cp > 0x10ffff)
                return false;
        }
        i += len;
    }
    return true;
}

/* Base64 as kustomize writes generated values: when longer than one line of 70, every
 * line (the last included) ends in a newline. */
static char *base64(const void *data, size_t n)
{
    size_t len = 4 * ((n + 2) / 3);
    char *flat = bd_xmalloc(len + 1);
    EVP_EncodeBlock((unsigned char *)flat, data, (int)n);
    if (len < 70)
        return flat;
    struct bd_buf b;
    bd_buf_init(&b);
    for (size_t i = 0; i < len; i += 70) {
        bd_buf_append(&b, flat + i, len - i < 70 ? len - i : 70);
        bd_buf_puts(&b, "\n");
    }
    free(flat);
    return bd_buf_steal(&b);
}

struct gen {
    const struct kust_at *at;
    const char *name;
    bool secret;
    cJSON *data, *binary;
};

static int put(struct gen *g, int line, const char *key, const char *val, size_t len,
               struct bd_err *err)
{
    struct kust_at here = {g->at->kfile, line, g->at->field};
    if (!key_ok(key))
        return gitops_kust_fail(&here, err,
                                "%s: key \"%s\" is not valid (letters, digits, '-', '_' "
                                "and '.')",
                                g->name, key);
    if (cJSON_GetObjectItemCaseSensitive(g->data, key) ||
        cJSON_GetObjectItemCaseSensitive(g->binary, key))
        return gitops_kust_fail(&here, err, "%s illegally repeats the key `%s`", g->name, key);
    if (g->secret) {
        char *b = base64(val, len);
        cJSON_AddStringToObject(g->data, key, b);
        free(b);
    } else if (utf8_ok((const unsigned char *)val, len) && strlen(val) == len) {
        cJSON_AddStringToObject(g->data, key, val);
    } else {
        char *b = base64(val, len);
        cJSON_AddStringToObject(g->binary, key, b);
        free(b);
    }
    return 0;
}

static char *unquote(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == s[n - 1] && (s[0] == '"' || s[0] == '\''))
        return bd_xstrndup(s + 1, n - 2);
    return bd_xstrdup(s);
}

static int read_file_in(struct gen *g, const char *dir, const char *rel, int line, char **text,
                        size_t *len, struct bd_err *err)
{
    struct kust_at here = {g->at->kfile, line, g->at->field};
    char *path = bd_path_join(dir, rel);
    char *real = gitops_render_inside(dir, path, err);
    int rc = real ? bd_file_read(path, text, len, err) : -1;
    if (!real)
        gitops_kust_fail(&here, err, "%s: %s is not in or below %s", g->name, rel, dir);
    else if (rc < 0)
        bd_err_prefix(err, "%s:%d: %s: %s", g->at->kfile, line, g->at->field, g->name);
    free(real);
    free(path);
    return rc;
}

static int env_file(struct gen *g, const char *dir, const struct bd_node *item, struct bd_err *err)
{
    char *text;
    size_t len;
    if (read_file_in(g, dir, item->str, item->line, &text, &len, err) < 0)
        return -1;
    int rc = 0;
    char *p = text;
    if (!strncmp(p, "\xef\xbb\xbf", 3))
        p += 3;
    while (rc == 0 && *p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r')
            p[--l] = 0;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f')
            p++;
        if (*p && *p != '#') {
            char *eq = strchr(p, '=');
            if (eq)
                *eq = 0;
            rc = put(g, item->line, p, eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0, err);
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(text);
    return rc;
}

static const struct bd_node *strings_of(const struct kust_at *at, const struct bd_node *entry,
                                        const char *key, struct bd_err *err, bool *bad)
{
    const struct bd_node *n = bd_node_get(entry, key);
    if (!n || bd_node_is_null(n))
        return NULL;
    bool ok = n->kind == BD_NODE_SEQ;
    for (size_t i = 0; ok && i < n->n; i++)
        ok = n->kids[i]->kind == BD_NODE_SCALAR;
    if (!ok) {
        struct kust_at here = {at->kfile, n->line, at->field};
        gitops_kust_fail(&here, err, "%s: expected a list of strings", key);
        *bad = true;
    }
    return ok ? n : NULL;
}

/* Loads an entry's data in kustomize's order: env files, literals, files. */
static int load_data(struct gen *g, const char *dir, const struct bd_node *e, struct bd_err *err)
{
    bool bad = false;
    const struct bd_node *envs = strings_of(g->at, e, "envs", err, &bad);
    const struct bd_node *env = bd_node_get(e, "env");
    const struct bd_node *lits = bad ? NULL : strings_of(g->at, e, "literals", err, &bad);
    const struct bd_node *files = bad ? NULL : strings_of(g->at, e, "files", err, &bad);
    if (bad)
        return -1;
    if (env && env->kind == BD_NODE_SCALAR && *env->str && env_file(g, dir, env, err) < 0)
        return -1;
    for (size_t i = 0; envs && i < envs->n; i++)
        if (env_file(g, dir, envs->kids[i], err) < 0)
            return -1;
    for (size_t i = 0; lits && i < lits->n; i++) {
        const struct bd_node *l = lits->kids[i];
        const char *eq = strchr(l->str, '=');
        struct kust_at here = {g->at->kfile, l->line, g->at->field};
        if (!eq || eq == l->str)
            return gitops_kust_fail(&here, err, "invalid literal source %s, expected key=value",
                                    l->str);
        char *key = bd_xstrndup(l->str, (size_t)(eq - l->str));
        char *val = unquote(eq + 1);
        int rc = put(g, l->line, key, val, strlen(val), err);
        free(key);
        free(val);
        if (rc < 0)
            return -1;
    }
    for (size_t i = 0; files && i < files->n; i++) {
        const struct bd_node *f = files->kids[i];
        const char *src = f->str, *eq = strchr(src, '=');
        struct kust_at here = {g->at->kfile, f->line, g->at->field};
        if (eq && (eq == src || !eq[1] || strchr(eq + 1, '=')))
            return gitops_kust_fail(&here, err, "file source \"%s\": expected path or key=path",
                                    src);
        char *key = eq ? bd_xstrndup(src, (size_t)(eq - src)) : NULL;
        const char *rel = eq ? eq + 1 : src;
        if (!key) {
            const char *slash = strrchr(rel, '/');
            key = bd_xstrdup(slash ? slash + 1 : rel);
        }
        char *text;
        size_t len;
        int rc = read_file_in(g, dir, rel, f->line, &text, &len, err);
        if (rc == 0) {
            rc = put(g, f->line, key, text, len, err);
            free(text);
        }
        free(key);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static void set_map(cJSON *meta, const char *key, const cJSON *pairs, bool over)
{
    if (!cJSON_GetArraySize(pairs))
        return;
    cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, key);
    if (!cJSON_IsObject(m)) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, key);
        m = cJSON_AddObjectToObject(meta, key);
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, pairs)
    {
        if (over || !cJSON_GetObjectItemCaseSensitive(m, p->string))
            gitops_kust_set_str(m, p->string, p->valuestring);
    }
}

/* behavior merge/replace: the new object takes the old one's place, its name and
 * namespace; labels and annotations merge (new wins); with merge, data too. */
static void fold_into(struct gitops_obj *old, cJSON *json, bool merge)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(json, "metadata");
    cJSON *ometa = cJSON_GetObjectItemCaseSensitive(old->json, "metadata");
    for (int k = 0; k < 2; k++) {
        const char *key = k ? "annotations" : "labels";
        set_map(meta, key, cJSON_GetObjectItemCaseSensitive(ometa, key), false);
    }
    gitops_kust_set_str(meta, "name", old->name);
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "namespace");
    if (old->ns)
        cJSON_AddStringToObject(meta, "namespace", old->ns);
    for (int k = 0; merge && k < 2; k++) {
        const char *key = k ? "binaryData" : "data";
        const cJSON *od = cJSON_GetObjectItemCaseSensitive(old->json, key);
        if (!cJSON_GetArraySize(od))
            continue;
        cJSON *nd = cJSON_GetObjectItemCaseSensitive(json, key);
        if (!nd)
            nd = cJSON_AddObjectToObject(json, key);
        const cJSON *e;
        cJSON_ArrayForEach(e, od)
        {
            if (!cJSON_GetObjectItemCaseSensitive(nd, e->string))
                cJSON_AddItemToObject(nd, e->string, cJSON_Duplicate(e, true));
        }
    }
    cJSON *track = cJSON_DetachItemFromObjectCaseSensitive(old->json, KUST_TRACK);
    if (track)
        cJSON_AddItemToObject(json, KUST_TRACK, track);
    cJSON_Delete(old->json);
    old->json = json;
    gitops_kust_refresh(old);
}

static struct gitops_obj *find_existing(struct gitops_objs *objs, size_t from, const char *kind,
                                        const char *name, const char *ns)
{
    for (size_t i = from; i < objs->n; i++) {
        struct gitops_obj *o = &objs->v[i];
        if (strcmp(o->api_version, "v1") || strcmp(o->kind, kind))
            continue;
        const char *ons = o->ns ? o->ns : "";
        bool same_ns = !strcmp(ons, ns) || (!*ns && !strcmp(ons, "default")) ||
                       (!*ons && !strcmp(ns, "default"));
        if (!same_ns)
            continue;
        if (!strcmp(o->name, name))
            return o;
        const cJSON *e;
        cJSON_ArrayForEach(e, gitops_kust_track_names(o))
        {
            if (!strcmp(e->valuestring, name))
                return o;
        }
    }
    return NULL;
}

static int one(const struct kust_at *at, const char *dir, const struct bd_node *e, bool secret,
               const struct bd_node *global, size_t group, struct gitops_objs *objs, size_t from,
               struct bd_err *err)
{
    static const char *const known[] = {"name", "namespace", "behavior", "files", "literals",
                                        "envs", "env",       "options",  "type"};
    if (e->kind != BD_NODE_MAP)
        return gitops_kust_fail(at, err, "expected a mapping");
    for (size_t i = 0; i < e->n; i++) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], e->kids[2 * i]->str))
            k++;
        if (k == sizeof known / sizeof known[0] || (!secret && k == 8)) {
            struct kust_at here = {at->kfile, e->kids[2 * i]->line, at->field};
            return gitops_kust_fail(&here, err,
                                    "%s: the built-in renderer does not know this field",
                                    e->kids[2 * i]->str);
        }
    }
    const struct bd_node *name = bd_node_get(e, "name"), *ns = bd_node_get(e, "namespace");
    const struct bd_node *beh = bd_node_get(e, "behavior"), *type = bd_node_get(e, "type");
    struct kust_at here = {at->kfile, e->line, at->field};
    if (!name || name->kind != BD_NODE_SCALAR || !*name->str)
        return gitops_kust_fail(&here, err, "a %s must have a name",
                                secret ? "secret" : "configmap");
    const char *behavior = beh && beh->kind == BD_NODE_SCALAR && *beh->str ? beh->str : "create";
    if (strcmp(behavior, "create") && strcmp(behavior, "merge") && strcmp(behavior, "replace"))
        return gitops_kust_fail(&here, err,
                                "%s: behavior \"%s\": expected create, merge or replace", name->str,
                                behavior);
    struct gen_opts opts = {0};
    struct gen g = {at, name->str, secret, cJSON_CreateObject(), cJSON_CreateObject()};
    int rc = opts_read(&here, bd_node_get(e, "options"), &opts, err);
    if (rc == 0)
        rc = opts_read(&here, global, &opts, err);
    if (rc == 0)
        rc = load_data(&g, dir, e, err);
    if (rc < 0) {
        cJSON_Delete(g.data);
        cJSON_Delete(g.binary);
        opts_free(&opts);
        return -1;
    }
    const char *nsname = ns && ns->kind == BD_NODE_SCALAR ? ns->str : "";
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "apiVersion", "v1");
    cJSON_AddStringToObject(j, "kind", secret ? "Secret" : "ConfigMap");
    cJSON *meta = cJSON_AddObjectToObject(j, "metadata");
    cJSON_AddStringToObject(meta, "name", name->str);
    if (*nsname)
        cJSON_AddStringToObject(meta, "namespace", nsname);
    set_map(meta, "labels", opts.labels, true);
    set_map(meta, "annotations", opts.annotations, true);
    if (cJSON_GetArraySize(g.data))
        cJSON_AddItemToObject(j, "data", g.data);
    else
        cJSON_Delete(g.data);
    if (cJSON_GetArraySize(g.binary))
        cJSON_AddItemToObject(j, "binaryData", g.binary);
    else
        cJSON_Delete(g.binary);
    if (opts.immutable)
        cJSON_AddTrueToObject(j, "immutable");
    if (secret)
        cJSON_AddStringToObject(
            j, "type", type && type->kind == BD_NODE_SCALAR && *type->str ? type->str : "Opaque");
    struct gitops_obj *old =
        find_existing(objs, from, secret ? "Secret" : "ConfigMap", name->str, nsname);
    if (old && !strcmp(behavior, "create")) {
        rc = gitops_kust_fail(&here, err, "%s %s exists (%s); behavior must be merge or replace",
                              secret ? "Secret" : "ConfigMap", name->str, old->src);
        cJSON_Delete(j);
    } else if (!old && strcmp(behavior, "create")) {
        rc = gitops_kust_fail(&here, err, "%s %s does not exist; cannot %s it",
                              secret ? "Secret" : "ConfigMap", name->str, behavior);
        cJSON_Delete(j);
    } else {
        char *src = bd_xasprintf("%s:%d", at->kfile, e->line);
        struct gitops_obj *o = old;
        if (old)
            fold_into(old, j, !strcmp(behavior, "merge"));
        else
            o = gitops_kust_add(objs, j, src, group);
        gitops_kust_track_id(o);
        gitops_kust_track_set_bool(o, "hash", !opts.no_hash);
        free(src);
    }
    opts_free(&opts);
    return rc;
}

int gitops_kust_generate(const struct kust_at *at, const char *dir, const struct bd_node *list,
                         bool secret, const struct bd_node *global_opts, size_t group,
                         struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    if (bd_node_is_null(list))
        return 0;
    if (list->kind != BD_NODE_SEQ)
        return gitops_kust_fail(at, err, "expected a list");
    for (size_t i = 0; i < list->n; i++)
        if (one(at, dir, list->kids[i], secret, global_opts, group, objs, from, err) < 0)
            return -1;
    return 0;
}

/* ---- the name hash, as kustomize's hasher computes it ---- */

/* A JSON string the way Go's encoding/json writes it (HTML-safe escapes included),
 * since the hash is over Go's encoding. */
static void go_json_string(struct bd_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    bd_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            bd_buf_append(b, e, 2);
        } else if (c == '\n') {
            bd_buf_puts(b, "\\n");
        } else if (c == '\r') {
            bd_buf_puts(b, "\\r");
        } else if (c == '\t') {
            bd_buf_puts(b, "\\t");
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            bd_buf_append(b, e, 6);
        } else if (c == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            bd_buf_puts(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
            p += 2;
        } else {
            bd_buf_append(b, p, 1);
        }
    }
    bd_buf_puts(b, "\"");
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* A map of strings with sorted keys; a missing map is "" as in kustomize. */
static void go_json_map(struct bd_buf *b, const cJSON *m)
{
    if (!cJSON_IsObject(m)) {
        bd_buf_puts(b, "\"\"");
        return;
    }
    size_t n = (size_t)cJSON_GetArraySize(m), k = 0;
    const cJSON **v = bd_xcalloc(n + 1, sizeof *v);
    const cJSON *e;
    cJSON_ArrayForEach(e, m)
    {
        v[k++] = e;
    }
    qsort(v, n, sizeof *v, cmp_key);
    bd_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            bd_buf_puts(b, ",");
        go_json_string(b, v[i]->string);
        bd_buf_puts(b, ":");
        if (cJSON_IsString(v[i]))
            go_json_string(b, v[i]->valuestring);
        else if (cJSON_IsNull(v[i]))
            bd_buf_puts(b, "null");
        else {
            char *t = cJSON_PrintUnformatted(v[i]);
            bd_buf_puts(b, t);
            free(t);
        }
    }
    bd_buf_puts(b, "}");
    free(v);
}

/* The encoding kustomize hashes: kind, "name" (always "", as its lookup of
 * "metadata/name" finds nothing), data, and binaryData/stringData or type. */
static void encode(struct bd_buf *b, const struct gitops_obj *o)
{
    bool secret = !strcmp(o->kind, "Secret");
    const cJSON *extra =
        cJSON_GetObjectItemCaseSensitive(o->json, secret ? "stringData" : "binaryData");
    if (!secret && cJSON_IsObject(extra)) {
        bd_buf_puts(b, "{\"binaryData\":");
        go_json_map(b, extra);
        bd_buf_puts(b, ",\"data\":");
    } else {
        bd_buf_puts(b, "{\"data\":");
    }
    go_json_map(b, cJSON_GetObjectItemCaseSensitive(o->json, "data"));
    bd_buf_printf(b, ",\"kind\":\"%s\",\"name\":\"\"", secret ? "Secret" : "ConfigMap");
    if (secret && cJSON_IsObject(extra)) {
        bd_buf_puts(b, ",\"stringData\":");
        go_json_map(b, extra);
    }
    if (secret) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o->json, "type");
        bd_buf_puts(b, ",\"type\":");
        go_json_string(b, cJSON_IsString(type) ? type->valuestring : "");
    }
    bd_buf_puts(b, "}");
}

int gitops_kust_hash_suffixes(struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    (void)err;
    for (size_t i = from; i < objs->n; i++) {
        struct gitops_obj *o = &objs->v[i];
        if (!gitops_kust_track_bool(o, "hash"))
            continue;
        struct bd_buf b;
        bd_buf_init(&b);
        encode(&b, o);
        char hex[65];
        bd_sha256_hex(b.data, b.len, hex);
        bd_buf_free(&b);
        hex[10] = 0;
        for (char *p = hex; *p; p++) /* kustomize's encode(): no vowels, no 0/1/3 */
            *p = *p == '0'   ? 'g'
                 : *p == '1' ? 'h'
                 : *p == '3' ? 'k'
                 : *p == 'a' ? 'm'
                 : *p == 'e' ? 't'
                             : *p;
        gitops_kust_track_id(o);
        char *name = bd_xasprintf("%s-%s", o->name, hex);
        gitops_kust_set_str(cJSON_GetObjectItemCaseSensitive(o->json, "metadata"), "name", name);
        free(name);
        gitops_kust_refresh(o);
    }
    return 0;
}
