/* alloc_runner.c - see alloc_runner.h. */
#include "client/alloc/alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/drivers/internal.h"
#include "volumes/volumes.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static void task_start(struct alloc_task *t);
static void alloc_update_status(struct alloc *a);
static void net_teardown(struct alloc *a);
static void net_setup(struct alloc *a);
static void make_alloc_dirs(struct alloc *a);
static int make_task_dirs(struct alloc_task *t);
static void net_schedule(struct alloc *a);
static bool alloc_bridged(const struct alloc *a);
static void maybe_reschedule(struct alloc *a);

/* ---- paths and persistence ------------------------------------------ */

char *alloc_dir_path(const struct alloc_manager *m, const struct alloc *a)
{
    return xasprintf("%s/%s", m->alloc_root, a->id);
}

char *alloc_task_dir_path(const struct alloc_manager *m, const struct alloc *a,
                          const char *task)
{
    return xasprintf("%s/%s/%s", m->alloc_root, a->id, task);
}

/* Supervisor files live beside the task dirs, where tasks cannot see them. */
static char *sup_path(const struct alloc_task *t, const char *suffix)
{
    const struct alloc_manager *m = t->alloc->mgr;
    return xasprintf("%s/%s/.nomclient/%s.%s", m->alloc_root, t->alloc->id,
                     t->name, suffix);
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
            if (a->tasks[k].supervisor_pid > 0 || a->tasks[k].timer)
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
static void alloc_save_as(struct alloc *a, bool durable)
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
    check_idle(m);
}

static void alloc_save(struct alloc *a) { alloc_save_as(a, true); }

static void set_str(char **field, const char *v)
{
    if (nc_streq(*field, v))
        return;
    free(*field);
    *field = xstrdup(v);
}

static const struct task_group *alloc_group(const struct alloc *a)
{
    for (size_t i = 0; i < a->job->ngroups; i++)
        if (strcmp(a->job->groups[i].name, a->group) == 0)
            return &a->job->groups[i];
    return NULL;
}

static const struct task *alloc_task_spec(const struct alloc_task *t)
{
    const struct task_group *g = alloc_group(t->alloc);
    for (size_t i = 0; g && i < g->ntasks; i++)
        if (strcmp(g->tasks[i].name, t->name) == 0)
            return &g->tasks[i];
    return NULL;
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

/* ---- supervisor watch ------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) { free(h); }

static void watch_stop(struct alloc_task *t)
{
    if (t->watch) {
        int fd = -1;
        uv_fileno((uv_handle_t *)t->watch, &fd);
        uv_close((uv_handle_t *)t->watch, on_handle_closed);
        if (fd >= 0)
            close(fd);
        t->watch = NULL;
    }
}

static void task_exited(struct alloc_task *t);

static void on_supervisor_gone(uv_poll_t *h, int status, int events)
{
    struct alloc_task *t = h->data;
    watch_stop(t);
    task_exited(t);
}

/* Watches a supervisor by pid; false when it is already gone. */
static bool watch_start(struct alloc_task *t, int pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return false;
    t->watch = xcalloc(1, sizeof(*t->watch));
    uv_poll_init(t->alloc->mgr->c.loop, t->watch, fd);
    t->watch->data = t;
    uv_poll_start(t->watch, UV_READABLE, on_supervisor_gone);
    return true;
}

static void on_process_exit(uv_process_t *p, int64_t status, int sig)
{
    /* reaped here; the pidfd watch reports the exit */
    struct alloc_task *t = p->data;
    if (t && t->proc == p)
        t->proc = NULL;
    uv_close((uv_handle_t *)p, on_handle_closed);
}

/* Forgets the spawned handle (the supervisor itself keeps running). */
static void proc_release(struct alloc_task *t)
{
    if (t->proc) {
        t->proc->data = NULL;
        uv_close((uv_handle_t *)t->proc, on_handle_closed);
        t->proc = NULL;
    }
}

/* Whether the supervisor of t still holds its lock; *pid gets its pid. */
static bool supervisor_alive(struct alloc_task *t, int *pid)
{
    char *path = sup_path(t, "lock");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    *pid = 0;
    if (fd < 0)
        return false;
    bool alive = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0)
        *pid = atoi(buf);
    close(fd);
    return alive && *pid > 0;
}

/* ---- task start -------------------------------------------------------- */

static char *config_string(const struct task *spec, const char *key)
{
    const char *s = json_string_value(json_object_get(spec->config, key));
    return s ? xstrdup(s) : NULL;
}

/* The supervisor's spec for the task as JSON text (JSON_* flags), or
 * NULL with err set. */
