/* task_runner.c - a task's life on the agent's loop, through its driver
 * (client/drivers/driver.h): start (or prepare beside the network and
 * release once it is ready), the end the driver reports, the allocation's
 * status that follows, and the user's signal and restart. */
#include "client/alloc/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void task_exited(struct alloc_task *t, const struct driver_exit *res);
static void task_started(struct alloc_task *t);
static void task_driver_event(struct alloc_task *t, const char *type,
                              const char *msg);

void alloc_driver_env_init(struct alloc_manager *m)
{
    struct driver_env *env = xcalloc(1, sizeof(*env));
    env->loop = m->c.loop;
    env->cfg = m->c.cfg;
    env->node = m->c.node;
    env->self_exe = m->c.self_exe;
    env->alloc_root = m->alloc_root;
    env->exited = task_exited;
    env->started = task_started;
    env->event = task_driver_event;
    m->drv = env;
}

void alloc_task_fail(struct alloc_task *t, const char *type, const char *msg)
{
    alloc_task_event(t, type, "%s", msg);
    alloc_set_str(&t->state, "dead");
    t->failed = true;
    t->finished_at = nc_now_unix_ns();
    LOG_WARN("alloc", "%s task %s: %s", t->alloc->id, t->name, msg);
    alloc_update_status(t->alloc);
}

static void task_running(struct alloc_task *t)
{
    alloc_set_str(&t->state, "running");
    t->started_at = nc_now_unix_ns();
    alloc_task_event(t, "Started", "Task started by client");
}

void alloc_task_start(struct alloc_task *t) { alloc_task_spawn(t, false); }

/* A start the driver went on with in the background is done. */
static void task_started(struct alloc_task *t)
{
    if (!t->starting)
        return;
    t->starting = false;
    task_running(t);
    alloc_update_status(t->alloc);
    alloc_save(t->alloc);
}

static void task_driver_event(struct alloc_task *t, const char *type,
                              const char *msg)
{
    alloc_task_event(t, type, "%s", msg);
    alloc_save(t->alloc);
}

bool alloc_task_active(const struct alloc_task *t)
{
    return t->supervisor_pid > 0 || t->starting;
}

/* The coordinator's view of the allocation's tasks; caller frees. */
static struct lifecycle_view *lc_views(const struct alloc *a)
{
    struct lifecycle_view *v = xcalloc(a->ntasks + 1, sizeof(*v));
    for (size_t i = 0; i < a->ntasks; i++) {
        const struct alloc_task *t = &a->tasks[i];
        const struct task *spec = alloc_task_spec(t);
        v[i].stage = lifecycle_stage_of(spec);
        v[i].state = nc_streq(t->state, "dead")      ? LC_DEAD
                     : nc_streq(t->state, "running") ? LC_RUNNING
                                                     : LC_PENDING;
        v[i].failed = t->failed;
        v[i].leader = spec && spec->leader;
    }
    return v;
}

static enum lifecycle_phase lc_refresh(struct alloc *a)
{
    struct lifecycle_view *v = lc_views(a);
    a->lc_phase = (int)lifecycle_next((enum lifecycle_phase)a->lc_phase, v,
                                      a->ntasks);
    free(v);
    return (enum lifecycle_phase)a->lc_phase;
}

/* Whether the coordinator lets the task start now: its stage's gate is
 * open, and nothing is being killed (poststop tasks run after a kill). */
static bool lc_may_start(struct alloc_task *t)
{
    struct alloc *a = t->alloc;
    enum lifecycle_stage s = lifecycle_stage_of(alloc_task_spec(t));
    if ((a->lc_killing || a->stopping) && s != LC_POSTSTOP)
        return false;
    return lifecycle_allows(lc_refresh(a), s);
}

void alloc_task_spawn(struct alloc_task *t, bool wait_net)
{
    const struct task *spec = alloc_task_spec(t);
    if (spec && !lc_may_start(t))
        return; /* stays pending: its lifecycle stage starts later */
    if (!spec) {
        alloc_task_fail(t, "Setup Failure", "task no longer in the job");
        return;
    }
    const struct driver *d = driver_of(spec);
    if (!d) {
        alloc_task_fail(t, "Driver Failure",
                        "driver is not supported by this node");
        return;
    }
    if (alloc_make_task_dirs(t) < 0) {
        alloc_task_fail(t, "Setup Failure", "cannot create the task directory");
        return;
    }
    if (alloc_task_fetch_artifacts(t, wait_net))
        return; /* spawned again once they are in place */
    if (alloc_task_render_templates(t, wait_net))
        return; /* spawned again once every template is rendered */
    struct nc_error err = {0};
    const char *event = "Setup Failure";
    int r = d->start(t->alloc->mgr->drv, t, wait_net, &event, &err);
    if (r < 0) {
        alloc_task_fail(t, event, err.msg);
        return;
    }
    if (wait_net)
        t->net_waiting = true;
    else if (r == DRIVER_STARTING)
        t->starting = true;
    else
        task_running(t);
    alloc_update_status(t->alloc);
}

