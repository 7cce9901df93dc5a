/* Shared by the talos/ unit tests: a lab modelled on Talos's stability fixtures
 * (cluster "base", endpoint https://base:6443, Kubernetes 1.28.0) with the secrets
 * bundle taken from those fixtures, so generated configs can be compared with what
 * talosctl wrote. */
#ifndef TALOS_FIXTURE_H
#define TALOS_FIXTURE_H

#include "helpers.h"

#include "../../talos/internal.h"

#define VANILLA "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
#define FIXTURES "tests/fixtures/talos/"

/* The default machines: cp-1 (192.0.2.11) and w-1 (192.0.2.12). */
extern const char fixture_machines[];

/* A new lab dir: lab.yaml from the base cluster plus cluster_extra (indented lines
 * under cluster:) and machines (a "machines:" section, or NULL for the default), and
 * secrets.yaml, the fixture bundle, mode 0600. Caller frees (tmpdir_remove first). */
char *fixture_lab(const char *cluster_extra, const char *machines);
/* Writes the fixture bundle as dir/secrets.yaml, mode 0600. */
void fixture_secrets(const char *dir);
/* Frees what fixture_lab and fixture_cluster made, and removes the directory. */
void fixture_done(struct talos_cluster *tc, struct lab *lab, char *dir);
/* Loads dir/lab.yaml and prepares its configs; fails the test on error. */
struct talos_cluster *fixture_cluster(const char *dir, struct lab **lab);
/* The same, expecting talos_cluster_new to fail; returns the message. */
const char *fixture_cluster_error(const char *dir, struct bd_err *err);
/* A machine's config text (caller frees). */
char *fixture_render(const struct talos_cluster *tc, const struct lab *lab, const char *name);
/* The documents of a config text (caller frees with bd_yaml_doc_free). */
struct bd_yaml_doc fixture_parse(const char *text);
/* The index of the document of a kind, or -1. */
long fixture_doc(const struct bd_yaml_doc *d, const char *kind);

#define assert_has(msg, needle) cr_assert(strstr((msg), (needle)), "\"%s\" not in: %s", needle, msg)

#endif
