/* A lab's machine configs: preparing what every render shares (once per lab), and
 * rendering one machine (per config download):
 *   generate (config_gen.c) -> patches: cluster, role, machine -> network documents a
 *   patch took over are dropped -> Talos key order -> validation -> YAML. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct talos_cluster {
    const struct lab *lab;
    struct talos_secrets *secrets; /* NULL when every machine has a config file */
    char *secrets_error;           /* then why there is none, for the Talos API's sake */
    struct gen_input in;
    struct bd_node *base[2]; /* per role */
    size_t npatches;
    struct talos_patch *patches; /* every patch file lab.yaml names, loaded once */
    size_t nvars;               /* cluster.template_files, read once */
    char **var_texts;
    int schematic_ifnames;      /* net.ifnames= in the schematic's extraKernelArgs: 0, 1, -1 none */
};

static const char *user_config_file(const struct lab *lab, const struct lab_machine *m)
{
    return m->config_file ? m->config_file : lab->cluster.roles[m->role].config_file;
}

static const struct talos_patch *patch_by_file(const struct talos_cluster *tc, const char *file)
{
    for (size_t i = 0; i < tc->npatches; i++)
        if (!strcmp(tc->patches[i].file, file))
            return &tc->patches[i];
    return NULL;
}

/* The patch files for a machine, in the order they apply: cluster, role, machine
 * (caller frees the array, not the strings). */
static const char **machine_patches(const struct talos_cluster *tc, const struct lab_machine *m,
                                    size_t *n)
{
    const struct lab_cluster *cl = &tc->lab->cluster;
    const struct lab_strlist *lists[] = {&cl->patches, &cl->roles[m->role].patches, &m->patches};
    const char **out = bd_xcalloc(lists[0]->n + lists[1]->n + lists[2]->n + 1, sizeof *out);
    *n = 0;
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->n; i++)
            out[(*n)++] = lists[l]->v[i];
    return out;
}

/* Values templates see, as nodes, in the order they apply: a later one of the same
 * name wins (the built-ins, cluster.template_files, then the lab's, the role's and the
 * machine's vars). */
struct tvars {
    size_t n, cap;
    const char **names;
    const struct bd_node **values;
    size_t nowned;
    struct bd_node **owned; /* what was made here, freed after the render */
};

static void tvar(struct tvars *v, const char *name, const struct bd_node *value)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 32;
        v->names = bd_xrealloc(v->names, v->cap * sizeof *v->names);
        v->values = bd_xrealloc(v->values, v->cap * sizeof *v->values);
        v->owned = bd_xrealloc(v->owned, v->cap * sizeof *v->owned);
    }
    v->names[v->n] = name;
    v->values[v->n++] = value;
}

/* A string, or null when s is NULL. */
static void tvar_str(struct tvars *v, const char *name, const char *s)
{
    struct bd_node *n = bd_node_scalar(s ? s : "null", !s);
    tvar(v, name, n);
    v->owned[v->nowned++] = n;
}

static void tvar_map(struct tvars *v, const struct bd_node *vars)
{
    for (size_t i = 0; vars && i < vars->n; i++)
        tvar(v, vars->kids[2 * i]->str, vars->kids[2 * i + 1]);
}

static void tvars_free(struct tvars *v)
{
    for (size_t i = 0; i < v->nowned; i++)
        bd_node_free(v->owned[i]);
    free(v->names);
    free(v->values);
    free(v->owned);
}

static void tvar_ip(struct tvars *v, const char *name, bool has, uint32_t ip)
{
    char s[16];
    if (has)
        bd_ipv4_format(ip, s);
    tvar_str(v, name, has ? s : NULL);
}

/* The built-in variables, with the meaning the reference homelab's Terraform gave
 * them: node_name is the Proxmox node the machine's VM runs on and cluster_name the
 * Proxmox cluster (they become topology.kubernetes.io/zone and region, which the
 * Proxmox CSI plugin places volumes by), null when lab.yaml does not say. */
