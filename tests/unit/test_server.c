#include "helpers.h"

#include "../../server/server.h"

#include <criterion/criterion.h>
#include <string.h>

Test(server, metrics_buckets_and_statuses)
{
    static struct metrics m;
    server_metrics_observe(&m, R_IPXE, 200, 800, 300);        /* 0.3 ms */
    server_metrics_observe(&m, R_IPXE, 200, 800, 2000);       /* 2 ms */
    server_metrics_observe(&m, R_IPXE, 418, 0, 60000000);     /* a minute, an odd status */
    server_metrics_observe(&m, R_CONFIG, 403, 40, 100);
    cr_assert_eq(atomic_load(&m.requests[R_IPXE][0]), 2, "status 200 is the first tracked one");
    cr_assert_eq(atomic_load(&m.requests[R_IPXE][METRIC_STATUSES - 1]), 1, "418 counts as other");
    cr_assert_eq(atomic_load(&m.bytes[R_IPXE]), 1600);
    cr_assert_eq(atomic_load(&m.duration_bucket[R_IPXE][0]), 1, "<= 0.5 ms");
    cr_assert_eq(atomic_load(&m.duration_bucket[R_IPXE][2]), 1, "<= 5 ms");
    cr_assert_eq(atomic_load(&m.duration_bucket[R_IPXE][METRIC_BUCKETS - 1]), 1, "+Inf");
    cr_assert_eq(atomic_load(&m.duration_sum_us[R_IPXE]), 60002300);
    cr_assert_eq(atomic_load(&m.bytes[R_CONFIG]), 40);
    cr_assert_str_eq(server_route_name(R_IPXE), "ipxe");
    cr_assert_str_eq(server_route_name(R_OTHER), "other");
}
