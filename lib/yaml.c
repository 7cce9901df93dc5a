/* YAML text -> bd_node trees with line numbers (libyaml's event API). */
#include "bd.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Aliases are expanded by copying; this bounds the "billion laughs" blow-up. */
#define MAX_NODES 2000000
#define MAX_DEPTH 256

struct anchor {
    char *name;
    struct bd_node *node;
};

struct parser {
    const char *file;
    struct bd_err *err;
    size_t nodes;
    struct anchor *anchors;
    size_t nanchors;
    struct frame {
        struct bd_node *node;
        struct bd_node *key; /* a map's key waiting for its value */
    } stack[MAX_DEPTH];
    int depth;
};

static size_t count_nodes(const struct bd_node *n)
{
    size_t c = 1;
    size_t kids = n->kind == BD_NODE_MAP ? 2 * n->n : n->n;
    for (size_t i = 0; n->kind != BD_NODE_SCALAR && i < kids; i++)
        c += count_nodes(n->kids[i]);
    return c;
}

static void remember_anchor(struct parser *p, const yaml_char_t *name, struct bd_node *n)
{
    if (!name)
        return;
    for (size_t i = 0; i < p->nanchors; i++)
        if (!strcmp(p->anchors[i].name, (const char *)name)) {
            p->anchors[i].node = n;
            return;
        }
    p->anchors = bd_xrealloc(p->anchors, (p->nanchors + 1) * sizeof *p->anchors);
    p->anchors[p->nanchors].name = bd_xstrdup((const char *)name);
    p->anchors[p->nanchors].node = n;
    p->nanchors++;
}

static void forget_anchors(struct parser *p)
{
    for (size_t i = 0; i < p->nanchors; i++)
        free(p->anchors[i].name);
    free(p->anchors);
    p->anchors = NULL;
    p->nanchors = 0;
}

/* Adds n to the container on top of the stack (or makes it the document root).
 * Takes n; frees it on error. */
static int attach(struct parser *p, struct bd_node *n, struct bd_node **root)
{
    if (p->depth == 0) {
        *root = n;
        return 0;
    }
    struct frame *f = &p->stack[p->depth - 1];
    if (f->node->kind == BD_NODE_SEQ) {
        bd_node_seq_push(f->node, n);
        return 0;
    }
    if (f->key) {
        struct bd_node *map = f->node;
        if (map->cap < 2 * map->n + 2) {
            map->cap = map->cap ? map->cap * 2 : 8;
            map->kids = bd_xrealloc(map->kids, map->cap * sizeof *map->kids);
        }
        map->kids[2 * map->n] = f->key;
        map->kids[2 * map->n + 1] = n;
        map->n++;
        f->key = NULL;
        return 0;
    }
    if (n->kind != BD_NODE_SCALAR) {
        bd_err_set(p->err, "%s:%d:%d: only scalar mapping keys are supported", p->file, n->line,
                   n->col);
        bd_node_free(n);
        return -1;
    }
    for (size_t i = 0; i < f->node->n; i++)
        if (!strcmp(f->node->kids[2 * i]->str, n->str)) {
            bd_err_set(p->err, "%s:%d:%d: duplicate key \"%s\" (first at line %d)", p->file,
                       n->line, n->col, n->str, f->node->kids[2 * i]->line);
            bd_node_free(n);
            return -1;
        }
    f->key = n;
    return 0;
}