static char *spec_text(struct alloc_task *t, const struct task *spec,
                       int wait_fd, size_t flags, struct nc_error *err)
{
    struct alloc *a = t->alloc;
    struct alloc_manager *m = a->mgr;
    const struct agent_config *cfg = m->c.cfg;
    bool exec = nc_streq(spec->driver, "exec");
    struct supervisor_spec s = {0};
    char *alloc_dir = alloc_dir_path(m, a);
    s.alloc_id = xstrdup(a->id);
    s.task = xstrdup(t->name);
    s.task_dir = alloc_task_dir_path(m, a, t->name);
    s.alloc_dir = xasprintf("%s/alloc", alloc_dir);
    s.status_file = sup_path(t, "status.json");
    s.log_dir = xasprintf("%s/alloc/logs", alloc_dir);
    s.chroot = exec;
    kv_copy(&s.chroot_env, &cfg->client.chroot_env);
    alloc_task_env(a, spec, m->c.node, s.alloc_dir, s.task_dir, exec, &s.env);
    char *cmd = config_string(spec, "command");
    s.command = alloc_interpolate(cmd, &s.env, m->c.node);
    free(cmd);
    size_t i;
    json_t *arg;
    json_array_foreach(json_object_get(spec->config, "args"), i, arg)
    {
        char *v = alloc_interpolate(json_string_value(arg), &s.env, m->c.node);
        strlist_add(&s.args, v ? v : "");
        free(v);
    }
    s.user = spec->user && *spec->user ? xstrdup(spec->user) : NULL;
    s.wait_fd = wait_fd;
    if (a->netns)
        s.netns = xasprintf("/run/netns/%s", a->netns);
    else if (wait_fd > 0) /* the namespace the helper is creating */
        s.netns = xasprintf("/run/netns/%s", a->id);
    if (exec) {
        s.cgroup = xasprintf("%s.%s", a->id, t->name);
        s.cpu_shares = spec->resources.cpu;
        s.memory_mb = spec->resources.memory_mb;
        s.memory_max_mb = spec->resources.memory_max_mb;
        /* Nomad's defaults within allow_caps, less cap_drop, plus cap_add
         * (which must be allowed) */
        struct strlist add = {0}, drop = {0};
        json_t *v;
        json_array_foreach(json_object_get(spec->config, "cap_add"), i, v)
            strlist_add(&add, json_string_value(v) ? json_string_value(v) : "");
        json_array_foreach(json_object_get(spec->config, "cap_drop"), i, v)
            strlist_add(&drop, json_string_value(v) ? json_string_value(v) : "");
        char msg[600];
        int r = caps_calculate(&cfg->client.exec_allow_caps, &add, &drop,
                               &s.caps, msg, sizeof(msg));
        strlist_free(&add);
        strlist_free(&drop);
        if (r < 0) {
            nc_error_set(err, r, "%s", msg);
            goto fail;
        }
    }
    /* volumes: group `volume` requests mounted by the task's volume_mount */
    const struct task_group *g = alloc_group(a);
    s.mounts = xcalloc(spec->nvolume_mounts + 1, sizeof(*s.mounts));
    for (size_t k = 0; k < spec->nvolume_mounts; k++) {
        const struct volume_mount *vm = &spec->volume_mounts[k];
        const struct volume_request *vr = NULL;
        for (size_t q = 0; q < g->nvolumes; q++)
            if (strcmp(g->volumes[q].name, vm->volume) == 0)
                vr = &g->volumes[q];
        const struct host_volume_config *hv = NULL;
        for (size_t q = 0; vr && q < cfg->client.nhost_volumes; q++)
            if (nc_streq(cfg->client.host_volumes[q].name, vr->source))
                hv = &cfg->client.host_volumes[q];
        if (!vr || !hv) {
            nc_error_set(err, -ENOENT,
                         "volume_mount \"%s\": %s", vm->volume,
                         !vr ? "no group volume of that name"
                             : "the host volume is not declared in the agent "
                               "config (client { host_volume ... })");
            goto fail;
        }
        struct supervisor_mount *sm = &s.mounts[s.nmounts++];
        sm->source = xstrdup(hv->path);
        sm->destination = xstrdup(vm->destination);
        sm->read_only = hv->read_only || vr->read_only || vm->read_only;
    }
    s.log_max_files = spec->logs.max_files;
    s.log_max_file_bytes = (int64_t)spec->logs.max_file_size_mb << 20;
    s.kill_signal = supervisor_signal_number(spec->kill_signal);
    if (s.kill_signal < 0)
        s.kill_signal = SIGTERM;
    s.kill_timeout_ns = spec->kill_timeout;
    if (!s.command || !*s.command) {
        nc_error_set(err, -EINVAL, "task config lacks \"command\"");
        goto fail;
    }
    json_t *j = supervisor_spec_to_json(&s);
    char *txt = json_dumps(j, flags);
    json_decref(j);
    supervisor_spec_free(&s);
    free(alloc_dir);
    return txt;
fail:
    supervisor_spec_free(&s);
    free(alloc_dir);
    return NULL;
}

