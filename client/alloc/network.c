/* network.c - the network phase of bridge, CNI and none allocations: one
 * set-up or teardown at a time per allocation through the netns helper
 * (ALLOC_NET_PARALLEL in all), the phase recorded before each step, and
 * the allocation's dirs made on the thread pool once its set-up is sent,
 * so its tasks are prepared beside the chain. */
#include "client/alloc/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether the allocation has a namespace of its own, made and removed by
 * the network phase: bridge and CNI groups, and none groups (only lo, up;
 * no chain), as Nomad isolates all three. */
bool alloc_bridged(const struct alloc *a)
{
    return nc_streq(a->network_mode, "bridge") ||
           nc_streq(a->network_mode, NETNS_MODE_NONE) ||
           nc_str_has_prefix(a->network_mode, "cni/");
}

/* Starts the tasks still pending that the task coordinator lets start
 * (task_runner.c); returns how many it tried. */
size_t alloc_start_tasks(struct alloc *a) { return alloc_lifecycle_start(a); }

void alloc_fail_all_tasks(struct alloc *a, const char *fmt, const char *msg)
{
    char text[1200];
    snprintf(text, sizeof(text), fmt, msg);
    for (size_t i = 0; i < a->ntasks; i++) {
        alloc_task_abort_wait(&a->tasks[i]);
        if (!nc_streq(a->tasks[i].state, "dead"))
            alloc_task_fail(&a->tasks[i], "Setup Failure", text);
    }
}

static void net_run(struct alloc *a);

/* One helper at a time per allocation, ALLOC_NET_PARALLEL in all. */
void alloc_net_schedule(struct alloc *a)
{
    struct alloc_manager *m = a->mgr;
    if (a->net_busy || a->net_queued || m->closing)
        return;
    if (m->net_running >= ALLOC_NET_PARALLEL) {
        nc_grow((void **)&m->net_queue, &m->net_qcap, m->net_nqueued + 1,
                sizeof(*m->net_queue));
        m->net_queue[m->net_nqueued++] = a;
        a->net_queued = true;
        a->net_queued_at = nc_now_mono_ns();
        return;
    }
    a->net_queued_us = 0;
    net_run(a);
}

static void net_done(struct alloc_manager *m)
{
    m->net_running--;
    while (m->net_nqueued && m->net_running < ALLOC_NET_PARALLEL &&
           !m->closing) {
        struct alloc *next = m->net_queue[0];
        memmove(m->net_queue, m->net_queue + 1,
                (m->net_nqueued - 1) * sizeof(*m->net_queue));
        m->net_nqueued--;
        next->net_queued = false;
        next->net_queued_us =
            (int64_t)(nc_now_mono_ns() - (uint64_t)next->net_queued_at) / 1000;
        net_run(next);
    }
}

static const char *netns_basename(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path;
}

static void net_added(struct alloc *a, const struct netns_result *res)
{
    if (res->status < 0) {
        /* the helper rolled back whatever it had made */
        alloc_set_str(&a->net_phase, "down");
        LOG_WARN("alloc", "allocation %s: network set-up failed: %s", a->id,
                 res->message);
        alloc_fail_all_tasks(a, "failed to setup alloc: pre-run hook \"network\" "
                          "failed: %s", res->message);
        return;
    }
    alloc_set_str(&a->net_phase, "ready");
    alloc_set_str(&a->ip, res->ip);
    alloc_set_str(&a->netns, netns_basename(res->netns_path));
    json_decref(a->cni_result);
    a->cni_result = res->cni_result ? json_deep_copy(res->cni_result) : NULL;
    if (a->stopping || nc_streq(a->desired_status, "stop")) {
        alloc_save(a);
        alloc_update_status(a); /* tears the network down again */
        return;
    }
    if (!alloc_start_tasks(a))
        alloc_save(a); /* a started task saved the allocation already */
    LOG_INFO("alloc", "allocation %s: network %s ready, address %s", a->id,
             a->network_mode, a->ip ? a->ip : "?");
}

static void on_net_added(const struct netns_result *res, void *arg)
{
    struct alloc *a = arg;
    struct alloc_manager *m = a->mgr;
    a->net_busy = false;
    json_decref(a->net_timings);
    a->net_timings = json_incref(res->timings);
    /* the wait for a free slot (ALLOC_NET_PARALLEL), before the request */
    json_object_set_new(a->net_timings, "QueuedUs",
                        json_integer(a->net_queued_us));
    net_added(a, res);
    /* the next set-up in the queue only once this one's tasks are on
     * their way: its dirs and supervisors would delay them */
    net_done(m);
}

