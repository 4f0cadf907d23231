/* exec.c - the exec and raw_exec drivers: each task runs under
 * `nomclient supervise` (supervisor.c), a detached process started here
 * that outlives the agent. exec isolates the task (chroot, cgroup limits,
 * capabilities as Nomad computes them, private PID and IPC namespaces,
 * the group's dns and hostname); raw_exec runs it as the agent's user on
 * the host.
 *
 * The handle of a task is its supervisor: watched through a pidfd, alive
 * while it holds the flock on <task>.lock (taken here and inherited, so a
 * restarted agent tells a live task from a dead one even when it was
 * killed between the spawn and the state write), its end recorded in
 * <task>.status.json. Those files live in the allocation's .nomclient/
 * dir, beside the task dirs, where tasks cannot see them. */
#include "client/drivers/driver.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/drivers/internal.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* fd the waiting supervisor reads the network's word on */
#define NET_WAIT_FD 4

extern const struct driver driver_exec, driver_raw_exec;

struct exec_handle {
    const struct driver_env *env;
    struct alloc_task *t;
    uv_poll_t *watch;   /* pidfd of the supervisor */
    uv_process_t *proc; /* the supervisor, when this agent spawned it */
    int go_fd;          /* the waiting task's pipe, or -1 */
    bool forwards;      /* the supervisor forwards signals (see signal) */
};

static bool isolated(const struct alloc_task *t)
{
    return driver_of(alloc_task_spec(t)) == &driver_exec;
}

static char *sup_path(const struct driver_env *env, const struct alloc_task *t,
                      const char *suffix)
{
    return xasprintf("%s/%s/.nomclient/%s.%s", env->alloc_root, t->alloc->id,
                     t->name, suffix);
}

static struct exec_handle *handle_of(const struct driver_env *env,
                                     struct alloc_task *t)
{
    struct exec_handle *h = t->handle;
    if (!h) {
        h = xcalloc(1, sizeof(*h));
        h->go_fd = -1;
        h->t = t;
        t->handle = h;
    }
    h->env = env;
    return h;
}

/* ---- the supervisor's watch ------------------------------------------ */

static void on_handle_closed(uv_handle_t *h) { free(h); }

static void watch_stop(struct exec_handle *h)
{
    if (h->watch) {
        int fd = -1;
        uv_fileno((uv_handle_t *)h->watch, &fd);
        uv_close((uv_handle_t *)h->watch, on_handle_closed);
        if (fd >= 0)
            close(fd);
        h->watch = NULL;
    }
}

/* Reads the status file the supervisor wrote and reports the end. */
static void report_exit(struct exec_handle *h)
{
    struct alloc_task *t = h->t;
    char *path = sup_path(h->env, t, "status.json");
    size_t len;
    char *txt = nc_read_file(path, &len, 1 << 16);
    free(path);
    json_t *st = txt ? json_loadb(txt, len, 0, NULL) : NULL;
    free(txt);
    struct driver_exit res = {
        .have_status = st != NULL,
        .exit_code =
            st ? (int)json_integer_value(json_object_get(st, "ExitCode")) : -1,
        .signal = st ? (int)json_integer_value(json_object_get(st, "Signal")) : 0,
        .failure = st ? json_string_value(json_object_get(st, "Err")) : NULL,
        .oom_killed = st && json_is_true(json_object_get(st, "OOMKilled")),
    };
    h->env->exited(t, &res);
    json_decref(st);
}

static void on_supervisor_gone(uv_poll_t *p, int status, int events)
{
    struct exec_handle *h = p->data;
    watch_stop(h);
    report_exit(h);
}

/* Watches a supervisor by pid; false when it is already gone. */
static bool watch_start(struct exec_handle *h, int pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return false;
    h->watch = xcalloc(1, sizeof(*h->watch));
    uv_poll_init(h->env->loop, h->watch, fd);
    h->watch->data = h;
    uv_poll_start(h->watch, UV_READABLE, on_supervisor_gone);
    return true;
}

static void on_process_exit(uv_process_t *p, int64_t status, int sig)
{
    /* reaped here; the pidfd watch reports the exit */
    struct exec_handle *h = p->data;
    if (h && h->proc == p)
        h->proc = NULL;
    uv_close((uv_handle_t *)p, on_handle_closed);
}

/* Forgets the spawned handle (the supervisor itself keeps running). */
static void proc_release(struct exec_handle *h)
{
    if (h->proc) {
        h->proc->data = NULL;
        uv_close((uv_handle_t *)h->proc, on_handle_closed);
        h->proc = NULL;
    }
}

/* Whether the supervisor of t still holds its lock; *pid gets its pid and
 * *forwards whether it forwards signals (what it wrote after the pid). */
static bool supervisor_alive(const struct driver_env *env,
                             const struct alloc_task *t, int *pid,
                             bool *forwards)
{
    char *path = sup_path(env, t, "lock");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    *pid = 0;
    *forwards = false;
    if (fd < 0)
        return false;
    bool alive = flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    char buf[64] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) {
        *pid = atoi(buf);
        *forwards = strstr(buf, SUPERVISOR_FORWARDS_MARK) != NULL;
    }
    close(fd);
    return alive && *pid > 0;
}

/* ---- the supervisor's spec ------------------------------------------- */

static char *config_string(const struct task *spec, const char *key)
{
    const char *s = json_string_value(json_object_get(spec->config, key));
    return s ? xstrdup(s) : NULL;
}

/* The group's volume requests mounted by the task's volume_mounts, with
 * the host paths the agent config gives them. */
static int add_mounts(const struct driver_env *env, const struct alloc *a,
                      const struct task *spec, struct supervisor_spec *s,
                      struct nc_error *err)
{
    const struct agent_config *cfg = env->cfg;
    const struct task_group *g = alloc_group(a);
    s->mounts = xcalloc(spec->nvolume_mounts + 1, sizeof(*s->mounts));
    for (size_t k = 0; k < spec->nvolume_mounts; k++) {
        const struct volume_mount *vm = &spec->volume_mounts[k];
        const struct volume_request *vr = NULL;
        for (size_t q = 0; g && q < g->nvolumes; q++)
            if (strcmp(g->volumes[q].name, vm->volume) == 0)
                vr = &g->volumes[q];
        const struct host_volume_config *hv = NULL;
        for (size_t q = 0; vr && q < cfg->client.nhost_volumes; q++)
            if (nc_streq(cfg->client.host_volumes[q].name, vr->source))
                hv = &cfg->client.host_volumes[q];
        if (!vr || !hv)
            return nc_error_set(err, -ENOENT, "volume_mount \"%s\": %s",
                                vm->volume,
                                !vr ? "no group volume of that name"
                                    : "the host volume is not declared in "
                                      "the agent config (client { "
                                      "host_volume ... })");
        struct supervisor_mount *sm = &s->mounts[s->nmounts++];
        sm->source = xstrdup(hv->path);
        sm->destination = xstrdup(vm->destination);
        sm->read_only = hv->read_only || vr->read_only || vm->read_only;
    }
    return 0;
}