static void builtin_vars(const struct talos_cluster *tc, const struct lab_machine *m,
                         struct tvars *v)
{
    const struct lab *lab = tc->lab;
    char mac[18], mask[16], prefix[8];
    bd_mac_format(&m->mac, mac);
    tvar_str(v, "hostname", m->hostname);
    tvar_str(v, "name", m->name);
    tvar_str(v, "role", m->role == LAB_ROLE_CONTROLPLANE ? "controlplane" : "worker");
    tvar_ip(v, "ip", m->has_ip, m->ip);
    tvar_str(v, "mac_address", mac);
    tvar_ip(v, "gateway", lab->lan.has_gateway, lab->lan.gateway);
    uint32_t bits = lab->lan.subnet.prefix ? ~0u << (32 - lab->lan.subnet.prefix) : 0;
    bd_ipv4_format(bits, mask);
    snprintf(prefix, sizeof prefix, "%d", lab->lan.subnet.prefix);
    tvar_str(v, "subnet_mask", mask);
    tvar_str(v, "prefix_length", prefix);
    tvar_ip(v, "vip", lab->cluster.has_vip, lab->cluster.vip);
    tvar_str(v, "talos_cluster_name", lab->cluster.name);
    tvar_str(v, "endpoint", lab->cluster.endpoint);
    tvar_str(v, "install_disk", m->install_disk ? m->install_disk : lab->cluster.install_disk);
    tvar_str(v, "node_name", m->proxmox.node ? m->proxmox.node : lab->proxmox.node);
    tvar_str(v, "cluster_name", lab->proxmox.cluster);
}

static int apply_template(const struct talos_cluster *tc, const struct lab_machine *m,
                          const struct talos_patch *tpl, struct talos_docs *docs, struct bd_err *err)
{
    struct tvars v = {0};
    builtin_vars(tc, m, &v);
    const struct lab_cluster *cl = &tc->lab->cluster;
    for (size_t i = 0; i < tc->nvars; i++)
        tvar_str(&v, cl->template_files.v[i].key, tc->var_texts[i]);
    tvar_map(&v, cl->vars);
    tvar_map(&v, cl->roles[m->role].vars);
    tvar_map(&v, m->vars);
    struct patch_vars vars = {.n = v.n, .names = v.names, .values = v.values};
    struct bd_buf text;
    bd_buf_init(&text);
    struct talos_patch filled = {.file = bd_xstrdup(tpl->file)};
    int rc = talos_patch_fill_template(tpl, &vars, &text, err);
    if (rc == 0)
        rc = talos_patch_parse(&filled, text.data ? text.data : "", text.len, err);
    if (rc == 0)
        rc = talos_patch_apply(docs, &filled, err);
    talos_patch_free(&filled);
    bd_buf_free(&text);
    tvars_free(&v);
    return rc;
}

static bool legacy_set(const struct bd_node *cfg, const char *path)
{
    const struct bd_node *n = talos_tree_at(cfg, path);
    return n && !bd_node_is_null(n) && !(n->kind != BD_NODE_SCALAR && n->n == 0) &&
           !(n->kind == BD_NODE_SCALAR && !n->str[0]);
}

static void drop(struct talos_docs *d, const char *kind, const char *name)
{
    long i = talos_docs_find(d, kind, name);
    if (i > 0)
        talos_docs_remove(d, (size_t)i);
}

/* Where a patch configures the hostname, links or resolvers the legacy way under
 * machine.network, it wins: bootd's documents for the same thing go, since Talos
 * refuses a config that sets both (or would run two setups on one link). */
static void drop_superseded_docs(const struct talos_cluster *tc, struct talos_docs *d)
{
    const struct bd_node *cfg = d->v[0];
    if (legacy_set(cfg, "machine.network.hostname") ||
        (talos_tree_str_at(cfg, "machine.features.stableHostname") &&
         !strcmp(talos_tree_str_at(cfg, "machine.features.stableHostname"), "true")))
        drop(d, "HostnameConfig", NULL);
    if (legacy_set(cfg, "machine.network.interfaces")) {
        char vip[16];
        bd_ipv4_format(tc->lab->cluster.vip, vip);
        drop(d, "LinkAliasConfig", TALOS_LINK);
        drop(d, "LinkConfig", TALOS_LINK);
        drop(d, "DHCPv4Config", TALOS_LINK);
        if (tc->lab->cluster.has_vip)
            drop(d, "Layer2VIPConfig", vip);
    }
    if (legacy_set(cfg, "machine.network.nameservers"))
        drop(d, "ResolverConfig", NULL);
}

