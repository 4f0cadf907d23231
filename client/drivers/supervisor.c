/* supervisor.c - see client/drivers/internal.h. */
#include "client/drivers/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/drivers/logfile.h"
#include "volumes/volumes.h"

/* How much nicer than it was started a supervisor started beside its
 * allocation's network set-up prepares the task (cgroup, mounts, chroot,
 * volumes); base_nice is restored once that is done. */
#define PREPARE_NICE 10
static int base_nice;

/* ---- spec (de)serialisation ---------------------------------------- */

static char *jdup(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? xstrdup(s) : NULL;
}

static void strlist_from_json(struct strlist *l, const json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v))
            strlist_add(l, json_string_value(v));
    }
}

static void kv_from_json(struct kvlist *l, const json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (json_is_string(v))
            kv_set(l, k, json_string_value(v));
    }
}

int supervisor_spec_from_json(const json_t *j, struct supervisor_spec *s,
                              struct nc_error *err)
{
    memset(s, 0, sizeof(*s));
    if (!json_is_object(j))
        return nc_error_set(err, -EINVAL, "spec is not a JSON object");
    s->alloc_id = jdup(j, "AllocID");
    s->task = jdup(j, "Task");
    s->command = jdup(j, "Command");
    strlist_from_json(&s->args, json_object_get(j, "Args"));
    kv_from_json(&s->env, json_object_get(j, "Env"));
    s->user = jdup(j, "User");
    s->task_dir = jdup(j, "TaskDir");
    s->alloc_dir = jdup(j, "AllocDir");
    s->status_file = jdup(j, "StatusFile");
    s->chroot = json_is_true(json_object_get(j, "Chroot"));
    kv_from_json(&s->chroot_env, json_object_get(j, "ChrootEnv"));
    s->netns = jdup(j, "NetNS");
    json_t *wfd = json_object_get(j, "WaitFd");
    s->wait_fd = json_is_integer(wfd) ? (int)json_integer_value(wfd) : -1;
    json_t *mounts = json_object_get(j, "Mounts");
    s->nmounts = json_array_size(mounts);
    s->mounts = xcalloc(s->nmounts ? s->nmounts : 1, sizeof(*s->mounts));
    for (size_t i = 0; i < s->nmounts; i++) {
        json_t *m = json_array_get(mounts, i);
        s->mounts[i].source = jdup(m, "Source");
        s->mounts[i].destination = jdup(m, "Destination");
        s->mounts[i].read_only = json_is_true(json_object_get(m, "ReadOnly"));
        if (!s->mounts[i].source || !s->mounts[i].destination)
            return nc_error_set(err, -EINVAL, "mount %zu lacks Source or "
                                              "Destination", i);
    }
    s->cgroup = jdup(j, "Cgroup");
    s->cpu_shares = (int)json_integer_value(json_object_get(j, "CPUShares"));
    s->memory_mb = json_integer_value(json_object_get(j, "MemoryMB"));
    s->memory_max_mb = json_integer_value(json_object_get(j, "MemoryMaxMB"));
    strlist_from_json(&s->caps, json_object_get(j, "Capabilities"));
    s->log_dir = jdup(j, "LogDir");
    s->log_max_files = (int)json_integer_value(json_object_get(j, "LogMaxFiles"));
    s->log_max_file_bytes =
        json_integer_value(json_object_get(j, "LogMaxFileBytes"));
    s->kill_signal = (int)json_integer_value(json_object_get(j, "KillSignal"));
    s->kill_timeout_ns = json_integer_value(json_object_get(j, "KillTimeout"));
    s->pid_private =
        nc_streq(json_string_value(json_object_get(j, "PidMode")), "private");
    s->ipc_private =
        nc_streq(json_string_value(json_object_get(j, "IpcMode")), "private");
    s->logs_disabled = json_is_true(json_object_get(j, "LogsDisabled"));
    if (!s->chroot) /* raw_exec runs on the host, as Nomad's */
        s->pid_private = s->ipc_private = false;
    s->hostname = s->chroot ? jdup(j, "Hostname") : NULL;
    s->hosts_address = jdup(j, "HostsAddress");
    json_t *dns = json_object_get(j, "DNS");
    s->dns = json_is_object(dns);
    strlist_from_json(&s->dns_servers, json_object_get(dns, "Servers"));
    strlist_from_json(&s->dns_searches, json_object_get(dns, "Searches"));
    strlist_from_json(&s->dns_options, json_object_get(dns, "Options"));
    if (!s->command || !s->task_dir || !s->status_file || !s->log_dir ||
        !s->task)
        return nc_error_set(err, -EINVAL, "spec lacks one of Command, Task, "
                                          "TaskDir, StatusFile, LogDir");
    if (s->chroot && !s->alloc_dir)
        return nc_error_set(err, -EINVAL, "chroot spec lacks AllocDir");
    if (s->log_max_files < 1)
        s->log_max_files = 10;
    if (s->log_max_file_bytes < 1)
        s->log_max_file_bytes = 10 << 20;
    if (s->kill_signal <= 0)
        s->kill_signal = SIGTERM;
    if (s->kill_timeout_ns <= 0)
        s->kill_timeout_ns = 5000000000LL;
    return 0;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

json_t *supervisor_spec_to_json(const struct supervisor_spec *s)
{
    json_t *j = json_object();
    set_str(j, "AllocID", s->alloc_id);
    set_str(j, "Task", s->task);
    set_str(j, "Command", s->command);
    json_object_set_new(j, "Args", nc_strlist_json(&s->args));
    json_object_set_new(j, "Env", nc_kvlist_json(&s->env));
    set_str(j, "User", s->user);
    set_str(j, "TaskDir", s->task_dir);
    set_str(j, "AllocDir", s->alloc_dir);
    set_str(j, "StatusFile", s->status_file);
    json_object_set_new(j, "Chroot", json_boolean(s->chroot));
    json_object_set_new(j, "ChrootEnv", nc_kvlist_json(&s->chroot_env));
    set_str(j, "NetNS", s->netns);
    if (s->wait_fd > 0)
        json_object_set_new(j, "WaitFd", json_integer(s->wait_fd));
    json_t *mounts = json_array();
    for (size_t i = 0; i < s->nmounts; i++)
        json_array_append_new(
            mounts, json_pack("{s:s, s:s, s:b}", "Source", s->mounts[i].source,
                              "Destination", s->mounts[i].destination,
                              "ReadOnly", s->mounts[i].read_only));
    json_object_set_new(j, "Mounts", mounts);
    set_str(j, "Cgroup", s->cgroup);
    json_object_set_new(j, "CPUShares", json_integer(s->cpu_shares));
    json_object_set_new(j, "MemoryMB", json_integer(s->memory_mb));
    json_object_set_new(j, "MemoryMaxMB", json_integer(s->memory_max_mb));
    json_object_set_new(j, "Capabilities", nc_strlist_json(&s->caps));
    set_str(j, "LogDir", s->log_dir);
    json_object_set_new(j, "LogMaxFiles", json_integer(s->log_max_files));
    json_object_set_new(j, "LogMaxFileBytes",
                        json_integer(s->log_max_file_bytes));
    json_object_set_new(j, "KillSignal", json_integer(s->kill_signal));
    json_object_set_new(j, "KillTimeout", json_integer(s->kill_timeout_ns));
    json_object_set_new(j, "PidMode",
                        json_string(s->pid_private ? "private" : "host"));
    json_object_set_new(j, "IpcMode",
                        json_string(s->ipc_private ? "private" : "host"));
    if (s->logs_disabled)
        json_object_set_new(j, "LogsDisabled", json_true());
    set_str(j, "Hostname", s->hostname);
    set_str(j, "HostsAddress", s->hosts_address);
    if (s->dns)
        json_object_set_new(
            j, "DNS",
            json_pack("{s:o, s:o, s:o}", "Servers",
                      nc_strlist_json(&s->dns_servers), "Searches",
                      nc_strlist_json(&s->dns_searches), "Options",
                      nc_strlist_json(&s->dns_options)));
    return j;
}

void supervisor_spec_free(struct supervisor_spec *s)
{
    if (!s)
        return;
    free(s->alloc_id);
    free(s->task);
    free(s->command);
    strlist_free(&s->args);
    kv_free(&s->env);
    free(s->user);
    free(s->task_dir);
    free(s->alloc_dir);
    free(s->status_file);
    kv_free(&s->chroot_env);
    free(s->netns);
    for (size_t i = 0; i < s->nmounts; i++) {
        free(s->mounts[i].source);
        free(s->mounts[i].destination);
    }
    free(s->mounts);
    free(s->cgroup);
    strlist_free(&s->caps);
    free(s->log_dir);
    free(s->hostname);
    free(s->hosts_address);
    strlist_free(&s->dns_servers);
    strlist_free(&s->dns_searches);
    strlist_free(&s->dns_options);
    memset(s, 0, sizeof(*s));
}

/* ---- the task child ------------------------------------------------- */

/* Where the child's set-up time goes, written by the child into a page
 * shared with the supervisor and read once the exec closed the error pipe:
 * `<task>.started.json` then tells what the start cost. */
struct setup_times {
    uint64_t spawned, forked, begin, chroot, volumes, netwait, netns,
        exec; /* monotonic ns */
    /* pid_private: the task's wait status, left by its init, which cannot
     * end the way the task did when a signal killed it */
    int task_status;
    bool task_status_set;
};
static struct setup_times times_unshared, *times = &times_unshared;

static void mark(uint64_t *field) { *field = nc_now_mono_ns(); }

/* The child cannot return errors normally: it reports "step: reason" over
 * the error pipe (close-on-exec, so a successful exec sends nothing) and
 * exits 127. The supervisor records it as the task's failure. */
static void __attribute__((noreturn, format(printf, 2, 3)))
child_fail(int errfd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n > 0 && write(errfd, msg, (size_t)n < sizeof(msg) ? (size_t)n
                                                           : sizeof(msg) - 1) < 0) {
        /* nothing left to tell */
    }
    _exit(127);
}