/* exec: Nomad's default capabilities within allow_caps, less cap_drop,
 * plus cap_add (which must be allowed: -EPERM otherwise). */
static int add_caps(const struct agent_config *cfg, const struct task *spec,
                    struct supervisor_spec *s, struct nc_error *err)
{
    struct strlist add = {0}, drop = {0};
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(spec->config, "cap_add"), i, v)
        strlist_add(&add, json_string_value(v) ? json_string_value(v) : "");
    json_array_foreach(json_object_get(spec->config, "cap_drop"), i, v)
        strlist_add(&drop, json_string_value(v) ? json_string_value(v) : "");
    char msg[600];
    int r = caps_calculate(&cfg->client.exec_allow_caps, &add, &drop, &s->caps,
                           msg, sizeof(msg));
    strlist_free(&add);
    strlist_free(&drop);
    return r < 0 ? nc_error_set(err, r, "%s", msg) : 0;
}

/* Nomad's words for a mode that is neither (drivers/exec/driver.go) */
static int check_mode(const char *key, const char *v, char *msg, size_t msglen)
{
    if (nc_streq(v, "private") || nc_streq(v, "host"))
        return 0;
    snprintf(msg, msglen, "%s must be \"private\" or \"host\", got \"%s\"",
             key, v);
    return -EINVAL;
}

/* exec's pid_mode / ipc_mode: the task's, else the plugin's default
 * (Nomad's executor.IsolationMode); *private whether it is "private". */
static int isolation_mode(const struct task *spec, const char *key,
                          const char *plugin_default, bool *private_mode,
                          struct nc_error *err)
{
    json_t *v = json_object_get(spec->config, key);
    const char *mode = json_string_value(v);
    if (v && !json_is_string(v))
        return nc_error_set(err, -EINVAL,
                            "failed driver config validation: %s must be a "
                            "string",
                            key);
    if (!mode || !*mode)
        mode = plugin_default ? plugin_default : "private";
    char msg[256];
    if (check_mode(key, mode, msg, sizeof(msg)) < 0)
        return nc_error_set(err, -EINVAL, "failed driver config validation: %s",
                            msg);
    *private_mode = nc_streq(mode, "private");
    return 0;
}

/* A DNS name as Go's dns.IsDomainName takes it: labels of 1-63 letters,
 * digits, '_' or '-' (no '-' at either end), an optional final dot, 254
 * bytes at most. */
static bool domain_name_valid(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n == 0 || n > 254 || (n == 254 && s[n - 1] != '.'))
        return false;
    char last = '.';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (last == '.' || last == '-')
                return false;
            label = 0;
        } else if (c == '-') {
            if (last == '.')
                return false;
            label++;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '_') {
            label++;
        } else {
            return false;
        }
        if (label > 63)
            return false;
        last = c;
    }
    return last != '-' && !(n == 1 && last == '.');
}

/* The group network's dns block and hostname (what an exec task's
 * /etc/resolv.conf, /etc/hosts and UTS name become). */
static int add_network_names(const struct driver_env *env,
                             const struct alloc *a, struct supervisor_spec *s,
                             struct nc_error *err)
{
    const struct task_group *g = alloc_group(a);
    const struct network *nw = g && g->nnetworks ? &g->networks[0] : NULL;
    if (!nw)
        return 0;
    /* each a word of a resolv.conf line: nothing that would start another */
    const struct strlist *lists[] = {&nw->dns_servers, &nw->dns_searches,
                                     &nw->dns_options};
    static const char *const names[] = {"servers", "searches", "options"};
    for (size_t k = 0; k < NC_ARRAY_LEN(lists); k++)
        for (size_t i = 0; i < lists[k]->n; i++) {
            const char *w = lists[k]->items[i];
            unsigned char addr[sizeof(struct in6_addr)];
            bool ok = *w && !w[strcspn(w, " \t\r\n#;")];
            if (k == 0)
                ok = inet_pton(AF_INET, w, addr) == 1 ||
                     inet_pton(AF_INET6, w, addr) == 1;
            if (!ok)
                return nc_error_set(err, -EINVAL,
                                    "network dns %s: \"%s\" is not %s",
                                    names[k], w,
                                    k == 0 ? "an IP address" : "one word");
        }
    if (nw->dns_servers.n || nw->dns_searches.n || nw->dns_options.n) {
        s->dns = true;
        strlist_copy(&s->dns_servers, &nw->dns_servers);
        strlist_copy(&s->dns_searches, &nw->dns_searches);
        strlist_copy(&s->dns_options, &nw->dns_options);
    }
    if (!nw->hostname || !*nw->hostname)
        return 0;
    if (!a->network_mode || nc_streq(a->network_mode, "host"))
        return nc_error_set(err, -EINVAL,
                            "hostname cannot be set on task group using "
                            "\"%s\" networking mode",
                            a->network_mode ? a->network_mode : "host");
    s->hostname = alloc_interpolate(nw->hostname, &s->env, env->node);
    if (!s->hostname || !domain_name_valid(s->hostname))
        return nc_error_set(err, -EINVAL,
                            "network hostname \"%s\" is not a valid DNS name",
                            s->hostname ? s->hostname : nw->hostname);
    if (a->ip && *a->ip)
        s->hosts_address = xstrdup(a->ip);
    return 0;
}

/* The supervisor's spec for the task as JSON text (JSON_* flags), or
 * NULL with err set. */