/* Writes the spec the supervisor starts from (or, once the network is
 * ready, the record of what the task was released with). */
static int store_spec(struct alloc_task *t, const char *txt, char **spec_path,
                      struct nc_error *err)
{
    *spec_path = sup_path(t, "spec.json");
    /* read once by the supervisor about to start, rewritten before every
     * start (no supervisor of the task runs then): in place, no fsync */
    int r = nc_write_file_inplace(*spec_path, txt, strlen(txt), 0600);
    if (r < 0) {
        nc_error_set(err, r, "write %s: %s", *spec_path, strerror(-r));
        free(*spec_path);
        *spec_path = NULL;
    }
    return r;
}

static int write_spec(struct alloc_task *t, const struct task *spec,
                      int wait_fd, char **spec_path, struct nc_error *err)
{
    char *txt = spec_text(t, spec, wait_fd, JSON_INDENT(2), err);
    if (!txt)
        return err->code ? err->code : -EINVAL;
    int r = store_spec(t, txt, spec_path, err);
    free(txt);
    return r;
}


static void task_fail_setup(struct alloc_task *t, const char *type,
                            const char *msg)
{
    alloc_task_event(t, type, "%s", msg);
    set_str(&t->state, "dead");
    t->failed = true;
    t->finished_at = nc_now_unix_ns();
    LOG_WARN("alloc", "%s task %s: %s", t->alloc->id, t->name, msg);
    alloc_update_status(t->alloc);
}

/* fd the waiting supervisor reads the network's word on */
#define NET_WAIT_FD 4

static void task_spawn(struct alloc_task *t, bool wait_net);

static void task_start(struct alloc_task *t) { task_spawn(t, false); }

/* The network is ready: the spec gets the final environment (the
 * allocation's address), and the waiting task goes on to exec. */
static void task_release(struct alloc_task *t)
{
    const struct task *spec = alloc_task_spec(t);
    struct nc_error err = {0};
    char *txt = spec ? spec_text(t, spec, NET_WAIT_FD, JSON_COMPACT, &err)
                     : NULL;
    t->net_waiting = false;
    /* the spec itself goes down the pipe, so the task waits for no file;
     * one that would not fit at once goes through the file ("g") */
    size_t len = txt ? strlen(txt) : 0;
    int cap = fcntl(t->net_go_fd, F_GETPIPE_SZ);
    bool inline_spec = txt && cap > 0 && len < (size_t)cap;
    char *spec_path = NULL;
    bool sent =
        txt && (inline_spec ? write(t->net_go_fd, txt, len) == (ssize_t)len
                            : store_spec(t, txt, &spec_path, &err) == 0 &&
                                  write(t->net_go_fd, "g", 1) == 1);
    close(t->net_go_fd);
    /* sent down the pipe, it goes to the file too, once the task is on its
     * way: the record of what the task was released with */
    if (sent && inline_spec && store_spec(t, txt, &spec_path, &err) < 0)
        LOG_WARN("alloc", "%s", err.msg);
    free(spec_path);
    free(txt);
    if (!sent) {
        t->aborting = true;
        task_fail_setup(t, "Setup Failure",
                        err.msg[0] ? err.msg : "cannot release the task");
        return;
    }
    set_str(&t->state, "running");
    t->started_at = nc_now_unix_ns();
    alloc_task_event(t, "Started", "Task started by client");
}

/* The network will not come: the waiting task exits without running. */
static void task_abort_wait(struct alloc_task *t)
{
    if (!t->net_waiting)
        return;
    close(t->net_go_fd);
    t->net_waiting = false;
    t->aborting = true;
}

/* Starts the task's supervisor; with wait_net it sets the task up (cgroup,
 * mounts) while the network is made, and waits for task_release. */