static int mkdir_in(const char *root, const char *rel, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", root, rel[0] == '/' ? rel + 1 : rel);
    return nc_mkdir_p(path, 0755);
}

/* A read-only bind mount for the chroot's system directories. Sources and
 * targets are ours (host paths and fresh dirs in the task dir), so plain
 * paths are fine here; task-controlled destinations go through
 * vol_bind_mount. */
static int bind_ro(const char *src, const char *dst)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -errno;
    if (mount(NULL, dst, NULL,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
              NULL) < 0)
        return -errno;
    return 0;
}

static const char *const default_chroot[] = {"/bin", "/etc",  "/lib",
                                             "/lib64", "/sbin", "/usr"};

static void build_chroot(const struct supervisor_spec *s, int errfd)
{
    char path[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        child_fail(errfd, "make mounts private: %s", strerror(errno));
    struct kvlist env = {0};
    if (s->chroot_env.n)
        kv_copy(&env, &s->chroot_env);
    else
        for (size_t i = 0; i < NC_ARRAY_LEN(default_chroot); i++)
            kv_set(&env, default_chroot[i], default_chroot[i]);
    for (size_t i = 0; i < env.n; i++) {
        struct stat st;
        if (lstat(env.items[i].key, &st) < 0)
            continue; /* e.g. no /lib64 on this host */
        if (S_ISLNK(st.st_mode)) {
            /* merged-/usr hosts: /bin -> usr/bin; keep it a link */
            char target[4096];
            ssize_t n = readlink(env.items[i].key, target, sizeof(target) - 1);
            if (n < 0)
                continue;
            target[n] = '\0';
            snprintf(path, sizeof(path), "%s%s", s->task_dir,
                     env.items[i].value);
            if (symlink(target, path) < 0 && errno != EEXIST)
                child_fail(errfd, "chroot link %s: %s", path, strerror(errno));
            continue;
        }
        int r = mkdir_in(s->task_dir, env.items[i].value, path, sizeof(path));
        if (r < 0)
            child_fail(errfd, "chroot dir %s: %s", path, strerror(-r));
        if ((r = bind_ro(env.items[i].key, path)) < 0)
            child_fail(errfd, "chroot mount %s on %s: %s", env.items[i].key,
                       path, strerror(-r));
    }
    kv_free(&env);
    int r = mkdir_in(s->task_dir, "alloc", path, sizeof(path));
    if (r < 0 || mount(s->alloc_dir, path, NULL, MS_BIND, NULL) < 0)
        child_fail(errfd, "mount alloc dir on %s: %s", path,
                   strerror(r < 0 ? -r : errno));
    if (mkdir_in(s->task_dir, "proc", path, sizeof(path)) < 0 ||
        mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        child_fail(errfd, "mount /proc: %s", strerror(errno));
    /* /dev: a small tmpfs with the usual character devices bound in */
    if (mkdir_in(s->task_dir, "dev", path, sizeof(path)) < 0 ||
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") < 0)
        child_fail(errfd, "mount /dev: %s", strerror(errno));
    static const char *const devs[] = {"null", "zero", "full", "random",
                                       "urandom", "tty"};
    for (size_t i = 0; i < NC_ARRAY_LEN(devs); i++) {
        char host[64];
        snprintf(host, sizeof(host), "/dev/%s", devs[i]);
        snprintf(path, sizeof(path), "%s/dev/%s", s->task_dir, devs[i]);
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd >= 0)
            close(fd);
        if (mount(host, path, NULL, MS_BIND, NULL) < 0)
            child_fail(errfd, "bind %s: %s", host, strerror(errno));
    }
    mark(&times->chroot);
    int root = open(s->task_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        child_fail(errfd, "open task dir %s: %s", s->task_dir, strerror(errno));
    for (size_t i = 0; i < s->nmounts; i++) {
        char msg[512];
        if (vol_bind_mount(root, s->mounts[i].source, s->mounts[i].destination,
                           s->mounts[i].read_only, msg, sizeof(msg)) < 0)
            child_fail(errfd, "volume %s: %s", s->mounts[i].destination, msg);
    }
    close(root);
    mark(&times->volumes);
}

static int cap_list(const struct supervisor_spec *s, cap_value_t *keep,
                    int errfd)
{
    int nkeep = 0;
    for (size_t i = 0; i < s->caps.n; i++) {
        cap_value_t v;
        if (cap_from_name(s->caps.items[i], &v) < 0)
            child_fail(errfd, "unknown capability \"%s\"", s->caps.items[i]);
        keep[nkeep++] = v;
    }
    return nkeep;
}

/* Phase one, still root with every capability: shrink the bounding set. */
static void drop_bounding(const struct supervisor_spec *s, int errfd)
{
    cap_value_t keep[CAP_LAST_CAP + 1];
    int nkeep = cap_list(s, keep, errfd);
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
        bool kept = false;
        for (int i = 0; i < nkeep; i++)
            kept |= keep[i] == c;
        if (!kept && CAP_IS_SUPPORTED(c) && cap_drop_bound(c) < 0 &&
            errno != EINVAL)
            child_fail(errfd, "drop capability %d: %s", c, strerror(errno));
    }
}

/* Phase two, after the user switch (done with PR_SET_KEEPCAPS): the task's
 * effective, permitted and inheritable sets are exactly the kept ones. */
static void set_task_caps(const struct supervisor_spec *s, int errfd)
{
    cap_value_t keep[CAP_LAST_CAP + 1];
    int nkeep = cap_list(s, keep, errfd);
    cap_t caps = cap_init();
    if (nkeep) {
        cap_set_flag(caps, CAP_EFFECTIVE, nkeep, keep, CAP_SET);
        cap_set_flag(caps, CAP_PERMITTED, nkeep, keep, CAP_SET);
        cap_set_flag(caps, CAP_INHERITABLE, nkeep, keep, CAP_SET);
    }
    if (cap_set_proc(caps) < 0)
        child_fail(errfd, "set capabilities: %s", strerror(errno));
    cap_free(caps);
}

static void raise_ambient(const struct supervisor_spec *s)
{
    for (size_t i = 0; i < s->caps.n; i++) {
        cap_value_t v;
        if (cap_from_name(s->caps.items[i], &v) == 0)
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0);
    }
}

/* ---- /etc/resolv.conf and /etc/hosts --------------------------------
 * Written into the task dir and bound over the chroot's (read-only) /etc
 * files, as Nomad's drivers/shared/resolvconf and hostnames do. */

/* The words of the host resolv.conf's `key` lines: every nameserver, the
 * last search and options line (as Docker's resolvconf package reads). */
static void resolv_words(const char *txt, const char *key, bool every,
                         struct strlist *out)
{
    size_t klen = strlen(key);
    for (const char *line = txt; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char *l = xstrndup(line, n);
        l[strcspn(l, "#;")] = '\0';
        char *p = l + strspn(l, " \t");
        if (strncmp(p, key, klen) == 0 && (p[klen] == ' ' || p[klen] == '\t')) {
            if (!every)
                strlist_free(out);
            char *save = NULL;
            for (char *w = strtok_r(p + klen, " \t\r", &save); w;
                 w = strtok_r(NULL, " \t\r", &save))
                strlist_add(out, w);
        }
        free(l);
        line = end ? end + 1 : NULL;
    }
}

static void buf_words(struct nc_buf *b, const char *key,
                      const struct strlist *l)
{
    if (!l->n)
        return;
    nc_buf_puts(b, key);
    for (size_t i = 0; i < l->n; i++)
        nc_buf_printf(b, " %s", l->items[i]);
    nc_buf_puts(b, "\n");
}

/* The group's dns block over the node's /etc/resolv.conf: what the block
 * leaves out is the node's. Returns a new string. */
static char *resolv_conf_text(const struct supervisor_spec *s)
{
    size_t len;
    char *host = nc_read_file("/etc/resolv.conf", &len, 1 << 20);
    struct strlist servers = {0}, searches = {0}, options = {0};
    resolv_words(host, "nameserver", true, &servers);
    resolv_words(host, "search", false, &searches);
    resolv_words(host, "options", false, &options);
    free(host);
    const struct strlist *sv = s->dns_servers.n ? &s->dns_servers : &servers;
    const struct strlist *se = s->dns_searches.n ? &s->dns_searches : &searches;
    const struct strlist *op = s->dns_options.n ? &s->dns_options : &options;
    struct nc_buf b = {0};
    if (!(se->n == 1 && strcmp(se->items[0], ".") == 0))
        buf_words(&b, "search", se);
    for (size_t i = 0; i < sv->n; i++)
        nc_buf_printf(&b, "nameserver %s\n", sv->items[i]);
    buf_words(&b, "options", op);
    strlist_free(&servers);
    strlist_free(&searches);
    strlist_free(&options);
    return b.data ? b.data : xstrdup(""); /* e.g. searches ["."] alone */
}

static char *hosts_text(const struct supervisor_spec *s)
{
    return xasprintf("# this file was generated by Nomad\n"
                     "127.0.0.1 localhost\n"
                     "::1 localhost\n"
                     "::1 ip6-localhost ip6-loopback\n"
                     "fe00::0 ip6-localnet\n"
                     "ff00::0 ip6-mcastprefix\n"
                     "ff02::1 ip6-allnodes\n"
                     "ff02::2 ip6-allrouters\n"
                     "ff02::3 ip6-allhosts\n"
                     "\n"
                     "# this entry is the IP address and hostname of the "
                     "allocation\n"
                     "# shared with tasks in the task group's network\n"
                     "%s %s\n",
                     s->hosts_address, s->hostname);
}

/* Writes <task dir>/<name> (never through a link; keep: leave one that
 * exists, as Nomad leaves a hosts file the tasks may have changed) and
 * binds it on dest inside the chroot. */
static void place_etc_file(const struct supervisor_spec *s, int root,
                           const char *name, const char *dest, char *text,
                           bool keep, bool read_only, int errfd)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", s->task_dir, name);
    int fd = open(path,
                  O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                      (keep ? O_EXCL : O_TRUNC),
                  0644);
    if (fd < 0 && !(keep && errno == EEXIST))
        child_fail(errfd, "write %s: %s", path, strerror(errno));
    if (fd >= 0) {
        size_t n = strlen(text);
        bool ok = write(fd, text, n) == (ssize_t)n;
        close(fd);
        if (!ok)
            child_fail(errfd, "write %s: %s", path, strerror(errno));
    }
    free(text);
    char msg[512];
    if (vol_bind_mount(root, path, dest, read_only, msg, sizeof(msg)) < 0)
        child_fail(errfd, "mount %s on %s: %s", path, dest, msg);
}

