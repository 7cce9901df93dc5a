/* ApplyConfiguration, with its messages' field numbers as api/machine/machine.proto
 * defines them (Talos v1.13.9):
 *
 *   ApplyConfiguration(ApplyConfigurationRequest) -> ApplyConfigurationResponse
 *   ApplyConfigurationRequest { bytes data = 1; Mode mode = 4; bool dry_run = 5;
 *                               google.protobuf.Duration try_mode_timeout = 6; }
 *   ApplyConfiguration { common.Metadata metadata = 1; repeated string warnings = 2;
 *                        Mode mode = 3; string mode_details = 4; }
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

enum { REQ_DATA = 1, REQ_MODE = 4, REQ_DRY_RUN = 5, REQ_TRY_TIMEOUT = 6 };
enum { DURATION_SECONDS = 1 };
enum { RESPONSE_MESSAGES = 1 };
enum { APPLY_METADATA = 1, APPLY_WARNINGS = 2, APPLY_MODE = 3, APPLY_MODE_DETAILS = 4 };

const char *talos_apply_mode_name(enum talos_apply_mode m)
{
    static const char *const names[] = {"reboot", "auto", "no-reboot", "staged", "try"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "?";
}

int talos_apply_mode_parse(const char *s, enum talos_apply_mode *out)
{
    for (int m = TALOS_APPLY_REBOOT; m <= TALOS_APPLY_TRY; m++)
        if (!strcmp(s, talos_apply_mode_name((enum talos_apply_mode)m))) {
            *out = (enum talos_apply_mode)m;
            return 0;
        }
    return -1;
}

static void append_line(char *dst, size_t n, const uint8_t *p, size_t len)
{
    size_t have = strlen(dst);
    if (have && have + 1 < n)
        dst[have++] = '\n';
    size_t take = len < n - have - 1 ? len : n - have - 1;
    memcpy(dst + have, p, take);
    dst[have + take] = 0;
}

static int on_apply(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    struct talos_apply_result *res = ud;
    struct pb_reader r = {p, p + n};
    struct pb_field f, g;
    int rc;
    while ((rc = talos_pb_next(&r, &f)) > 0) {
        if (f.num != RESPONSE_MESSAGES || !talos_pb_is_bytes(&f))
            continue;
        struct pb_reader item = talos_pb_sub(&f);
        while ((rc = talos_pb_next(&item, &g)) > 0) {
            if (g.num == APPLY_METADATA && talos_pb_is_bytes(&g) &&
                talos_api_check_metadata(&g, NULL, 0, err) < 0)
                return -1;
            if (g.num == APPLY_MODE && !talos_pb_is_bytes(&g))
                res->mode = (enum talos_apply_mode)g.varint;
            else if (g.num == APPLY_MODE_DETAILS && talos_pb_is_bytes(&g))
                talos_pb_copy_string(&g, res->details, sizeof res->details);
            else if (g.num == APPLY_WARNINGS && talos_pb_is_bytes(&g))
                append_line(res->warnings, sizeof res->warnings, g.data, g.len);
        }
        if (rc < 0)
            break;
        res->answered = true;
    }
    return rc < 0 ? bd_err_set(err, "malformed machine.ApplyConfigurationResponse message") : 0;
}

int talos_api_apply_config(const struct talos_node *n, const char *data, size_t len,
                           enum talos_apply_mode mode, bool dry_run, int64_t try_timeout_s,
                           struct talos_apply_result *out, int *code, struct bd_err *err)
{
    memset(out, 0, sizeof *out);
    struct bd_buf req;
    bd_buf_init(&req);
    talos_pb_put_bytes(&req, REQ_DATA, data, len);
    talos_pb_put_uint64(&req, REQ_MODE, (uint64_t)mode);
    talos_pb_put_bool(&req, REQ_DRY_RUN, dry_run);
    if (mode == TALOS_APPLY_TRY && try_timeout_s > 0) {
        struct bd_buf d; /* google.protobuf.Duration */
        bd_buf_init(&d);
        talos_pb_put_uint64(&d, DURATION_SECONDS, (uint64_t)try_timeout_s);
        talos_pb_put_bytes(&req, REQ_TRY_TIMEOUT, d.data, d.len);
        bd_buf_free(&d);
    }
    int rc = talos_api_call(n, TALOS_API_SERVICE "ApplyConfiguration", &req, false, on_apply, out,
                            code, err);
    bd_buf_free(&req);
    if (rc == 0 && !out->answered) {
        *code = TALOS_CALL_FAILED;
        return bd_err_set(err, "Talos API %s:%d: ApplyConfiguration: the answer holds no result",
                          n->host, n->port);
    }
    return rc;
}

/* ---- Upgrade ----
 *
 *   Upgrade(UpgradeRequest) -> UpgradeResponse
 *   UpgradeRequest { string image = 1; bool preserve = 2; bool stage = 3; bool force = 4;
 *                    RebootMode reboot_mode = 5; }
 *   Upgrade { common.Metadata metadata = 1; string ack = 2; string actor_id = 3; } */
enum { UPGRADE_IMAGE = 1 };

int talos_api_upgrade(const struct talos_node *n, const char *image, int *code,
                      struct bd_err *err)
{
    struct bd_buf req;
    bd_buf_init(&req);
    talos_pb_put_bytes(&req, UPGRADE_IMAGE, image, strlen(image));
    int rc = talos_api_call(n, TALOS_API_SERVICE "Upgrade", &req, false, talos_api_on_items,
                            "machine.UpgradeResponse", code, err);
    bd_buf_free(&req);
    return rc;
}
