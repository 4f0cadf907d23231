/* alloc_runner.c - the allocation manager: loads allocations at start and
 * re-attaches to their live tasks, saves every change on the thread pool,
 * assigns ports, creates allocations for placed jobs and stops them in
 * Nomad's order (deregister, shutdown_delay, kill), and lists what the
 * kernel still holds for allocations nobody runs. A task's own life is in
 * task_runner.c, the policies in restart.c, the network phase in
 * network.c. */
#include "client/alloc/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volumes/volumes.h"

/* ---- paths and persistence ------------------------------------------ */

void alloc_handle_closed(uv_handle_t *h) { free(h); }

char *alloc_dir_path(const struct alloc_manager *m, const struct alloc *a)
{
    return xasprintf("%s/%s", m->alloc_root, a->id);
}

char *alloc_task_dir_path(const struct alloc_manager *m, const struct alloc *a,
                          const char *task)
{
    return xasprintf("%s/%s/%s", m->alloc_root, a->id, task);
}


static bool manager_idle(const struct alloc_manager *m)
{
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *a = m->allocs[i];
        if (a->net_busy || a->net_queued)
            return false;
        if (a->net_phase && *a->net_phase && !nc_streq(a->net_phase, "down"))
            return false;
        for (size_t k = 0; k < a->ntasks; k++)
            if (alloc_task_active(&a->tasks[k]) || a->tasks[k].timer)
                return false;
    }
    return true;
}

static void check_idle(struct alloc_manager *m)
{
    if (m->idle_cb && manager_idle(m)) {
        void (*cb)(void *) = m->idle_cb;
        m->idle_cb = NULL;
        cb(m->idle_arg);
    }
}

void alloc_manager_when_idle(struct alloc_manager *m, void (*cb)(void *arg),
                             void *arg)
{
    m->idle_cb = cb;
    m->idle_arg = arg;
    check_idle(m);
}

static void alloc_followup_schedule(struct alloc_manager *m);

/* The newest state of an allocation goes to disk on libuv's thread pool
 * (atomic and fsync'd), one write at a time per allocation, a newer state
 * replacing one still waiting: the loop never waits for the disk, and a
 * burst of changes costs one write after the one in flight. */
struct alloc_writer {
    uv_work_t work;
    char *path;
    char *txt;     /* being written */
    char *pending; /* newer, written next */
    int result;
    bool durable, pending_durable; /* fsync'd (else atomic only) */
    bool busy;
    bool orphan;   /* the allocation is gone: free once done */
};

static void writer_work(uv_work_t *w)
{
    struct alloc_writer *aw = w->data;
    size_t len = strlen(aw->txt);
    aw->result = aw->durable
                     ? nc_write_file_atomic(aw->path, aw->txt, len, 0600)
                     : nc_write_file_replace(aw->path, aw->txt, len, 0600);
}

static void writer_done(uv_work_t *w, int status)
{
    struct alloc_writer *aw = w->data;
    if (aw->result < 0 || status < 0)
        LOG_ERROR("alloc", "saving %s: %s", aw->path,
                  status < 0 ? uv_strerror(status) : strerror(-aw->result));
    free(aw->txt);
    aw->txt = aw->pending;
    aw->durable = aw->pending_durable;
    aw->pending = NULL;
    if (aw->txt && status == 0 &&
        uv_queue_work(w->loop, w, writer_work, writer_done) == 0)
        return;
    free(aw->txt);
    aw->txt = NULL;
    aw->busy = false;
    if (aw->orphan) {
        free(aw->path);
        free(aw);
    }
}

/* Called when the allocation is freed: a write in flight finishes first. */
static void writer_release(struct alloc_writer *aw)
{
    if (!aw)
        return;
    if (aw->busy) {
        aw->orphan = true;
        return;
    }
    free(aw->path);
    free(aw);
}

/* Saves the allocation; with durable false the write is atomic but not
 * fsync'd, for a state whose loss in a power cut costs nothing (the next
 * durable save follows within moments). An fsync stalls every other
 * metadata change on the filesystem for its journal commit, 0.2-0.3 ms
 * per directory or file made here, so none runs beside a set-up's own
 * first steps. */