/* The network is ready: the waiting task goes on to run, with the final
 * environment (the allocation's address). */
void alloc_task_release(struct alloc_task *t)
{
    const struct driver *d = driver_of(alloc_task_spec(t));
    struct nc_error err = {0};
    t->net_waiting = false;
    int r = d ? d->release(t->alloc->mgr->drv, t, &err) : -EINVAL;
    if (r < 0) {
        t->aborting = true;
        alloc_task_fail(t, "Setup Failure",
                        err.msg[0] ? err.msg : "cannot release the task");
        return;
    }
    if (r == DRIVER_STARTING) {
        t->starting = true;
        alloc_update_status(t->alloc);
    } else {
        task_running(t);
    }
}

void alloc_task_abort_wait(struct alloc_task *t)
{
    if (!t->net_waiting)
        return;
    const struct driver *d = driver_of(alloc_task_spec(t));
    if (d)
        d->abort(t);
    t->net_waiting = false;
    t->aborting = true;
}

static void task_send_stop(struct alloc_task *t)
{
    const struct driver *d = driver_of(alloc_task_spec(t));
    t->stop_deferred = false;
    t->stop_sent = true;
    if (d)
        d->stop(t);
}

/* While the allocation is killed, Nomad's order: a sidecar's stop waits
 * until the other tasks are dead (alloc_update_status sends it then). */
void alloc_task_stop(struct alloc_task *t)
{
    struct alloc *a = t->alloc;
    if (a->stopping || a->lc_killing) {
        struct lifecycle_view *v = lc_views(a);
        bool now = lifecycle_stop_now(v, a->ntasks, (size_t)(t - a->tasks));
        free(v);
        if (!now) {
            t->stop_deferred = true;
            return;
        }
    }
    task_send_stop(t);
}

/* The driver saw the task's process end. */
static void task_exited(struct alloc_task *t, const struct driver_exit *res)
{
    struct alloc *a = t->alloc;
    if (t->aborting || t->net_waiting) {
        /* prepared beside the network and never started: no run to
         * account for */
        const struct driver *d = driver_of(alloc_task_spec(t));
        if (t->net_waiting && d)
            d->abort(t);
        t->aborting = t->net_waiting = false;
        t->supervisor_pid = 0;
        if (d)
            d->destroy(a->mgr->drv, t);
        if (a->stopping || a->lc_killing || nc_streq(a->desired_status, "stop"))
            alloc_set_str(&t->state, "dead");
        else if (nc_streq(t->state, "pending") && nc_streq(a->net_phase, "ready"))
            alloc_task_start(t); /* the network came after all (agent restart) */
        alloc_update_status(a);
        return;
    }
    t->starting = false;
    t->exit_code = res->have_status ? res->exit_code : -1;
    t->signal = res->have_status ? res->signal : 0;
    t->finished_at = nc_now_unix_ns();
    if (!res->have_status)
        alloc_task_event(t, "Terminated",
                         "Supervisor exited without recording the task's "
                         "status");
    else if (res->failure)
        alloc_task_event(t, "Driver Failure", "%s", res->failure);
    else
        alloc_task_event(t, "Terminated", "Exit Code: %d%s%s%s", t->exit_code,
                         t->signal ? ", Signal: " : "",
                         t->signal ? strsignal(t->signal) : "",
                         res->oom_killed ? ", OOM Killed" : "");
    t->supervisor_pid = 0;
    t->stop_sent = t->stop_deferred = false;
    if (a->stopping || a->lc_killing || nc_streq(a->desired_status, "stop")) {
        t->user_restart = false;
        alloc_set_str(&t->state, "dead");
        alloc_update_status(a);
        return;
    }
    if (t->kill_fails) { /* a template's failure killed it */
        t->kill_fails = t->user_restart = false;
        t->failed = true;
        alloc_set_str(&t->state, "dead");
        alloc_update_status(a);
        return;
    }
    if (t->user_restart) {
        /* `alloc restart`: again at once, outside the restart policy */
        t->user_restart = false;
        alloc_task_event(t, "Restarting", "Task restarting in 0s");
        alloc_task_schedule_restart(t, 0, NULL);
        alloc_save(a);
        return;
    }
    bool batch = nc_streq(a->job->type, "batch") || nc_streq(a->job->type, "sysbatch");
    if (lifecycle_done_on_success(lifecycle_stage_of(alloc_task_spec(t)), batch) &&
        t->exit_code == 0 && !t->signal && !res->failure && res->have_status) {
        alloc_set_str(&t->state, "dead");
        alloc_update_status(a);
        return;
    }
    alloc_task_apply_restart_policy(t, res->failure != NULL);
    alloc_save(a);
}