/* The machine's documents after the first limit patches, dropped and ordered. */
static int build(const struct talos_cluster *tc, const struct lab_machine *m, size_t limit,
                 struct talos_docs *docs, struct bd_err *err)
{
    talos_gen_machine(&tc->in, tc->base[m->role], m, docs);
    size_t n;
    const char **files = machine_patches(tc, m, &n);
    int rc = 0;
    for (size_t i = 0; i < n && i < limit && rc == 0; i++) {
        const struct talos_patch *p = patch_by_file(tc, files[i]);
        rc = p->is_template ? apply_template(tc, m, p, docs, err) : talos_patch_apply(docs, p, err);
    }
    free(files);
    if (rc < 0)
        return -1;
    drop_superseded_docs(tc, docs);
    talos_tree_order_v1alpha1(docs->v[0]);
    return 0;
}

/* The last net.ifnames= value in a list of kernel arguments, or keep. */
static int last_ifnames(const struct lab_strlist *l, int keep)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strncmp(l->v[i], "net.ifnames=", 12))
            keep = !strcmp(l->v[i] + 12, "0") ? 0 : 1;
    return keep;
}

/* Whether links keep their eth names: the installed system boots from disk with the
 * image's command line (grubUseUKICmdline), so only the schematic's extraKernelArgs
 * reach it; boot.kernel_args and the machine's kernel_args reach the PXE boot alone. */
static void ifnames(const struct talos_cluster *tc, const struct lab_machine *m,
                    struct validate_ctx *vc)
{
    vc->ifnames0 = tc->schematic_ifnames == 0;
    int pxe = last_ifnames(&m->kernel_args, last_ifnames(&tc->lab->boot.kernel_args, -1));
    vc->ifnames0_pxe_only = !vc->ifnames0 && pxe == 0;
}

/* net.ifnames= in the schematic's customization.extraKernelArgs (-1: none). A schematic
 * that does not read is images/'s to report; here it just has none. */
static int schematic_ifnames(const struct lab *lab)
{
    const char *file = lab->images.schematic_file;
    char *text;
    size_t len;
    struct bd_err e;
    struct bd_yaml_doc doc;
    int v = -1;
    if (!file || bd_file_read(file, &text, &len, &e) < 0)
        return -1;
    if (bd_yaml_parse(text, len, file, &doc, &e) == 0) {
        const struct bd_node *args = doc.ndocs ? talos_tree_at(doc.docs[0], "customization.extraKernelArgs") : NULL;
        for (size_t i = 0; args && args->kind == BD_NODE_SEQ && i < args->n; i++)
            if (args->kids[i]->kind == BD_NODE_SCALAR && !strncmp(args->kids[i]->str, "net.ifnames=", 12))
                v = !strcmp(args->kids[i]->str + 12, "0") ? 0 : 1;
        bd_yaml_doc_free(&doc);
    }
    free(text);
    return v;
}

static int validate(const struct talos_cluster *tc, const struct lab_machine *m,
                    const struct talos_docs *docs, struct bd_err *err)
{
    struct validate_ctx vc = {.role = m->role, .has_vip = tc->lab->cluster.has_vip,
                              .vip = tc->lab->cluster.vip, .mac = m->mac};
    ifnames(tc, m, &vc);
    if (talos_validate(docs, &vc, err) < 0)
        return -1;
    return talos_validate_metal(docs, &vc, err);
}

/* A check failed on the full config: find the patch after which it first fails, so the
 * message can name it. Only runs on the way to an error. */