void alloc_save_as(struct alloc *a, bool durable)
{
    struct alloc_manager *m = a->mgr;
    a->modify_time = nc_now_unix_ns();
    a->modify_index = ++m->index;
    json_t *j = alloc_to_json(a);
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    struct alloc_writer *aw = a->writer;
    if (!aw) {
        aw = a->writer = xcalloc(1, sizeof(*aw));
        aw->path = xasprintf("%s/%s.json", m->state_dir, a->id);
        aw->work.data = aw;
    }
    if (aw->busy) {
        /* a durable state waiting stays durable in its replacement */
        aw->pending_durable = durable || (aw->pending && aw->pending_durable);
        free(aw->pending);
        aw->pending = txt;
    } else {
        aw->txt = txt;
        aw->durable = durable;
        aw->busy = true;
        int r = uv_queue_work(m->c.loop, &aw->work, writer_work, writer_done);
        if (r < 0) { /* no thread pool: write here */
            writer_work(&aw->work);
            writer_done(&aw->work, 0);
        }
    }
    if (m->c.on_change)
        m->c.on_change(a, m->c.arg);
    if (m->drain.active || a->replace_when_stopped)
        alloc_followup_schedule(m);
    check_idle(m); /* last: its callback may free the manager */
}

void alloc_save(struct alloc *a) { alloc_save_as(a, true); }

void alloc_set_str(char **field, const char *v)
{
    if (nc_streq(*field, v))
        return;
    free(*field);
    *field = xstrdup(v);
}

/* ---- ports ------------------------------------------------------------ */

void alloc_manager_used_ports(const struct alloc_manager *m,
                              struct strlist *ports)
{
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *a = m->allocs[i];
        if (nc_streq(a->client_status, "complete") ||
            nc_streq(a->client_status, "failed"))
            continue;
        for (size_t p = 0; p < a->nports; p++) {
            char num[16];
            snprintf(num, sizeof(num), "%d", a->ports[p].value);
            if (!strlist_contains(ports, num))
                strlist_add(ports, num);
        }
    }
}

static bool port_taken(const struct alloc_manager *m, const struct alloc *self,
                       int port)
{
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *a = m->allocs[i];
        if (nc_streq(a->client_status, "complete") ||
            nc_streq(a->client_status, "failed"))
            continue;
        for (size_t p = 0; p < a->nports; p++)
            if (a->ports[p].value == port && a != self)
                return true;
    }
    for (size_t p = 0; p < self->nports; p++)
        if (self->ports[p].value == port)
            return true;
    return false;
}

static int assign_ports(struct alloc_manager *m, struct alloc *a,
                        struct nc_error *err)
{
    const struct task_group *g = alloc_group(a);
    size_t total = 0;
    for (size_t n = 0; n < g->nnetworks; n++)
        total += g->networks[n].nreserved_ports + g->networks[n].ndynamic_ports;
    a->ports = xcalloc(total + 1, sizeof(*a->ports));
    int lo = m->c.cfg->client.min_dynamic_port,
        hi = m->c.cfg->client.max_dynamic_port;
    for (size_t n = 0; n < g->nnetworks; n++) {
        const struct network *net = &g->networks[n];
        for (size_t i = 0; i < net->nreserved_ports; i++) {
            const struct port *p = &net->reserved_ports[i];
            if (port_taken(m, a, p->value))
                return nc_error_set(err, -EADDRINUSE,
                                    "port \"%s\": static port %d is already "
                                    "in use by another allocation",
                                    p->label, p->value);
            struct alloc_port *ap = &a->ports[a->nports++];
            ap->label = xstrdup(p->label);
            ap->value = p->value;
            ap->to = p->to > 0 ? p->to : p->value;
            ap->host_ip = xstrdup("");
        }
        for (size_t i = 0; i < net->ndynamic_ports; i++) {
            const struct port *p = &net->dynamic_ports[i];
            int span = hi - lo + 1, pick = -1;
            uint32_t start;
            nc_random_bytes(&start, sizeof(start));
            for (int k = 0; k < span; k++) {
                int cand = lo + (int)((start + (uint32_t)k) % (uint32_t)span);
                if (!port_taken(m, a, cand)) {
                    pick = cand;
                    break;
                }
            }
            if (pick < 0)
                return nc_error_set(err, -EADDRINUSE,
                                    "port \"%s\": no dynamic port left in "
                                    "%d-%d", p->label, lo, hi);
            struct alloc_port *ap = &a->ports[a->nports++];
            ap->label = xstrdup(p->label);
            ap->value = pick;
            ap->to = p->to > 0 ? p->to : (p->to == -1 ? pick : pick);
            ap->host_ip = xstrdup("");
        }
    }
    return 0;
}

/* ---- creation, stop, reattach ----------------------------------------- */

static void manager_add(struct alloc_manager *m, struct alloc *a)
{
    nc_grow((void **)&m->allocs, &m->cap, m->nallocs + 1, sizeof(*m->allocs));
    m->allocs[m->nallocs++] = a;
    a->mgr = m;
}

static struct job *job_copy(const struct job *job)
{
    json_t *j = jobspec_to_json(job);
    struct job *copy = NULL;
    struct nc_error err = {0};
    if (jobspec_from_json(j, &copy, &err) < 0)
        LOG_ERROR("alloc", "copying job %s: %s", job->id, err.msg);
    json_decref(j);
    return copy;
}

