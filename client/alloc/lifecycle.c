/* lifecycle.c - the task coordinator of an allocation, as Nomad 1.6's
 * (client/allocrunner/tasklifecycle/coordinator.go and the kill rules of
 * alloc_runner.go's handleTaskStateUpdates): which lifecycle stages may
 * start in which phase of the allocation, when the phase moves on, and
 * which live tasks a dead one takes down.
 *
 * Pure decisions on a view of the tasks (stage, state, failed, leader),
 * so they are tested without a loop; task_runner.c applies them. */
#include "client/alloc/internal.h"

#include <string.h>

enum lifecycle_stage lifecycle_stage_of(const struct task *spec)
{
    const struct lifecycle *l = spec ? spec->lifecycle : NULL;
    if (!l || !l->hook)
        return LC_MAIN;
    if (strcmp(l->hook, "prestart") == 0)
        return l->sidecar ? LC_PRESTART_SIDECAR : LC_PRESTART;
    if (strcmp(l->hook, "poststart") == 0)
        return l->sidecar ? LC_POSTSTART_SIDECAR : LC_POSTSTART;
    if (strcmp(l->hook, "poststop") == 0)
        return LC_POSTSTOP;
    return LC_MAIN;
}

bool lifecycle_is_sidecar(enum lifecycle_stage s)
{
    return s == LC_PRESTART_SIDECAR || s == LC_POSTSTART_SIDECAR;
}

/* Which stages each phase lets start: Nomad's gates, opened and closed on
 * entering a phase. An ephemeral stage closes once its phase is over, so a
 * finished init task is never started again. */
bool lifecycle_allows(enum lifecycle_phase p, enum lifecycle_stage s)
{
    static const unsigned open[] = {
        [LC_PHASE_PRESTART] = 1u << LC_PRESTART | 1u << LC_PRESTART_SIDECAR,
        [LC_PHASE_MAIN] = 1u << LC_PRESTART_SIDECAR | 1u << LC_MAIN,
        [LC_PHASE_POSTSTART] = 1u << LC_PRESTART_SIDECAR | 1u << LC_MAIN |
                               1u << LC_POSTSTART | 1u << LC_POSTSTART_SIDECAR,
        [LC_PHASE_WAIT_ALLOC] = 1u << LC_PRESTART_SIDECAR | 1u << LC_MAIN |
                                1u << LC_POSTSTART_SIDECAR,
        [LC_PHASE_POSTSTOP] = 1u << LC_POSTSTOP,
    };
    if ((unsigned)p >= sizeof(open) / sizeof(open[0]))
        return false;
    return (open[p] >> s) & 1u;
}

static bool all_of(const struct lifecycle_view *v, size_t n,
                   bool (*ok)(const struct lifecycle_view *))
{
    for (size_t i = 0; i < n; i++)
        if (!ok(&v[i]))
            return false;
    return true;
}

static bool prestart_ready(const struct lifecycle_view *t)
{
    if (t->stage == LC_PRESTART)
        return t->state == LC_DEAD && !t->failed; /* Successful() */
    if (t->stage == LC_PRESTART_SIDECAR)
        return t->state == LC_RUNNING;
    return true;
}

static bool main_started(const struct lifecycle_view *t)
{
    return t->stage != LC_MAIN || t->state != LC_PENDING;
}

static bool poststart_over(const struct lifecycle_view *t)
{
    return t->stage != LC_POSTSTART || t->state == LC_DEAD;
}

static bool dead_unless_poststop(const struct lifecycle_view *t)
{
    return t->stage == LC_POSTSTOP || t->state == LC_DEAD;
}

enum lifecycle_phase lifecycle_next(enum lifecycle_phase cur,
                                    const struct lifecycle_view *v, size_t n)
{
    for (;;) {
        enum lifecycle_phase next = cur;
        if (all_of(v, n, dead_unless_poststop))
            next = LC_PHASE_POSTSTOP;
        else if (cur == LC_PHASE_PRESTART && all_of(v, n, prestart_ready))
            next = LC_PHASE_MAIN;
        else if (cur == LC_PHASE_MAIN && all_of(v, n, main_started))
            next = LC_PHASE_POSTSTART;
        else if (cur == LC_PHASE_POSTSTART && all_of(v, n, poststart_over))
            next = LC_PHASE_WAIT_ALLOC;
        if (next == cur)
            return cur;
        cur = next;
    }
}

enum lifecycle_kill lifecycle_kill_reason(const struct lifecycle_view *v,
                                          size_t n, size_t *culprit)
{
    enum lifecycle_kill why = LC_KILL_NONE;
    bool sidecars = false, live_other = false, live = false;
    for (size_t i = 0; i < n; i++) {
        sidecars |= lifecycle_is_sidecar(v[i].stage);
        if (v[i].stage == LC_POSTSTOP)
            continue;
        if (v[i].state != LC_DEAD) {
            live = true;
            live_other |= !lifecycle_is_sidecar(v[i].stage);
            continue;
        }
        /* the first failed task is blamed, unless a leader died: that
         * wins, as in Nomad */
        if (v[i].failed) {
            if (why == LC_KILL_NONE) {
                why = LC_KILL_SIBLING_FAILED;
                if (culprit)
                    *culprit = i;
            }
        } else if (v[i].leader) {
            why = LC_KILL_LEADER_DEAD;
            if (culprit)
                *culprit = i;
        }
    }
    if (!live)
        return LC_KILL_NONE;
    if (why == LC_KILL_NONE && sidecars && !live_other)
        why = LC_KILL_MAIN_DEAD;
    return why;
}

/* The kill order of Nomad's killTasks: the leader first, then every other
 * task but sidecars and poststop tasks, then the sidecars once those are
 * dead; poststop tasks are not killed (they run after the others). */
bool lifecycle_stop_now(const struct lifecycle_view *v, size_t n, size_t i)
{
    if (v[i].stage == LC_POSTSTOP)
        return false;
    if (!lifecycle_is_sidecar(v[i].stage) || v[i].leader)
        return true;
    for (size_t k = 0; k < n; k++)
        if (k != i && v[k].stage != LC_POSTSTOP &&
            !lifecycle_is_sidecar(v[k].stage) && v[k].state != LC_DEAD)
            return false;
    return true;
}

/* Whether a successful exit ends the task rather than restarting it
 * (Nomad's restart tracker: batch jobs, prestart and poststart tasks that
 * are not sidecars, and poststop tasks). */
bool lifecycle_done_on_success(enum lifecycle_stage s, bool batch)
{
    switch (s) {
    case LC_PRESTART:
    case LC_POSTSTART:
    case LC_POSTSTOP:
        return true;
    case LC_PRESTART_SIDECAR:
    case LC_POSTSTART_SIDECAR:
        return false;
    case LC_MAIN:
        break;
    }
    return batch;
}

const char *lifecycle_kill_event(enum lifecycle_kill k)
{
    switch (k) {
    case LC_KILL_SIBLING_FAILED:
        return "Sibling Task Failed";
    case LC_KILL_LEADER_DEAD:
        return "Leader Task Dead";
    case LC_KILL_MAIN_DEAD:
        return "Main Tasks Dead";
    case LC_KILL_NONE:
        break;
    }
    return NULL;
}
