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
#include <sys/file.h>
#include <sys/syscall.h>
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

static int check_cap(const char *name, char *msg, size_t msglen)
{
    uint64_t mask;
    if (caps_parse(name, &mask) == 0)
        return 0;
    snprintf(msg, msglen,
             "unknown capability \"%s\" (names as in capabilities(7), with "
             "or without CAP_, or \"all\")",
             name);
    return -EINVAL;
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
     check_cap},
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
    .destroy = exec_destroy, .exec = NULL, .detach = exec_detach

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
    EXEC_OPS,
};
