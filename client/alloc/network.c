/* network.c - the network phase of bridge, CNI and none allocations: one
 * set-up or teardown at a time per allocation through the netns helper
 * (ALLOC_NET_PARALLEL in all), the phase recorded before each step, and
 * the allocation's dirs made on the thread pool once its set-up is sent,
 * so its tasks are prepared beside the chain.
 *
 * When a task's driver holds the group's namespace (net_create: docker's
 * pause container, as Nomad's network manager), the set-up starts with
 * the driver's net_create; the helper then mounts the holder's namespace
 * at /run/netns/<alloc> and runs the chain in it, so the group's other
 * tasks join it as they join a namespace of the helper's. The holder goes
 * (net_destroy) once the teardown is complete. */
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

/* ---- a driver that holds the namespace -----------------------------------
 * The set-ups whose holder a driver is making (pid 0), or has made while
 * their request waits to be sent: runtime only, as a restarted agent asks
 * the driver again. An allocation is on the list from net_create until
 * its request goes (net_run) or the manager closes, and is net_busy while
 * the driver works, so nothing else runs its network meanwhile (teardown,
 * garbage collection, a second set-up). */
struct net_holder {
    struct net_holder *next;
    struct alloc *a;
    int pid;       /* the holder's, once the driver said */
    bool creating; /* net_create called, done not yet */
};

static struct net_holder *holders; /* the agent is single-threaded */

static struct net_holder *holder_find(const struct alloc *a)
{
    for (struct net_holder *h = holders; h; h = h->next)
        if (h->a == a)
            return h;
    return NULL;
}

static void holder_remove(struct net_holder *h)
{
    for (struct net_holder **pp = &holders; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            free(h);
            return;
        }
}

/* The holder's pid for the set-up about to be sent, taken off the list;
 * 0 when the namespace is the helper's own. */
static int holder_take(struct alloc *a)
{
    struct net_holder *h = holder_find(a);
    if (!h || h->creating)
        return 0;
    int pid = h->pid;
    holder_remove(h);
    return pid;
}

const struct driver *alloc_net_holder_driver(const struct alloc *a,
                                             struct nc_error *err)
{
    const struct driver *holder = NULL;
    const char *holder_task = NULL;
    for (size_t i = 0; i < a->ntasks; i++) {
        const struct driver *d = driver_of(alloc_task_spec(&a->tasks[i]));
        if (!d || !d->net_create || d == holder)
            continue;
        if (holder) {
            nc_error_set(err, -EINVAL,
                         "tasks \"%s\" (driver %s) and \"%s\" (driver %s) "
                         "would each hold the group's network namespace; "
                         "one group can use only one such driver",
                         holder_task, holder->name, a->tasks[i].name, d->name);
            return NULL;
        }
        holder = d;
        holder_task = a->tasks[i].name;
    }
    return holder;
}

#define SETUP_FAILED "failed to setup alloc: pre-run hook \"network\" failed: %s"

/* After a complete teardown, or a set-up that failed or never went out:
 * the driver removes its holder (it copies from a->net_driver what it
 * needs), and the allocation forgets it. */
static void holder_destroy(struct alloc *a)
{
    if (!a->net_driver)
        return;
    const char *name =
        json_string_value(json_object_get(a->net_driver, "Driver"));
    const struct driver *d = driver_find(name);
    if (d && d->net_destroy)
        d->net_destroy(a->mgr->drv, a);
    else
        LOG_WARN("alloc", "allocation %s: driver %s is not on this node "
                          "to remove what held the network namespace; it "
                          "is left behind",
                 a->id, name ? name : "(none recorded)");
    json_decref(a->net_driver);
    a->net_driver = NULL;
}

