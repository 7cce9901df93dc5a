/* images and replicas. An image entry rewrites every container's image whose name
 * matches (any containers or initContainers list in the object, as kustomize's legacy
 * image filter walks them, and image volumes), replacing the name, the tag, the digest
 * or appending a tag suffix; CRDs are left alone. replicas sets spec.replicas of the
 * Deployments, ReplicaSets, ReplicationControllers and StatefulSets it names. */
#include "kustomize_internal.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

struct image {
    const char *name, *new_name, *new_tag, *digest, *tag_suffix;
    regex_t rx;
};

/* kustomize's image.Split: name, tag and digest, a registry port not taken for a tag. */
static void split(const char *img, char **name, char **tag, char **digest)
{
    const char *slash = strchr(img, '/');
    const char *search = slash && slash > img ? slash : img;
    const char *at = strchr(search, '@'), *colon = strchr(search, ':');
    if (colon && at && colon > at)
        colon = NULL;
    const char *end = colon ? colon : at ? at : img + strlen(img);
    *name = bd_xstrndup(img, (size_t)(end - img));
    *tag = colon ? bd_xstrndup(colon + 1, (size_t)((at ? at : colon + strlen(colon)) - colon - 1))
                 : bd_xstrdup("");
    *digest = bd_xstrdup(at ? at + 1 : "");
}

static void update(const struct image *im, cJSON *v)
{
    if (!cJSON_IsString(v) || regexec(&im->rx, v->valuestring, 0, NULL, 0) != 0)
        return;
    char *name, *tag, *digest;
    split(v->valuestring, &name, &tag, &digest);
    if (im->new_name && *im->new_name) {
        free(name);
        name = bd_xstrdup(im->new_name);
    }
    bool nt = im->new_tag && *im->new_tag, nd = im->digest && *im->digest;
    if (nt || nd) {
        free(tag);
        free(digest);
        tag = bd_xstrdup(nt ? im->new_tag : "");
        digest = bd_xstrdup(nd ? im->digest : "");
    } else if (im->tag_suffix && *im->tag_suffix) {
        char *t = bd_xasprintf("%s%s", tag, im->tag_suffix);
        free(tag);
        free(digest);
        tag = t;
        digest = bd_xstrdup("");
    }
    char *full = bd_xasprintf("%s%s%s%s%s", name, *tag ? ":" : "", tag, *digest ? "@" : "", digest);
    cJSON_SetValuestring(v, full);
    free(full);
    free(name);
    free(tag);
    free(digest);
}

static void walk(const struct image *im, cJSON *node)
{
    cJSON *e;
    if (cJSON_IsArray(node)) {
        cJSON_ArrayForEach(e, node)
        {
            walk(im, e);
        }
        return;
    }
    if (!cJSON_IsObject(node))
        return;
    cJSON_ArrayForEach(e, node)
    {
        walk(im, e);
        if (cJSON_IsArray(e) &&
            (!strcmp(e->string, "containers") || !strcmp(e->string, "initContainers"))) {
            cJSON *c;
            cJSON_ArrayForEach(c, e)
            {
                update(im, cJSON_GetObjectItemCaseSensitive(c, "image"));
            }
        }
    }
}

static int set_ref(cJSON *parent, const char *key, void *ud)
{
    update(ud, cJSON_GetObjectItemCaseSensitive(parent, key));
    return 0;
}

static const char *str_field(const struct bd_node *e, const char *key)
{
    const struct bd_node *v = bd_node_get(e, key);
    return v && v->kind == BD_NODE_SCALAR && !bd_node_is_null(v) ? v->str : NULL;
}

static int check_fields(const struct kust_at *at, const struct bd_node *e, const char *const *known,
                        size_t nknown, struct bd_err *err)
{
    if (e->kind != BD_NODE_MAP)
        return gitops_kust_fail(at, err, "expected a mapping");
    for (size_t i = 0; i < e->n; i++) {
        size_t k = 0;
        while (k < nknown && strcmp(known[k], e->kids[2 * i]->str))
            k++;
        if (k == nknown) {
            struct kust_at here = {at->kfile, e->kids[2 * i]->line, at->field};
            return gitops_kust_fail(&here, err,
                                    "%s: the built-in renderer does not know this field",
                                    e->kids[2 * i]->str);
        }
    }
    return 0;
}

