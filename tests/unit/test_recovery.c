/* Recovery pieces that need no server: the wire bytes of the etcd calls' requests,
 * backup names, and the checks a snapshot passes before a restore (on real etcd 3.4
 * snapshots from tests/fixtures/etcd). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#include "../../cluster/cluster.h"
#include "../../talos/internal.h"

#define ETCD_FIXTURES "tests/fixtures/etcd/"
#define ID "8g1en8X0SCu8mEFqggMhmfRD_K7UIIR-hCWAPHL7pDU="

Test(recovery, request_wire_bytes_as_machine_proto_numbers_them)
{
    struct bd_buf b;
    bd_buf_init(&b);
    /* BootstrapRequest{recover_etcd: true, recover_skip_hash_check: true} */
    talos_pb_put_bool(&b, 1, true);
    talos_pb_put_bool(&b, 2, true);
    cr_assert_eq(b.len, 4);
    cr_assert_arr_eq(b.data, ((uint8_t[]){0x08, 0x01, 0x10, 0x01}), 4);
    /* EtcdRemoveMemberByIDRequest{member_id: 0x8e2d7c0a1b3f4c51}: varint of a uint64 */
    bd_buf_reset(&b);
    talos_pb_put_uint64(&b, 1, 0x8e2d7c0a1b3f4c51ull);
    struct pb_reader r = {(const uint8_t *)b.data, (const uint8_t *)b.data + b.len};
    struct pb_field f;
    cr_assert_eq(talos_pb_next(&r, &f), 1);
    cr_assert_eq(f.num, 1);
    cr_assert_eq(f.varint, 0x8e2d7c0a1b3f4c51ull);
    /* common.Data{bytes: 300 bytes}: 0x12, varint 300 = ac 02 */
    bd_buf_reset(&b);
    char chunk[300];
    memset(chunk, 'x', sizeof chunk);
    talos_pb_put_bytes(&b, 2, chunk, sizeof chunk);
    cr_assert_eq(b.len, 3 + sizeof chunk);
    cr_assert_arr_eq(b.data, ((uint8_t[]){0x12, 0xac, 0x02}), 3);
    bd_buf_free(&b);
}

Test(recovery, backup_names_round_trip_and_junk_is_ignored)
{
    struct cluster_snapshot s;
    cr_assert_eq(cluster_snapshot_name_parse("etcd-" ID "-20261201T150002Z-r48213.snapshot", &s), 0);
    cr_assert_str_eq(s.cluster_id, ID);
    cr_assert_eq(s.revision, 48213);
    cr_assert_eq(s.taken_s, 1796137202);
    static const char *const bad[] = {
        "etcd-" ID "-20261201T150002Z-r48213.snapshot.new", /* a temporary name */
        "etcd-" ID "-20261201T150002Z.snapshot",            /* no revision */
        "etcd-" ID "-2026120T150002Z-r1.snapshot",          /* short time */
        "etcd--20261201T150002Z-r1.snapshot",               /* no id */
        "db.snapshot",
        "etcd-" ID "-20261201T150002Z-rx.snapshot",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(cluster_snapshot_name_parse(bad[i], &s), -1, "%s", bad[i]);
}

/* dir/name holding src's bytes, byte at flipped xor 0xff (or none), cut to len (0: all) */
static char *copy_of(const char *dir, const char *name, const char *src, long flipped, size_t len)
{
    char *data;
    size_t n;
    struct bd_err err;
    cr_assert_eq(bd_file_read(src, &data, &n, &err), 0, "%s", err.msg);
    if (flipped >= 0)
        data[flipped] ^= (char)0xff;
    char *out = bd_path_join(dir, name);
    cr_assert_eq(bd_file_write_atomic(out, data, len ? len : n, 0600, &err), 0, "%s", err.msg);
    free(data);
    return out;
}

Test(recovery, a_snapshot_is_checked_before_a_restore)
{
    char *dir = tmpdir_new();
    struct cluster_snapshot s;
    struct bd_err err;
    const char *good = ETCD_FIXTURES "small.snapshot";
    cr_assert_eq(cluster_snapshot_check(good, ID, false, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.revision, 9);
    cr_assert_eq(s.size, 20512);

    char *mine = copy_of(dir, "etcd-" ID "-20261201T150002Z-r9.snapshot", good, -1, 0);
    cr_assert_eq(cluster_snapshot_check(mine, ID, false, &s, &err), 0, "%s", err.msg);
    char *theirs = copy_of(dir, "etcd-OTHERid-20261201T150002Z-r9.snapshot", good, -1, 0);
    cr_assert_eq(cluster_snapshot_check(theirs, ID, false, &s, &err), -1);
    cr_assert(strstr(err.msg, "cluster OTHERid") && strstr(err.msg, ID), "%s", err.msg);

    char *corrupt = copy_of(dir, "corrupt.snapshot", good, 5000, 0);
    cr_assert_eq(cluster_snapshot_check(corrupt, ID, false, &s, &err), -1);
    cr_assert(strstr(err.msg, "does not match its own SHA-256"), "%s", err.msg);
    char *cut = copy_of(dir, "cut.snapshot", good, -1, 8192);
    cr_assert_eq(cluster_snapshot_check(cut, ID, false, &s, &err), -1);
    cr_assert(strstr(err.msg, "no SHA-256 trailer"), "%s", err.msg);

    /* --skip-hash-check: only a raw db copy (whole pages, no trailer) */
    cr_assert_eq(cluster_snapshot_check(good, ID, true, &s, &err), -1);
    cr_assert(strstr(err.msg, "leave out --skip-hash-check"), "%s", err.msg);
    char *raw = copy_of(dir, "db", good, -1, 20480);
    cr_assert_eq(cluster_snapshot_check(raw, ID, true, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.revision, 9);
    cr_assert_eq(cluster_snapshot_check(raw, ID, false, &s, &err), -1);
    char *odd = copy_of(dir, "odd", good, -1, 20000);
    cr_assert_eq(cluster_snapshot_check(odd, ID, true, &s, &err), -1);
    cr_assert(strstr(err.msg, "not a raw etcd db copy"), "%s", err.msg);

    free(mine), free(theirs), free(corrupt), free(cut), free(raw), free(odd);
    tmpdir_remove(dir);
    free(dir);
}

Test(recovery, snapshots_listed_newest_first_per_cluster)
{
    char *dir = tmpdir_new();
    free(write_file(dir, "etcd-" ID "-20261201T140001Z-r10.snapshot", "a"));
    free(write_file(dir, "etcd-" ID "-20261201T150002Z-r20.snapshot", "bb"));
    free(write_file(dir, "etcd-OTHER-20261201T160000Z-r5.snapshot", "c"));
    free(write_file(dir, "etcd-incoming.snapshot.new", "d"));
    free(write_file(dir, "notes.txt", "e"));
    struct cluster_snapshot *v;
    size_t n;
    struct bd_err err;
    cr_assert_eq(cluster_snapshots_list(dir, ID, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(v[0].revision, 20);
    cr_assert_eq(v[0].size, 2);
    cr_assert_eq(v[1].revision, 10);
    free(v);
    cr_assert_eq(cluster_snapshots_list(dir, NULL, &v, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v[0].cluster_id, "OTHER");
    free(v);
    char *missing = bd_path_join(dir, "nope");
    cr_assert_eq(cluster_snapshots_list(missing, ID, &v, &n, &err), 0);
    cr_assert_eq(n, 0);
    free(missing);
    tmpdir_remove(dir);
    free(dir);
}