static char *spec_text(const struct driver_env *env, struct alloc_task *t,
                       int wait_fd, size_t flags, struct nc_error *err)
{
    struct alloc *a = t->alloc;
    const struct task *spec = alloc_task_spec(t);
    if (!spec) {
        nc_error_set(err, -ENOENT, "task no longer in the job");
        return NULL;
    }
    bool exec = isolated(t);
    struct supervisor_spec s = {0};
    char *alloc_dir = xasprintf("%s/%s", env->alloc_root, a->id);
    char *txt = NULL;
    s.alloc_id = xstrdup(a->id);
    s.task = xstrdup(t->name);
    s.task_dir = xasprintf("%s/%s", alloc_dir, t->name);
    s.alloc_dir = xasprintf("%s/alloc", alloc_dir);
    s.status_file = sup_path(env, t, "status.json");
    s.log_dir = xasprintf("%s/alloc/logs", alloc_dir);
    s.chroot = exec;
    kv_copy(&s.chroot_env, &env->cfg->client.chroot_env);
    alloc_task_env(a, spec, env->node, s.alloc_dir, s.task_dir, exec, &s.env);
    char *cmd = config_string(spec, "command");
    s.command = alloc_interpolate(cmd, &s.env, env->node);
    free(cmd);
    size_t i;
    json_t *arg;
    json_array_foreach(json_object_get(spec->config, "args"), i, arg)
    {
        char *v = alloc_interpolate(json_string_value(arg), &s.env, env->node);
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
        if (add_caps(env->cfg, spec, &s, err) < 0 ||
            isolation_mode(spec, "pid_mode",
                           env->cfg->client.exec_default_pid_mode,
                           &s.pid_private, err) < 0 ||
            isolation_mode(spec, "ipc_mode",
                           env->cfg->client.exec_default_ipc_mode,
                           &s.ipc_private, err) < 0)
            goto out;
    }
    /* checked for raw_exec too; its supervisor applies none of it (no
     * chroot to put the files in, the host's hostname), as Nomad's */
    if (add_network_names(env, a, &s, err) < 0)
        goto out;
    s.logs_disabled = spec->logs.disabled;
    if (add_mounts(env, a, spec, &s, err) < 0)
        goto out;
    s.log_max_files = spec->logs.max_files;
    s.log_max_file_bytes = (int64_t)spec->logs.max_file_size_mb << 20;
    s.kill_signal = driver_signal_number(spec->kill_signal);
    if (s.kill_signal < 0)
        s.kill_signal = SIGTERM;
    s.kill_timeout_ns = spec->kill_timeout;
    if (!s.command || !*s.command) {
        nc_error_set(err, -EINVAL, "task config lacks \"command\"");
        goto out;
    }
    json_t *j = supervisor_spec_to_json(&s);
    txt = json_dumps(j, flags);
    json_decref(j);
out:
    supervisor_spec_free(&s);
    free(alloc_dir);
    return txt;
}

/* Writes the spec the supervisor starts from (or, once the network is
 * ready, the record of what the task was released with). */
static int store_spec(const struct driver_env *env, const struct alloc_task *t,
                      const char *txt, char **spec_path, struct nc_error *err)
{
    *spec_path = sup_path(env, t, "spec.json");
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

/* ---- operations -------------------------------------------------------- */

static void exec_task_files(const struct driver_env *env,
                            const struct alloc_task *t, struct strlist *files)
{
    for (int k = 0; k < 2; k++) {
        char *f = sup_path(env, t, k ? "lock" : "spec.json");
        strlist_add(files, f);
        free(f);
    }
}

static int exec_start(const struct driver_env *env, struct alloc_task *t,
                      bool wait_net, const char **event, struct nc_error *err)
{
    struct exec_handle *h = handle_of(env, t);
    *event = "Setup Failure";
    char *sup_dir = xasprintf("%s/%s/.nomclient", env->alloc_root, t->alloc->id);
    nc_mkdir_p(sup_dir, 0700);
    free(sup_dir);
    char *txt = spec_text(env, t, wait_net ? NET_WAIT_FD : -1, JSON_INDENT(2),
                          err);
    char *spec_path = NULL;
    int r = txt ? store_spec(env, t, txt, &spec_path, err)
                : (err->code ? err->code : -EINVAL);
    free(txt);
    if (r < 0) {
        /* a capability the driver does not allow, or a config it does not
         * take, is the driver's refusal */
        if (r == -EPERM ||
            nc_str_has_prefix(err->msg, "failed driver config validation"))
            *event = "Driver Failure";
        return r;
    }
    int go[2] = {-1, -1};
    if (wait_net && pipe2(go, O_CLOEXEC) < 0) {
        free(spec_path);
        return nc_error_set(err, -errno, "cannot create a pipe");
    }
    char *status = sup_path(env, t, "status.json");
    unlink(status);
    free(status);
    /* The lock is taken here and inherited: held for as long as the
     * supervisor lives, whatever happens to the agent meanwhile. */
    char *lock = sup_path(env, t, "lock");
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
        return nc_error_set(err, -EBUSY,
                            "supervisor lock is held: task already running?");
    }
    uv_process_t *proc = xcalloc(1, sizeof(*proc));
    char *args[] = {(char *)env->self_exe, "supervise", spec_path, NULL};
    uv_stdio_container_t stdio[NET_WAIT_FD + 1] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
        {.flags = UV_INHERIT_FD, .data.fd = lfd},
        {.flags = UV_INHERIT_FD, .data.fd = go[0]},
    };
    uv_process_options_t opts = {
        .file = env->self_exe,
        .args = args,
        .exit_cb = on_process_exit,
        .flags = UV_PROCESS_DETACHED,
        .stdio = stdio,
        .stdio_count = wait_net ? NET_WAIT_FD + 1 : NET_WAIT_FD,
    };
    r = uv_spawn(env->loop, proc, &opts);
    close(lfd);
    free(spec_path);
    if (wait_net)
        close(go[0]);
    if (r < 0) {
        if (wait_net)
            close(go[1]);
        free(proc);
        *event = "Driver Failure";
        return nc_error_set(err, r, "failed to start supervisor: %s",
                            uv_strerror(r));
    }
    t->supervisor_pid = proc->pid;
    proc->data = h;
    proc_release(h); /* a previous run's handle, if its exit is pending */
    h->proc = proc;
    h->forwards = true;
    uv_unref((uv_handle_t *)proc);
    watch_start(h, proc->pid);
    h->go_fd = wait_net ? go[1] : -1;
    return 0;
}

static int exec_release(const struct driver_env *env, struct alloc_task *t,
                        struct nc_error *err)
{
    struct exec_handle *h = handle_of(env, t);
    char *txt = spec_text(env, t, NET_WAIT_FD, JSON_COMPACT, err);
    /* the spec itself goes down the pipe, so the task waits for no file;
     * one that would not fit at once goes through the file ("g") */
    size_t len = txt ? strlen(txt) : 0;
    int cap = h->go_fd >= 0 ? fcntl(h->go_fd, F_GETPIPE_SZ) : -1;
    bool inline_spec = txt && cap > 0 && len < (size_t)cap;
    char *spec_path = NULL;
    bool sent = txt && h->go_fd >= 0 &&
                (inline_spec ? write(h->go_fd, txt, len) == (ssize_t)len
                             : store_spec(env, t, txt, &spec_path, err) == 0 &&
                                   write(h->go_fd, "g", 1) == 1);
    if (h->go_fd >= 0)
        close(h->go_fd);
    h->go_fd = -1;
    /* sent down the pipe, it goes to the file too, once the task is on its
     * way: the record of what the task was released with */
    struct nc_error werr = {0};
    if (sent && inline_spec && store_spec(env, t, txt, &spec_path, &werr) < 0)
        LOG_WARN("alloc", "%s", werr.msg);
    free(spec_path);
    free(txt);
    if (!sent && !err->msg[0])
        nc_error_set(err, -EPIPE, "cannot release the task");
    return sent ? 0 : (err->code ? err->code : -EPIPE);
}