static void place_etc_files(const struct supervisor_spec *s, int errfd)
{
    bool hosts = s->hostname && s->hosts_address && *s->hosts_address;
    if (!s->dns && !hosts)
        return;
    int root = open(s->task_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        child_fail(errfd, "open task dir %s: %s", s->task_dir, strerror(errno));
    if (s->dns)
        place_etc_file(s, root, "resolv.conf", "/etc/resolv.conf",
                       resolv_conf_text(s), false, true, errfd);
    if (hosts)
        place_etc_file(s, root, "hosts", "/etc/hosts", hosts_text(s), true,
                       false, errfd);
    close(root);
}

/* ---- the task's init (pid_private) ----------------------------------- */

/* argv's strings, contiguous as the kernel laid them out: overwritten so
 * the init shows as nomclient-init, not as a supervisor with its spec's
 * host path (and `leftovers` does not take it for one). */
static char *title_area;
static size_t title_len;

static void init_set_title(void)
{
    static const char title[] = "nomclient-init";
    if (title_area && title_len > sizeof(title)) {
        memset(title_area, 0, title_len);
        memcpy(title_area, title, sizeof(title));
    }
    prctl(PR_SET_NAME, title, 0, 0, 0);
}

static void on_init_signal(int sig) { (void)sig; }

/* Every signal caught and blocked, taken one at a time by sigwaitinfo: a
 * namespace's init gets only the signals it handles. Set before the fork,
 * so none is lost meanwhile; the task puts them back to default. */
static void init_catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_init_signal};
    sigfillset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL); /* glibc's own ones refuse: fine */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* PID 1 of the task's PID namespace: passes the signals it gets on to the
 * task (the supervisor's stop, queued with SUPERVISOR_INIT_TO_GROUP, to
 * the task's process group), reaps what is orphaned to it, and ends with
 * the task, leaving the task's wait status in the shared page. The kernel
 * then kills whatever else lives in the namespace. */
static void __attribute__((noreturn)) run_init(pid_t task, int errfd)
{
    close(errfd); /* the task's exec closes its copy: that is the "ok" */
    init_set_title();
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            bool group = si.si_code == SI_QUEUE &&
                         si.si_value.sival_int == SUPERVISOR_INIT_TO_GROUP;
            if (!group || kill(-task, sig) < 0)
                kill(task, sig);
            continue;
        }
        int st;
        pid_t w;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
            if (w != task)
                continue;
            times->task_status = st;
            times->task_status_set = true;
            _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
}