int gitops_kust_images(const struct kust_at *at, const struct bd_node *images,
                       struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    static const char *const known[] = {"name", "newName", "newTag", "digest", "tagSuffix"};
    if (bd_node_is_null(images))
        return 0;
    if (images->kind != BD_NODE_SEQ)
        return gitops_kust_fail(at, err, "expected a list");
    for (size_t i = 0; i < images->n; i++) {
        const struct bd_node *e = images->kids[i];
        struct kust_at here = {at->kfile, e->line, at->field};
        if (check_fields(&here, e, known, 5, err) < 0)
            return -1;
        struct image im;
        memset(&im, 0, sizeof im);
        im.name = str_field(e, "name");
        im.new_name = str_field(e, "newName");
        im.new_tag = str_field(e, "newTag");
        im.digest = str_field(e, "digest");
        im.tag_suffix = str_field(e, "tagSuffix");
        if (!im.name || !*im.name)
            return gitops_kust_fail(&here, err, "an image entry needs a name");
        char *re = bd_xasprintf("^%s(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$", im.name);
        int rc = regcomp(&im.rx, re, REG_EXTENDED | REG_NOSUB);
        free(re);
        if (rc != 0)
            return gitops_kust_fail(&here, err, "image name \"%s\" is not a valid pattern",
                                    im.name);
        for (size_t k = from; k < objs->n; k++) {
            struct gitops_obj *o = &objs->v[k];
            if (!strcmp(o->kind, "CustomResourceDefinition"))
                continue;
            walk(&im, o->json);
            gitops_kust_fields_visit(o->json, "spec/volumes/image/reference", false, set_ref, &im);
            gitops_kust_fields_visit(o->json, "spec/template/spec/volumes/image/reference", false,
                                     set_ref, &im);
        }
        regfree(&im.rx);
    }
    return 0;
}

int gitops_kust_replicas(const struct kust_at *at, const struct bd_node *replicas,
                         struct gitops_objs *objs, size_t from, struct bd_err *err)
{
    static const char *const known[] = {"name", "count"};
    static const char *const kinds[] = {"Deployment", "ReplicationController", "ReplicaSet",
                                        "StatefulSet"};
    if (bd_node_is_null(replicas))
        return 0;
    if (replicas->kind != BD_NODE_SEQ)
        return gitops_kust_fail(at, err, "expected a list");
    for (size_t i = 0; i < replicas->n; i++) {
        const struct bd_node *e = replicas->kids[i];
        struct kust_at here = {at->kfile, e->line, at->field};
        if (check_fields(&here, e, known, 2, err) < 0)
            return -1;
        const char *name = str_field(e, "name"), *count = str_field(e, "count");
        char *end = NULL;
        errno = 0;
        long n = count ? strtol(count, &end, 10) : -1;
        if (!name || !count || *end || errno || n < 0 || n > 2147483647)
            return gitops_kust_fail(&here, err,
                                    "a replicas entry needs a name and a count (a "
                                    "non-negative integer)");
        for (size_t k = from; k < objs->n; k++) {
            struct gitops_obj *o = &objs->v[k];
            const cJSON *first = cJSON_GetArrayItem(gitops_kust_track_names(o), 0);
            bool named = !strcmp(o->name, name) || (first && !strcmp(first->valuestring, name));
            bool kind = false;
            for (size_t j = 0; j < 4; j++)
                kind = kind || !strcmp(o->kind, kinds[j]);
            if (!named || !kind)
                continue;
            cJSON *spec = cJSON_GetObjectItemCaseSensitive(o->json, "spec");
            if (!cJSON_IsObject(spec)) {
                cJSON_DeleteItemFromObjectCaseSensitive(o->json, "spec");
                spec = cJSON_AddObjectToObject(o->json, "spec");
            }
            cJSON_DeleteItemFromObjectCaseSensitive(spec, "replicas");
            cJSON_AddNumberToObject(spec, "replicas", (double)n);
        }
    }
    return 0;
}