static void exec_abort(struct alloc_task *t)
{
    struct exec_handle *h = t->handle;
    if (h && h->go_fd >= 0) {
        close(h->go_fd);
        h->go_fd = -1;
    }
}

static bool exec_recover(const struct driver_env *env, struct alloc_task *t,
                         bool ran)
{
    int pid;
    bool forwards;
    struct exec_handle *h = handle_of(env, t);
    if (supervisor_alive(env, t, &pid, &forwards)) {
        t->supervisor_pid = pid;
        h->forwards = forwards;
        if (watch_start(h, pid))
            return true;
    }
    if (ran)
        report_exit(h); /* what it recorded before it went */
    return false;
}

/* The supervisor takes SUPERVISOR_SIGNAL_FORWARD with the signal's number
 * as its value and passes that signal to the task. Supervisors started by
 * an older agent do not (and would die of it): they are refused. */
static int exec_signal(struct alloc_task *t, int sig, struct nc_error *err)
{
    struct exec_handle *h = t->handle;
    if (!h || t->supervisor_pid <= 0)
        return nc_error_set(err, -ESRCH, "Task not running");
    if (!h->forwards)
        return nc_error_set(err, -ENOTSUP,
                            "the task's supervisor was started by an older "
                            "nomclient that cannot forward signals; restart "
                            "the task first");
    union sigval v = {.sival_int = sig};
    if (sigqueue(t->supervisor_pid, SUPERVISOR_SIGNAL_FORWARD, v) < 0)
        return nc_error_set(err, -errno, "signal supervisor %d: %s",
                            t->supervisor_pid, strerror(errno));
    return 0;
}

/* The supervisor forwards a TERM as the task's kill_signal and sends
 * SIGKILL to the whole cgroup after kill_timeout, agent or not. */
static void exec_stop(struct alloc_task *t)
{
    if (t->supervisor_pid > 0)
        kill(t->supervisor_pid, SIGTERM);
}

/* Sums utime/stime and RSS of the processes in session `sid` (the
 * supervisor's: the task and everything it started). */
static void session_usage(int sid, struct driver_usage *st)
{
    memset(st, 0, sizeof(*st));
    DIR *d = opendir("/proc");
    if (!d)
        return;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (hz <= 0)
        hz = 100;
    struct dirent *e;
    while ((e = readdir(d))) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == sid)
            continue; /* the supervisor itself is ours, not the task's */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        size_t len;
        char *txt = nc_read_file(path, &len, 4096);
        const char *p = txt ? strrchr(txt, ')') : NULL;
        /* after "pid (comm)": state ppid pgrp session ... utime(14) stime(15)
         * ... rss(24) */
        char state;
        int ppid, pgrp, session;
        unsigned long long utime, stime;
        long long rss;
        if (p && sscanf(p + 2,
                        "%c %d %d %d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                        "%*d %*d %*d %*d %*d %*d %*u %*u %lld",
                        &state, &ppid, &pgrp, &session, &utime, &stime,
                        &rss) == 7 &&
            session == sid) {
            st->user_ns += utime * (1000000000ULL / (unsigned long long)hz);
            st->system_ns += stime * (1000000000ULL / (unsigned long long)hz);
            st->mem_rss += (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)page;
            st->pids++;
        }
        free(txt);
    }
    closedir(d);
    st->cpu_ns = st->user_ns + st->system_ns;
    st->mem_usage = st->mem_rss;
    st->have_cpu = st->have_mem = st->pids > 0;
}

/* exec: the task's cgroup; raw_exec (no cgroup): its session's processes. */
static int exec_stats(const struct driver_env *env, const struct alloc_task *t,
                      struct driver_usage *u)
{
    char *cg = xasprintf("%s.%s", t->alloc->id, t->name);
    int r = cgroup_read_stats(cg, u);
    free(cg);
    if (r < 0 && t->supervisor_pid > 0) {
        session_usage(t->supervisor_pid, u);
        r = 0;
    }
    return r;
}

static void exec_destroy(const struct driver_env *env, struct alloc_task *t)
{
    char *status = sup_path(env, t, "status.json");
    unlink(status);
    free(status);
}

static void exec_detach(struct alloc_task *t)
{
    struct exec_handle *h = t->handle;
    if (!h)
        return;
    watch_stop(h);
    proc_release(h);
    if (h->go_fd >= 0)
        close(h->go_fd);
    free(h);
    t->handle = NULL;
}

/* ---- commands inside a running task (script checks) ------------------ */

/* A command runs as a child of the agent, made without blocking the loop
 * and without copying the agent's memory: a first clone (CLONE_VM |
 * CLONE_VFORK, its own stack, signals blocked) enters the task's
 * namespaces that differ from the agent's, through /proc/<task>/ns/<kind>
 * opened beforehand, and its root (/proc/<task>/root); since a PID
 * namespace applies to children only, it clones the command with
 * CLONE_PARENT, so the command is in every namespace of the task and
 * still the agent's child (reaped here through a pidfd). The command
 * joins the task's cgroups, takes its credentials and capabilities as
 * /proc/<task>/status shows them, gets its own process group (killed on
 * timeout or cancel), and execs with the task's environment. The
 * children only make system calls (raw ones for the credentials: glibc's
 * wrappers would signal the agent's threads) and write what failed into
 * the plan they share with the agent. The task's process is the
 * supervisor's first child (/proc/<sup>/task/<sup>/children). */

#define EXEC_STACK_SIZE (64 * 1024)
#define EXEC_EOF_WAIT_MS 100 /* output still open after the exit */

struct task_exec {
    struct driver_exec base;
    driver_exec_done_fn done;
    void *arg;
    int pid, pidfd;
    uv_poll_t watch;
    uv_pipe_t out;
    uv_timer_t timer;
    int open_handles;
    bool exited, eof, timed_out, cancelled, reported;
    int wstatus;
    char ring[DRIVER_EXEC_OUTPUT_MAX];
    size_t total; /* bytes read; the ring holds the last of them */
    char rbuf[4096];
};