struct alloc *alloc_create(struct alloc_manager *m, const struct job *job,
                                  const struct task_group *g, int index,
                                  uint64_t version)
{
    struct alloc *a = xcalloc(1, sizeof(*a));
    char id[37];
    nc_uuid(id);
    a->id = xstrdup(id);
    a->name = xasprintf("%s.%s[%d]", job->id, g->name, index);
    a->namespace = xstrdup(job->namespace ? job->namespace : "default");
    a->job_id = xstrdup(job->id);
    a->group = xstrdup(g->name);
    a->index = index;
    a->job_version = version;
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("pending");
    a->client_description = xstrdup("No tasks have started");
    a->job = job_copy(job);
    a->network_mode = xstrdup(g->nnetworks ? g->networks[0].mode : "host");
    a->create_time = nc_now_unix_ns();
    a->create_index = m->index + 1;
    a->ntasks = g->ntasks;
    a->tasks = xcalloc(g->ntasks + 1, sizeof(*a->tasks));
    for (size_t i = 0; i < g->ntasks; i++) {
        a->tasks[i].alloc = a;
        a->tasks[i].name = xstrdup(g->tasks[i].name);
        a->tasks[i].state = xstrdup("pending");
        alloc_task_event(&a->tasks[i], "Received", "Task received by client");
    }
    manager_add(m, a);
    return a;
}


void alloc_start(struct alloc *a)
{
    struct alloc_manager *m = a->mgr;
    struct nc_error err = {0};
    bool ok = false;
    if (!a->job) {
        alloc_set_str(&a->client_status, "failed");
        alloc_save(a);
    } else if (!nc_streq(a->network_mode, "host") &&
               !nc_streq(a->network_mode, "none") && !alloc_bridged(a)) {
        alloc_fail_all_tasks(a, "network mode \"%s\" is not supported by this node",
                       a->network_mode);
    } else if (assign_ports(m, a, &err) < 0) {
        for (size_t i = 0; i < a->ntasks; i++)
            alloc_task_fail(&a->tasks[i], "Setup Failure", err.msg);
    } else {
        ok = true;
    }
    if (ok && alloc_bridged(a)) {
        alloc_net_setup(a); /* the dirs are made once its request is sent */
        return;
    }
    alloc_make_dirs(a);
    if (ok)
        alloc_start_tasks(a);
}

/* Sends the kill signal to every task still running (the supervisors
 * forward kill_signal and escalate to SIGKILL after kill_timeout on their
 * own, even if the agent goes away). */
static void alloc_kill_tasks(struct alloc *a)
{
    if (a->stop_timer) {
        uv_close((uv_handle_t *)a->stop_timer, alloc_handle_closed);
        a->stop_timer = NULL;
    }
    a->stop_phase = 2;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (t->net_waiting) {
            alloc_task_abort_wait(t); /* it exits without running */
        } else if (alloc_task_active(t)) {
            alloc_task_event(t, "Killing", "%s", a->stop_why ? a->stop_why : "");
            alloc_task_stop(t);
        } else if (!nc_streq(t->state, "dead") &&
                   lifecycle_stage_of(alloc_task_spec(t)) != LC_POSTSTOP) {
            alloc_set_str(&t->state, "dead"); /* poststop: runs after */
        }
    }
    alloc_update_status(a);
}

static void on_stop_timer(uv_timer_t *h)
{
    struct alloc *a = h->data;
    if (a->stop_phase == 0) {
        /* the registries did not answer in time: stop anyway */
        LOG_WARN("alloc", "allocation %s: services not confirmed "
                          "deregistered after 5s; stopping its tasks", a->id);
        alloc_manager_deregistered(a->mgr, a->id);
        return;
    }
    alloc_kill_tasks(a);
}

static int64_t alloc_shutdown_delay(const struct alloc *a)
{
    const struct task_group *g = alloc_group(a);
    if (a->no_shutdown_delay)
        return 0;
    int64_t d = g ? g->shutdown_delay : 0;
    for (size_t i = 0; g && i < g->ntasks; i++)
        if (g->tasks[i].shutdown_delay > d)
            d = g->tasks[i].shutdown_delay;
    return d;
}

static bool alloc_has_services(const struct alloc *a)
{
    const struct task_group *g = alloc_group(a);
    if (!g)
        return false;
    size_t n = g->nservices;
    for (size_t i = 0; i < g->ntasks; i++)
        n += g->tasks[i].nservices;
    return n > 0;
}