static struct bd_node *node_at(enum bd_node_kind kind, const yaml_mark_t *m)
{
    struct bd_node *n = bd_node_new(kind);
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

static int parse_events(struct parser *p, yaml_parser_t *yp, struct bd_yaml_doc *out)
{
    struct bd_node *root = NULL;
    for (;;) {
        yaml_event_t ev;
        int rc = 0;
        if (!yaml_parser_parse(yp, &ev)) {
            bd_err_set(p->err, "%s:%zu:%zu: %s%s%s", p->file, yp->problem_mark.line + 1,
                       yp->problem_mark.column + 1, yp->problem ? yp->problem : "syntax error",
                       yp->context ? " " : "", yp->context ? yp->context : "");
            ev.type = YAML_NO_EVENT;
            rc = -1;
        }
        struct bd_node *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return 0;
        case YAML_DOCUMENT_START_EVENT:
            root = NULL;
            p->depth = 0;
            break;
        case YAML_DOCUMENT_END_EVENT:
            if (!root)
                root = node_at(BD_NODE_SCALAR, &ev.start_mark);
            if (!root->str && root->kind == BD_NODE_SCALAR) {
                root->str = bd_xstrdup("");
                root->plain = true;
            }
            out->docs = bd_xrealloc(out->docs, (out->ndocs + 1) * sizeof *out->docs);
            out->docs[out->ndocs++] = root;
            root = NULL;
            forget_anchors(p);
            break;
        case YAML_SCALAR_EVENT: {
            n = node_at(BD_NODE_SCALAR, &ev.start_mark);
            n->str = bd_xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            const char *tag = (const char *)ev.data.scalar.tag;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                       !(tag && !strcmp(tag, YAML_STR_TAG));
            remember_anchor(p, ev.data.scalar.anchor, n);
            rc = attach(p, n, &root);
            break;
        }
        case YAML_ALIAS_EVENT: {
            struct bd_node *target = NULL;
            for (size_t i = 0; i < p->nanchors; i++)
                if (!strcmp(p->anchors[i].name, (const char *)ev.data.alias.anchor))
                    target = p->anchors[i].node;
            if (!target) {
                rc = bd_err_set(p->err, "%s:%zu:%zu: unknown alias *%s", p->file,
                                ev.start_mark.line + 1, ev.start_mark.column + 1,
                                (const char *)ev.data.alias.anchor);
                break;
            }
            p->nodes += count_nodes(target);
            if (p->nodes > MAX_NODES) {
                rc = bd_err_set(p->err, "%s:%zu: too many nodes after expanding aliases", p->file,
                                ev.start_mark.line + 1);
                break;
            }
            n = bd_node_clone(target);
            n->line = (int)ev.start_mark.line + 1;
            n->col = (int)ev.start_mark.column + 1;
            rc = attach(p, n, &root);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
            if (p->depth >= MAX_DEPTH) {
                rc = bd_err_set(p->err, "%s:%zu: nesting deeper than %d", p->file,
                                ev.start_mark.line + 1, MAX_DEPTH);
                break;
            }
            n = node_at(seq ? BD_NODE_SEQ : BD_NODE_MAP, &ev.start_mark);
            remember_anchor(p, seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor,
                            n);
            rc = attach(p, n, &root);
            if (rc == 0)
                p->stack[p->depth++] = (struct frame){.node = n};
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            p->depth--;
            break;
        default:
            break;
        }
        if (n && ++p->nodes > MAX_NODES && rc == 0)
            rc = bd_err_set(p->err, "%s: too many nodes", p->file);
        yaml_event_delete(&ev);
        if (rc < 0) {
            /* root owns everything attached so far; a detached n was freed by attach */
            for (int i = 0; i < p->depth; i++)
                bd_node_free(p->stack[i].key);
            bd_node_free(root);
            return -1;
        }
    }
}

int bd_yaml_parse(const char *text, size_t len, const char *file, struct bd_yaml_doc *out,
                  struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    out->file = bd_xstrdup(file);
    yaml_parser_t yp;
    if (!yaml_parser_initialize(&yp))
        return bd_err_set(err, "%s: cannot initialise YAML parser", file);
    yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
    struct parser p = {.file = file, .err = err};
    int rc = parse_events(&p, &yp, out);
    forget_anchors(&p);
    yaml_parser_delete(&yp);
    if (rc < 0)
        bd_yaml_doc_free(out);
    return rc;
}

int bd_yaml_parse_file(const char *path, struct bd_yaml_doc *out, struct bd_err *err)
{
    char *text;
    size_t len;
    memset(out, 0, sizeof *out);
    if (bd_file_read(path, &text, &len, err) < 0)
        return -1;
    int rc = bd_yaml_parse(text, len, path, out, err);
    free(text);
    return rc;
}

void bd_yaml_doc_free(struct bd_yaml_doc *d)
{
    for (size_t i = 0; i < d->ndocs; i++)
        bd_node_free(d->docs[i]);
    free(d->docs);
    free(d->file);
    memset(d, 0, sizeof *d);
}
