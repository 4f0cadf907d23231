/* cgroup.c - see client/drivers/internal.h. Plain file writes under /sys/fs/cgroup. */
#include "client/drivers/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/util.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* v1 controllers we use; pids first: its cgroup.procs lists every task. */
static const char *const v1_controllers[] = {"pids", "memory", "cpu",
                                             "cpuacct", "freezer"};

const char *cgroup_version(void)
{
    return access(CGROUP_ROOT "/cgroup.controllers", F_OK) == 0 ? "v2" : "v1";
}

static int write_file(const char *dir, const char *file, const char *val)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int r = n < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int fail(char *err, size_t errlen, int r, const char *what,
                const char *path)
{
    snprintf(err, errlen, "cgroup %s: %s: %s", what, path, strerror(-r));
    return r;
}

/* Cgroup v2 cpu.weight from Nomad's cpu shares (MHz), as runc converts. */
static uint64_t shares_to_weight(int shares)
{
    if (shares < 2)
        shares = 2;
    if (shares > 262144)
        shares = 262144;
    return 1 + ((uint64_t)(shares - 2) * 9999) / 262142;
}

static int create_v2(struct cgroup *cg, int cpu_shares, int64_t mem,
                     int64_t mem_max, char *err, size_t errlen)
{
    char parent[4096], val[64];
    snprintf(parent, sizeof(parent), "%s/%s", CGROUP_ROOT, CGROUP_PARENT);
    int r = nc_mkdir_p(parent, 0755);
    if (r < 0)
        return fail(err, errlen, r, "create", parent);
    /* controllers must be enabled in every ancestor's subtree_control */
    write_file(CGROUP_ROOT, "cgroup.subtree_control", "+cpu +memory +pids");
    write_file(parent, "cgroup.subtree_control", "+cpu +memory +pids");
    cg->paths[0] = xasprintf("%s/%s", parent, cg->name);
    cg->npaths = 1;
    if (mkdir(cg->paths[0], 0755) < 0 && errno != EEXIST)
        return fail(err, errlen, -errno, "create", cg->paths[0]);
    if (cpu_shares > 0) {
        snprintf(val, sizeof(val), "%llu",
                 (unsigned long long)shares_to_weight(cpu_shares));
        if ((r = write_file(cg->paths[0], "cpu.weight", val)) < 0)
            return fail(err, errlen, r, "set cpu.weight in", cg->paths[0]);
    }
    if (mem > 0) {
        int64_t hard = mem_max > 0 ? mem_max : mem;
        snprintf(val, sizeof(val), "%lld", (long long)hard << 20);
        if ((r = write_file(cg->paths[0], "memory.max", val)) < 0)
            return fail(err, errlen, r, "set memory.max in", cg->paths[0]);
        if (mem_max > 0) {
            snprintf(val, sizeof(val), "%lld", (long long)mem << 20);
            write_file(cg->paths[0], "memory.low", val);
        }
    }
    return 0;
}

static int create_v1(struct cgroup *cg, int cpu_shares, int64_t mem,
                     int64_t mem_max, char *err, size_t errlen)
{
    char val[64];
    for (size_t i = 0; i < NC_ARRAY_LEN(v1_controllers); i++) {
        char *p = xasprintf("%s/%s/%s/%s", CGROUP_ROOT, v1_controllers[i],
                            CGROUP_PARENT, cg->name);
        int r = nc_mkdir_p(p, 0755);
        if (r < 0) {
            fail(err, errlen, r, "create", p);
            free(p);
            return r;
        }
        cg->paths[cg->npaths++] = p;
        int r2 = 0;
        if (strcmp(v1_controllers[i], "cpu") == 0 && cpu_shares > 0) {
            snprintf(val, sizeof(val), "%d", cpu_shares < 2 ? 2 : cpu_shares);
            r2 = write_file(p, "cpu.shares", val);
        } else if (strcmp(v1_controllers[i], "memory") == 0 && mem > 0) {
            int64_t hard = mem_max > 0 ? mem_max : mem;
            snprintf(val, sizeof(val), "%lld", (long long)hard << 20);
            r2 = write_file(p, "memory.limit_in_bytes", val);
            if (r2 == 0 && mem_max > 0) {
                snprintf(val, sizeof(val), "%lld", (long long)mem << 20);
                r2 = write_file(p, "memory.soft_limit_in_bytes", val);
            }
        }
        if (r2 < 0)
            return fail(err, errlen, r2, "set limits in", p);
    }
    return 0;
}