void alloc_manager_deregistered(struct alloc_manager *m, const char *alloc_id)
{
    struct alloc *a = alloc_manager_find(m, alloc_id, NULL);
    if (!a || !a->stopping || a->stop_phase != 0)
        return;
    a->stop_phase = 1;
    int64_t delay = alloc_shutdown_delay(a);
    if (delay <= 0) {
        alloc_kill_tasks(a);
        return;
    }
    /* shutdown_delay: the services are gone from the registry, the tasks
     * keep serving the requests already routed to them for this long */
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i].supervisor_pid > 0)
            alloc_task_event(&a->tasks[i], "Waiting for shutdown delay",
                             "Waiting for shutdown_delay of %llds before "
                             "killing the task",
                             (long long)(delay / 1000000000));
    if (!a->stop_timer) {
        a->stop_timer = xcalloc(1, sizeof(*a->stop_timer));
        uv_timer_init(m->c.loop, a->stop_timer);
        a->stop_timer->data = a;
    }
    uv_timer_start(a->stop_timer, on_stop_timer, (uint64_t)(delay / 1000000), 0);
    alloc_save(a);
}

/* Stopping, as Nomad orders it: the services are deregistered first, then
 * shutdown_delay passes, then the tasks get their kill signal. */
static void alloc_stop(struct alloc *a, const char *why)
{
    if (a->stopping)
        return;
    a->stopping = true;
    a->stop_phase = 0;
    free(a->stop_why);
    a->stop_why = xstrdup(why);
    alloc_set_str(&a->desired_status, "stop");
    if (a->reschedule_timer) {
        uv_close((uv_handle_t *)a->reschedule_timer, alloc_handle_closed);
        a->reschedule_timer = NULL;
    }
    bool running = false;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (t->timer) {
            uv_close((uv_handle_t *)t->timer, alloc_handle_closed);
            t->timer = NULL;
        }
        running |= alloc_task_active(t);
    }
    struct alloc_manager *m = a->mgr;
    if (!running || m->closing ||
        (!alloc_has_services(a) && alloc_shutdown_delay(a) <= 0) ||
        !m->c.on_stopping) {
        alloc_kill_tasks(a);
        return;
    }
    a->stop_timer = xcalloc(1, sizeof(*a->stop_timer));
    uv_timer_init(m->c.loop, a->stop_timer);
    a->stop_timer->data = a;
    uv_timer_start(a->stop_timer, on_stop_timer, 5000, 0);
    alloc_save(a); /* on_change: the registries drop its services */
    m->c.on_stopping(a, m->c.arg);
}

int alloc_manager_run_job(struct alloc_manager *m, const struct job *job,
                          uint64_t version, struct nc_error *err)
{
    bool per_node = nc_streq(job->type, "system") || nc_streq(job->type, "sysbatch");
    alloc_gc_forget_job(m, job->id, version);
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        if (strcmp(a->job_id, job->id) != 0 || a->stopping)
            continue;
        const struct task_group *g = NULL;
        for (size_t k = 0; k < job->ngroups; k++)
            if (strcmp(job->groups[k].name, a->group) == 0)
                g = &job->groups[k];
        int count = g ? (per_node ? 1 : g->count) : 0;
        if (a->job_version != version || a->index >= count)
            alloc_stop(a, "Allocation replaced by a new job version");
    }
    for (size_t k = 0; k < job->ngroups; k++) {
        const struct task_group *g = &job->groups[k];
        int count = per_node ? 1 : g->count;
        for (int idx = 0; idx < count; idx++) {
            bool have = false;
            for (size_t i = 0; i < m->nallocs && !have; i++) {
                struct alloc *a = m->allocs[i];
                /* a failed one counts: its replacement is the
                 * reschedule policy's call, not a re-registration's */
                have = !a->stopping && nc_streq(a->desired_status, "run") &&
                       strcmp(a->job_id, job->id) == 0 &&
                       strcmp(a->group, g->name) == 0 && a->index == idx &&
                       a->job_version == version;
            }
            if (have || alloc_gc_placed(m, job->id, g->name, idx, version))
                continue;
            alloc_gc_make_room(m, 1);
            struct alloc *a = alloc_create(m, job, g, idx, version);
            LOG_INFO("alloc", "allocation %s created for %s", a->id, a->name);
            alloc_start(a);
        }
    }
    return 0;
}

void alloc_manager_stop_job(struct alloc_manager *m, const char *job_id)
{
    alloc_gc_forget_job(m, job_id, UINT64_MAX);
    for (size_t i = 0; i < m->nallocs; i++)
        if (strcmp(m->allocs[i]->job_id, job_id) == 0)
            alloc_stop(m->allocs[i], "Sent interrupt. Waiting for the task to "
                                     "exit (job stopped)");
}