static void task_spawn(struct alloc_task *t, bool wait_net)
{
    struct alloc *a = t->alloc;
    struct alloc_manager *m = a->mgr;
    const struct task *spec = alloc_task_spec(t);
    struct nc_error err = {0};
    if (!spec) {
        task_fail_setup(t, "Setup Failure", "task no longer in the job");
        return;
    }
    if (!nc_streq(spec->driver, "exec") && !nc_streq(spec->driver, "raw_exec")) {
        task_fail_setup(t, "Driver Failure",
                        "driver is not supported by this node");
        return;
    }
    if (make_task_dirs(t) < 0) {
        task_fail_setup(t, "Setup Failure", "cannot create the task directory");
        return;
    }
    char *sup_dir = xasprintf("%s/%s/.nomclient", m->alloc_root, a->id);
    nc_mkdir_p(sup_dir, 0700);
    free(sup_dir);
    char *spec_path = NULL;
    if (write_spec(t, spec, wait_net ? NET_WAIT_FD : -1, &spec_path, &err) < 0) {
        /* a capability the driver does not allow is the driver's refusal */
        task_fail_setup(t, err.code == -EPERM ? "Driver Failure"
                                              : "Setup Failure",
                        err.msg);
        return;
    }
    int go[2] = {-1, -1};
    if (wait_net && pipe2(go, O_CLOEXEC) < 0) {
        free(spec_path);
        task_fail_setup(t, "Setup Failure", "cannot create a pipe");
        return;
    }
    char *status = sup_path(t, "status.json");
    unlink(status);
    free(status);
    /* The lock is taken here and inherited: held for as long as the
     * supervisor lives, whatever happens to the agent meanwhile. */
    char *lock = sup_path(t, "lock");
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock);
    if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) < 0) {
        if (lfd >= 0)
            close(lfd);
        if (wait_net) {
            close(go[0]);
            close(go[1]);
        }
        free(spec_path);
        task_fail_setup(t, "Setup Failure",
                        "supervisor lock is held: task already running?");
        return;
    }
    uv_process_t *proc = xcalloc(1, sizeof(*proc));
    char *args[] = {(char *)m->c.self_exe, "supervise", spec_path, NULL};
    uv_stdio_container_t stdio[NET_WAIT_FD + 1] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
        {.flags = UV_INHERIT_FD, .data.fd = lfd},
        {.flags = UV_INHERIT_FD, .data.fd = go[0]},
    };
    uv_process_options_t opts = {
        .file = m->c.self_exe,
        .args = args,
        .exit_cb = on_process_exit,
        .flags = UV_PROCESS_DETACHED,
        .stdio = stdio,
        .stdio_count = wait_net ? NET_WAIT_FD + 1 : NET_WAIT_FD,
    };
    int r = uv_spawn(m->c.loop, proc, &opts);
    close(lfd);
    free(spec_path);
    if (wait_net)
        close(go[0]);
    if (r < 0) {
        if (wait_net)
            close(go[1]);
        free(proc);
        char msg[256];
        snprintf(msg, sizeof(msg), "failed to start supervisor: %s",
                 uv_strerror(r));
        task_fail_setup(t, "Driver Failure", msg);
        return;
    }
    t->supervisor_pid = proc->pid;
    proc->data = t;
    proc_release(t); /* a previous run's handle, if its exit is pending */
    t->proc = proc;
    uv_unref((uv_handle_t *)proc);
    watch_start(t, proc->pid);
    if (wait_net) {
        t->net_go_fd = go[1];
        t->net_waiting = true;
    } else {
        set_str(&t->state, "running");
        t->started_at = nc_now_unix_ns();
        alloc_task_event(t, "Started", "Task started by client");
    }
    alloc_update_status(a);
}

/* ---- exits and restart policy ----------------------------------------- */

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
    uv_close((uv_handle_t *)h, on_handle_closed);
    t->timer = NULL;
    if (t->alloc->stopping)
        return;
    t->restarts++;
    t->last_restart = nc_now_unix_ns();
    task_start(t);
}

static void schedule_restart(struct alloc_task *t, int64_t delay_ns,
                             const char *why)
{
    alloc_task_event(t, "Restarting", "%s; restarting in %.1fs", why,
                     (double)delay_ns / 1e9);
    set_str(&t->state, "pending");
    t->timer = xcalloc(1, sizeof(*t->timer));
    uv_timer_init(t->alloc->mgr->c.loop, t->timer);
    t->timer->data = t;
    uv_timer_start(t->timer, on_restart_timer, (uint64_t)(delay_ns / 1000000), 0);
}

