/* hoststats.h - host CPU, memory, disk, load and uptime, sampled on a
 * timer. The /proc files stay open and are re-read with pread into fixed
 * buffers: a sample allocates nothing. JSON follows Nomad's HostStats. */
#ifndef NOMCLIENT_HOSTSTATS_H
#define NOMCLIENT_HOSTSTATS_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define HOSTSTATS_MAX_CPUS 256

struct host_cpu_stats {
    double user, system, idle, total; /* percent over the last interval */
};

struct host_stats {
    int ncpus;
    struct host_cpu_stats cpu[HOSTSTATS_MAX_CPUS];
    double cpu_ticks_consumed; /* MHz-seconds used, as Nomad */
    uint64_t mem_total, mem_available, mem_used, mem_free; /* bytes */
    char device[128], mountpoint[256];
    uint64_t disk_size, disk_used, disk_available;
    double disk_used_percent, inodes_used_percent;
    uint64_t uptime; /* seconds */
    double load1, load5, load15;
    int64_t timestamp; /* unix ns */
};

struct hoststats_collector;

/* proc_root NULL means /proc; data_dir is the filesystem reported. */
int hoststats_collector_init(struct hoststats_collector **out,
                             const char *proc_root, const char *data_dir);
int hoststats_collect(struct hoststats_collector *c);
/* NULL before the first sample. */
const struct host_stats *hoststats_latest(const struct hoststats_collector *c);
json_t *hoststats_to_json(const struct host_stats *s);
int hoststats_start(struct hoststats_collector *c, uv_loop_t *loop,
                    uint64_t interval_ms);
/* Closes the timer; free the collector after the loop ran its callback. */
void hoststats_stop(struct hoststats_collector *c);
void hoststats_collector_free(struct hoststats_collector *c);

/* Parsers, exposed for tests. */
int hoststats_parse_cpu(const char *stat, uint64_t (*ticks)[8], int max);
int hoststats_parse_meminfo(const char *meminfo, struct host_stats *s);

#endif