static void __attribute__((noreturn)) plan_fail(struct exec_plan *p,
                                                const char *step)
{
    p->err = errno;
    p->step = step;
    _exit(127);
}

__attribute__((no_sanitize("address", "undefined"))) static int
exec_stage2(void *arg)
{
    struct exec_plan *p = arg;
    /* a terminal's command leads a session of its own, the terminal its
     * controlling one; otherwise a process group is enough to kill */
    if (p->tty) {
        if (setsid() < 0 || ioctl(p->stdio[0], TIOCSCTTY, 0) < 0)
            plan_fail(p, "make the terminal the controlling one");
    } else {
        setpgid(0, 0);
    }
    for (int i = 0; i < p->ncg; i++)
        if (write(p->cg_fd[i], "0", 1) < 0)
            plan_fail(p, "join the task's cgroup");
    if (dup2(p->stdio[0], 0) < 0 || dup2(p->stdio[1], 1) < 0 ||
        dup2(p->stdio[2], 2) < 0)
        plan_fail(p, "redirect output");
    if (p->set_creds) {
        for (int c = 0; c < 64; c++)
            if (!(p->cap_bnd >> c & 1) &&
                prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
                plan_fail(p, "drop a bounding capability");
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
        if (syscall(SYS_setgroups, p->ngroups, p->groups) < 0 ||
            syscall(SYS_setresgid, p->gid[0], p->gid[1], p->gid[2]) < 0 ||
            syscall(SYS_setresuid, p->uid[0], p->uid[1], p->uid[2]) < 0)
            plan_fail(p, "switch to the task's user");
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2] = {
            {(uint32_t)p->cap_eff, (uint32_t)p->cap_prm, (uint32_t)p->cap_inh},
            {(uint32_t)(p->cap_eff >> 32), (uint32_t)(p->cap_prm >> 32),
             (uint32_t)(p->cap_inh >> 32)},
        };
        if (syscall(SYS_capset, &hdr, data) < 0)
            plan_fail(p, "set the task's capabilities");
        for (int c = 0; c < 64; c++)
            if (p->cap_amb >> c & 1)
                prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
        if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            plan_fail(p, "set no_new_privs");
    }
    if (chdir(p->cwd) < 0)
        plan_fail(p, "chdir");
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    const char *cmd = p->argv[0];
    if (strchr(cmd, '/')) {
        execve(cmd, p->argv, p->envp);
        plan_fail(p, "exec");
    }
    /* PATH search with a stack buffer: nothing allocates here */
    char full[4096];
    int saved = ENOENT;
    size_t clen = strlen(cmd);
    for (const char *d = p->path; *d;) {
        const char *end = strchr(d, ':');
        size_t dlen = end ? (size_t)(end - d) : strlen(d);
        if (dlen + clen + 2 <= sizeof(full)) {
            memcpy(full, d, dlen);
            full[dlen] = '/';
            memcpy(full + dlen + 1, cmd, clen + 1);
            execve(dlen ? full : cmd, p->argv, p->envp);
            if (errno != ENOENT && errno != ENOTDIR)
                saved = errno;
        }
        if (!end)
            break;
        d = end + 1;
    }
    errno = saved;
    plan_fail(p, "exec");
}

__attribute__((no_sanitize("address", "undefined"))) static int
exec_stage1(void *arg)
{
    struct exec_plan *p = arg;
    for (int i = 0; i < p->nns; i++)
        if (setns(p->ns_fd[i], p->ns_type[i]) < 0)
            plan_fail(p, "enter the task's namespaces");
    if (p->root_fd >= 0 && (fchdir(p->root_fd) < 0 || chroot(".") < 0))
        plan_fail(p, "enter the task's root");
    int pid = clone(exec_stage2, p->stack2 + EXEC_STACK_SIZE,
                    CLONE_VM | CLONE_VFORK | CLONE_PARENT, p);
    if (pid < 0)
        plan_fail(p, "start the command");
    p->pid = pid;
    _exit(0);
}

static int first_child(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
    size_t len;
    char *txt = nc_read_file(path, &len, 4096);
    int child = txt ? atoi(txt) : 0;
    free(txt);
    return child;
}

/* The task's process: the supervisor's first child, or, with a private
 * PID namespace, the first child of the task's init (the init has the
 * task's credentials, but the task is what the command joins). */
static int task_pid_of(int supervisor)
{
    int pid = first_child(supervisor);
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    size_t len;
    char *comm = pid > 0 ? nc_read_file(path, &len, 64) : NULL;
    bool init = comm && strncmp(comm, "nomclient-init", 14) == 0;
    free(comm);
    return init ? first_child(pid) : pid;
}

/* Reads "Key:\t..." of /proc/<pid>/status into out (whole status text). */
static const char *status_field(const char *txt, const char *key)
{
    size_t kl = strlen(key);
    for (const char *l = txt; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
        if (strncmp(l, key, kl) == 0 && l[kl] == ':')
            return l + kl + 1;
    return NULL;
}

static uint64_t status_hex(const char *txt, const char *key)
{
    const char *v = status_field(txt, key);
    return v ? strtoull(v, NULL, 16) : 0;
}

/* Credentials and capabilities: the task's, when they differ from ours. */
static int plan_creds(struct exec_plan *p, int pid, struct nc_error *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    size_t len, slen;
    char *task = nc_read_file(path, &len, 1 << 16);
    char *self = nc_read_file("/proc/self/status", &slen, 1 << 16);
    const char *keys[] = {"Uid", "Gid", "Groups", "CapInh", "CapPrm",
                          "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"};
    int r = 0;
    if (!task || !self) {
        r = nc_error_set(err, -ESRCH, "read %s: the task is gone", path);
        goto out;
    }
    for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++) {
        const char *a = status_field(task, keys[i]);
        const char *b = status_field(self, keys[i]);
        size_t al = a ? strcspn(a, "\n") : 0, bl = b ? strcspn(b, "\n") : 0;
        if (al != bl || (a && b && memcmp(a, b, al) != 0))
            p->set_creds = true;
    }
    if (!p->set_creds)
        goto out;
    unsigned long u[3] = {0}, g[3] = {0};
    const char *uv = status_field(task, "Uid"), *gv = status_field(task, "Gid");
    if (!uv || !gv || sscanf(uv, "%lu %lu %lu", &u[0], &u[1], &u[2]) != 3 ||
        sscanf(gv, "%lu %lu %lu", &g[0], &g[1], &g[2]) != 3) {
        r = nc_error_set(err, -EIO, "%s: no Uid/Gid lines", path);
        goto out;
    }
    for (int i = 0; i < 3; i++) {
        p->uid[i] = (uid_t)u[i];
        p->gid[i] = (gid_t)g[i];
    }
    const char *gs = status_field(task, "Groups");
    while (gs && *gs && *gs != '\n' && p->ngroups < EXEC_MAX_GROUPS) {
        char *end;
        unsigned long v = strtoul(gs, &end, 10);
        if (end == gs) {
            if (*gs == ' ' || *gs == '\t') {
                gs++;
                continue;
            }
            break;
        }
        p->groups[p->ngroups++] = (gid_t)v;
        gs = end;
    }
    p->cap_bnd = status_hex(task, "CapBnd");
    p->cap_eff = status_hex(task, "CapEff");
    p->cap_prm = status_hex(task, "CapPrm");
    p->cap_inh = status_hex(task, "CapInh");
    p->cap_amb = status_hex(task, "CapAmb");
    const char *nnp = status_field(task, "NoNewPrivs");
    p->no_new_privs = nnp && atoi(nnp) == 1;
out:
    free(task);
    free(self);
    return r;
}

