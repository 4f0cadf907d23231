/* schedule.c - the pure parts of the engine: Consul's status thresholds,
 * Nomad's check_restart counting, status mapping and the schedule
 * arithmetic. No sockets, no loop: unit tested directly. */
#include <errno.h>

#include "checks/checks.h"

enum chk_status chk_threshold_apply(struct chk_threshold_state *st,
                                    const struct chk_thresholds *t,
                                    enum chk_status result)
{
    /* Consul's StatusHandler.updateCheck: a warning result counts as a
     * success for the counters but is reported as warning. Until a
     * threshold is reached the reported status stays as it was. */
    if (result == CHK_PASSING || result == CHK_WARNING) {
        st->failures = 0;
        if (st->successes < INT32_MAX)
            st->successes++;
        if (st->successes >= t->success_before_passing)
            st->status = result;
        return st->status;
    }
    st->successes = 0;
    if (st->failures < INT32_MAX)
        st->failures++;
    int before_warning = t->failures_before_warning > 0
                             ? t->failures_before_warning
                             : t->failures_before_critical;
    if (st->failures >= t->failures_before_critical)
        st->status = CHK_CRITICAL;
    else if (st->failures >= before_warning)
        st->status = CHK_WARNING;
    return st->status;
}

bool chk_restart_apply(int *unhealthy, const struct chk_restart_def *r,
                       enum chk_status status, bool in_grace)
{
    if (r->limit <= 0)
        return false;
    bool healthy =
        status == CHK_PASSING || (status == CHK_WARNING && r->ignore_warnings);
    if (healthy) {
        *unhealthy = 0;
        return false;
    }
    /* Nomad's checkRestart.apply: unhealthy results inside the grace
     * period are not counted. */
    if (in_grace)
        return false;
    if (++*unhealthy < r->limit)
        return false;
    *unhealthy = 0;
    return true;
}

enum chk_status chk_http_status(int code)
{
    if (code >= 200 && code <= 299)
        return CHK_PASSING;
    if (code == 429)
        return CHK_WARNING;
    return CHK_CRITICAL;
}

uint64_t chk_schedule_first(uint64_t now, uint64_t interval, uint64_t cap,
                            uint64_t rnd)
{
    uint64_t span = interval < cap ? interval : cap;
    return now + (span ? rnd % span : 0);
}

uint64_t chk_schedule_next(uint64_t due, uint64_t interval, uint64_t now,
                           uint64_t *missed)
{
    uint64_t m = 0;
    if (interval == 0)
        interval = 1;
    uint64_t next = due + interval;
    if (next <= now) {
        /* the loop stalled past whole slots: skip them, stay anchored */
        uint64_t k = (now - next) / interval + 1;
        m = k;
        next += k * interval;
    }
    if (missed)
        *missed = m;
    return next;
}

const char *chk_status_name(enum chk_status s)
{
    switch (s) {
    case CHK_PASSING:
        return "passing";
    case CHK_WARNING:
        return "warning";
    default:
        return "critical";
    }
}

int chk_status_parse(const char *s, enum chk_status *out)
{
    static const enum chk_status all[] = {CHK_PASSING, CHK_WARNING,
                                          CHK_CRITICAL};
    for (size_t i = 0; s && i < NC_ARRAY_LEN(all); i++) {
        if (nc_streq(s, chk_status_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    }
    return -EINVAL;
}