static const char *spec_file; /* the SPEC argument */
/* ours, as the host's /proc knows it: the task's getppid() says 0 once it
 * is PID 1 of a namespace of its own */
static pid_t supervisor_pid;

/* Takes the command, arguments and environment of the spec file as it is
 * now (the rest was acted on already). */
/* Takes the final command, args and environment: from the spec the agent
 * sent down the pipe (txt), or, when it sent "g", from the rewritten
 * file. */
static void reload_spec(const struct supervisor_spec *s, const char *txt,
                        size_t len, int errfd)
{
    const char *from = "the spec sent by the agent";
    char *file = NULL;
    if (len == 1 && txt[0] == 'g') {
        from = spec_file;
        txt = file = nc_read_file(spec_file, &len, 1 << 20);
    }
    json_t *j = txt ? json_loadb(txt, len, 0, NULL) : NULL;
    free(file);
    struct supervisor_spec fresh;
    struct nc_error err = {0};
    if (!j || supervisor_spec_from_json(j, &fresh, &err) < 0)
        child_fail(errfd, "re-read %s: %s", from, j ? err.msg : "unreadable");
    json_decref(j);
    struct supervisor_spec *w = (struct supervisor_spec *)s;
    char *cmd = w->command;
    w->command = fresh.command;
    fresh.command = cmd;
    struct strlist args = w->args;
    w->args = fresh.args;
    fresh.args = args;
    struct kvlist env = w->env;
    w->env = fresh.env;
    fresh.env = env;
    char *addr = w->hosts_address; /* the allocation's, known only now */
    w->hosts_address = fresh.hosts_address;
    fresh.hosts_address = addr;
    supervisor_spec_free(&fresh);
}