size_t alloc_lifecycle_start(struct alloc *a)
{
    if (a->lc_starting) { /* a task started from the pass below */
        a->lc_again = true;
        return 0;
    }
    a->lc_starting = true;
    size_t n = 0;
    do {
        a->lc_again = false;
        for (size_t i = 0; i < a->ntasks; i++) {
            struct alloc_task *t = &a->tasks[i];
            if (!nc_streq(t->state, "pending") || t->timer || t->aborting ||
                t->starting || t->artifacts_fetch || t->templates_blocked ||
                !lc_may_start(t))
                continue; /* an aborting one starts again once it is gone */
            if (t->net_waiting) {
                alloc_task_release(t);
            } else {
                /* a bridged allocation's dirs came with this event */
                if (!t->nevents ||
                    !nc_streq(t->events[t->nevents - 1].type, "Task Setup"))
                    alloc_task_event(t, "Task Setup", "Building Task Directory");
                alloc_task_start(t);
            }
            n++;
        }
    } while (a->lc_again);
    a->lc_starting = false;
    if (n)
        alloc_update_status(a);
    return n;
}

static bool task_dead(const struct alloc_task *t)
{
    return nc_streq(t->state, "dead");
}

/* A dead task takes the live ones down (a failed sibling, the leader, the
 * main tasks under sidecars), as Nomad's alloc runner: the event on each,
 * then the stops in the coordinator's order. */
static void lc_kill(struct alloc *a)
{
    struct lifecycle_view *v = lc_views(a);
    size_t culprit = 0;
    enum lifecycle_kill k = a->stopping || a->lc_killing
                                ? LC_KILL_NONE
                                : lifecycle_kill_reason(v, a->ntasks, &culprit);
    free(v);
    if (k != LC_KILL_NONE) {
        a->lc_killing = true;
        LOG_INFO("alloc", "allocation %s: %s (task %s); killing the others",
                 a->id, lifecycle_kill_event(k), a->tasks[culprit].name);
        for (size_t i = 0; i < a->ntasks; i++) {
            struct alloc_task *t = &a->tasks[i];
            if (task_dead(t) ||
                lifecycle_stage_of(alloc_task_spec(t)) == LC_POSTSTOP)
                continue;
            if (k == LC_KILL_SIBLING_FAILED)
                alloc_task_event(t, "Sibling Task Failed",
                                 "Task's sibling \"%s\" failed",
                                 a->tasks[culprit].name);
            else
                alloc_task_event(t, lifecycle_kill_event(k), "%s",
                                 k == LC_KILL_LEADER_DEAD
                                     ? "Leader Task in Group dead"
                                     : "Main tasks in the group died");
            if (t->timer) { /* waiting to restart: it is not */
                uv_close((uv_handle_t *)t->timer, alloc_handle_closed);
                t->timer = NULL;
            }
            if (t->net_waiting) {
                alloc_task_abort_wait(t);
            } else if (alloc_task_active(t)) {
                const struct task *spec = alloc_task_spec(t);
                alloc_task_event(t, "Killing",
                                 "Sent interrupt. Waiting %llds before force "
                                 "killing",
                                 spec ? (long long)(spec->kill_timeout /
                                                    1000000000)
                                      : 0LL);
                alloc_task_stop(t);
            } else if (!t->aborting) {
                alloc_set_str(&t->state, "dead"); /* never started */
                t->finished_at = nc_now_unix_ns();
            }
        }
    }
    if (!a->stopping && !a->lc_killing)
        return;
    /* deferred sidecars whose turn came, and poststop tasks that cannot
     * run (the network never came) */
    v = lc_views(a);
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (t->stop_deferred && lifecycle_stop_now(v, a->ntasks, i))
            task_send_stop(t);
        if (v[i].stage == LC_POSTSTOP && v[i].state == LC_PENDING &&
            !t->net_waiting && !t->aborting && alloc_bridged(a) &&
            !nc_streq(a->net_phase, "ready"))
            alloc_set_str(&t->state, "dead");
    }
    free(v);
}

/* The allocation's client status as Nomad computes it from its tasks:
 * any failed, else any running, else any pending, else complete. */
static const char *status_of(const struct alloc *a)
{
    bool running = false, pending = false, failed = false;
    for (size_t i = 0; i < a->ntasks; i++) {
        const struct alloc_task *t = &a->tasks[i];
        failed |= task_dead(t) && t->failed;
        running |= nc_streq(t->state, "running");
        pending |= nc_streq(t->state, "pending");
    }
    return failed ? "failed" : running ? "running" : pending ? "pending"
                                                             : "complete";
}