struct alloc *alloc_manager_find(const struct alloc_manager *m, const char *id,
                                 bool *ambiguous)
{
    struct alloc *found = NULL;
    if (ambiguous)
        *ambiguous = false;
    size_t n = strlen(id);
    for (size_t i = 0; i < m->nallocs && n; i++) {
        if (strcmp(m->allocs[i]->id, id) == 0)
            return m->allocs[i];
        if (strncmp(m->allocs[i]->id, id, n) == 0) {
            if (found) {
                if (ambiguous)
                    *ambiguous = true;
                return NULL;
            }
            found = m->allocs[i];
        }
    }
    return found;
}

/* After a restart: live supervisors are watched again; dead ones are
 * treated as exits. */
static void alloc_reattach(struct alloc *a)
{
    bool stopping = nc_streq(a->desired_status, "stop");
    a->stopping = stopping;
    /* tasks of a bridged allocation start only once its network is ready */
    bool net_pending = alloc_bridged(a) && !nc_streq(a->net_phase, "ready");
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (nc_streq(t->state, "dead"))
            continue;
        const struct driver *d = driver_of(alloc_task_spec(t));
        bool ran = nc_streq(t->state, "running");
        if (d && d->recover(a->mgr->drv, t, ran)) {
            /* started beside a network set-up that this agent's
             * predecessor did not see through: it saw its pipe close and
             * leaves without running the task */
            if (net_pending && nc_streq(t->state, "pending"))
                t->aborting = true;
            LOG_INFO("alloc", "re-attached to task %s of %s (supervisor %d)",
                     t->name, a->id, t->supervisor_pid);
            if (stopping)
                d->stop(t);
            continue;
        }
        if (ran) {
            if (!d) { /* nobody can tell how it ended */
                struct driver_exit res = {0};
                a->mgr->drv->exited(t, &res);
            }
            continue; /* the driver reported its end */
        }
        if (!stopping && !net_pending)
            alloc_task_start(t); /* never got started before the agent stopped */
        else if (stopping)
            alloc_set_str(&t->state, "dead");
    }
    alloc_update_status(a);
    /* a network step the previous agent did not see through: a set-up is
     * run again (the helper reuses a complete one, or undoes a partial one
     * first), a teardown is finished */
    if (alloc_bridged(a) && !stopping && !nc_streq(a->client_status, "complete") &&
        !nc_streq(a->client_status, "failed")) {
        if (!a->net_phase || !*a->net_phase)
            alloc_net_setup(a);
        else if (nc_streq(a->net_phase, "setting-up"))
            alloc_net_schedule(a);
    }
    if (alloc_bridged(a) && nc_streq(a->net_phase, "tearing-down"))
        alloc_net_schedule(a);
    /* a replacement that was pending when the agent stopped */
    if (nc_streq(a->client_status, "failed") && !stopping)
        alloc_maybe_reschedule(a);
}

static void on_orphan_deleted(const struct netns_result *res, void *arg)
{
    if (res->status < 0)
        LOG_ERROR("alloc", "network of unknown allocation %s: teardown "
                           "failed: %s", res->alloc_id, res->message);
    else
        LOG_INFO("alloc", "removed the network of unknown allocation %s",
                 res->alloc_id);
}

/* Network set-ups recorded by the helpers for allocations this agent has
 * no state of (lost state file, or killed before saving it): torn down. */
static void remove_orphan_networks(struct alloc_manager *m)
{
    DIR *d = opendir(m->netns_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!nc_str_has_suffix(e->d_name, ".json"))
            continue;
        char *id = xstrndup(e->d_name, strlen(e->d_name) - strlen(".json"));
        const struct alloc *a = alloc_manager_find(m, id, NULL);
        if (!a || strcmp(a->id, id) != 0) {
            struct netns_setup setup = {.alloc_id = id};
            struct nc_error err = {0};
            LOG_WARN("alloc", "network set-up of unknown allocation %s found: "
                              "tearing it down", id);
            if (netns_del(m->c.loop, &m->net, &setup, NULL, on_orphan_deleted,
                          NULL, &err) < 0)
                LOG_ERROR("alloc", "allocation %s: %s", id, err.msg);
        }
        free(id);
    }
    if (d)
        closedir(d);
}