static void task_exited(struct alloc_task *t)
{
    struct alloc *a = t->alloc;
    if (t->aborting || t->net_waiting) {
        /* a supervisor that waited for the network and never started its
         * task: no run to account for */
        if (t->net_waiting)
            close(t->net_go_fd);
        t->aborting = t->net_waiting = false;
        t->supervisor_pid = 0;
        char *status = sup_path(t, "status.json");
        unlink(status);
        free(status);
        if (a->stopping || nc_streq(a->desired_status, "stop"))
            set_str(&t->state, "dead");
        else if (nc_streq(t->state, "pending") && nc_streq(a->net_phase, "ready"))
            task_start(t); /* the network came after all (agent restart) */
        alloc_update_status(a);
        return;
    }
    char *path = sup_path(t, "status.json");
    size_t len;
    char *txt = nc_read_file(path, &len, 1 << 16);
    free(path);
    json_t *st = txt ? json_loadb(txt, len, 0, NULL) : NULL;
    free(txt);
    t->exit_code = st ? (int)json_integer_value(json_object_get(st, "ExitCode")) : -1;
    t->signal = st ? (int)json_integer_value(json_object_get(st, "Signal")) : 0;
    const char *failure = st ? json_string_value(json_object_get(st, "Err")) : NULL;
    bool oom = st && json_is_true(json_object_get(st, "OOMKilled"));
    t->finished_at = nc_now_unix_ns();
    if (!st)
        alloc_task_event(t, "Terminated",
                         "Supervisor exited without recording the task's "
                         "status");
    else if (failure)
        alloc_task_event(t, "Driver Failure", "%s", failure);
    else
        alloc_task_event(t, "Terminated", "Exit Code: %d%s%s%s", t->exit_code,
                         t->signal ? ", Signal: " : "",
                         t->signal ? strsignal(t->signal) : "",
                         oom ? ", OOM Killed" : "");
    json_decref(st);
    t->supervisor_pid = 0;
    if (a->stopping || nc_streq(a->desired_status, "stop")) {
        set_str(&t->state, "dead");
        alloc_update_status(a);
        return;
    }
    bool batch = nc_streq(a->job->type, "batch") || nc_streq(a->job->type, "sysbatch");
    if (batch && t->exit_code == 0 && !t->signal && !failure && st) {
        set_str(&t->state, "dead");
        alloc_update_status(a);
        return;
    }
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
        schedule_restart(t, delay, failure ? "Failed to start" :
                                   "Restart within policy");
    } else if (rp && nc_streq(rp->mode, "delay")) {
        int64_t wait = rp->interval - (now - t->interval_start);
        t->interval_start = now + (wait > 0 ? wait : 0);
        t->restarts_in_interval = 0;
        schedule_restart(t, wait > 0 ? wait : rp->delay,
                         "Exceeded allowed attempts, applying a delay");
    } else {
        alloc_task_event(t, "Not Restarting",
                         "Exceeded allowed attempts %d in interval %llds and "
                         "mode is \"fail\"",
                         rp ? rp->attempts : 0,
                         rp ? (long long)(rp->interval / 1000000000) : 0LL);
        set_str(&t->state, "dead");
        t->failed = true;
        alloc_update_status(a);
    }
    alloc_save(a);
}

/* ---- allocation status ------------------------------------------------- */

static void alloc_update_status(struct alloc *a)
{
    size_t running = 0, dead = 0, failed = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        running += nc_streq(a->tasks[i].state, "running");
        dead += nc_streq(a->tasks[i].state, "dead");
        failed += a->tasks[i].failed;
    }
    const char *status = a->client_status;
    if (failed && !a->stopping) {
        status = "failed";
        /* a failed task takes its siblings down, as Nomad does */
        for (size_t i = 0; i < a->ntasks; i++)
            if (a->tasks[i].supervisor_pid > 0)
                kill(a->tasks[i].supervisor_pid, SIGTERM);
    } else if (dead == a->ntasks) {
        status = failed ? "failed" : "complete";
    } else if (running == a->ntasks) {
        status = "running";
    }
    if (dead == a->ntasks)
        net_teardown(a);
    if (!nc_streq(status, a->client_status)) {
        LOG_INFO("alloc", "allocation %s (%s): %s -> %s", a->id, a->name,
                 a->client_status, status);
        if (nc_streq(status, "failed") && !a->stopping)
            maybe_reschedule(a);
        set_str(&a->client_status, status);
        set_str(&a->client_description,
                nc_streq(status, "running")    ? "Tasks are running"
                : nc_streq(status, "complete") ? "All tasks have completed"
                : nc_streq(status, "failed")   ? "Failed tasks"
                                               : "No tasks have started");
    }
    alloc_save(a);
}

/* ---- reschedule ----------------------------------------------------------- */

static struct alloc *alloc_create(struct alloc_manager *m, const struct job *job,
                                  const struct task_group *g, int index,
                                  uint64_t version);
static void alloc_start(struct alloc *a);

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
    uv_close((uv_handle_t *)h, on_handle_closed);
    a->reschedule_timer = NULL;
    struct alloc_manager *m = a->mgr;
    const struct task_group *g = alloc_group(a);
    if (a->stopping || nc_streq(a->desired_status, "stop") || !g)
        return;
    struct alloc *n = alloc_create(m, a->job, g, a->index, a->job_version);
    free(n->previous_alloc);
    n->previous_alloc = xstrdup(a->id);
    n->reschedules = a->reschedules + 1;
    set_str(&a->desired_status, "stop");
    alloc_save(a);
    LOG_INFO("alloc", "allocation %s replaces failed %s (reschedule %d)",
             n->id, a->id, n->reschedules);
    alloc_start(n);
}

/* A failed allocation is replaced on this node as the group's reschedule
 * policy allows: attempts (or unlimited), with the policy's delay. */
static void maybe_reschedule(struct alloc *a)
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

/* ---- bridge and CNI networking ---------------------------------------- */

static bool alloc_bridged(const struct alloc *a)
{
    return nc_streq(a->network_mode, "bridge") ||
           nc_str_has_prefix(a->network_mode, "cni/");
}

