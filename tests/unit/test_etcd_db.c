/* The revision of an etcd snapshot, read from its bbolt pages. The fixtures are real
 * snapshots from Debian's etcd 3.4 (`etcdctl snapshot save`), the expected revisions
 * what `etcdctl snapshot status` reports for them (tests/fixtures/README.md). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "helpers.h"

#include "../../talos/talos.h"

#define ETCD_FIXTURES "tests/fixtures/etcd/"

/* The branch fixture is gzipped in the repository; a copy unpacked into dir. */
static char *gunzip_to(const char *dir, const char *gz)
{
    char *out = bd_path_join(dir, "snapshot");
    gzFile in = gzopen(gz, "rb");
    cr_assert(in, "%s", gz);
    FILE *f = fopen(out, "wb");
    char buf[65536];
    int n;
    while ((n = gzread(in, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, f);
    gzclose(in);
    fclose(f);
    return out;
}

/* A copy of src in dir with bytes [at, at+n) set to v, or cut to size when n is 0. */
static char *damaged(const char *dir, const char *src, size_t at, size_t n, uint8_t v)
{
    char *data;
    size_t len;
    struct bd_err err = {0};
    cr_assert_eq(bd_file_read(src, &data, &len, &err), 0, "%s", err.msg);
    if (n)
        memset(data + at, v, n);
    else
        len = at;
    char *out = bd_path_join(dir, "damaged");
    cr_assert_eq(bd_file_write_atomic(out, data, len, 0600, &err), 0, "%s", err.msg);
    free(data);
    return out;
}

Test(etcd_db, revision_of_a_one_leaf_snapshot)
{
    uint64_t rev = 0;
    struct bd_err err = {0};
    cr_assert_eq(talos_etcd_snapshot_revision(ETCD_FIXTURES "small.snapshot", &rev, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(rev, 9);
}

Test(etcd_db, revision_through_branch_pages)
{
    char *dir = tmpdir_new();
    char *path = gunzip_to(dir, ETCD_FIXTURES "branches.snapshot.gz");
    uint64_t rev = 0;
    struct bd_err err = {0};
    cr_assert_eq(talos_etcd_snapshot_revision(path, &rev, &err), 0, "%s", err.msg);
    cr_assert_eq(rev, 2701);
    free(path);
    tmpdir_remove(dir);
    free(dir);
}

Test(etcd_db, refuses_what_is_not_an_etcd_database)
{
    char *dir = tmpdir_new();
    uint64_t rev = 0;
    struct bd_err err = {0};
    char *junk = write_file(dir, "junk", "not a database at all, not even close to a bbolt meta page "
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................"
                                         "........................................................");
    cr_assert_eq(talos_etcd_snapshot_revision(junk, &rev, &err), -1);
    cr_assert(strstr(err.msg, "no valid bbolt meta page"), "%s", err.msg);
    /* both meta pages' checksums broken */
    char *bad = damaged(dir, ETCD_FIXTURES "small.snapshot", 16 + 20, 4, 0xee);
    char *bad2 = damaged(dir, bad, 4096 + 16 + 20, 4, 0xee);
    cr_assert_eq(talos_etcd_snapshot_revision(bad2, &rev, &err), -1);
    cr_assert(strstr(err.msg, "meta page"), "%s", err.msg);
    /* cut off after the meta pages: the tree's pages are gone */
    char *cut = damaged(dir, ETCD_FIXTURES "small.snapshot", 3 * 4096, 0, 0);
    cr_assert_eq(talos_etcd_snapshot_revision(cut, &rev, &err), -1);
    cr_assert(strstr(err.msg, "damaged etcd database") || strstr(err.msg, "no \"key\" bucket"),
              "%s", err.msg);
    free(junk), free(bad), free(bad2), free(cut);
    tmpdir_remove(dir);
    free(dir);
}