static void blame(const struct talos_cluster *tc, const struct lab_machine *m, struct bd_err *err)
{
    size_t n;
    const char **files = machine_patches(tc, m, &n);
    for (size_t k = 0; k <= n; k++) {
        struct talos_docs docs = {0};
        struct bd_err e;
        bool same = build(tc, m, k, &docs, &e) == 0 && validate(tc, m, &docs, &e) < 0 &&
                    !strcmp(e.msg, err->msg);
        talos_docs_free(&docs);
        if (same) {
            if (k == 0)
                bd_err_prefix(err, "%s (from lab.yaml and %s)", m->name,
                              tc->lab->cluster.secrets_file);
            else
                bd_err_prefix(err, "%s: after patch %s", m->name, files[k - 1]);
            free(files);
            return;
        }
    }
    free(files);
    bd_err_prefix(err, "%s", m->name);
}

/* What the lab-wide checks after rendering need from each config. */
struct render_facts {
    bool cni_none;      /* some control plane runs without a CNI */
    bool cni_arrives;   /* some control plane ships manifests or CNI URLs */
    const char *cni_none_machine;
};

static bool has_items(const struct bd_node *cfg, const char *path)
{
    const struct bd_node *n = talos_tree_at(cfg, path);
    return n && n->kind == BD_NODE_SEQ && n->n;
}

static void note_facts(const struct lab_machine *m, const struct bd_node *cfg,
                       struct render_facts *f)
{
    if (!f || m->role != LAB_ROLE_CONTROLPLANE)
        return;
    const char *cni = talos_tree_str_at(cfg, "cluster.network.cni.name");
    if (cni && !strcmp(cni, "none") && !f->cni_none) {
        f->cni_none = true;
        f->cni_none_machine = m->name;
    }
    f->cni_arrives |= has_items(cfg, "cluster.inlineManifests") ||
                      has_items(cfg, "cluster.extraManifests") ||
                      has_items(cfg, "cluster.network.cni.urls");
}

static int render(const struct talos_cluster *tc, const struct lab_machine *m, struct bd_buf *out,
                  struct render_facts *facts, struct bd_err *err)
{
    struct talos_docs docs = {0};
    int rc = build(tc, m, (size_t)-1, &docs, err);
    if (rc < 0) {
        bd_err_prefix(err, "%s", m->name);
    } else if ((rc = validate(tc, m, &docs, err)) < 0) {
        blame(tc, m, err);
    } else {
        note_facts(m, docs.v[0], facts);
        bd_yaml_emit_docs(out, docs.v, docs.n);
    }
    talos_docs_free(&docs);
    return rc;
}

/* cni: none with nothing that brings a CNI: pods never get a network, nodes stay
 * NotReady and Talos reboots them after ten minutes, again and again. GitOps may
 * apply one after bootstrap (the API server needs no pod network). */
static int check_cni_arrives(const struct talos_cluster *tc, const struct render_facts *f,
                             struct bd_err *err)
{
    if (!f->cni_none || f->cni_arrives || tc->lab->gitops.set)
        return 0;
    return bd_err_set(err,
                      "%s: cluster.cni: none (%s's config has cluster.network.cni.name: none), "
                      "but no CNI arrives: no control plane's config has an inline manifest, an "
                      "extra manifest or CNI URLs, and there is no gitops repo. Nodes would stay "
                      "NotReady. Ship the CNI (Cilium) as cluster.inline_manifests or "
                      "extra_manifests in lab.yaml (or a patch's cluster.inlineManifests), deliver "
                      "it with gitops, or keep cni: flannel",
                      tc->lab->path, f->cni_none_machine);
}

int talos_machine_config(const struct talos_cluster *tc, const struct lab_machine *m, char **out,
                         size_t *len, struct bd_err *err)
{
    const char *file = user_config_file(tc->lab, m);
    if (file)
        return bd_file_read(file, out, len, err);
    if (!tc->secrets) /* talos_cluster_new loads them whenever a machine needs them */
        return bd_err_set(err, "%s: no secrets bundle loaded", m->name);
    struct bd_buf b;
    bd_buf_init(&b);
    if (render(tc, m, &b, NULL, err) < 0) {
        bd_buf_free(&b);
        return -1;
    }
    *len = b.len;
    *out = bd_buf_steal(&b);
    return 0;
}