int cgroup_create(struct cgroup *cg, const char *name, int cpu_shares,
                  int64_t memory_mb, int64_t memory_max_mb, char *err,
                  size_t errlen)
{
    memset(cg, 0, sizeof(*cg));
    if (!name || !*name || strchr(name, '/') || strcmp(name, "..") == 0 ||
        strcmp(name, ".") == 0) {
        snprintf(err, errlen, "cgroup name \"%s\" is invalid", name ? name : "");
        return -EINVAL;
    }
    cg->name = xstrdup(name);
    cg->v2 = strcmp(cgroup_version(), "v2") == 0;
    int r = cg->v2 ? create_v2(cg, cpu_shares, memory_mb, memory_max_mb, err,
                               errlen)
                   : create_v1(cg, cpu_shares, memory_mb, memory_max_mb, err,
                               errlen);
    if (r < 0)
        cgroup_destroy(cg);
    return r;
}

int cgroup_add(struct cgroup *cg, pid_t pid, char *err, size_t errlen)
{
    char val[32];
    snprintf(val, sizeof(val), "%d", (int)pid);
    for (size_t i = 0; i < cg->npaths; i++) {
        int r = write_file(cg->paths[i], "cgroup.procs", val);
        if (r < 0)
            return fail(err, errlen, r, "add task to", cg->paths[i]);
    }
    return 0;
}

/* Sends SIGKILL to each pid listed; returns how many were listed. */
static int kill_listed(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1) {
        kill(pid, SIGKILL);
        n++;
    }
    fclose(f);
    return n;
}

void cgroup_kill(struct cgroup *cg)
{
    if (!cg->npaths)
        return;
    if (cg->v2 && write_file(cg->paths[0], "cgroup.kill", "1") == 0)
        return;
    /* No cgroup.kill (v1, or v2 before 5.14): processes may fork while we
     * read, so repeat a few rounds; the pids controller bounds the race. */
    for (int round = 0; round < 16 && kill_listed(cg->paths[0]) > 0; round++)
        ;
}

bool cgroup_oom_killed(const struct cgroup *cg)
{
    char path[4096];
    const char *file = cg->v2 ? "memory.events" : "memory.oom_control";
    const char *dir = NULL;
    for (size_t i = 0; i < cg->npaths; i++)
        if (cg->v2 || strstr(cg->paths[i], "/memory/"))
            dir = cg->paths[i];
    if (!dir)
        return false;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    size_t len;
    char *txt = nc_read_file(path, &len, 1 << 16);
    if (!txt)
        return false;
    const char *p = strstr(txt, "oom_kill ");
    bool oom = p && atoll(p + strlen("oom_kill ")) > 0;
    free(txt);
    return oom;
}

void cgroup_destroy(struct cgroup *cg)
{
    if (!cg)
        return;
    if (cg->npaths) {
        cgroup_kill(cg);
        for (size_t i = 0; i < cg->npaths; i++) {
            /* rmdir fails with EBUSY while a killed task is still exiting
             * (the rest of a PID namespace dies after its init, and on a
             * loaded host that takes a while): up to about 2 s, checked
             * often at first */
            for (int tries = 0; tries < 300 && rmdir(cg->paths[i]) < 0 &&
                                errno == EBUSY;
                 tries++) {
                if (tries % 20 == 19)
                    cgroup_kill(cg);
                usleep(tries < 100 ? 1000 : 10000);
            }
            free(cg->paths[i]);
        }
    }
    free(cg->name);
    memset(cg, 0, sizeof(*cg));
}

int cgroup_remove(const char *name)
{
    struct cgroup cg = {.name = xstrdup(name)};
    cg.v2 = strcmp(cgroup_version(), "v2") == 0;
    int found = 0;
    if (cg.v2) {
        cg.paths[cg.npaths++] =
            xasprintf("%s/%s/%s", CGROUP_ROOT, CGROUP_PARENT, name);
    } else {
        for (size_t i = 0; i < NC_ARRAY_LEN(v1_controllers); i++)
            cg.paths[cg.npaths++] = xasprintf("%s/%s/%s/%s", CGROUP_ROOT,
                                              v1_controllers[i], CGROUP_PARENT,
                                              name);
    }
    for (size_t i = 0; i < cg.npaths; i++)
        found |= access(cg.paths[i], F_OK) == 0;
    cgroup_destroy(&cg);
    return found ? 0 : -ENOENT;
}