static void __attribute__((noreturn))
run_task(const struct supervisor_spec *s, const struct passwd *pw, int out,
         int errout, int errfd, int go)
{
    setpgid(0, 0); /* its own group: the kill signal reaches its children */
    int devnull = open("/dev/null", O_RDWR);
    if (out < 0) /* logs disabled: the output goes nowhere */
        out = errout = devnull;
    if (dup2(out, STDOUT_FILENO) < 0 || dup2(errout, STDERR_FILENO) < 0)
        child_fail(errfd, "redirect output: %s", strerror(errno));
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    mark(&times->begin);
    if (s->chroot) {
        int flags = CLONE_NEWNS | (s->ipc_private ? CLONE_NEWIPC : 0) |
                    (s->hostname ? CLONE_NEWUTS : 0);
        if (unshare(flags) < 0)
            child_fail(errfd, "new mount%s%s namespace: %s",
                       s->ipc_private ? ", IPC" : "",
                       s->hostname ? ", UTS" : "", strerror(errno));
        if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
            child_fail(errfd, "set hostname %s: %s", s->hostname,
                       strerror(errno));
        build_chroot(s, errfd);
    }
    /* Started while the allocation's network was still being set up: the
     * mounts above are done meanwhile, the rest waits for the agent's word
     * (a byte), and an agent gone or a failed network (EOF) means the task
     * is not started at all. */
    if (s->wait_fd > 0) {
        /* the spec as of the network ready, up to the agent's close: the
         * environment now has the allocation's address */
        struct nc_buf word = {0};
        char chunk[16384];
        ssize_t n;
        while ((n = read(s->wait_fd, chunk, sizeof(chunk))) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 || word.len > (1u << 20))
                break;
            nc_buf_append(&word, chunk, (size_t)n);
        }
        if (n != 0 || word.len == 0)
            child_fail(errfd, "the allocation's network was not set up; the "
                              "task was not started");
        close(s->wait_fd);
        reload_spec(s, word.data, word.len, errfd);
        nc_buf_free(&word);
        setpriority(PRIO_PROCESS, 0, base_nice);
    }
    mark(&times->netwait);
    if (s->netns) {
        /* a namespace mounted after our private mount namespace was made
         * is seen through the supervisor's view of the mounts */
        char path[4200];
        if (s->chroot && s->wait_fd > 0)
            snprintf(path, sizeof(path), "/proc/%d/root%s", (int)supervisor_pid,
                     s->netns);
        else
            snprintf(path, sizeof(path), "%s", s->netns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            child_fail(errfd, "join network namespace %s: %s", s->netns,
                       strerror(errno));
        close(fd);
    }
    mark(&times->netns);
    if (s->chroot)
        place_etc_files(s, errfd);
    if (s->chroot && (chroot(s->task_dir) < 0 || chdir("/") < 0))
        child_fail(errfd, "chroot %s: %s", s->task_dir, strerror(errno));
    bool switching = pw && pw->pw_uid != getuid();
    if (s->chroot) {
        drop_bounding(s, errfd);
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
    }
    if (switching &&
        (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
         setuid(pw->pw_uid) < 0))
        child_fail(errfd, "switch to user %s: %s", pw->pw_name,
                   strerror(errno));
    if (s->chroot) {
        set_task_caps(s, errfd);
        raise_ambient(s);
    }
    if (!s->chroot && chdir(s->task_dir) < 0)
        child_fail(errfd, "chdir %s: %s", s->task_dir, strerror(errno));
    char **argv = xcalloc(s->args.n + 2, sizeof(char *));
    argv[0] = s->command;
    for (size_t i = 0; i < s->args.n; i++)
        argv[i + 1] = s->args.items[i];
    char **envp = xcalloc(s->env.n + 1, sizeof(char *));
    for (size_t i = 0; i < s->env.n; i++)
        envp[i] = xasprintf("%s=%s", s->env.items[i].key, s->env.items[i].value);
    const char *path = kv_get(&s->env, "PATH");
    if (!path)
        setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                       "/sbin:/bin", 1);
    else
        setenv("PATH", path, 1);
    /* The set-up above ran while the supervisor moved us into the task's
     * cgroup (on cgroup v1 a migration waits for an RCU grace period, 10-30
     * ms here); only the exec waits for it to be done. */
    char c;
    while (read(go, &c, 1) < 0 && errno == EINTR)
        ;
    close(go);
    mark(&times->exec);
    if (s->pid_private) {
        /* we are PID 1 of the new namespace: we stay as its init, the task
         * is our child (PID 2), in the cgroup already */
        init_catch_signals();
        pid_t task = fork();
        if (task < 0)
            child_fail(errfd, "fork the task under its init: %s",
                       strerror(errno));
        if (task > 0)
            run_init(task, errfd);
        setpgid(0, 0);
    }
    /* the task starts with default signal handling, whatever we inherited
     * (a background shell ignores SIGINT, for one) */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvpe(s->command, argv, envp);
    child_fail(errfd, "exec %s: %s", s->command, strerror(errno));
}