/* Starts the tasks still pending; returns how many it tried. */
static size_t start_tasks(struct alloc *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (!nc_streq(t->state, "pending") || t->timer || t->aborting)
            continue; /* an aborting one starts again once it is gone */
        if (t->net_waiting) {
            task_release(t);
        } else {
            alloc_task_event(t, "Task Setup", "Building Task Directory");
            task_start(t);
        }
        n++;
    }
    if (n)
        alloc_update_status(a);
    return n;
}

static void fail_all_tasks(struct alloc *a, const char *fmt, const char *msg)
{
    char text[1200];
    snprintf(text, sizeof(text), fmt, msg);
    for (size_t i = 0; i < a->ntasks; i++) {
        task_abort_wait(&a->tasks[i]);
        if (!nc_streq(a->tasks[i].state, "dead"))
            task_fail_setup(&a->tasks[i], "Setup Failure", text);
    }
}

static void net_run(struct alloc *a);

/* One helper at a time per allocation, ALLOC_NET_PARALLEL in all. */
static void net_schedule(struct alloc *a)
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
        set_str(&a->net_phase, "down");
        LOG_WARN("alloc", "allocation %s: network set-up failed: %s", a->id,
                 res->message);
        fail_all_tasks(a, "failed to setup alloc: pre-run hook \"network\" "
                          "failed: %s", res->message);
        return;
    }
    set_str(&a->net_phase, "ready");
    set_str(&a->ip, res->ip);
    set_str(&a->netns, netns_basename(res->netns_path));
    json_decref(a->cni_result);
    a->cni_result = res->cni_result ? json_deep_copy(res->cni_result) : NULL;
    if (a->stopping || nc_streq(a->desired_status, "stop")) {
        alloc_save(a);
        alloc_update_status(a); /* tears the network down again */
        return;
    }
    if (!start_tasks(a))
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
    set_str(&a->net_phase, "down");
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

/* A task's dir (local, secrets, tmp), with files: its spec and lock. */
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
    for (int k = 0; files && k < 2; k++) {
        char *f = sup_path(t, k ? "lock" : "spec.json");
        prep_add(p, "file", f);
        free(f);
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

static void make_alloc_dirs(struct alloc *a)
{
    struct prep p = {0};
    prep_alloc_paths(&p, a);
    prep_run(&p);
    strlist_free(&p.paths);
}

static int make_task_dirs(struct alloc_task *t)
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
        if (nc_streq(t->state, "pending") && t->supervisor_pid <= 0 &&
            !t->aborting && !t->timer) {
            alloc_task_event(t, "Task Setup", "Building Task Directory");
            task_spawn(t, true);
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
        set_str(&a->net_phase, "tearing-down"); /* stopped while queued */
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
        set_str(&a->net_phase, "down");
        fail_all_tasks(a, "failed to setup alloc: pre-run hook \"network\" "
                          "failed: %s", err.msg);
    } else {
        LOG_ERROR("alloc", "allocation %s: network teardown: %s", a->id,
                  err.msg);
    }
}

/* Creates the allocation's namespace; its tasks start once it is ready. */
static void net_setup(struct alloc *a)
{
    struct nc_error err = {0};
    if (netns_mode_check(&a->mgr->net, a->network_mode, &err) < 0) {
        make_alloc_dirs(a);
        fail_all_tasks(a, "failed to setup alloc: pre-run hook \"network\" "
                          "failed: %s", err.msg);
        return;
    }
    set_str(&a->net_phase, "setting-up");
    /* the helper first, the save while it runs: its own journal is what a
     * restart undoes from, and an allocation saved without this phase (or
     * not at all) has its set-up run again (or torn down as an orphan) */
    net_schedule(a);
    /* not fsync'd: the helper's journal is what a restart undoes from, and
     * the allocation is saved durably once its network is ready or failed
     * (lost in a power cut, it is placed again from its job) */
    alloc_save_as(a, false);
}