/* The value after "key " in a flat keyed file (memory.stat, cpu.stat). */
static bool keyed(const char *txt, const char *key, uint64_t *out)
{
    size_t n = strlen(key);
    for (const char *p = txt; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, key, n) == 0 && p[n] == ' ') {
            *out = strtoull(p + n + 1, NULL, 10);
            return true;
        }
    return false;
}

static char *read_in(const char *controller, const char *name,
                     const char *file)
{
    char path[4096];
    /* "/x/y": a cgroup outside ours (a docker container's), from the root */
    const char *parent = name[0] == '/' ? "" : "/" CGROUP_PARENT "/";
    if (controller)
        snprintf(path, sizeof(path), "%s/%s%s%s/%s", CGROUP_ROOT, controller,
                 parent, name, file);
    else
        snprintf(path, sizeof(path), "%s%s%s/%s", CGROUP_ROOT, parent, name,
                 file);
    size_t len;
    return nc_read_file(path, &len, 1 << 16);
}

static bool read_number(const char *controller, const char *name,
                        const char *file, uint64_t *out)
{
    char *txt = read_in(controller, name, file);
    if (!txt)
        return false;
    *out = strtoull(txt, NULL, 10);
    free(txt);
    return true;
}

static int count_lines(const char *txt)
{
    int n = 0;
    for (const char *p = txt; p && *p; p++)
        n += *p == '\n';
    return n;
}

int cgroup_read_stats(const char *name, struct driver_usage *st)
{
    memset(st, 0, sizeof(*st));
    bool v2 = strcmp(cgroup_version(), "v2") == 0;
    const char *pids_ctl = v2 ? NULL : "pids";
    char *procs = read_in(pids_ctl, name, "cgroup.procs");
    if (!procs)
        return -ENOENT;
    st->pids = count_lines(procs);
    free(procs);
    char *txt;
    if (v2) {
        if ((txt = read_in(NULL, name, "cpu.stat"))) {
            uint64_t us = 0;
            st->have_cpu = keyed(txt, "usage_usec", &us);
            st->cpu_ns = us * 1000;
            if (keyed(txt, "user_usec", &us))
                st->user_ns = us * 1000;
            if (keyed(txt, "system_usec", &us))
                st->system_ns = us * 1000;
            free(txt);
        }
        st->have_mem = read_number(NULL, name, "memory.current", &st->mem_usage);
        read_number(NULL, name, "memory.peak", &st->mem_max_usage);
        read_number(NULL, name, "memory.swap.current", &st->mem_swap);
        if ((txt = read_in(NULL, name, "memory.stat"))) {
            keyed(txt, "anon", &st->mem_rss);
            keyed(txt, "file", &st->mem_cache);
            free(txt);
        }
        return 0;
    }
    st->have_cpu = read_number("cpuacct", name, "cpuacct.usage", &st->cpu_ns);
    if ((txt = read_in("cpuacct", name, "cpuacct.stat"))) {
        uint64_t ticks = 0;
        long hz = sysconf(_SC_CLK_TCK);
        if (hz <= 0)
            hz = 100;
        if (keyed(txt, "user", &ticks))
            st->user_ns = ticks * (1000000000ULL / (uint64_t)hz);
        if (keyed(txt, "system", &ticks))
            st->system_ns = ticks * (1000000000ULL / (uint64_t)hz);
        free(txt);
    }
    st->have_mem = read_number("memory", name, "memory.usage_in_bytes",
                               &st->mem_usage);
    read_number("memory", name, "memory.max_usage_in_bytes", &st->mem_max_usage);
    if ((txt = read_in("memory", name, "memory.stat"))) {
        keyed(txt, "rss", &st->mem_rss);
        keyed(txt, "cache", &st->mem_cache);
        keyed(txt, "swap", &st->mem_swap);
        free(txt);
    }
    return 0;
}

int cgroup_list(void (*fn)(const char *name, void *arg), void *arg)
{
    char dir[4096];
    if (strcmp(cgroup_version(), "v2") == 0)
        snprintf(dir, sizeof(dir), "%s/%s", CGROUP_ROOT, CGROUP_PARENT);
    else
        snprintf(dir, sizeof(dir), "%s/pids/%s", CGROUP_ROOT, CGROUP_PARENT);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.')
            fn(e->d_name, arg);
    }
    closedir(d);
    return 0;
}