/* ---- logs ------------------------------------------------------------ */

/* One stream: the task's pipe and its rotated files (logfile.h). */
struct log_stream {
    const char *name; /* "stdout" / "stderr" */
    int pipe_fd;
    struct logfile file;
};

/* ---- the supervisor loop -------------------------------------------- */

static int write_status(const struct supervisor_spec *s, pid_t pid, int wstatus,
                        const char *failure, int64_t started, bool oom)
{
    json_t *j = json_pack(
        "{s:i, s:i, s:i, s:b, s:I, s:I}", "Pid", (int)pid, "ExitCode",
        WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, "Signal",
        WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0, "OOMKilled", oom,
        "StartedAt", (json_int_t)started, "FinishedAt",
        (json_int_t)nc_now_unix_ns());
    if (failure && *failure)
        json_object_set_new(j, "Err", json_string(failure));
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int r = nc_write_file_atomic(s->status_file, txt, strlen(txt), 0600);
    free(txt);
    return r;
}

/* <task>.started.json beside the status file: when the exec happened
 * (ExecAt, unix ns) and how long the supervisor's own start (spec, cgroup,
 * moving the task into it), joining the network, building the chroot and
 * mounting volumes took (microseconds; 0 for a step the task does not
 * have). */
static void write_started(const struct supervisor_spec *s, pid_t pid,
                          int64_t started)
{
    if (times == &times_unshared ||
        !nc_str_has_suffix(s->status_file, "status.json"))
        return;
    const struct setup_times *t = times;
    uint64_t chroot_end = t->chroot ? t->chroot : t->begin;
    uint64_t volumes_end = t->volumes ? t->volumes : chroot_end;
    json_t *j = json_pack(
        "{s:i, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "Pid",
        (int)pid, "StartedAt", (json_int_t)started, "ExecAt",
        (json_int_t)(started + (int64_t)(t->exec - t->forked)), "SetupMicros",
        "Supervisor", (json_int_t)((t->begin - t->spawned) / 1000), "Chroot",
        (json_int_t)((chroot_end - t->begin) / 1000), "Volumes",
        (json_int_t)((volumes_end - chroot_end) / 1000), "NetworkWait",
        (json_int_t)((t->netwait - volumes_end) / 1000), "Netns",
        (json_int_t)((t->netns - t->netwait) / 1000), "CgroupWait",
        (json_int_t)((t->exec - t->netns) / 1000), "Total",
        (json_int_t)((t->exec - t->spawned) / 1000));
    size_t n = strlen(s->status_file) - strlen("status.json");
    char *path = xasprintf("%.*sstarted.json", (int)n, s->status_file);
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    /* not durable on purpose: it is a measurement, not state */
    FILE *f = fopen(path, "we");
    if (f) {
        fputs(txt, f);
        fclose(f);
    }
    free(txt);
    free(path);
}