/* ---- preparing ---- */

static bool talos_version(const char *v, int *major, int *minor)
{
    return sscanf(v, "v%d.%d", major, minor) == 2;
}

/* v1.12 reads every document bootd writes (HostnameConfig and the network documents
 * came with it); older releases do not. */
static int talos_version_ok(const char *v)
{
    int major = 0, minor = 0;
    return talos_version(v, &major, &minor) && (major > 1 || (major == 1 && minor >= 12));
}

/* The installer image as the Talos tooling of that version names it: from v1.14 the
 * Image Factory's per-platform metal-installer/, before it installer/. The host is
 * the Image Factory's (which also serves the installer images as a registry). */
static char *installer_image_of(const struct lab *lab, const char *schematic, const char *version)
{
    const char *f = lab->images.factory, *host = "factory.talos.dev";
    size_t hlen = strlen(host);
    const char *sep = strstr(f, "://");
    if ((!strncmp(f, "https://", 8) || !strncmp(f, "http://", 7)) && sep) {
        host = sep + 3;
        hlen = strcspn(host, "/");
    }
    int major = 1, minor = 13;
    talos_version(version, &major, &minor);
    bool metal = major > 1 || (major == 1 && minor >= 14);
    return bd_xasprintf("%.*s/%sinstaller/%s:%s", (int)hlen, host, metal ? "metal-" : "",
                        schematic, version);
}

static char *installer_image(const struct lab *lab, const char *schematic)
{
    return installer_image_of(lab, schematic, lab->cluster.talos_version);
}

char *talos_installer_image(const struct talos_cluster *tc, const char *version)
{
    const char *img = tc->in.installer_image, *p = strstr(img, "installer/");
    if (!p)
        return NULL;
    p += strlen("installer/");
    char *schematic = bd_xasprintf("%.*s", (int)strcspn(p, ":"), p);
    char *out = installer_image_of(tc->lab, schematic, version);
    free(schematic);
    return out;
}

static int load_patch_list(struct talos_cluster *tc, const struct lab_strlist *l, struct bd_err *err)
{
    for (size_t i = 0; i < l->n; i++) {
        if (patch_by_file(tc, l->v[i]))
            continue;
        tc->patches = bd_xrealloc(tc->patches, (tc->npatches + 1) * sizeof *tc->patches);
        if (talos_patch_load(l->v[i], &tc->patches[tc->npatches], err) < 0) {
            talos_patch_free(&tc->patches[tc->npatches]);
            return -1;
        }
        tc->npatches++;
    }
    return 0;
}

static int load_files(struct talos_cluster *tc, struct bd_err *err)
{
    const struct lab *lab = tc->lab;
    const struct lab_cluster *cl = &lab->cluster;
    size_t len;
    tc->in.manifest_texts = bd_xcalloc(cl->n_inline_manifests + 1, sizeof(char *));
    for (size_t i = 0; i < cl->n_inline_manifests; i++)
        if (bd_file_read(cl->inline_manifests[i].file, &tc->in.manifest_texts[i], &len, err) < 0)
            return bd_err_prefix(err, "cluster.inline_manifests[%zu]", i);
    tc->var_texts = bd_xcalloc(cl->template_files.n + 1, sizeof(char *));
    tc->nvars = cl->template_files.n;
    for (size_t i = 0; i < cl->template_files.n; i++)
        if (bd_file_read(cl->template_files.v[i].value, &tc->var_texts[i], &len, err) < 0)
            return bd_err_prefix(err, "cluster.template_files.%s", cl->template_files.v[i].key);
    if (load_patch_list(tc, &cl->patches, err) < 0 ||
        load_patch_list(tc, &cl->roles[0].patches, err) < 0 ||
        load_patch_list(tc, &cl->roles[1].patches, err) < 0)
        return -1;
    for (size_t i = 0; i < lab->nmachines; i++)
        if (load_patch_list(tc, &lab->machines[i].patches, err) < 0)
            return -1;
    return 0;
}