static void on_net_deleted(const struct netns_result *res, void *arg)
{
    struct alloc *a = arg;
    a->net_busy = false;
    net_done(a->mgr);
    if (res->status < 0) {
        /* left "tearing-down": the next agent start or `leftovers -clean`
         * finishes it */
        LOG_ERROR("alloc", "allocation %s: network teardown failed: %s", a->id,
                  res->message);
        alloc_save(a);
        return;
    }
    alloc_set_str(&a->net_phase, "down");
    free(a->netns);
    a->netns = NULL;
    LOG_INFO("alloc", "allocation %s: network torn down", a->id);
    alloc_save(a);
}

static void net_port_mappings(const struct alloc *a,
                              struct netns_port_mapping *maps)
{
    for (size_t i = 0; i < a->nports; i++) {
        maps[i].host_port = a->ports[i].value;
        maps[i].container_port = a->ports[i].to > 0 ? a->ports[i].to
                                                    : a->ports[i].value;
        maps[i].host_ip = a->ports[i].host_ip;
    }
}

/* Once its set-up is on its way (not while it waits for a slot), the
 * allocation's dirs and its tasks' dirs and files are made on the thread
 * pool (a new directory or file costs 0.2-0.5 ms of kernel time on some
 * filesystems; ten or so per allocation would hold up the loop), then its
 * supervisors start beside the chain: their cgroup, mounts and volumes are
 * done by the time the chain is. */
struct prep {
    uv_work_t work;
    struct prep *next;
    struct alloc *a; /* NULL once the manager is closed */
    struct strlist paths; /* "<octal mode> <path>", or "file <path>" */
    int result;
};

static struct prep *preps; /* in flight; the agent is single-threaded */

static void prep_add(struct prep *p, const char *kind, const char *path)
{
    char *e = xasprintf("%s %s", kind, path);
    strlist_add(&p->paths, e);
    free(e);
}

/* The shared alloc/ tree (logs, data, tmp) and our .nomclient. */
static void prep_alloc_paths(struct prep *p, const struct alloc *a)
{
    char *dir = alloc_dir_path(a->mgr, a);
    static const char *const subs[] = {"alloc/logs", "alloc/data", "alloc/tmp",
                                       ".nomclient"};
    for (size_t i = 0; i < NC_ARRAY_LEN(subs); i++) {
        char *d = xasprintf("%s/%s", dir, subs[i]);
        prep_add(p, i == 3 ? "0700" : "0777", d);
        free(d);
    }
    free(dir);
}

/* A task's dir (local, secrets, tmp), with the files its driver writes
 * before the task starts (exec: its spec and lock). */
static void prep_task_paths(struct prep *p, const struct alloc_task *t,
                            bool files)
{
    char *td = alloc_task_dir_path(t->alloc->mgr, t->alloc, t->name);
    static const char *const subs[][2] = {
        {"0777", "local"}, {"0700", "secrets"}, {"1777", "tmp"}};
    for (size_t k = 0; k < NC_ARRAY_LEN(subs); k++) {
        char *d = xasprintf("%s/%s", td, subs[k][1]);
        prep_add(p, subs[k][0], d);
        free(d);
    }
    free(td);
    const struct driver *d = files ? driver_of(alloc_task_spec(t)) : NULL;
    if (d && d->task_files) {
        struct strlist fl = {0};
        d->task_files(t->alloc->mgr->drv, t, &fl);
        for (size_t k = 0; k < fl.n; k++)
            prep_add(p, "file", fl.items[k]);
        strlist_free(&fl);
    }
}

static int prep_run(struct prep *p)
{
    int first = 0;
    for (size_t i = 0; i < p->paths.n; i++) {
        const char *path = strchr(p->paths.items[i], ' ') + 1;
        int r = 0;
        if (strncmp(p->paths.items[i], "file", 4) == 0) {
            int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            r = fd < 0 ? -errno : close(fd);
        } else {
            mode_t mode = (mode_t)strtol(p->paths.items[i], NULL, 8);
            r = nc_mkdir_p(path, (int)(mode & 0777));
            if (r == 0 && (mode & 01000))
                chmod(path, mode);
        }
        if (r < 0 && first == 0)
            first = r;
    }
    return first;
}

static void prep_work(uv_work_t *w)
{
    struct prep *p = w->data;
    p->result = prep_run(p);
}

void alloc_make_dirs(struct alloc *a)
{
    struct prep p = {0};
    prep_alloc_paths(&p, a);
    prep_run(&p);
    strlist_free(&p.paths);
}