int alloc_manager_open(struct alloc_manager **out,
                       const struct alloc_manager_config *c,
                       struct nc_error *err)
{
    struct alloc_manager *m = xcalloc(1, sizeof(*m));
    m->c = *c;
    m->state_dir = xasprintf("%s/client/allocs", c->cfg->data_dir);
    m->alloc_root = xasprintf("%s/alloc", c->cfg->data_dir);
    m->netns_dir = xasprintf("%s/client/netns", c->cfg->data_dir);
    alloc_driver_env_init(m);
    m->net = (struct netns_config){
        .cni_path = c->cfg->client.cni_path,
        .cni_config_dir = c->cfg->client.cni_config_dir,
        .bridge_name = c->cfg->client.bridge_network_name,
        .subnet = c->cfg->client.bridge_network_subnet,
        .state_dir = m->netns_dir,
        .helper_path = c->self_exe,
        .disable_hairpin = !c->cfg->client.bridge_network_hairpin_mode,
    };
    int r = nc_mkdir_p(m->state_dir, 0700);
    if (r == 0)
        r = nc_mkdir_p(m->alloc_root, 0711);
    if (r == 0)
        r = nc_mkdir_p(m->netns_dir, 0700);
    if (r < 0) {
        nc_error_set(err, r, "create %s: %s", m->state_dir, strerror(-r));
        free(m->state_dir);
        free(m->alloc_root);
        free(m->netns_dir);
        free(m->drv);
        free(m);
        return r;
    }
    DIR *d = opendir(m->state_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!nc_str_has_suffix(e->d_name, ".json"))
            continue;
        char *path = xasprintf("%s/%s", m->state_dir, e->d_name);
        size_t len;
        char *txt = nc_read_file(path, &len, 0);
        json_t *j = txt ? json_loadb(txt, len, 0, NULL) : NULL;
        struct alloc *a = NULL;
        struct nc_error e2 = {0};
        if (!j || alloc_from_json(j, &a, &e2) < 0) {
            char *bad = xasprintf("%s.corrupt", path);
            LOG_ERROR("alloc", "cannot decode %s (%s); moved to %s", path,
                      j ? e2.msg : "invalid JSON", bad);
            rename(path, bad);
            free(bad);
        } else {
            manager_add(m, a);
            if (a->modify_index > m->index)
                m->index = a->modify_index;
        }
        json_decref(j);
        free(txt);
        free(path);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < m->nallocs; i++)
        alloc_reattach(m->allocs[i]);
    remove_orphan_networks(m);
    *out = m;
    return 0;
}

void alloc_manager_prestart_network(struct alloc_manager *m)
{
    struct nc_error err = {0};
    if (netns_mode_check(&m->net, "bridge", &err) < 0)
        return;
    if (netns_prestart(m->c.loop, &m->net, &err) < 0)
        LOG_WARN("alloc", "%s", err.msg);
}

void alloc_manager_close(struct alloc_manager *m)
{
    if (!m)
        return;
    m->closing = true;
    alloc_manager_drain_cancel(m);
    if (m->followup)
        uv_close((uv_handle_t *)m->followup, alloc_handle_closed);
    m->followup = NULL;
    /* helpers finish on their own; their state files tell the next agent */
    netns_abandon_all(m->c.loop);
    alloc_net_forget(m);
    alloc_artifacts_forget(m);
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        if (a->reschedule_timer)
            uv_close((uv_handle_t *)a->reschedule_timer, alloc_handle_closed);
        if (a->stop_timer)
            uv_close((uv_handle_t *)a->stop_timer, alloc_handle_closed);
        for (size_t k = 0; k < a->ntasks; k++) {
            const struct driver *d = driver_of(alloc_task_spec(&a->tasks[k]));
            if (d)
                d->detach(&a->tasks[k]);
            if (a->tasks[k].timer) {
                uv_close((uv_handle_t *)a->tasks[k].timer, alloc_handle_closed);
                a->tasks[k].timer = NULL;
            }
        }
        writer_release(a->writer);
        alloc_free(a);
    }
    free(m->allocs);
    free(m->net_queue);
    free(m->state_dir);
    free(m->alloc_root);
    free(m->netns_dir);
    free(m->drv);
    free(m);
}

/* ---- removal (gc.c) ---------------------------------------------------- */

bool alloc_save_pending(const struct alloc *a)
{
    return a->writer && a->writer->busy;
}

void alloc_manager_remove(struct alloc_manager *m, struct alloc *a)
{
    for (size_t i = 0; i < m->nallocs; i++) {
        if (m->allocs[i] != a)
            continue;
        memmove(&m->allocs[i], &m->allocs[i + 1],
                (m->nallocs - i - 1) * sizeof(*m->allocs));
        m->nallocs--;
        break;
    }
    for (size_t k = 0; k < a->ntasks; k++) {
        const struct driver *d = driver_of(alloc_task_spec(&a->tasks[k]));
        if (d)
            d->detach(&a->tasks[k]);
    }
    writer_release(a->writer);
    a->writer = NULL;
    check_idle(m);
}

/* ---- leftovers ------------------------------------------------------------ */

/* Whether a task of allocation `id` named `task` (NULL: any) is expected
 * to be running right now. */
