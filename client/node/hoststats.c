/* hoststats.c - see client/node/node.h. */
#include "client/node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "client/util.h"

enum { F_STAT, F_MEMINFO, F_LOADAVG, F_UPTIME, F_COUNT };
static const char *const files[F_COUNT] = {"stat", "meminfo", "loadavg",
                                           "uptime"};

struct hoststats_collector {
    int fds[F_COUNT];
    char *data_dir;
    char buf[64 * 1024];
    uint64_t prev[HOSTSTATS_MAX_CPUS + 1][8]; /* [0] is the "cpu" total */
    int nprev;
    double mhz_per_core;
    struct host_stats stats;
    bool have;
    uv_timer_t *timer;
};

/* Reads one kept-open file into c->buf; returns its length or -errno. */
static ssize_t reread(struct hoststats_collector *c, int which)
{
    if (c->fds[which] < 0)
        return -ENOENT;
    ssize_t n = pread(c->fds[which], c->buf, sizeof(c->buf) - 1, 0);
    if (n < 0)
        return -errno;
    c->buf[n] = '\0';
    return n;
}

/* Lines "cpu  u n s i iow irq sirq steal" then "cpuN ..."; fills up to max
 * rows, row 0 being the aggregate. Returns the number of rows. */
int hoststats_parse_cpu(const char *stat, uint64_t (*ticks)[8], int max)
{
    int rows = 0;
    for (const char *line = stat; line && *line && rows < max;) {
        if (strncmp(line, "cpu", 3) == 0) {
            const char *p = line + 3;
            while (*p >= '0' && *p <= '9')
                p++;
            unsigned long long v[8] = {0};
            if (sscanf(p, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                       &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4) {
                for (int k = 0; k < 8; k++)
                    ticks[rows][k] = v[k];
                rows++;
            }
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return rows;
}

static uint64_t meminfo_kb(const char *txt, const char *key)
{
    const char *p = strstr(txt, key);
    if (!p || (p != txt && p[-1] != '\n'))
        return 0;
    return strtoull(p + strlen(key), NULL, 10);
}

int hoststats_parse_meminfo(const char *meminfo, struct host_stats *s)
{
    uint64_t total = meminfo_kb(meminfo, "MemTotal:");
    if (!total)
        return -EINVAL;
    s->mem_total = total << 10;
    s->mem_free = meminfo_kb(meminfo, "MemFree:") << 10;
    s->mem_available = meminfo_kb(meminfo, "MemAvailable:") << 10;
    if (!s->mem_available)
        s->mem_available = s->mem_free;
    s->mem_used = s->mem_total > s->mem_available
                      ? s->mem_total - s->mem_available
                      : 0;
    return 0;
}

static void cpu_percent(const uint64_t *prev, const uint64_t *cur,
                        struct host_cpu_stats *out)
{
    uint64_t tot_prev = 0, tot_cur = 0;
    for (int k = 0; k < 8; k++) {
        tot_prev += prev[k];
        tot_cur += cur[k];
    }
    double total = tot_cur > tot_prev ? (double)(tot_cur - tot_prev) : 0;
    if (total <= 0) {
        *out = (struct host_cpu_stats){0, 0, 100, 0};
        return;
    }
    double user = (double)((cur[0] + cur[1]) - (prev[0] + prev[1]));
    double sys = (double)((cur[2] + cur[5] + cur[6]) - (prev[2] + prev[5] + prev[6]));
    double idle = (double)((cur[3] + cur[4]) - (prev[3] + prev[4]));
    out->user = 100.0 * user / total;
    out->system = 100.0 * sys / total;
    out->idle = 100.0 * idle / total;
    out->total = 100.0 - out->idle;
}

int hoststats_collect(struct hoststats_collector *c)
{
    struct host_stats *s = &c->stats;
    uint64_t cur[HOSTSTATS_MAX_CPUS + 1][8];
    int rows = 0;
    if (reread(c, F_STAT) > 0)
        rows = hoststats_parse_cpu(c->buf, cur, HOSTSTATS_MAX_CPUS + 1);
    if (rows > 1 && c->nprev == rows) {
        s->ncpus = rows - 1;
        for (int i = 1; i < rows; i++)
            cpu_percent(c->prev[i], cur[i], &s->cpu[i - 1]);
        struct host_cpu_stats all;
        cpu_percent(c->prev[0], cur[0], &all);
        s->cpu_ticks_consumed = all.total / 100.0 * c->mhz_per_core * s->ncpus;
    }
    if (rows > 0) {
        memcpy(c->prev, cur, sizeof(cur[0]) * (size_t)rows);
        c->nprev = rows;
    }
    if (reread(c, F_MEMINFO) > 0)
        hoststats_parse_meminfo(c->buf, s);
    if (reread(c, F_LOADAVG) > 0)
        sscanf(c->buf, "%lf %lf %lf", &s->load1, &s->load5, &s->load15);
    if (reread(c, F_UPTIME) > 0)
        s->uptime = (uint64_t)strtod(c->buf, NULL);
    struct statvfs vfs;
    if (c->data_dir && statvfs(c->data_dir, &vfs) == 0) {
        s->disk_size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        s->disk_available = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        s->disk_used = s->disk_size - (uint64_t)vfs.f_bfree * vfs.f_frsize;
        s->disk_used_percent =
            s->disk_size ? 100.0 * (double)s->disk_used / (double)s->disk_size : 0;
        s->inodes_used_percent =
            vfs.f_files ? 100.0 * (double)(vfs.f_files - vfs.f_ffree) /
                              (double)vfs.f_files
                        : 0;
    }
    s->timestamp = nc_now_unix_ns();
    c->have = true;
    return 0;
}

/* The filesystem holding data_dir: longest mount point prefix. */
static void find_mount(struct hoststats_collector *c, const char *proc)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/self/mounts", proc);
    FILE *f = fopen(path, "re");
    if (!f || !c->data_dir) {
        if (f)
            fclose(f);
        return;
    }
    char dev[256], mnt[512], rest[512];
    size_t best = 0;
    while (fscanf(f, "%255s %511s %511[^\n]", dev, mnt, rest) == 3) {
        size_t n = strlen(mnt);
        if (nc_str_has_prefix(c->data_dir, mnt) &&
            (c->data_dir[n] == '/' || c->data_dir[n] == '\0' || n == 1) &&
            n >= best) {
            best = n;
            snprintf(c->stats.device, sizeof(c->stats.device), "%.127s", dev);
            snprintf(c->stats.mountpoint, sizeof(c->stats.mountpoint), "%.255s", mnt);
        }
    }
    fclose(f);
}

int hoststats_collector_init(struct hoststats_collector **out,
                             const char *proc_root, const char *data_dir)
{
    const char *proc = proc_root ? proc_root : "/proc";
    struct hoststats_collector *c = xcalloc(1, sizeof(*c));
    for (int i = 0; i < F_COUNT; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", proc, files[i]);
        c->fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    }
    c->data_dir = xstrdup(data_dir);
    c->mhz_per_core = 1000;
    char path[512];
    snprintf(path, sizeof(path), "%s/cpuinfo", proc);
    size_t len;
    char *info = nc_read_file(path, &len, 4 << 20);
    const char *mhz = info ? strstr(info, "cpu MHz") : NULL;
    if (mhz && (mhz = strchr(mhz, ':')))
        c->mhz_per_core = strtod(mhz + 1, NULL);
    free(info);
    find_mount(c, proc);
    /* baseline, so the first collect already has a CPU delta */
    hoststats_collect(c);
    c->have = false;
    *out = c;
    return 0;
}

const struct host_stats *hoststats_latest(const struct hoststats_collector *c)
{
    return c && c->have ? &c->stats : NULL;
}

json_t *hoststats_to_json(const struct host_stats *s)
{
    json_t *cpus = json_array();
    for (int i = 0; i < s->ncpus; i++) {
        char name[16];
        snprintf(name, sizeof(name), "cpu%d", i);
        json_array_append_new(
            cpus, json_pack("{s:s, s:f, s:f, s:f, s:f}", "CPU", name, "User",
                            s->cpu[i].user, "System", s->cpu[i].system, "Idle",
                            s->cpu[i].idle, "Total", s->cpu[i].total));
    }
    return json_pack(
        "{s:{s:I, s:I, s:I, s:I}, s:o, s:f, s:[{s:s, s:s, s:I, s:I, s:I, s:f, "
        "s:f}], s:I, s:I, s:{s:f, s:f, s:f}}",
        "Memory", "Total", (json_int_t)s->mem_total, "Available",
        (json_int_t)s->mem_available, "Used", (json_int_t)s->mem_used, "Free",
        (json_int_t)s->mem_free, "CPU", cpus, "CPUTicksConsumed",
        s->cpu_ticks_consumed, "DiskStats", "Device", s->device, "Mountpoint",
        s->mountpoint, "Size", (json_int_t)s->disk_size, "Used",
        (json_int_t)s->disk_used, "Available", (json_int_t)s->disk_available,
        "UsedPercent", s->disk_used_percent, "InodesUsedPercent",
        s->inodes_used_percent, "Uptime", (json_int_t)s->uptime, "Timestamp",
        (json_int_t)s->timestamp, "LoadAverage", "Load1", s->load1, "Load5",
        s->load5, "Load15", s->load15);
}

static void on_tick(uv_timer_t *t) { hoststats_collect(t->data); }

int hoststats_start(struct hoststats_collector *c, uv_loop_t *loop,
                    uint64_t interval_ms)
{
    c->timer = xcalloc(1, sizeof(*c->timer));
    uv_timer_init(loop, c->timer);
    c->timer->data = c;
    hoststats_collect(c); /* the API has figures from the first request */
    return uv_timer_start(c->timer, on_tick, interval_ms, interval_ms);
}

static void on_timer_closed(uv_handle_t *h) { free(h); }

void hoststats_stop(struct hoststats_collector *c)
{
    if (c && c->timer) {
        uv_close((uv_handle_t *)c->timer, on_timer_closed);
        c->timer = NULL;
    }
}

void hoststats_collector_free(struct hoststats_collector *c)
{
    if (!c)
        return;
    for (int i = 0; i < F_COUNT; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    free(c->data_dir);
    free(c);
}