static int load_secrets(struct talos_cluster *tc, struct bd_err *err)
{
    const char *path = tc->lab->cluster.secrets_file;
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return bd_err_set(err,
                          "cluster.secrets: %s does not exist; bootd generates machine configs "
                          "from it. Create it with: bootctl gen secrets %s",
                          path, tc->lab->path);
    if (talos_secrets_load(path, &tc->secrets, err) < 0)
        return bd_err_prefix(err, "cluster.secrets");
    return 0;
}

int talos_cluster_new(const struct lab *lab, const char *schematic, struct talos_cluster **out,
                      struct bd_err *err)
{
    struct talos_cluster *tc = bd_xcalloc(1, sizeof *tc);
    tc->lab = lab;
    *out = tc;
    bool needed = false;
    for (size_t i = 0; i < lab->nmachines; i++)
        needed |= !user_config_file(lab, &lab->machines[i]);
    int rc = -1;
    if (!needed) {
        /* Configs come from files, so the lab needs no bundle; one that is there still
         * gives bootd its Talos API credentials. */
        struct bd_err serr;
        if (load_secrets(tc, &serr) < 0)
            tc->secrets_error = bd_xstrdup(serr.msg);
        return 0;
    }
    if (!talos_version_ok(lab->cluster.talos_version)) {
        bd_err_set(err,
                   "%s: cluster.talos_version: bootd writes the Talos v1.12/v1.13 config layout, "
                   "which Talos %s does not read; use v1.12 or later, or give every machine a "
                   "config file",
                   lab->path, lab->cluster.talos_version);
        goto out;
    }
    if (load_secrets(tc, err) < 0 || load_files(tc, err) < 0)
        goto out;
    tc->schematic_ifnames = schematic_ifnames(lab);
    tc->in.lab = lab;
    tc->in.secrets = tc->secrets;
    tc->in.installer_image = installer_image(lab, schematic);
    tc->base[LAB_ROLE_CONTROLPLANE] = talos_gen_role_base(&tc->in, LAB_ROLE_CONTROLPLANE);
    tc->base[LAB_ROLE_WORKER] = talos_gen_role_base(&tc->in, LAB_ROLE_WORKER);
    /* every generated config once, so a lab whose patches break is refused now */
    struct bd_buf scratch;
    bd_buf_init(&scratch);
    struct render_facts facts = {0};
    rc = 0;
    for (size_t i = 0; i < lab->nmachines && rc == 0; i++) {
        if (user_config_file(lab, &lab->machines[i]))
            continue;
        bd_buf_reset(&scratch);
        rc = render(tc, &lab->machines[i], &scratch, &facts, err);
    }
    bd_buf_free(&scratch);
    if (rc == 0)
        rc = check_cni_arrives(tc, &facts, err);
out:
    if (rc < 0) {
        talos_cluster_free(tc);
        *out = NULL;
    }
    return rc;
}

const struct talos_secrets *talos_cluster_secrets(const struct talos_cluster *tc,
                                                  const char **why_not)
{
    if (why_not)
        *why_not = tc->secrets_error;
    return tc->secrets;
}

void talos_cluster_free(struct talos_cluster *tc)
{
    if (!tc)
        return;
    talos_secrets_free(tc->secrets);
    free(tc->secrets_error);
    for (size_t i = 0; tc->in.manifest_texts && i < tc->lab->cluster.n_inline_manifests; i++)
        free(tc->in.manifest_texts[i]);
    free(tc->in.manifest_texts);
    for (size_t i = 0; i < tc->nvars; i++)
        free(tc->var_texts[i]);
    free(tc->var_texts);
    for (size_t i = 0; i < tc->npatches; i++)
        talos_patch_free(&tc->patches[i]);
    free(tc->patches);
    bd_node_free(tc->base[0]);
    bd_node_free(tc->base[1]);
    free(tc->in.installer_image);
    free(tc);
}