/* Removes the namespace once no task of the allocation runs. */
static void net_teardown(struct alloc *a)
{
    if (!alloc_bridged(a) || a->net_busy || a->net_queued ||
        nc_streq(a->net_phase, "down") || !a->net_phase || !*a->net_phase)
        return;
    for (size_t i = 0; i < a->ntasks; i++)
        if (a->tasks[i].supervisor_pid > 0)
            return;
    set_str(&a->net_phase, "tearing-down");
    alloc_save(a);
    net_schedule(a);
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

static struct alloc *alloc_create(struct alloc_manager *m, const struct job *job,
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


static void alloc_start(struct alloc *a)
{
    struct alloc_manager *m = a->mgr;
    struct nc_error err = {0};
    bool ok = false;
    if (!a->job) {
        set_str(&a->client_status, "failed");
        alloc_save(a);
    } else if (!nc_streq(a->network_mode, "host") &&
               !nc_streq(a->network_mode, "none") && !alloc_bridged(a)) {
        fail_all_tasks(a, "network mode \"%s\" is not supported by this node",
                       a->network_mode);
    } else if (assign_ports(m, a, &err) < 0) {
        for (size_t i = 0; i < a->ntasks; i++)
            task_fail_setup(&a->tasks[i], "Setup Failure", err.msg);
    } else {
        ok = true;
    }
    if (ok && alloc_bridged(a)) {
        net_setup(a); /* the dirs are made once its request is sent */
        return;
    }
    make_alloc_dirs(a);
    if (ok)
        start_tasks(a);
}

/* Sends the kill signal to every task still running (the supervisors
 * forward kill_signal and escalate to SIGKILL after kill_timeout on their
 * own, even if the agent goes away). */
static void alloc_kill_tasks(struct alloc *a)
{
    if (a->stop_timer) {
        uv_close((uv_handle_t *)a->stop_timer, on_handle_closed);
        a->stop_timer = NULL;
    }
    a->stop_phase = 2;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (t->net_waiting) {
            task_abort_wait(t); /* it exits without running */
        } else if (t->supervisor_pid > 0) {
            alloc_task_event(t, "Killing", "%s", a->stop_why ? a->stop_why : "");
            kill(t->supervisor_pid, SIGTERM);
        } else if (!nc_streq(t->state, "dead")) {
            set_str(&t->state, "dead");
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
    set_str(&a->desired_status, "stop");
    if (a->reschedule_timer) {
        uv_close((uv_handle_t *)a->reschedule_timer, on_handle_closed);
        a->reschedule_timer = NULL;
    }
    bool running = false;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (t->timer) {
            uv_close((uv_handle_t *)t->timer, on_handle_closed);
            t->timer = NULL;
        }
        running |= t->supervisor_pid > 0;
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
            if (have)
                continue;
            struct alloc *a = alloc_create(m, job, g, idx, version);
            LOG_INFO("alloc", "allocation %s created for %s", a->id, a->name);
            alloc_start(a);
        }
    }
    return 0;
}

void alloc_manager_stop_job(struct alloc_manager *m, const char *job_id)
{
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

int alloc_manager_restart_task(struct alloc_manager *m, const char *alloc_id,
                               const char *task, const char *why)
{
    struct alloc *a = alloc_manager_find(m, alloc_id, NULL);
    if (!a || a->stopping)
        return -ENOENT;
    for (size_t i = 0; i < a->ntasks; i++) {
        struct alloc_task *t = &a->tasks[i];
        if (strcmp(t->name, task) != 0 || t->supervisor_pid <= 0)
            continue;
        alloc_task_event(t, "Restart Signaled", "%s", why);
        LOG_INFO("alloc", "%s task %s: restarting: %s", a->id, t->name, why);
        kill(t->supervisor_pid, SIGTERM);
        alloc_save(a);
        return 0;
    }
    return -ENOENT;
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
        int pid;
        if (supervisor_alive(t, &pid)) {
            t->supervisor_pid = pid;
            /* started beside a network set-up that this agent's
             * predecessor did not see through: it saw its pipe close and
             * leaves without running the task */
            if (net_pending && nc_streq(t->state, "pending"))
                t->aborting = true;
            if (watch_start(t, pid)) {
                LOG_INFO("alloc", "re-attached to task %s of %s (supervisor %d)",
                         t->name, a->id, pid);
                if (stopping)
                    kill(pid, SIGTERM);
                continue;
            }
        }
        if (nc_streq(t->state, "running"))
            task_exited(t);
        else if (!stopping && !net_pending)
            task_start(t); /* never got started before the agent stopped */
        else if (stopping)
            set_str(&t->state, "dead");
    }
    alloc_update_status(a);
    /* a network step the previous agent did not see through: a set-up is
     * run again (the helper reuses a complete one, or undoes a partial one
     * first), a teardown is finished */
    if (alloc_bridged(a) && !stopping && !nc_streq(a->client_status, "complete") &&
        !nc_streq(a->client_status, "failed")) {
        if (!a->net_phase || !*a->net_phase)
            net_setup(a);
        else if (nc_streq(a->net_phase, "setting-up"))
            net_schedule(a);
    }
    if (alloc_bridged(a) && nc_streq(a->net_phase, "tearing-down"))
        net_schedule(a);
    /* a replacement that was pending when the agent stopped */
    if (nc_streq(a->client_status, "failed") && !stopping)
        maybe_reschedule(a);
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
    /* helpers finish on their own; their state files tell the next agent */
    netns_abandon_all(m->c.loop);
    for (struct prep *p = preps; p; p = p->next)
        if (p->a && p->a->mgr == m)
            p->a = NULL;
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        if (a->reschedule_timer)
            uv_close((uv_handle_t *)a->reschedule_timer, on_handle_closed);
        if (a->stop_timer)
            uv_close((uv_handle_t *)a->stop_timer, on_handle_closed);
        for (size_t k = 0; k < a->ntasks; k++) {
            watch_stop(&a->tasks[k]);
            proc_release(&a->tasks[k]);
            if (a->tasks[k].timer) {
                uv_close((uv_handle_t *)a->tasks[k].timer, on_handle_closed);
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
    free(m);
}

/* ---- leftovers ------------------------------------------------------------ */

/* Whether a task of allocation `id` named `task` (NULL: any) is expected
 * to be running under a supervisor right now. */
static bool task_owned(const struct alloc_manager *m, const char *id,
                       const char *task)
{
    const struct alloc *a = alloc_manager_find(m, id, NULL);
    if (!a || strcmp(a->id, id) != 0)
        return false;
    for (size_t i = 0; i < a->ntasks; i++)
        if ((!task || strcmp(a->tasks[i].name, task) == 0) &&
            a->tasks[i].supervisor_pid > 0)
            return true;
    return false;
}

struct leftover_scan {
    struct alloc_manager *m;
    json_t *list;
};

static void on_cgroup(const char *name, void *arg)
{
    struct leftover_scan *ls = arg;
    const char *dot = strchr(name, '.');
    char *id = dot ? xstrndup(name, (size_t)(dot - name)) : xstrdup(name);
    if (!task_owned(ls->m, id, dot ? dot + 1 : NULL))
        json_array_append_new(ls->list, json_string(name));
    free(id);
}

json_t *alloc_manager_leftovers(struct alloc_manager *m, bool clean)
{
    json_t *cgroups = json_array(), *mounts = json_array(),
           *sups = json_array();
    struct leftover_scan ls = {m, cgroups};
    cgroup_list(on_cgroup, &ls);

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

    /* supervisors of allocations we do not run */
    DIR *d = opendir("/proc");
    struct dirent *e;
    char *prefix = xasprintf("%s/", m->alloc_root);
    while (d && (e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0)
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
        size_t len;
        char *cmd = nc_read_file(path, &len, 8192);
        if (!cmd)
            continue;
        /* argv: exe \0 "supervise" \0 spec */
        const char *a1 = memchr(cmd, '\0', len) ? cmd + strlen(cmd) + 1 : NULL;
        const char *a2 = a1 && a1 < cmd + len ? a1 + strlen(a1) + 1 : NULL;
        if (a1 && a2 && a2 < cmd + len && strcmp(a1, "supervise") == 0 &&
            nc_str_has_prefix(a2, prefix)) {
            char *id = xstrndup(a2 + strlen(prefix), 36);
            const char *task = strrchr(a2, '/');
            char *tname = task ? xstrdup(task + 1) : NULL;
            char *dot = tname ? strstr(tname, ".spec.json") : NULL;
            if (dot)
                *dot = '\0';
            if (!task_owned(m, id, tname)) {
                json_array_append_new(sups, json_pack("{s:i, s:s}", "Pid", pid,
                                                      "Spec", a2));
                if (clean)
                    kill(pid, SIGKILL);
            }
            free(id);
            free(tname);
        }
        free(cmd);
    }
    if (d)
        closedir(d);
    free(prefix);
    if (clean) {
        size_t n = 0;
        vol_unmount_under(m->alloc_root, &n, err, sizeof(err));
        size_t i;
        json_t *v;
        json_array_foreach(cgroups, i, v)
            cgroup_remove(json_string_value(v));
    }
    /* networks: owned while set up or being torn down by this agent */
    struct strlist owned = {0};
    for (size_t i = 0; i < m->nallocs; i++) {
        const struct alloc *a = m->allocs[i];
        if (alloc_bridged(a) && a->net_phase && *a->net_phase &&
            (!nc_streq(a->net_phase, "down") || a->net_busy))
            strlist_add(&owned, a->id);
    }
    json_t *net = netns_leftovers(&m->net, &owned, clean);
    strlist_free(&owned);
    return json_pack("{s:o, s:o, s:o, s:o, s:b}", "Cgroups", cgroups, "Mounts",
                     mounts, "Supervisors", sups, "Network", net, "Cleaned",
                     clean);
}

/* ---- user requests: signal and restart ----------------------------------- */

int alloc_manager_signal(struct alloc_manager *m, struct alloc *a,
                         const char *task, const char *sig,
                         struct nc_error *err)
{
    nc_error_set(err, -ENOSYS, "not implemented yet");
    return -ENOSYS;
}

int alloc_manager_restart(struct alloc_manager *m, struct alloc *a,
                          const char *task, bool all_tasks,
                          struct nc_error *err)
{
    nc_error_set(err, -ENOSYS, "not implemented yet");
    return -ENOSYS;
}