/* The namespaces of the task that are not the agent's, and its root. */
static int plan_namespaces(struct exec_plan *p, int pid, struct nc_error *err)
{
    static const struct {
        const char *name;
        int type;
    } kinds[] = {{"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},
                 {"uts", CLONE_NEWUTS},   {"pid", CLONE_NEWPID},
                 {"cgroup", CLONE_NEWCGROUP}, {"mnt", CLONE_NEWNS}};
    char path[64];
    for (size_t i = 0; i < NC_ARRAY_LEN(kinds); i++) {
        struct stat theirs, ours;
        snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kinds[i].name);
        if (stat(path, &theirs) < 0) {
            if (errno == ENOENT && kill(pid, 0) == 0)
                continue; /* a kind this kernel lacks */
            return nc_error_set(err, -errno, "%s: %s", path, strerror(errno));
        }
        char self[64];
        snprintf(self, sizeof(self), "/proc/self/ns/%s", kinds[i].name);
        if (stat(self, &ours) == 0 && ours.st_ino == theirs.st_ino &&
            ours.st_dev == theirs.st_dev)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return nc_error_set(err, -errno, "open %s: %s", path,
                                strerror(errno));
        p->ns_fd[p->nns] = fd;
        p->ns_type[p->nns++] = kinds[i].type;
    }
    snprintf(path, sizeof(path), "/proc/%d/root", pid);
    struct stat theirs, ours;
    bool mnt = p->nns && p->ns_type[p->nns - 1] == CLONE_NEWNS;
    if (stat(path, &theirs) == 0 && stat("/", &ours) == 0 &&
        (mnt || theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev)) {
        p->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (p->root_fd < 0)
            return nc_error_set(err, -errno, "open %s: %s", path,
                                strerror(errno));
    }
    return 0;
}

/* The cgroup.procs files of the task's cgroups that are not the agent's. */
static void plan_cgroups(struct exec_plan *p, int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
    size_t len, slen;
    char *task = nc_read_file(path, &len, 1 << 16);
    char *self = nc_read_file("/proc/self/cgroup", &slen, 1 << 16);
    bool v2_root = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    for (char *l = task, *next; l && *l && p->ncg < EXEC_MAX_CG; l = next) {
        next = strchr(l, '\n');
        if (next)
            *next++ = '\0';
        if (self && strstr(self, l))
            continue; /* the same line: the agent's cgroup too */
        char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrl = c1 + 1, *cg = c2 + 1;
        if (strncmp(ctrl, "name=", 5) == 0)
            ctrl += 5;
        char *procs = !*ctrl ? xasprintf("/sys/fs/cgroup%s%s/cgroup.procs",
                                         v2_root ? "" : "/unified", cg)
                             : xasprintf("/sys/fs/cgroup/%s%s/cgroup.procs",
                                         ctrl, cg);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        free(procs);
        if (fd >= 0)
            p->cg_fd[p->ncg++] = fd;
    }
    free(task);
    free(self);
}

static void plan_close(struct exec_plan *p)
{
    for (int i = 0; i < p->nns; i++)
        close(p->ns_fd[i]);
    for (int i = 0; i < p->ncg; i++)
        close(p->cg_fd[i]);
    if (p->root_fd >= 0)
        close(p->root_fd);
    if (p->null_fd >= 0)
        close(p->null_fd);
}

int exec_plan_spawn(struct exec_plan *p, struct nc_error *err)
{
    bool enter = p->nns || p->root_fd >= 0;
    char *stacks = mmap(NULL, 2 * EXEC_STACK_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stacks == MAP_FAILED)
        return nc_error_set(err, -errno, "mmap: %s", strerror(errno));
    p->stack2 = stacks + EXEC_STACK_SIZE;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pid = enter ? clone(exec_stage1, stacks + EXEC_STACK_SIZE,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, p)
                    : clone(exec_stage2, p->stack2 + EXEC_STACK_SIZE,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, p);
    int clone_errno = errno;
    if (pid > 0 && enter) {
        /* the first stage has exited (the vfork ended with it) */
        int st;
        while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
            ;
        pid = p->pid;
    } else if (pid > 0) {
        p->pid = pid;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stacks, 2 * EXEC_STACK_SIZE);
    if (pid <= 0 && !p->step)
        return nc_error_set(err, -clone_errno, "clone: %s",
                            strerror(clone_errno));
    if (p->step) {
        /* the command failed before it ran: reap it, say why */
        if (pid > 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        int e = p->err ? p->err : EIO;
        if (strcmp((const char *)p->step, "exec") == 0 && e == ENOENT)
            return nc_error_set(err, -ENOENT,
                                "exec: \"%s\": executable file not found in "
                                "$PATH",
                                p->argv[0]);
        return nc_error_set(err, -e, "%s: %s", (const char *)p->step,
                            strerror(e));
    }
    return pid;
}

static void on_exec_closed(uv_handle_t *h)
{
    struct task_exec *x = h->data;
    if (--x->open_handles == 0)
        free(x);
}

static void exec_run_close(struct task_exec *x)
{
    uv_close((uv_handle_t *)&x->watch, on_exec_closed);
    close(x->pidfd);
    if (!uv_is_closing((uv_handle_t *)&x->out))
        uv_close((uv_handle_t *)&x->out, on_exec_closed);
    uv_close((uv_handle_t *)&x->timer, on_exec_closed);
}

/* Reports once the command exited and its output ended (or after a short
 * wait for a background process that keeps the output open). */
static void exec_run_report(struct task_exec *x, bool force)
{
    if (x->reported || !x->exited || (!x->eof && !force))
        return;
    x->reported = true;
    kill(-x->pid, SIGKILL); /* what the command left in its group */
    if (!x->cancelled) {
        char out[DRIVER_EXEC_OUTPUT_MAX + 1];
        size_t n = x->total < sizeof(x->ring) ? x->total : sizeof(x->ring);
        size_t start = x->total < sizeof(x->ring) ? 0
                                                  : x->total % sizeof(x->ring);
        memcpy(out, x->ring + start, n - start);
        memcpy(out + (n - start), x->ring, start);
        out[n] = '\0';
        int code = WIFEXITED(x->wstatus) ? WEXITSTATUS(x->wstatus) : -1;
        int sig = WIFSIGNALED(x->wstatus) ? WTERMSIG(x->wstatus) : 0;
        if (x->timed_out)
            code = -1;
        x->done(x->arg, code, sig, x->timed_out, out, n, NULL);
    }
    exec_run_close(x);
}

static void on_exec_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct task_exec *x = s->data;
    for (ssize_t i = 0; i < n; i++)
        x->ring[x->total++ % sizeof(x->ring)] = buf->base[i];
    if (n < 0) {
        x->eof = true;
        uv_close((uv_handle_t *)&x->out, on_exec_closed);
        exec_run_report(x, false);
    }
}