static bool task_owned(const char *id, const char *task, void *arg)
{
    const struct alloc_manager *m = arg;
    const struct alloc *a = alloc_manager_find(m, id, NULL);
    if (!a || strcmp(a->id, id) != 0)
        return false;
    for (size_t i = 0; i < a->ntasks; i++)
        if ((!task || strcmp(a->tasks[i].name, task) == 0) &&
            alloc_task_active(&a->tasks[i]))
            return true;
    return false;
}

json_t *alloc_manager_leftovers(struct alloc_manager *m, bool clean)
{
    json_t *out = json_object(), *mounts = json_array();
    /* the drivers' own: exec's task cgroups and supervisors */
    drivers_leftovers(m->drv, task_owned, m, clean, out);

    /* task mounts live in the tasks' own mount namespaces: any mount under
     * the alloc dir visible here is a leftover */
    struct vol_mount_table t = {0};
    char err[256];
    char **paths = NULL;
    size_t npaths = 0;
    if (vol_mountinfo_read(&t, err, sizeof(err)) == 0 &&
        vol_mounts_under(&t, m->alloc_root, &paths, &npaths) == 0)
        for (size_t i = 0; i < npaths; i++)
            json_array_append_new(mounts, json_string(paths[i]));
    vol_paths_free(paths, npaths);
    vol_mount_table_free(&t);
    if (clean) {
        size_t n = 0;
        vol_unmount_under(m->alloc_root, &n, err, sizeof(err));
    }
    json_object_set_new(out, "Mounts", mounts);
    /* networks: owned while set up or being torn down by this agent */
    struct strlist owned = {0};
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *a = m->allocs[i];
        if (alloc_bridged(a) && a->net_phase && *a->net_phase &&
            (!nc_streq(a->net_phase, "down") || a->net_busy))
            strlist_add(&owned, a->id);
    }
    json_object_set_new(out, "Network", netns_leftovers(&m->net, &owned, clean));
    strlist_free(&owned);
    json_object_set_new(out, "Cleaned", json_boolean(clean));
    return out;
}

/* ---- alloc stop and node drain ---------------------------------------- */

#define MIGRATING "Sent interrupt. Waiting for the task to exit (alloc is " \
                  "being migrated"

/* Every task dead and the network gone: its ports and address are free. */
static bool alloc_stopped(const struct alloc *a)
{
    for (size_t i = 0; i < a->ntasks; i++)
        if (!nc_streq(a->tasks[i].state, "dead") || a->tasks[i].timer)
            return false;
    if (a->net_busy || a->net_queued)
        return false;
    return !alloc_bridged(a) || !a->net_phase || !*a->net_phase ||
           nc_streq(a->net_phase, "down");
}

static bool alloc_per_node(const struct alloc *a)
{
    const char *type = a->job ? a->job->type : NULL;
    return nc_streq(type, "system") || nc_streq(type, "sysbatch");
}

/* What a migrated allocation's replacement is: the same slot, unless the
 * job already has a live allocation there (a newer version ran meanwhile). */
static void place_replacement(struct alloc_manager *m, struct alloc *a)
{
    a->replace_when_stopped = false;
    const struct task_group *g = alloc_group(a);
    if (!g || !node_ready(m->c.node) || m->closing)
        return;
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *o = m->allocs[i];
        if (o != a && !o->stopping && nc_streq(o->desired_status, "run") &&
            strcmp(o->job_id, a->job_id) == 0 &&
            strcmp(o->group, a->group) == 0 && o->index == a->index)
            return;
    }
    struct alloc *n = alloc_create(m, a->job, g, a->index, a->job_version);
    n->previous_alloc = xstrdup(a->id);
    n->reschedules = a->reschedules; /* a migration is no reschedule */
    LOG_INFO("alloc", "allocation %s replaces stopped %s", n->id, a->id);
    alloc_start(n);
}

int alloc_manager_stop_alloc(struct alloc_manager *m, struct alloc *a,
                             bool no_shutdown_delay, bool *replaced)
{
    if (replaced)
        *replaced = false;
    if (a->stopping || nc_streq(a->desired_status, "stop"))
        return -EALREADY;
    bool finished = nc_streq(a->client_status, "complete") ||
                    nc_streq(a->client_status, "failed");
    /* a finished batch allocation has done its work: Nomad does not run
     * it again; a stopped one of any other kind is placed again */
    bool batch = a->job && (nc_streq(a->job->type, "batch") ||
                            nc_streq(a->job->type, "sysbatch"));
    a->replace_when_stopped = !(batch && finished) && node_ready(m->c.node);
    a->no_shutdown_delay = no_shutdown_delay;
    if (replaced)
        *replaced = a->replace_when_stopped;
    LOG_INFO("alloc", "allocation %s (%s): stop asked%s", a->id, a->name,
             a->replace_when_stopped ? "; a replacement follows" : "");
    alloc_stop(a, MIGRATING ": alloc stop)");
    alloc_save(a);
    return 0;
}