int alloc_make_task_dirs(struct alloc_task *t)
{
    struct prep p = {0};
    prep_task_paths(&p, t, false);
    int r = prep_run(&p);
    strlist_free(&p.paths);
    return r;
}

static void prep_done(uv_work_t *w, int status)
{
    (void)status;
    struct prep *p = w->data;
    for (struct prep **pp = &preps; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    struct alloc *a = p->a;
    strlist_free(&p->paths);
    free(p);
    if (!a || a->stopping || !nc_streq(a->net_phase, "setting-up"))
        return; /* stopped, or the network came first (its tasks started) */
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (nc_streq(t->state, "pending") && !alloc_task_active(t) &&
            !t->aborting && !t->timer) {
            alloc_task_event(t, "Task Setup", "Building Task Directory");
            alloc_task_spawn(t, true);
        }
    }
}

static void prepare_tasks(struct alloc *a)
{
    struct prep *p = xcalloc(1, sizeof(*p));
    p->a = a;
    p->work.data = p;
    prep_alloc_paths(p, a);
    for (size_t i = 0; i < a->ntasks; i++)
        prep_task_paths(p, &a->tasks[i], true);
    p->next = preps;
    preps = p;
    if (uv_queue_work(a->mgr->c.loop, &p->work, prep_work, prep_done) < 0) {
        prep_work(&p->work); /* no thread pool: here */
        prep_done(&p->work, 0);
    }
}

/* Runs the step the allocation's phase asks for: set up while
 * "setting-up", tear down while "tearing-down". */
static void net_run(struct alloc *a)
{
    struct alloc_manager *m = a->mgr;
    if (nc_streq(a->net_phase, "setting-up") && a->stopping)
        alloc_set_str(&a->net_phase, "tearing-down"); /* stopped while queued */
    struct netns_port_mapping *maps = xcalloc(a->nports + 1, sizeof(*maps));
    net_port_mappings(a, maps);
    struct netns_setup setup = {.alloc_id = a->id, .mode = a->network_mode,
                                .ports = maps, .nports = a->nports};
    struct nc_error err = {0};
    bool add = nc_streq(a->net_phase, "setting-up");
    int r = add ? netns_add(m->c.loop, &m->net, &setup, on_net_added, a, &err)
                : netns_del(m->c.loop, &m->net, &setup, a->cni_result,
                            on_net_deleted, a, &err);
    free(maps);
    if (r == 0) {
        a->net_busy = true;
        m->net_running++;
        if (add)
            prepare_tasks(a);
        return;
    }
    if (add) {
        alloc_set_str(&a->net_phase, "down");
        alloc_fail_all_tasks(a, "failed to setup alloc: pre-run hook \"network\" "
                          "failed: %s", err.msg);
    } else {
        LOG_ERROR("alloc", "allocation %s: network teardown: %s", a->id,
                  err.msg);
    }
}

/* Creates the allocation's namespace; its tasks start once it is ready. */
void alloc_net_setup(struct alloc *a)
{
    struct nc_error err = {0};
    if (netns_mode_check(&a->mgr->net, a->network_mode, &err) < 0) {
        alloc_make_dirs(a);
        alloc_fail_all_tasks(a, "failed to setup alloc: pre-run hook \"network\" "
                          "failed: %s", err.msg);
        return;
    }
    alloc_set_str(&a->net_phase, "setting-up");
    /* the helper first, the save while it runs: its own journal is what a
     * restart undoes from, and an allocation saved without this phase (or
     * not at all) has its set-up run again (or torn down as an orphan) */
    alloc_net_schedule(a);
    /* not fsync'd: the helper's journal is what a restart undoes from, and
     * the allocation is saved durably once its network is ready or failed
     * (lost in a power cut, it is placed again from its job) */
    alloc_save_as(a, false);
}

/* Removes the namespace once no task of the allocation runs. */
void alloc_net_teardown(struct alloc *a)
{
    if (!alloc_bridged(a) || a->net_busy || a->net_queued ||
        nc_streq(a->net_phase, "down") || !a->net_phase || !*a->net_phase)
        return;
    for (size_t i = 0; i < a->ntasks; i++)
        if (alloc_task_active(&a->tasks[i]))
            return;
    alloc_set_str(&a->net_phase, "tearing-down");
    alloc_save(a);
    alloc_net_schedule(a);
}

void alloc_net_forget(struct alloc_manager *m)
{
    for (struct prep *p = preps; p; p = p->next)
        if (p->a && p->a->mgr == m)
            p->a = NULL;
}