/* net_create's done: the holder runs as pid (or could not be made). */
static void holder_done(struct alloc *a, int pid, const char *error)
{
    /* an allocation not on the list: its manager closed (or the driver
     * called twice); it may be gone, so it is not touched */
    struct net_holder *h = holder_find(a);
    if (!h || !h->creating) {
        LOG_WARN("alloc", "a network holder was reported (pid %d) for a "
                          "set-up that no longer waits for one",
                 pid);
        return;
    }
    h->creating = false;
    a->net_busy = false;
    if (!error && pid <= 0)
        error = "the driver reported no process holding the namespace";
    if (error) {
        holder_remove(h);
        LOG_WARN("alloc", "allocation %s: network set-up failed: %s", a->id,
                 error);
        /* the phase stays "setting-up": the teardown the dead tasks ask
         * for undoes whatever an earlier agent's set-up made, then the
         * holder's remains go (on_net_deleted) */
        alloc_fail_all_tasks(a, SETUP_FAILED, error);
        alloc_net_teardown(a);
        return;
    }
    h->pid = pid;
    LOG_INFO("alloc", "allocation %s: its network namespace is held by pid "
                      "%d",
             a->id, pid);
    /* stopped meanwhile: net_run tears down instead (and on_net_deleted
     * removes the holder) */
    alloc_net_schedule(a);
}

/* Asks the holder driver d for the namespace; the set-up follows in
 * holder_done. */
static void holder_create(struct alloc *a, const struct driver *d)
{
    struct net_holder *h = holder_find(a);
    if (!h) {
        h = xcalloc(1, sizeof(*h));
        h->a = a;
        h->next = holders;
        holders = h;
    }
    h->creating = true;
    h->pid = 0;
    a->net_busy = true;
    struct nc_error err = {0};
    if (d->net_create(a->mgr->drv, a, holder_done, &err) < 0 &&
        holder_find(a) == h && h->creating) {
        h->creating = false;
        a->net_busy = false;
        holder_remove(h);
        LOG_WARN("alloc", "allocation %s: network set-up failed: %s", a->id,
                 err.msg);
        alloc_fail_all_tasks(a, SETUP_FAILED,
                             err.msg[0] ? err.msg
                                        : "the driver could not hold the "
                                          "network namespace");
        alloc_net_teardown(a);
    }
}

/* One helper at a time per allocation, ALLOC_NET_PARALLEL in all; a
 * set-up whose namespace a driver holds asks the driver first. */
void alloc_net_schedule(struct alloc *a)
{
    struct alloc_manager *m = a->mgr;
    if (a->net_busy || a->net_queued || m->closing)
        return;
    /* (stopping: net_run tears down instead) */
    if (nc_streq(a->net_phase, "setting-up") && !a->stopping) {
        struct net_holder *h = holder_find(a);
        struct nc_error err = {0};
        const struct driver *d =
            h && h->pid > 0 ? NULL : alloc_net_holder_driver(a, &err);
        if (err.msg[0]) {
            alloc_fail_all_tasks(a, SETUP_FAILED, err.msg);
            alloc_net_teardown(a);
            return;
        }
        if (d) {
            holder_create(a, d);
            return;
        }
    }
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
        holder_destroy(a);
        alloc_fail_all_tasks(a, SETUP_FAILED, res->message);
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
    holder_destroy(a);
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
                                .ports = maps, .nports = a->nports,
                                .holder_pid = holder_take(a)};
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
        holder_destroy(a);
        alloc_fail_all_tasks(a, SETUP_FAILED, err.msg);
    } else {
        LOG_ERROR("alloc", "allocation %s: network teardown: %s", a->id,
                  err.msg);
    }
}

/* Creates the allocation's namespace; its tasks start once it is ready. */
void alloc_net_setup(struct alloc *a)
{
    struct nc_error err = {0};
    if (netns_mode_check(&a->mgr->net, a->network_mode, &err) < 0 ||
        (!alloc_net_holder_driver(a, &err) && err.msg[0])) {
        alloc_make_dirs(a);
        alloc_fail_all_tasks(a, SETUP_FAILED, err.msg);
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
    /* a holder reported after this is ignored (its driver closes too) */
    for (struct net_holder **pp = &holders; *pp;) {
        struct net_holder *h = *pp;
        if (h->a->mgr == m) {
            *pp = h->next;
            free(h);
        } else {
            pp = &h->next;
        }
    }
}