static void drain_finish(struct alloc_manager *m)
{
    void (*done)(void *) = m->drain.done;
    void *arg = m->drain.arg;
    alloc_manager_drain_cancel(m);
    LOG_INFO("alloc", "node drain complete");
    if (done)
        done(arg);
}

/* Live allocations of the same group being stopped by the drain. */
static int group_in_flight(const struct alloc_manager *m, const struct alloc *a)
{
    int n = 0;
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *o = m->allocs[i];
        n += o->stopping && !alloc_stopped(o) &&
             strcmp(o->job_id, a->job_id) == 0 &&
             strcmp(o->group, a->group) == 0;
    }
    return n;
}

/* One pass of the drainer over the allocations, after any change. */
static void drain_step(struct alloc_manager *m)
{
    if (!m->drain.active)
        return;
    const char *why = MIGRATING ": node drain)";
    size_t left = 0, system_left = 0;
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        if (alloc_stopped(a) &&
            (a->stopping || nc_streq(a->client_status, "complete") ||
             nc_streq(a->client_status, "failed")))
            continue; /* nothing of it runs any more */
        if (alloc_per_node(a)) {
            system_left += !m->drain.ignore_system;
            continue;
        }
        left++;
        if (a->stopping)
            continue;
        const struct task_group *g = alloc_group(a);
        bool batch = a->job && nc_streq(a->job->type, "batch");
        int parallel = g && g->migrate && g->migrate->max_parallel > 0
                           ? g->migrate->max_parallel
                           : 1;
        if (m->drain.forced || (!batch && group_in_flight(m, a) < parallel))
            alloc_stop(a, why);
    }
    if (left == 0 && system_left > 0) {
        /* system allocations go last, once the others are stopped */
        for (size_t i = 0; i < m->nallocs; i++) {
            struct alloc *a = m->allocs[i];
            if (alloc_per_node(a) && !a->stopping && !alloc_stopped(a))
                alloc_stop(a, why);
        }
    }
    if (left == 0 && system_left == 0)
        drain_finish(m);
}

static void on_followup(uv_timer_t *h)
{
    struct alloc_manager *m = h->data;
    /* replacements first: a drain that began since holds them back */
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        if (a->replace_when_stopped && alloc_stopped(a))
            place_replacement(m, a); /* may grow m->allocs */
    }
    drain_step(m);
}

static void alloc_followup_schedule(struct alloc_manager *m)
{
    if (m->closing)
        return;
    if (!m->followup) {
        m->followup = xcalloc(1, sizeof(*m->followup));
        uv_timer_init(m->c.loop, m->followup);
        m->followup->data = m;
    }
    if (!uv_is_active((uv_handle_t *)m->followup))
        uv_timer_start(m->followup, on_followup, 0, 0);
}

static void on_drain_deadline(uv_timer_t *h)
{
    struct alloc_manager *m = h->data;
    LOG_INFO("alloc", "node drain: deadline reached; stopping every "
                      "allocation left");
    m->drain.forced = true;
    drain_step(m);
}

void alloc_manager_drain_start(struct alloc_manager *m, int64_t deadline_ms,
                               bool ignore_system, void (*done)(void *arg),
                               void *arg)
{
    alloc_manager_drain_cancel(m);
    m->drain.active = true;
    m->drain.ignore_system = ignore_system;
    m->drain.forced = deadline_ms < 0;
    m->drain.done = done;
    m->drain.arg = arg;
    if (deadline_ms > 0) {
        m->drain.deadline = xcalloc(1, sizeof(*m->drain.deadline));
        uv_timer_init(m->c.loop, m->drain.deadline);
        m->drain.deadline->data = m;
        uv_timer_start(m->drain.deadline, on_drain_deadline,
                       (uint64_t)deadline_ms, 0);
    }
    /* replacements a pending `alloc stop` would place: none while draining */
    for (size_t i = 0; i < m->nallocs; i++)
        m->allocs[i]->replace_when_stopped = false;
    LOG_INFO("alloc", "node drain started (deadline %s%s)",
             deadline_ms < 0 ? "now" : deadline_ms == 0 ? "none" : "set",
             ignore_system ? ", system jobs stay" : "");
    alloc_followup_schedule(m);
}

void alloc_manager_drain_cancel(struct alloc_manager *m)
{
    if (m->drain.deadline)
        uv_close((uv_handle_t *)m->drain.deadline, alloc_handle_closed);
    memset(&m->drain, 0, sizeof(m->drain));
}

void alloc_manager_placements_resumed(struct alloc_manager *m)
{
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        if (nc_streq(a->client_status, "failed") && !a->stopping &&
            nc_streq(a->desired_status, "run"))
            alloc_maybe_reschedule(a);
    }
}