static void on_exec_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct task_exec *x = h->data;
    *buf = uv_buf_init(x->rbuf, sizeof(x->rbuf));
}

static void on_exec_timer(uv_timer_t *t)
{
    struct task_exec *x = t->data;
    if (x->exited) {
        exec_run_report(x, true); /* output held open after the exit */
        return;
    }
    x->timed_out = true;
    kill(-x->pid, SIGKILL);
}

static void on_exec_exit(uv_poll_t *w, int status, int events)
{
    struct task_exec *x = w->data;
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)x->pid, &si, WEXITED | WNOHANG) < 0 ||
        si.si_pid == 0)
        return;
    uv_poll_stop(w);
    x->exited = true;
    x->wstatus = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
                                          : (si.si_status & 0x7f);
    if (!x->eof && !x->reported)
        uv_timer_start(&x->timer, on_exec_timer, EXEC_EOF_WAIT_MS, 0);
    exec_run_report(x, false);
}

static void exec_run_cancel(struct driver_exec *base)
{
    struct task_exec *x = (struct task_exec *)base;
    x->cancelled = true;
    if (!x->exited)
        kill(-x->pid, SIGKILL); /* reaped by on_exec_exit, then freed */
    else
        exec_run_report(x, true);
}

int exec_plan_prepare(const struct driver_env *env, struct alloc_task *t,
                      char *const argv[], bool interpolate,
                      struct exec_plan *p, struct exec_cmd *cmd,
                      struct nc_error *err)
{
    memset(p, 0, sizeof(*p));
    memset(cmd, 0, sizeof(*cmd));
    p->root_fd = p->null_fd = -1;
    for (int i = 0; i < 3; i++)
        p->stdio[i] = -1;
    const struct task *spec = alloc_task_spec(t);
    int task_pid = t->supervisor_pid > 0 ? task_pid_of(t->supervisor_pid) : 0;
    if (!spec || task_pid <= 0 || !nc_streq(t->state, "running"))
        return nc_error_set(err, -ESRCH, "task \"%s\" is not running",
                            t->name);
    if (!argv || !argv[0] || !*argv[0])
        return nc_error_set(err, -EINVAL, "no command");
    bool exec = isolated(t);
    cmd->alloc_dir = xasprintf("%s/%s/alloc", env->alloc_root, t->alloc->id);
    cmd->task_dir = xasprintf("%s/%s/%s", env->alloc_root, t->alloc->id,
                              t->name);
    alloc_task_env(t->alloc, spec, env->node, cmd->alloc_dir, cmd->task_dir,
                   exec, &cmd->env);
    if (!kv_get(&cmd->env, "PATH"))
        kv_set(&cmd->env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                  "/usr/bin:/sbin:/bin");
    while (argv[cmd->argc])
        cmd->argc++;
    cmd->args = xcalloc(cmd->argc + 1, sizeof(*cmd->args));
    for (size_t i = 0; i < cmd->argc; i++) {
        char *v = interpolate
                      ? alloc_interpolate(argv[i], &cmd->env, env->node)
                      : xstrdup(argv[i]);
        cmd->args[i] = v ? v : xstrdup("");
    }
    cmd->envp = xcalloc(cmd->env.n + 1, sizeof(*cmd->envp));
    for (size_t i = 0; i < cmd->env.n; i++)
        cmd->envp[i] = xasprintf("%s=%s", cmd->env.items[i].key,
                                 cmd->env.items[i].value);
    p->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    p->cwd = exec ? "/" : cmd->task_dir;
    p->argv = cmd->args;
    p->envp = cmd->envp;
    p->path = kv_get(&cmd->env, "PATH");
    int r = plan_namespaces(p, task_pid, err);
    if (r == 0)
        r = plan_creds(p, task_pid, err);
    if (r == 0) {
        plan_cgroups(p, task_pid);
        if (p->null_fd < 0)
            r = nc_error_set(err, -errno, "open /dev/null: %s",
                             strerror(errno));
    }
    return r;
}

void exec_plan_release(struct exec_plan *p, struct exec_cmd *cmd)
{
    plan_close(p);
    for (size_t i = 0; cmd->args && i < cmd->argc; i++)
        free(cmd->args[i]);
    free(cmd->args);
    for (size_t i = 0; cmd->envp && i < cmd->env.n; i++)
        free(cmd->envp[i]);
    free(cmd->envp);
    kv_free(&cmd->env);
    free(cmd->alloc_dir);
    free(cmd->task_dir);
    memset(cmd, 0, sizeof(*cmd));
}