static int run(const struct supervisor_spec *s)
{
    struct passwd *pw = NULL;
    if (s->user && !(pw = getpwnam(s->user))) {
        char msg[256];
        snprintf(msg, sizeof(msg), "user \"%s\" does not exist on this node",
                 s->user);
        write_status(s, 0, 127 << 8, msg, nc_now_unix_ns(), false);
        return 1;
    }
    struct cgroup cg = {0};
    char cgerr[512] = "";
    if (s->cgroup &&
        cgroup_create(&cg, s->cgroup, s->cpu_shares, s->memory_mb,
                      s->memory_max_mb, cgerr, sizeof(cgerr)) < 0) {
        write_status(s, 0, 127 << 8, cgerr, nc_now_unix_ns(), false);
        return 1;
    }
    struct log_stream logs[2] = {{.name = "stdout", .file.fd = -1},
                                 {.name = "stderr", .file.fd = -1}};
    int out[2] = {-1, -1}, err[2] = {-1, -1}, errpipe[2], go[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0)
        return 1;
    /* logs { disabled }: no pipes, no files (the task writes to
     * /dev/null), as Nomad collects nothing then */
    if (!s->logs_disabled) {
        nc_mkdir_p(s->log_dir, 0755);
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
            return 1;
        for (int i = 0; i < 2; i++)
            if (logfile_open(&logs[i].file, s->log_dir, s->task, logs[i].name,
                             s->log_max_files, s->log_max_file_bytes) < 0)
                return 1;
    }
    logs[0].pipe_fd = out[0];
    logs[1].pipe_fd = err[0];
    /* the task's own PID namespace: the child forked next is its PID 1
     * (see run_init); this process stays in the host's */
    if (s->pid_private && unshare(CLONE_NEWPID) < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "new PID namespace: %s", strerror(errno));
        write_status(s, 0, 127 << 8, msg, nc_now_unix_ns(), false);
        cgroup_destroy(&cg);
        return 1;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SUPERVISOR_SIGNAL_FORWARD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    void *page = mmap(NULL, sizeof(*times), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED) {
        memcpy(page, times, sizeof(*times));
        times = page;
    }
    int64_t started = nc_now_unix_ns();
    supervisor_pid = getpid();
    mark(&times->forked);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        if (out[0] >= 0) {
            close(out[0]);
            close(err[0]);
        }
        close(errpipe[0]);
        close(go[1]);
        run_task(s, pw, out[1], err[1], errpipe[1], go[0]);
    }
    setpgid(pid, pid); /* also here: no race with the first kill */
    if (s->wait_fd > 0)
        close(s->wait_fd); /* the task's to wait on, not ours */
    if (out[1] >= 0) {
        close(out[1]);
        close(err[1]);
    }
    close(errpipe[1]);
    close(go[0]);
    if (s->cgroup && cgroup_add(&cg, pid, cgerr, sizeof(cgerr)) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* a child that failed its set-up first says why (the cgroup then
         * only refused a process that was gone) */
        char why[512] = "";
        ssize_t wn = read(errpipe[0], why, sizeof(why) - 1);
        why[wn > 0 ? wn : 0] = '\0';
        write_status(s, pid, 127 << 8, why[0] ? why : cgerr, started, false);
        cgroup_destroy(&cg);
        return 1;
    }
    close(go[1]); /* EOF releases the child */
    setpriority(PRIO_PROCESS, 0, base_nice); /* now: logs, signals */

    char failure[512] = "";
    ssize_t fn = read(errpipe[0], failure, sizeof(failure) - 1);
    failure[fn > 0 ? fn : 0] = '\0';
    close(errpipe[0]);
    if (!failure[0])
        write_started(s, pid, started);

    int wstatus = 0;
    bool exited = false, killing = false;
    bool pid_ns = s->pid_private;
    int64_t kill_deadline = 0;
    char buf[65536];
    struct pollfd pfd[3] = {{.fd = sfd, .events = POLLIN},
                            {.fd = out[0], .events = POLLIN},
                            {.fd = err[0], .events = POLLIN}};
    /* Runs until the task exited and both pipes reached EOF (grandchildren
     * holding them are killed with the cgroup after the task leaves). */
    while (!exited || pfd[1].fd >= 0 || pfd[2].fd >= 0) {
        int timeout = -1;
        if (killing) {
            int64_t left = (kill_deadline - (int64_t)nc_now_mono_ns()) / 1000000;
            timeout = left > 0 ? (int)left : 0;
        }
        int n = poll(pfd, 3, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n == 0 && killing) {
            /* kill_timeout passed: SIGKILL everything the task started */
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            if (s->cgroup)
                cgroup_kill(&cg);
            killing = false;
            continue;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGCHLD) {
                    int st;
                    pid_t w;
                    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
                        if (w == pid) {
                            /* the task's own status, from its init */
                            wstatus = times->task_status_set
                                          ? times->task_status
                                          : st;
                            exited = true;
                            killing = false;
                            if (s->cgroup)
                                cgroup_kill(&cg); /* orphans of the task */
                        }
                    }
                } else if (si.ssi_signo == (uint32_t)SUPERVISOR_SIGNAL_FORWARD) {
                    /* `alloc signal`: to the task's process, as Nomad's
                     * executor signals it */
                    int fwd = si.ssi_int;
                    if (!exited && fwd > 0 && fwd < SIGRTMIN)
                        kill(pid, fwd);
                } else if (!exited && !killing) {
                    /* the task's process group, as a terminal would: a
                     * shell loop's `sleep` must not hold up the stop
                     * (under an init: it sends it there) */
                    union sigval to_group = {.sival_int =
                                                 SUPERVISOR_INIT_TO_GROUP};
                    if (pid_ns)
                        sigqueue(pid, s->kill_signal, to_group);
                    else if (kill(-pid, s->kill_signal) < 0)
                        kill(pid, s->kill_signal);
                    killing = true;
                    kill_deadline = (int64_t)nc_now_mono_ns() + s->kill_timeout_ns;
                }
            }
        }
        for (int i = 1; i < 3; i++) {
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(pfd[i].fd, buf, sizeof(buf));
            if (r > 0) {
                logfile_write(&logs[i - 1].file, buf, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
            }
        }
    }
    bool oom = s->cgroup && cgroup_oom_killed(&cg);
    write_status(s, pid, wstatus, failure, started, oom);
    for (int i = 0; i < 2; i++)
        logfile_close(&logs[i].file);
    if (s->cgroup)
        cgroup_destroy(&cg);
    return 0;
}

