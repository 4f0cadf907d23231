/* restart.c - a task's restart policy after an exit (attempts within an
 * interval, delay with Nomad's jitter, mode "delay" or "fail"), and the
 * group's reschedule policy: a failed allocation replaced on this node. */
#include "client/alloc/internal.h"

#include <stdlib.h>
#include <string.h>

static const struct restart_policy *task_restart_policy(const struct alloc_task *t)
{
    const struct task *spec = alloc_task_spec(t);
    if (spec && spec->restart)
        return spec->restart;
    const struct task_group *g = alloc_group(t->alloc);
    return g ? &g->restart : NULL;
}

static void on_restart_timer(uv_timer_t *h)
{
    struct alloc_task *t = h->data;
    uv_close((uv_handle_t *)h, alloc_handle_closed);
    t->timer = NULL;
    if (t->alloc->stopping)
        return;
    t->restarts++;
    t->last_restart = nc_now_unix_ns();
    alloc_task_start(t);
}

void alloc_task_schedule_restart(struct alloc_task *t, int64_t delay_ns,
                                 const char *why)
{
    if (why) /* NULL: the caller said why */
        alloc_task_event(t, "Restarting", "%s; restarting in %.1fs", why,
                         (double)delay_ns / 1e9);
    alloc_set_str(&t->state, "pending");
    t->timer = xcalloc(1, sizeof(*t->timer));
    uv_timer_init(t->alloc->mgr->c.loop, t->timer);
    t->timer->data = t;
    uv_timer_start(t->timer, on_restart_timer, (uint64_t)(delay_ns / 1000000), 0);
}

void alloc_task_apply_restart_policy(struct alloc_task *t, bool failed_start)
{
    struct alloc *a = t->alloc;
    const struct restart_policy *rp = task_restart_policy(t);
    int64_t now = (int64_t)nc_now_mono_ns();
    if (!rp || now - t->interval_start > rp->interval) {
        t->interval_start = now;
        t->restarts_in_interval = 0;
    }
    if (rp && t->restarts_in_interval < rp->attempts) {
        t->restarts_in_interval++;
        /* Nomad adds up to 25% jitter to the delay */
        uint32_t r;
        nc_random_bytes(&r, sizeof(r));
        int64_t delay = rp->delay + (int64_t)((double)rp->delay * 0.25 *
                                              (r / 4294967296.0));
        alloc_task_schedule_restart(t, delay, failed_start
                                                  ? "Failed to start"
                                                  : "Restart within policy");
    } else if (rp && nc_streq(rp->mode, "delay")) {
        int64_t wait = rp->interval - (now - t->interval_start);
        t->interval_start = now + (wait > 0 ? wait : 0);
        t->restarts_in_interval = 0;
        alloc_task_schedule_restart(t, wait > 0 ? wait : rp->delay,
                                    "Exceeded allowed attempts, applying a "
                                    "delay");
    } else {
        alloc_task_event(t, "Not Restarting",
                         "Exceeded allowed attempts %d in interval %llds and "
                         "mode is \"fail\"",
                         rp ? rp->attempts : 0,
                         rp ? (long long)(rp->interval / 1000000000) : 0LL);
        alloc_set_str(&t->state, "dead");
        t->failed = true;
        alloc_update_status(a);
    }
}

/* Delay before the n-th replacement (n from 0), per delay_function. */
static int64_t reschedule_delay(const struct reschedule_policy *rp, int n)
{
    int64_t d = rp->delay;
    if (nc_streq(rp->delay_function, "exponential")) {
        for (int i = 0; i < n && (rp->max_delay <= 0 || d < rp->max_delay); i++)
            d *= 2;
    } else if (nc_streq(rp->delay_function, "fibonacci")) {
        int64_t prev = 0;
        for (int i = 0; i < n && (rp->max_delay <= 0 || d < rp->max_delay); i++) {
            int64_t next = prev + d;
            prev = d;
            d = next;
        }
    }
    if (rp->max_delay > 0 && d > rp->max_delay)
        d = rp->max_delay;
    return d;
}

static void on_reschedule_timer(uv_timer_t *h)
{
    struct alloc *a = h->data;
    uv_close((uv_handle_t *)h, alloc_handle_closed);
    a->reschedule_timer = NULL;
    struct alloc_manager *m = a->mgr;
    const struct task_group *g = alloc_group(a);
    /* a draining or ineligible node takes no replacement: placed again
     * by alloc_manager_placements_resumed once it is eligible */
    if (a->stopping || nc_streq(a->desired_status, "stop") || !g ||
        !node_ready(m->c.node))
        return;
    struct alloc *n = alloc_create(m, a->job, g, a->index, a->job_version);
    free(n->previous_alloc);
    n->previous_alloc = xstrdup(a->id);
    n->reschedules = a->reschedules + 1;
    alloc_set_str(&a->desired_status, "stop");
    alloc_save(a);
    LOG_INFO("alloc", "allocation %s replaces failed %s (reschedule %d)",
             n->id, a->id, n->reschedules);
    alloc_start(n);
}

/* A failed allocation is replaced on this node as the group's reschedule
 * policy allows: attempts (or unlimited), with the policy's delay. */
void alloc_maybe_reschedule(struct alloc *a)
{
    const struct task_group *g = alloc_group(a);
    const struct reschedule_policy *rp = g ? g->reschedule : NULL;
    if (!rp || a->reschedule_timer || a->mgr->closing)
        return;
    if (!rp->unlimited && a->reschedules >= rp->attempts) {
        LOG_INFO("alloc", "allocation %s failed and is not rescheduled: %d of "
                          "%d attempts used", a->id, a->reschedules, rp->attempts);
        return;
    }
    int64_t delay = reschedule_delay(rp, a->reschedules);
    a->reschedule_timer = xcalloc(1, sizeof(*a->reschedule_timer));
    uv_timer_init(a->mgr->c.loop, a->reschedule_timer);
    a->reschedule_timer->data = a;
    uv_timer_start(a->reschedule_timer, on_reschedule_timer,
                   (uint64_t)(delay / 1000000), 0);
}