static int exec_exec(const struct driver_env *env, struct alloc_task *t,
                     char *const argv[], int64_t timeout_ns,
                     driver_exec_done_fn done, void *arg,
                     struct driver_exec **out, struct nc_error *err)
{
    *out = NULL;
    struct exec_plan p;
    struct exec_cmd cmd;
    int pipefd[2] = {-1, -1};
    struct task_exec *x = NULL;
    int r = exec_plan_prepare(env, t, argv, true, &p, &cmd, err);
    if (r == 0 && pipe2(pipefd, O_CLOEXEC) < 0)
        r = nc_error_set(err, -errno, "pipe: %s", strerror(errno));
    if (r == 0) {
        p.stdio[0] = p.null_fd;
        p.stdio[1] = p.stdio[2] = pipefd[1];
        r = exec_plan_spawn(&p, err);
    }
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    int pidfd = r > 0 ? (int)syscall(SYS_pidfd_open, r, 0) : -1;
    if (r > 0 && pidfd < 0) {
        kill(-r, SIGKILL);
        waitpid(r, NULL, 0);
        r = nc_error_set(err, -errno, "pidfd_open: %s", strerror(errno));
    }
    if (r > 0) {
        x = xcalloc(1, sizeof(*x));
        x->base.cancel = exec_run_cancel;
        x->done = done;
        x->arg = arg;
        x->pid = r;
        x->pidfd = pidfd;
        uv_poll_init(env->loop, &x->watch, pidfd);
        uv_pipe_init(env->loop, &x->out, 0);
        uv_pipe_open(&x->out, pipefd[0]);
        pipefd[0] = -1;
        uv_timer_init(env->loop, &x->timer);
        x->watch.data = x->out.data = x->timer.data = x;
        x->open_handles = 3;
        uv_poll_start(&x->watch, UV_READABLE, on_exec_exit);
        uv_read_start((uv_stream_t *)&x->out, on_exec_alloc, on_exec_read);
        uint64_t ms = timeout_ns > 0 ? (uint64_t)(timeout_ns / 1000000) : 0;
        uv_timer_start(&x->timer, on_exec_timer, ms ? ms : 1, 0);
        *out = &x->base;
        r = 0;
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    exec_plan_release(&p, &cmd);
    return r;
}

/* ---- leftovers ---------------------------------------------------------- */

struct leftover_scan {
    driver_owned_fn owned;
    void *arg;
    json_t *list;
};

static void on_cgroup(const char *name, void *arg)
{
    struct leftover_scan *ls = arg;
    const char *dot = strchr(name, '.');
    char *id = dot ? xstrndup(name, (size_t)(dot - name)) : xstrdup(name);
    if (!ls->owned(id, dot ? dot + 1 : NULL, ls->arg))
        json_array_append_new(ls->list, json_string(name));
    free(id);
}

/* Supervisors whose spec is under the alloc root but whose task no
 * allocation runs. */
static void scan_supervisors(const struct driver_env *env, driver_owned_fn owned,
                             void *arg, bool clean, json_t *sups)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    char *prefix = xasprintf("%s/", env->alloc_root);
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
            if (!owned(id, tname, arg)) {
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
}

/* Shared by exec and raw_exec (their supervisors and cgroups look alike):
 * only exec's entry reports, so nothing is listed twice. */
static void exec_leftovers(const struct driver_env *env, driver_owned_fn owned,
                           void *arg, bool clean, json_t *out)
{
    json_t *cgroups = json_array(), *sups = json_array();
    struct leftover_scan ls = {owned, arg, cgroups};
    cgroup_list(on_cgroup, &ls);
    scan_supervisors(env, owned, arg, clean, sups);
    if (clean) {
        size_t i;
        json_t *v;
        json_array_foreach(cgroups, i, v)
            cgroup_remove(json_string_value(v));
    }
    json_object_set_new(out, "Cgroups", cgroups);
    json_object_set_new(out, "Supervisors", sups);
}

/* ---- fingerprint and config --------------------------------------------- */

/* exec needs root (chroot, namespaces, cgroups) */
static void exec_fingerprint(const struct driver *d,
                             const struct agent_config *cfg, struct node *n)
{
    bool root = geteuid() == 0;
    node_add_driver(n, d->name, root, root,
               root ? "Healthy" : "exec driver must run as root");
}

static void raw_exec_fingerprint(const struct driver *d,
                                 const struct agent_config *cfg, struct node *n)
{
    bool on = cfg->client.raw_exec_enabled;
    node_add_driver(n, d->name, on, on, on ? "Healthy" : "disabled");
}

/* exec's allow_caps: Nomad's default set */
static void exec_config_defaults(struct agent_config *cfg, bool dev)
{
    for (const char *const *cap = caps_nomad_defaults; *cap; cap++)
        strlist_add(&cfg->client.exec_allow_caps, *cap);
    free(cfg->client.exec_default_pid_mode);
    free(cfg->client.exec_default_ipc_mode);
    cfg->client.exec_default_pid_mode = xstrdup("private");
    cfg->client.exec_default_ipc_mode = xstrdup("private");
}

/* raw_exec: off unless configured, on in dev mode (as `nomad agent -dev`) */
static void raw_exec_config_defaults(struct agent_config *cfg, bool dev)
{
    cfg->client.raw_exec_enabled = dev;
}

static int check_default_pid_mode(const char *v, char *msg, size_t msglen)
{
    return check_mode("default_pid_mode", v, msg, msglen);
}

static int check_default_ipc_mode(const char *v, char *msg, size_t msglen)
{
    return check_mode("default_ipc_mode", v, msg, msglen);
}

static const struct config_key exec_keys[] = {
    {"allow_caps", CONFIG_KEY_STRLIST, offsetof(struct agent_config,
                                                client.exec_allow_caps),
     caps_check_name},
    {"default_pid_mode", CONFIG_KEY_STRING,
     offsetof(struct agent_config, client.exec_default_pid_mode),
     check_default_pid_mode},
    {"default_ipc_mode", CONFIG_KEY_STRING,
     offsetof(struct agent_config, client.exec_default_ipc_mode),
     check_default_ipc_mode},
    {"no_pivot_root", CONFIG_KEY_IGNORED_BOOL, 0, NULL},
};

static const struct config_key raw_exec_keys[] = {
    {"enabled", CONFIG_KEY_BOOL,
     offsetof(struct agent_config, client.raw_exec_enabled), NULL},
    {"no_cgroups", CONFIG_KEY_IGNORED_BOOL, 0, NULL},
};

#define EXEC_OPS                                                              \
    .task_files = exec_task_files, .start = exec_start,                      \
    .release = exec_release, .abort = exec_abort, .recover = exec_recover,   \
    .signal = exec_signal, .stop = exec_stop, .stats = exec_stats,           \
    .destroy = exec_destroy, .exec = exec_exec, .detach = exec_detach,     \
    .exec_session = exec_session_start

const struct driver driver_exec = {
    .name = "exec",
    .fingerprint = exec_fingerprint,
    .config_defaults = exec_config_defaults,
    .plugin_keys = exec_keys,
    .nplugin_keys = NC_ARRAY_LEN(exec_keys),
    .leftovers = exec_leftovers,
    EXEC_OPS,
};

const struct driver driver_raw_exec = {
    .name = "raw_exec",
    .fingerprint = raw_exec_fingerprint,
    .config_defaults = raw_exec_config_defaults,
    .plugin_keys = raw_exec_keys,
    .nplugin_keys = NC_ARRAY_LEN(raw_exec_keys),
    .leftovers = NULL,
    .no_fs_isolation = true,
    EXEC_OPS,
};