int supervisor_main(int argc, char **argv)
{
    mark(&times->spawned);
    if (argc != 2) {
        fprintf(stderr, "usage: nomclient supervise SPEC.json (started by the "
                        "agent, not by hand)\n");
        return 2;
    }
    spec_file = argv[1];
    /* cli.c passes argv + 1: the strings from the binary's path on */
    title_area = argv[-1];
    title_len = (size_t)(argv[1] + strlen(argv[1]) + 1 - argv[-1]);
    size_t len;
    char *txt = nc_read_file(argv[1], &len, 1 << 20);
    if (!txt) {
        fprintf(stderr, "supervise: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    json_error_t jerr;
    json_t *j = json_loadb(txt, len, 0, &jerr);
    free(txt);
    struct supervisor_spec s;
    struct nc_error err = {0};
    if (supervisor_spec_from_json(j, &s, &err) < 0) {
        json_decref(j);
        fprintf(stderr, "supervise: %s: %s\n", argv[1], err.msg);
        supervisor_spec_free(&s);
        return 1;
    }
    json_decref(j);
    /* fd 3, when given, is the lock the agent took for us: holding it tells
     * a restarted agent this supervisor lives. The task must not inherit
     * it, and it records our pid. */
    if (fcntl(3, F_SETFD, FD_CLOEXEC) == 0) {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d " SUPERVISOR_FORWARDS_MARK "\n",
                         (int)getpid());
        if (ftruncate(3, 0) < 0 || pwrite(3, pid, (size_t)n, 0) < 0)
            fprintf(stderr, "supervise: recording pid: %s\n", strerror(errno));
    }
    setsid();
    /* prepared beside the network's set-up, which takes far longer: the
     * preparation yields the CPU to it (the task runs at the usual
     * priority, see run_task) */
    base_nice = getpriority(PRIO_PROCESS, 0);
    if (s.wait_fd > 0)
        setpriority(PRIO_PROCESS, 0, base_nice + PREPARE_NICE);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    prctl(PR_SET_NAME, "nomclient-sup", 0, 0, 0);
    int rc = run(&s);
    supervisor_spec_free(&s);
    return rc;
}
