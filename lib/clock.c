/* The two clocks bootd reads: wall time for what people see, monotonic time for every
 * deadline and back-off (a clock step must not stall or hurry them). */
#include "bd.h"

#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bd_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t bd_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t bd_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
