/* Shared by the unit tests: temporary directories and files. */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include "../../lab/lab.h"
#include "../../lib/bd.h"
#include "../../state/state.h"

/* A fresh directory under /tmp (caller frees the string; the directory stays for
 * inspection after a failure). */
char *tmpdir_new(void);
/* Removes a directory tree made by tmpdir_new (after a test passed). */
void tmpdir_remove(const char *dir);
/* Writes text to dir/name (creating subdirectories); returns the path (caller frees). */
char *write_file(const char *dir, const char *name, const char *text);

/* A file's contents (caller frees); fails the test when it cannot be read. */
char *read_text(const char *path);

/* A valid lab.yaml head (cluster + lan, full DHCP on 192.0.2.0/24) for tests to extend. */
extern const char lab_head[];

/* Loads dir/lab.yaml; returns the lab or NULL with err filled. */
struct lab *load_lab(const char *dir, struct bd_err *err);

#endif