void alloc_update_status(struct alloc *a)
{
    lc_kill(a);
    /* the next lifecycle stage, once the network is there */
    if (!a->lc_starting && (!alloc_bridged(a) || nc_streq(a->net_phase, "ready")))
        alloc_lifecycle_start(a);
    size_t dead = 0;
    for (size_t i = 0; i < a->ntasks; i++)
        dead += task_dead(&a->tasks[i]);
    const char *status = status_of(a);
    if (dead == a->ntasks)
        alloc_net_teardown(a);
    if (!nc_streq(status, a->client_status)) {
        LOG_INFO("alloc", "allocation %s (%s): %s -> %s", a->id, a->name,
                 a->client_status, status);
        if (nc_streq(status, "failed") && !a->stopping)
            alloc_maybe_reschedule(a);
        alloc_set_str(&a->client_status, status);
        alloc_set_str(&a->client_description,
                nc_streq(status, "running")    ? "Tasks are running"
                : nc_streq(status, "complete") ? "All tasks have completed"
                : nc_streq(status, "failed")   ? "Failed tasks"
                                               : "No tasks have started");
    }
    alloc_save(a);
}

/* ---- restarts and signals asked for ---------------------------------- */

int alloc_manager_restart_task(struct alloc_manager *m, const char *alloc_id,
                               const char *task, const char *why)
{
    struct alloc *a = alloc_manager_find(m, alloc_id, NULL);
    if (!a || a->stopping)
        return -ENOENT;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (strcmp(t->name, task) != 0 || !alloc_task_active(t))
            continue;
        alloc_task_event(t, "Restart Signaled", "%s", why);
        LOG_INFO("alloc", "%s task %s: restarting: %s", a->id, t->name, why);
        alloc_task_stop(t);
        alloc_save(a);
        return 0;
    }
    return -ENOENT;
}

static struct alloc_task *task_named(struct alloc *a, const char *name)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (strcmp(a->tasks[i].name, name) == 0)
            return &a->tasks[i];
    return NULL;
}

static bool task_live(const struct alloc_task *t)
{
    return nc_streq(t->state, "running") && t->supervisor_pid > 0 &&
           !t->net_waiting && !t->aborting;
}

int alloc_manager_signal(struct alloc_manager *m, struct alloc *a,
                         const char *task, const char *sig,
                         struct nc_error *err)
{
    /* Nomad's CLI sends SIGKILL unless told otherwise */
    const char *name = sig && *sig ? sig : "SIGKILL";
    int num = driver_signal_number(name);
    if (num < 0)
        return nc_error_set(err, -EINVAL, "invalid signal \"%s\"", name);
    struct alloc_task *one = task && *task ? task_named(a, task) : NULL;
    if (task && *task && !one)
        return nc_error_set(err, -ENOENT, "Task not found");
    if (one && !task_live(one))
        return nc_error_set(err, -ESRCH, "Task not running");
    int r = 0, nsent = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if ((one && t != one) || !task_live(t))
            continue;
        const struct driver *d = driver_of(alloc_task_spec(t));
        struct nc_error e = {0};
        alloc_task_event(t, "Signaling", "Task being sent signal %s", name);
        int rr = d ? d->signal(t, num, &e)
                   : nc_error_set(&e, -ENOTSUP, "no driver");
        if (rr < 0 && r == 0) {
            r = rr;
            if (one)
                nc_error_set(err, rr, "%s", e.msg);
            else
                nc_error_set(err, rr, "Failed to signal task: %s, err: %s",
                             t->name, e.msg);
        }
        nsent += rr == 0;
    }
    if (nsent)
        alloc_save(a);
    return r;
}

int alloc_manager_restart(struct alloc_manager *m, struct alloc *a,
                          const char *task, bool all_tasks,
                          struct nc_error *err)
{
    if (task && *task && all_tasks)
        return nc_error_set(err, -EINVAL,
                            "The -all-tasks option is not allowed when "
                            "restarting a specific task");
    if (a->stopping || nc_streq(a->desired_status, "stop") ||
        nc_streq(a->client_status, "complete") ||
        nc_streq(a->client_status, "failed"))
        return nc_error_set(err, -ESRCH,
                            "restart of an alloc that should not run");
    struct alloc_task *one = task && *task ? task_named(a, task) : NULL;
    if (task && *task && !one)
        return nc_error_set(err, -ENOENT,
                            "Could not find task runner for task: %s", task);
    if (one && !task_live(one))
        return nc_error_set(err, -ESRCH, "Task not running");
    int n = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if ((one && t != one) || !task_live(t))
            continue;
        alloc_task_event(t, "Restart Signaled", "User requested task to restart");
        LOG_INFO("alloc", "%s task %s: restart requested by the user", a->id,
                 t->name);
        t->user_restart = true;
        alloc_task_stop(t);
        n++;
    }
    if (n)
        alloc_save(a);
    return 0;
}
