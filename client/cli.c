/* cli.c - the command line, laid out like Nomad's so its users feel at home:
 * `nomclient agent`, `status -self`, `job run|validate|status|stop|inspect`,
 * `version`. Every command takes -h; exit 0 on success, 1 on error. */
#include "client/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/api/api.h"
#include "client/config.h"
#include "client/format.h"
#include "client/job/job.h"
#include "client/services/services.h"
#include "client/drivers/driver.h"
#include "netns/netns.h"

#define NOMAD_API_VERSION "1.7.7"

/* ---- flags ------------------------------------------------------------ */

enum flag_kind { FLAG_BOOL, FLAG_STRING, FLAG_MULTI };

struct flag {
    const char *name;
    enum flag_kind kind;
    void *target; /* bool *, const char **, struct strlist * */
};

/* Parses Go-style flags ("-x", "-x=v", "-x v", "--x") up to the first
 * argument that is not a flag, as Nomad's CLI does. Returns the index of the
 * first positional argument, -1 on error (message printed), -2 for -h. */
static int parse_flags(const char *cmd, int argc, char **argv,
                       const struct flag *flags, size_t nflags)
{
    int i = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        if (strcmp(arg, "--") == 0)
            return i + 1;
        const char *name = arg + 1 + (arg[1] == '-');
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0)
            return -2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == nlen &&
                strncmp(flags[k].name, name, nlen) == 0)
                f = &flags[k];
        if (!f) {
            fprintf(stderr, "%s: flag provided but not defined: -%.*s\n", cmd,
                    (int)nlen, name);
            return -1;
        }
        if (f->kind == FLAG_BOOL) {
            bool v = true;
            if (eq) {
                if (strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0)
                    v = true;
                else if (strcmp(eq + 1, "false") == 0 || strcmp(eq + 1, "0") == 0)
                    v = false;
                else {
                    fprintf(stderr, "%s: invalid boolean value \"%s\" for -%s\n",
                            cmd, eq + 1, f->name);
                    return -1;
                }
            }
            *(bool *)f->target = v;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: flag needs an argument: -%s\n", cmd, f->name);
                return -1;
            }
            val = argv[++i];
        }
        if (f->kind == FLAG_STRING)
            *(const char **)f->target = val;
        else
            strlist_add(f->target, val);
    }
    return i;
}

static void print_api_error(const char *what, const struct nc_error *err)
{
    fprintf(stderr, "Error %s: %s\n", what, err->msg);
}

static void print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s)
        printf("%s\n", s);
    free(s);
}

struct api_client;
static void print_alloc_table(struct api_client *api, const char *path,
                              const char *node_id);

static void row(struct strlist *rows, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void row(struct strlist *rows, const char *fmt, ...)
{
    struct nc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    strlist_add(rows, b.data ? b.data : "");
    nc_buf_free(&b);
}

/* ---- agent ------------------------------------------------------------ */

static const char agent_usage[] =
    "Usage: nomclient agent [options]\n"
    "\n"
    "  Starts the nomclient agent and runs until an interrupt is received.\n"
    "  The agent is the client side of a Nomad cluster: it fingerprints this\n"
    "  node, accepts jobs and serves the HTTP API.\n"
    "\n"
    "Options:\n"
    "  -dev                 Development mode: no config file needed, data in a\n"
    "                       fresh temporary directory, API on 127.0.0.1:4646.\n"
    "  -config=<path>       A config file or a directory of *.hcl/*.json files;\n"
    "                       may be repeated, later ones override earlier ones.\n"
    "  -data-dir=<path>     Where state and task directories live.\n"
    "  -bind=<addr>         Address the HTTP API binds to.\n"
    "  -http-port=<port>    Port of the HTTP API (default 4646).\n"
    "  -node=<name>         Node name (default: hostname).\n"
    "  -dc=<datacenter>     Datacenter (default: dc1).\n"
    "  -region=<region>     Region (default: global).\n"
    "  -node-class=<class>  Node class.\n"
    "  -meta=<key=value>    Node metadata; may be repeated.\n"
    "  -network-interface=<name>  Interface whose address is advertised.\n"
    "  -log-level=<level>   trace, debug, info, warn or error (default info).\n"
    "  -log-json            Log one JSON object per line.\n";

static int cmd_agent(int argc, char **argv)
{
    bool dev = false, log_json = false;
    const char *data_dir = NULL, *bind = NULL, *port = NULL, *node = NULL,
               *dc = NULL, *region = NULL, *klass = NULL, *iface = NULL,
               *level = NULL;
    struct strlist configs = {0}, metas = {0};
    const struct flag flags[] = {
        {"dev", FLAG_BOOL, &dev},
        {"config", FLAG_MULTI, &configs},
        {"data-dir", FLAG_STRING, &data_dir},
        {"bind", FLAG_STRING, &bind},
        {"http-port", FLAG_STRING, &port},
        {"node", FLAG_STRING, &node},
        {"dc", FLAG_STRING, &dc},
        {"region", FLAG_STRING, &region},
        {"node-class", FLAG_STRING, &klass},
        {"meta", FLAG_MULTI, &metas},
        {"network-interface", FLAG_STRING, &iface},
        {"log-level", FLAG_STRING, &level},
        {"log-json", FLAG_BOOL, &log_json},
    };
    int rc = 1;
    struct agent_config cfg = {0};
    int pos = parse_flags("agent", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(agent_usage, stdout);
        rc = 0;
        goto out;
    }
    if (pos < 0 || pos != argc) {
        if (pos >= 0)
            fprintf(stderr, "agent: unexpected argument \"%s\"\n", argv[pos]);
        fputs(agent_usage, stderr);
        goto out;
    }
    if (!dev && configs.n == 0) {
        fprintf(stderr, "==> Must specify either a configuration file or "
                        "directory with -config, or use -dev\n");
        goto out;
    }
    config_defaults(&cfg, dev);
    struct nc_error err = {0};
    for (size_t i = 0; i < configs.n; i++) {
        if (config_load_path(&cfg, configs.items[i], &err) < 0) {
            fprintf(stderr, "==> Error loading configuration from %s: %s\n",
                    configs.items[i], err.msg);
            goto out;
        }
    }
    config_apply_env(&cfg);
    if (data_dir) {
        if (dev)
            rmdir(cfg.data_dir); /* the fresh, still empty dev dir */
        free(cfg.data_dir);
        cfg.data_dir = xstrdup(data_dir);
    }
    if (bind) {
        free(cfg.bind_addr);
        cfg.bind_addr = xstrdup(bind);
    }
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 0 || p > 65535) {
            fprintf(stderr, "==> Invalid -http-port \"%s\": expected 0-65535\n", port);
            goto out;
        }
        cfg.http_port = (int)p;
    }
    struct {
        const char *val;
        char **field;
    } overrides[] = {{node, &cfg.name},
                     {dc, &cfg.datacenter},
                     {region, &cfg.region},
                     {klass, &cfg.client.node_class},
                     {iface, &cfg.client.network_interface},
                     {level, &cfg.log_level}};
    for (size_t i = 0; i < NC_ARRAY_LEN(overrides); i++) {
        if (overrides[i].val) {
            free(*overrides[i].field);
            *overrides[i].field = xstrdup(overrides[i].val);
        }
    }
    for (size_t i = 0; i < metas.n; i++) {
        char *eq = strchr(metas.items[i], '=');
        if (!eq || eq == metas.items[i]) {
            fprintf(stderr, "==> Invalid -meta \"%s\": expected key=value\n",
                    metas.items[i]);
            goto out;
        }
        *eq = '\0';
        kv_set(&cfg.client.meta, metas.items[i], eq + 1);
    }
    if (log_json)
        cfg.log_json = true;
    if (config_validate(&cfg, &err) < 0) {
        fprintf(stderr, "==> Invalid configuration: %s\n", err.msg);
        goto out;
    }
    enum nc_log_level lvl = NC_LOG_INFO;
    nc_log_parse_level(cfg.log_level, &lvl);
    nc_log_setup(lvl, cfg.log_json);
    if (agent_run(&cfg, &err) < 0) {
        fprintf(stderr, "==> Error starting agent: %s\n", err.msg);
        LOG_ERROR("agent", "%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    config_free(&cfg);
    strlist_free(&configs);
    strlist_free(&metas);
    return rc;
}

/* ---- node status ---------------------------------------------------- */

static const char status_self_usage[] =
    "Usage: nomclient status -self [options]\n"
    "       nomclient node status -self [options]\n"
    "\n"
    "  Shows this node: identity, drivers, host volumes, events, allocated\n"
    "  and used resources, and allocations, laid out like\n"
    "  `nomad node status -self`.\n"
    "\n"
    "Options:\n"
    "  -self            Query the node of the agent at -address (required).\n"
    "  -stats           Add detailed CPU, memory and disk statistics.\n"
    "  -verbose         Add full IDs, all attributes, meta and driver details.\n"
    "  -json            Print the node as JSON (Nomad's Node object).\n"
    "  -address=<addr>  Agent address (default $NOMCLIENT_ADDR or\n"
    "                   http://127.0.0.1:4646).\n";

static void print_driver_table(const json_t *drivers)
{
    struct strlist rows = {0};
    row(&rows, "Driver|Detected|Healthy|Message|Time");
    const char *name;
    json_t *d;
    json_object_foreach((json_t *)drivers, name, d)
    {
        char when[32];
        format_time(format_jint(d, "UpdateTime"), when, sizeof(when));
        row(&rows, "%s|%s|%s|%s|%s", name,
            json_is_true(json_object_get(d, "Detected")) ? "true" : "false",
            json_is_true(json_object_get(d, "Healthy")) ? "true" : "false",
            format_jstr(d, "HealthDescription", "<none>"), when);
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);
}

static void print_sorted_kv(const char *title, const json_t *obj)
{
    struct kvlist l = {0};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (json_is_string(v))
            kv_set(&l, k, json_string_value(v));
    }
    kv_sort(&l);
    printf("\n%s\n", title);
    if (!l.n)
        printf("<none>\n");
    struct strlist rows = {0};
    for (size_t i = 0; i < l.n; i++)
        row(&rows, "%s|%s", l.items[i].key, l.items[i].value);
    format_kv(stdout, &rows);
    strlist_free(&rows);
    kv_free(&l);
}

static void print_detailed_stats(const json_t *stats)
{
    char a[32], b[32], c[32];
    printf("\nDetailed CPU Stats\n");
    json_t *cpu;
    size_t i;
    json_array_foreach(json_object_get(stats, "CPU"), i, cpu)
    {
        struct strlist rows = {0};
        row(&rows, "CPU|%s", format_jstr(cpu, "CPU", "?"));
        row(&rows, "User|%.2f%%", json_number_value(json_object_get(cpu, "User")));
        row(&rows, "System|%.2f%%", json_number_value(json_object_get(cpu, "System")));
        row(&rows, "Idle|%.2f%%", json_number_value(json_object_get(cpu, "Idle")));
        format_kv(stdout, &rows);
        strlist_free(&rows);
        printf("\n");
    }
    json_t *mem = json_object_get(stats, "Memory");
    printf("Detailed Memory Stats\n");
    struct strlist rows = {0};
    format_bytes((uint64_t)format_jint(mem, "Total"), a, sizeof a);
    row(&rows, "Total|%s", a);
    format_bytes((uint64_t)format_jint(mem, "Available"), a, sizeof a);
    row(&rows, "Available|%s", a);
    format_bytes((uint64_t)format_jint(mem, "Used"), a, sizeof a);
    row(&rows, "Used|%s", a);
    format_bytes((uint64_t)format_jint(mem, "Free"), a, sizeof a);
    row(&rows, "Free|%s", a);
    format_kv(stdout, &rows);
    strlist_free(&rows);
    printf("\nDetailed Disk Stats\n");
    json_t *disk;
    json_array_foreach(json_object_get(stats, "DiskStats"), i, disk)
    {
        struct strlist r = {0};
        format_bytes((uint64_t)format_jint(disk, "Size"), a, sizeof a);
        format_bytes((uint64_t)format_jint(disk, "Used"), b, sizeof b);
        format_bytes((uint64_t)format_jint(disk, "Available"), c, sizeof c);
        row(&r, "Device|%s", format_jstr(disk, "Device", "?"));
        row(&r, "MountPoint|%s", format_jstr(disk, "Mountpoint", "?"));
        row(&r, "Size|%s", a);
        row(&r, "Used|%s", b);
        row(&r, "Available|%s", c);
        row(&r, "Used Percent|%.2f%%",
            json_number_value(json_object_get(disk, "UsedPercent")));
        row(&r, "Inodes Percent|%.2f%%",
            json_number_value(json_object_get(disk, "InodesUsedPercent")));
        format_kv(stdout, &r);
        strlist_free(&r);
    }
}

static int node_status_self(struct api_client *api, bool stats, bool verbose,
                            bool as_json)
{
    struct nc_error err = {0};
    json_t *node = NULL, *hs = NULL;
    if (api_request(api, "GET", "/v1/node/self", NULL, &node, NULL, &err) < 0) {
        print_api_error("querying node status", &err);
        return 1;
    }
    if (as_json) {
        print_json(node);
        json_decref(node);
        return 0;
    }
    /* stats are best effort: the node is still worth showing without them */
    if (api_request(api, "GET", "/v1/client/stats", NULL, &hs, NULL, &err) < 0)
        hs = NULL;

    const char *id = format_jstr(node, "ID", "?");
    json_t *attrs = json_object_get(node, "Attributes");
    struct strlist rows = {0};
    row(&rows, "ID|%.*s", verbose ? 36 : 8, id);
    row(&rows, "Name|%s", format_jstr(node, "Name", "<none>"));
    row(&rows, "Node Pool|%s", format_jstr(node, "NodePool", "default"));
    row(&rows, "Class|%s", format_jstr(node, "NodeClass", "<none>"));
    row(&rows, "DC|%s", format_jstr(node, "Datacenter", "<none>"));
    row(&rows, "Drain|%s", json_is_true(json_object_get(node, "Drain")) ? "true" : "false");
    row(&rows, "Eligibility|%s",
        format_jstr(node, "SchedulingEligibility", "eligible"));
    row(&rows, "Status|%s", format_jstr(node, "Status", "unknown"));
    row(&rows, "CSI Controllers|<none>");
    row(&rows, "CSI Drivers|<none>");
    if (hs) {
        char up[64];
        nc_format_duration(format_jint(hs, "Uptime") * 1000000000LL, up,
                           sizeof(up));
        row(&rows, "Uptime|%s", up);
    }
    struct nc_buf vols = {0}, drivers = {0};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(node, "HostVolumes"), k, v)
    {
        nc_buf_printf(&vols, "%s%s", vols.len ? "," : "", k);
    }
    json_object_foreach(json_object_get(node, "Drivers"), k, v)
    {
        if (json_is_true(json_object_get(v, "Detected")) &&
            json_is_true(json_object_get(v, "Healthy")))
            nc_buf_printf(&drivers, "%s%s", drivers.len ? "," : "", k);
    }
    row(&rows, "Host Volumes|%s", vols.len ? vols.data : "<none>");
    row(&rows, "Host Networks|<none>");
    row(&rows, "CSI Volumes|<none>");
    row(&rows, "Driver Status|%s", drivers.len ? drivers.data : "<none>");
    nc_buf_free(&vols);
    nc_buf_free(&drivers);
    format_kv(stdout, &rows);
    strlist_free(&rows);

    printf("\nNode Events\n");
    row(&rows, "Time|Subsystem|Message");
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(node, "Events"), i, ev)
    {
        char when[32];
        format_time(format_jint(ev, "Timestamp"), when, sizeof(when));
        row(&rows, "%s|%s|%s", when, format_jstr(ev, "Subsystem", ""),
            format_jstr(ev, "Message", ""));
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);

    json_t *res = json_object_get(node, "NodeResources");
    json_int_t cpu_total =
        format_jint(json_object_get(res, "Cpu"), "CpuShares");
    json_int_t mem_total =
        format_jint(json_object_get(res, "Memory"), "MemoryMB") << 20;
    json_int_t disk_total = format_jint(json_object_get(res, "Disk"), "DiskMB")
                            << 20;
    json_t *alloc = json_object_get(node, "AllocatedResources");
    char m1[32], m2[32], d1[32], d2[32];
    format_bytes((uint64_t)(format_jint(alloc, "MemoryMB") << 20), m1,
                 sizeof m1);
    format_bytes((uint64_t)mem_total, m2, sizeof m2);
    format_bytes((uint64_t)(format_jint(alloc, "DiskMB") << 20), d1, sizeof d1);
    format_bytes((uint64_t)disk_total, d2, sizeof d2);
    printf("\nAllocated Resources\n");
    row(&rows, "CPU|Memory|Disk");
    row(&rows, "%lld/%lld MHz|%s/%s|%s/%s",
        (long long)format_jint(alloc, "CpuMHz"), (long long)cpu_total, m1, m2,
        d1, d2);
    format_columns(stdout, &rows);
    strlist_free(&rows);

    printf("\nAllocation Resource Utilization\n");
    json_t *used = json_object_get(node, "AllocationUtilization");
    format_bytes((uint64_t)format_jint(used, "MemoryBytes"), m1, sizeof m1);
    row(&rows, "CPU|Memory");
    row(&rows, "%lld/%lld MHz|%s/%s", (long long)format_jint(used, "CpuMHz"),
        (long long)cpu_total, m1, m2);
    format_columns(stdout, &rows);
    strlist_free(&rows);

    if (hs) {
        json_t *mem = json_object_get(hs, "Memory");
        format_bytes((uint64_t)format_jint(mem, "Used"), m1, sizeof m1);
        format_bytes((uint64_t)format_jint(mem, "Total"), m2, sizeof m2);
        json_t *disk = json_array_get(json_object_get(hs, "DiskStats"), 0);
        format_bytes((uint64_t)format_jint(disk, "Used"), d1, sizeof d1);
        format_bytes((uint64_t)format_jint(disk, "Size"), d2, sizeof d2);
        printf("\nHost Resource Utilization\n");
        row(&rows, "CPU|Memory|Disk");
        row(&rows, "%.0f/%lld MHz|%s/%s|%s/%s",
            json_number_value(json_object_get(hs, "CPUTicksConsumed")),
            (long long)cpu_total, m1, m2, d1, d2);
        format_columns(stdout, &rows);
        strlist_free(&rows);
    }

    if (verbose) {
        printf("\nDrivers\n");
        print_driver_table(json_object_get(node, "Drivers"));
    }
    if (stats && hs)
        print_detailed_stats(hs);
    print_alloc_table(api, "/v1/node/self/allocations",
                      format_jstr(node, "ID", ""));
    if (verbose) {
        print_sorted_kv("Attributes", attrs);
        print_sorted_kv("Meta", json_object_get(node, "Meta"));
    }
    json_decref(hs);
    json_decref(node);
    return 0;
}

static int cmd_status_common(const char *cmd, int argc, char **argv,
                             bool node_only);

static int cmd_node(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0 ||
        strcmp(argv[0], "--help") == 0) {
        fputs(status_self_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 1 : 0;
    }
    if (strcmp(argv[0], "status") != 0) {
        fprintf(stderr, "node: unknown subcommand \"%s\"; this node supports "
                        "`node status -self`\n", argv[0]);
        return 1;
    }
    return cmd_status_common("node status", argc - 1, argv + 1, true);
}

/* ---- jobs -------------------------------------------------------------- */

static void print_warnings(const char *warnings)
{
    if (warnings && *warnings)
        fprintf(stderr, "Job Warnings:\n%s\n\n", warnings);
}

static char *warnings_text(const struct strlist *w)
{
    if (!w->n)
        return NULL;
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%zu warning%s:\n", w->n, w->n == 1 ? "" : "s");
    for (size_t i = 0; i < w->n; i++)
        nc_buf_printf(&b, "\n* %s", w->items[i]);
    return nc_buf_take(&b);
}

static const char job_run_usage[] =
    "Usage: nomclient job run [options] <path>\n"
    "\n"
    "  Submits a job file (HCL, or Nomad's JSON job form) to the agent. The\n"
    "  file is parsed and validated here first, so errors name the file,\n"
    "  line and field. A job that this node cannot place is refused with the\n"
    "  constraint or resource that filtered it.\n"
    "\n"
    "Options:\n"
    "  -output          Print the job in Nomad's API JSON and do not submit.\n"
    "  -check-index=<n> Register only if the job's modify index is n (0: new).\n"
    "  -address=<addr>  Agent address.\n";

static int load_job_file(const char *path, struct job **job)
{
    struct nc_error err = {0};
    if (jobspec_parse_file(path, job, &err) < 0) {
        fprintf(stderr, "Error parsing job file from %s:\n%s\n", path, err.msg);
        return -1;
    }
    return 0;
}

static int cmd_job_run(struct api_client *api, int argc, char **argv)
{
    bool output = false;
    const char *address = NULL, *check_index = NULL;
    const struct flag flags[] = {{"output", FLAG_BOOL, &output},
                                 {"address", FLAG_STRING, &address},
                                 {"check-index", FLAG_STRING, &check_index},
                                 {"detach", FLAG_BOOL, &(bool){false}},
                                 {"verbose", FLAG_BOOL, &(bool){false}}};
    int pos = parse_flags("job run", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(job_run_usage, stdout);
        return 0;
    }
    if (pos < 0 || argc - pos != 1) {
        if (pos >= 0)
            fprintf(stderr, "This command takes one argument: <path>\n");
        fputs(job_run_usage, stderr);
        return 1;
    }
    struct job *job = NULL;
    if (load_job_file(argv[pos], &job) < 0)
        return 1;
    json_t *body = json_pack("{s:o}", "Job", jobspec_to_json(job));
    int rc = 1;
    if (output) {
        print_json(body);
        rc = 0;
        goto out;
    }
    if (check_index) {
        char *end;
        long long ci = strtoll(check_index, &end, 10);
        if (*end || ci < 0) {
            fprintf(stderr, "Invalid -check-index \"%s\"\n", check_index);
            goto out;
        }
        json_object_set_new(body, "EnforceIndex", json_true());
        json_object_set_new(body, "JobModifyIndex", json_integer(ci));
    }
    api_client_free(api);
    api_client_init(api, address);
    struct nc_error err = {0};
    json_t *resp = NULL;
    if (api_request(api, "POST", "/v1/jobs", body, &resp, NULL, &err) < 0) {
        const json_t *eb = api_last_error_body();
        const char *msg = eb ? json_string_value(json_object_get(eb, "error")) : NULL;
        char *w = warnings_text(&job->warnings);
        print_warnings(w);
        free(w);
        if (msg)
            fprintf(stderr, "Error submitting job \"%s\":\n%s\n", job->id, msg);
        else
            print_api_error("submitting job", &err);
        goto out;
    }
    print_warnings(format_jstr(resp, "Warnings", NULL));
    printf("==> Job \"%s\" registered\n", job->id);
    printf("    Evaluation ID: %s\n", format_jstr(resp, "EvalID", "?"));
    printf("    Job Modify Index: %lld\n",
           (long long)format_jint(resp, "JobModifyIndex"));
    printf("    Placement: this node satisfies every constraint and has the "
           "resources for all groups\n");
    json_decref(resp);
    rc = 0;
out:
    json_decref(body);
    jobspec_free(job);
    return rc;
}

static const char job_validate_usage[] =
    "Usage: nomclient job validate <path>\n"
    "\n"
    "  Checks a job file's syntax and structure without submitting it, and\n"
    "  prints warnings for stanzas this node keeps but does not act on.\n";

static int cmd_job_validate(int argc, char **argv)
{
    int pos = parse_flags("job validate", argc, argv, NULL, 0);
    if (pos == -2) {
        fputs(job_validate_usage, stdout);
        return 0;
    }
    if (pos < 0 || argc - pos != 1) {
        if (pos >= 0)
            fprintf(stderr, "This command takes one argument: <path>\n");
        fputs(job_validate_usage, stderr);
        return 1;
    }
    struct job *job = NULL;
    if (load_job_file(argv[pos], &job) < 0)
        return 1;
    char *w = warnings_text(&job->warnings);
    print_warnings(w);
    free(w);
    printf("Job validation successful\n");
    jobspec_free(job);
    return 0;
}

static void print_job_list(const json_t *list)
{
    if (json_array_size(list) == 0) {
        printf("No running jobs\n");
        return;
    }
    struct strlist rows = {0};
    row(&rows, "ID|Type|Priority|Status|Submit Date");
    size_t i;
    json_t *j;
    json_array_foreach(list, i, j)
    {
        char when[32];
        format_time(format_jint(j, "SubmitTime"), when, sizeof(when));
        row(&rows, "%s|%s|%lld|%s|%s", format_jstr(j, "ID", "?"),
            format_jstr(j, "Type", "?"), (long long)format_jint(j, "Priority"),
            format_jstr(j, "Status", "?"), when);
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);
}

static char *join_json_strings(const json_t *arr)
{
    struct nc_buf b = {0};
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        nc_buf_printf(&b, "%s%s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "");
    }
    return nc_buf_take(&b);
}

static int print_job_status(struct api_client *api, const char *id)
{
    struct nc_error err = {0};
    char *path = NULL;
    /* encode the id: it may hold any byte but NUL */
    struct nc_buf b = {0};
    nc_buf_puts(&b, "/v1/job/");
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
            nc_buf_putc(&b, (char)*p);
        else
            nc_buf_printf(&b, "%%%02X", *p);
    }
    path = nc_buf_take(&b);
    json_t *job = NULL;
    long status = 0;
    int r = api_request(api, "GET", path, NULL, &job, &status, &err);
    free(path);
    if (r < 0) {
        if (status == 404)
            fprintf(stderr, "No job(s) with prefix or id \"%s\" found\n", id);
        else
            print_api_error("querying job", &err);
        return 1;
    }
    struct strlist rows = {0};
    char when[32];
    format_time(format_jint(job, "SubmitTime"), when, sizeof(when));
    char *dcs = join_json_strings(json_object_get(job, "Datacenters"));
    row(&rows, "ID|%s", format_jstr(job, "ID", "?"));
    row(&rows, "Name|%s", format_jstr(job, "Name", "?"));
    row(&rows, "Submit Date|%s", when);
    row(&rows, "Type|%s", format_jstr(job, "Type", "?"));
    row(&rows, "Priority|%lld", (long long)format_jint(job, "Priority"));
    row(&rows, "Datacenters|%s", dcs);
    row(&rows, "Namespace|%s", format_jstr(job, "Namespace", "default"));
    row(&rows, "Node Pool|%s", format_jstr(job, "NodePool", "default"));
    row(&rows, "Status|%s", format_jstr(job, "Status", "?"));
    row(&rows, "Periodic|%s", json_is_object(json_object_get(job, "Periodic")) ? "true" : "false");
    row(&rows, "Parameterized|%s",
        json_is_object(json_object_get(job, "ParameterizedJob")) ? "true" : "false");
    free(dcs);
    format_kv(stdout, &rows);
    strlist_free(&rows);

    printf("\nSummary\n");
    row(&rows, "Task Group|Queued|Starting|Running|Failed|Complete|Lost|Unknown");
    bool stopped = json_is_true(json_object_get(job, "Stop"));
    bool per_node = nc_streq(format_jstr(job, "Type", ""), "system") ||
                    nc_streq(format_jstr(job, "Type", ""), "sysbatch");
    size_t i;
    json_t *tg;
    json_array_foreach(json_object_get(job, "TaskGroups"), i, tg)
    {
        long long q =
            stopped ? 0 : (per_node ? 1 : (long long)format_jint(tg, "Count"));
        row(&rows, "%s|%lld|0|0|0|0|0|0", format_jstr(tg, "Name", "?"), q);
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);
    char *apath =
        xasprintf("/v1/job/%s/allocations", format_jstr(job, "ID", ""));
    print_alloc_table(api, apath, NULL);
    free(apath);
    json_decref(job);
    return 0;
}

static const char job_status_usage[] =
    "Usage: nomclient job status [options] [<job id>]\n"
    "\n"
    "  Lists the jobs of this node, or shows one job.\n"
    "\n"
    "Options:\n"
    "  -json            Print the API's JSON.\n"
    "  -address=<addr>  Agent address.\n";

static int cmd_job_status(struct api_client *api, int argc, char **argv)
{
    bool as_json = false;
    const char *address = NULL;
    const struct flag flags[] = {{"json", FLAG_BOOL, &as_json},
                                 {"address", FLAG_STRING, &address}};
    int pos = parse_flags("job status", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(job_status_usage, stdout);
        return 0;
    }
    if (pos < 0 || argc - pos > 1) {
        if (pos >= 0)
            fprintf(stderr, "This command takes either no arguments or one: <job>\n");
        fputs(job_status_usage, stderr);
        return 1;
    }
    api_client_free(api);
    api_client_init(api, address);
    struct nc_error err = {0};
    if (argc - pos == 1 && !as_json)
        return print_job_status(api, argv[pos]);
    json_t *doc = NULL;
    char *path = argc - pos == 1 ? xasprintf("/v1/job/%s", argv[pos]) : xstrdup("/v1/jobs");
    int r = api_request(api, "GET", path, NULL, &doc, NULL, &err);
    free(path);
    if (r < 0) {
        print_api_error("querying jobs", &err);
        return 1;
    }
    if (as_json)
        print_json(doc);
    else
        print_job_list(doc);
    json_decref(doc);
    return 0;
}

static const char job_stop_usage[] =
    "Usage: nomclient job stop [options] <job id>\n"
    "\n"
    "  Stops a job. With -purge the job is also removed from the agent.\n"
    "\n"
    "Options:\n"
    "  -purge           Remove the job entirely.\n"
    "  -yes             Accepted for compatibility (never prompts).\n"
    "  -address=<addr>  Agent address.\n";

static int cmd_job_stop(struct api_client *api, int argc, char **argv)
{
    bool purge = false, yes = false, detach = false;
    const char *address = NULL;
    const struct flag flags[] = {{"purge", FLAG_BOOL, &purge},
                                 {"yes", FLAG_BOOL, &yes},
                                 {"detach", FLAG_BOOL, &detach},
                                 {"address", FLAG_STRING, &address}};
    int pos = parse_flags("job stop", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(job_stop_usage, stdout);
        return 0;
    }
    if (pos < 0 || argc - pos != 1) {
        if (pos >= 0)
            fprintf(stderr, "This command takes one argument: <job>\n");
        fputs(job_stop_usage, stderr);
        return 1;
    }
    api_client_free(api);
    api_client_init(api, address);
    char *path = xasprintf("/v1/job/%s%s", argv[pos], purge ? "?purge=true" : "");
    struct nc_error err = {0};
    json_t *resp = NULL;
    long status = 0;
    int r = api_request(api, "DELETE", path, NULL, &resp, &status, &err);
    free(path);
    if (r < 0) {
        if (status == 404)
            fprintf(stderr, "No job(s) with prefix or id \"%s\" found\n", argv[pos]);
        else
            print_api_error("deregistering job", &err);
        return 1;
    }
    printf("==> Job \"%s\" %s\n    Evaluation ID: %s\n", argv[pos],
           purge ? "stopped and purged" : "stopped",
           format_jstr(resp, "EvalID", "?"));
    json_decref(resp);
    return 0;
}

static int cmd_job_inspect(struct api_client *api, int argc, char **argv)
{
    const char *address = NULL;
    const struct flag flags[] = {{"address", FLAG_STRING, &address},
                                 {"json", FLAG_BOOL, &(bool){true}}};
    int pos = parse_flags("job inspect", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2 || pos < 0 || argc - pos != 1) {
        fputs("Usage: nomclient job inspect <job id>\n\n"
              "  Prints a registered job in Nomad's API JSON.\n",
              pos == -2 ? stdout : stderr);
        return pos == -2 ? 0 : 1;
    }
    api_client_free(api);
    api_client_init(api, address);
    char *path = xasprintf("/v1/job/%s", argv[pos]);
    json_t *job = NULL;
    struct nc_error err = {0};
    long status = 0;
    int r = api_request(api, "GET", path, NULL, &job, &status, &err);
    free(path);
    if (r < 0) {
        if (status == 404)
            fprintf(stderr, "No job(s) with prefix or id \"%s\" found\n", argv[pos]);
        else
            print_api_error("inspecting job", &err);
        return 1;
    }
    json_t *wrapped = json_pack("{s:o}", "Job", job);
    print_json(wrapped);
    json_decref(wrapped);
    return 0;
}

static const char job_usage[] =
    "Usage: nomclient job <subcommand> [options] [args]\n"
    "\n"
    "Subcommands:\n"
    "    run         Submit a job file (or print it as JSON with -output)\n"
    "    validate    Check a job file without submitting it\n"
    "    status      List jobs or show one\n"
    "    stop        Stop (and optionally purge) a job\n"
    "    inspect     Print a registered job as JSON\n";

static int cmd_job(int argc, char **argv)
{
    if (argc < 1) {
        fputs(job_usage, stderr);
        return 1;
    }
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0 ||
        strcmp(argv[0], "--help") == 0) {
        fputs(job_usage, stdout);
        return 0;
    }
    struct api_client api;
    api_client_init(&api, NULL);
    int rc;
    if (strcmp(argv[0], "run") == 0)
        rc = cmd_job_run(&api, argc - 1, argv + 1);
    else if (strcmp(argv[0], "validate") == 0)
        rc = cmd_job_validate(argc - 1, argv + 1);
    else if (strcmp(argv[0], "status") == 0)
        rc = cmd_job_status(&api, argc - 1, argv + 1);
    else if (strcmp(argv[0], "stop") == 0)
        rc = cmd_job_stop(&api, argc - 1, argv + 1);
    else if (strcmp(argv[0], "inspect") == 0)
        rc = cmd_job_inspect(&api, argc - 1, argv + 1);
    else {
        fprintf(stderr, "job: unknown subcommand \"%s\"\n\n%s", argv[0], job_usage);
        rc = 1;
    }
    api_client_free(&api);
    return rc;
}

/* ---- allocations --------------------------------------------------------- */

/* Nomad's allocation table, from an endpoint listing allocation stubs. */
static void print_alloc_table(struct api_client *api, const char *path,
                              const char *node_id)
{
    json_t *list = NULL;
    struct nc_error err = {0};
    printf("\nAllocations\n");
    if (api_request(api, "GET", path, NULL, &list, NULL, &err) < 0 ||
        json_array_size(list) == 0) {
        printf("No allocations placed\n");
        json_decref(list);
        return;
    }
    struct strlist rows = {0};
    row(&rows, "ID|Node ID|Task Group|Version|Desired|Status|Created");
    size_t i;
    json_t *al;
    json_array_foreach(list, i, al)
    {
        char when[64];
        format_time(format_jint(al, "CreateTime"), when, sizeof(when));
        row(&rows, "%.8s|%.8s|%s|%lld|%s|%s|%s", format_jstr(al, "ID", "?"),
            node_id ? node_id : "", format_jstr(al, "TaskGroup", "?"),
            (long long)format_jint(al, "JobVersion"),
            format_jstr(al, "DesiredStatus", "?"),
            format_jstr(al, "ClientStatus", "?"), when);
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);
    json_decref(list);
}

static const char alloc_usage[] =
    "Usage: nomclient alloc <subcommand> [options] <alloc>\n"
    "\n"
    "  status <alloc>               Allocation details, task states, events\n"
    "  logs [-stderr] [-f] <alloc> [task]\n"
    "                               The task's newest log file; -f keeps\n"
    "                               printing what the task writes until it\n"
    "                               is dead\n"
    "\n"
    "  <alloc> is an allocation ID or a unique prefix of one.\n"
    "  -address=<addr>  The agent's HTTP API address.\n";

static int cmd_alloc_status(struct api_client *api, const char *id)
{
    char *path = xasprintf("/v1/allocation/%s", id);
    json_t *al = NULL;
    struct nc_error err = {0};
    int r = api_request(api, "GET", path, NULL, &al, NULL, &err);
    free(path);
    if (r < 0) {
        fprintf(stderr, "Error querying allocation: %s\n", err.msg);
        return 1;
    }
    struct strlist rows = {0};
    char when[64];
    format_time(format_jint(al, "CreateTime"), when, sizeof(when));
    row(&rows, "ID|%s", format_jstr(al, "ID", "?"));
    row(&rows, "Name|%s", format_jstr(al, "Name", "?"));
    row(&rows, "Job ID|%s", format_jstr(al, "JobID", "?"));
    row(&rows, "Job Version|%lld", (long long)format_jint(al, "JobVersion"));
    row(&rows, "Client Status|%s", format_jstr(al, "ClientStatus", "?"));
    row(&rows, "Client Description|%s",
        format_jstr(al, "ClientDescription", ""));
    row(&rows, "Desired Status|%s", format_jstr(al, "DesiredStatus", "?"));
    row(&rows, "Created|%s", when);
    json_t *net = json_array_get(json_object_get(json_object_get(
                                     json_object_get(al, "AllocatedResources"),
                                     "Shared"), "Networks"), 0);
    row(&rows, "Network Mode|%s", format_jstr(net, "Mode", "host"));
    format_kv(stdout, &rows);
    strlist_free(&rows);
    json_t *ports = json_object_get(net, "Ports");
    if (json_array_size(ports)) {
        printf("\nAllocation Addresses (mode = \"%s\")\n",
               format_jstr(net, "Mode", "host"));
        row(&rows, "Label|Host Port|To");
        size_t i;
        json_t *pt;
        json_array_foreach(ports, i, pt)
            row(&rows, "*%s|%lld|%lld", format_jstr(pt, "Label", "?"),
                (long long)format_jint(pt, "Value"),
                (long long)format_jint(pt, "To"));
        format_columns(stdout, &rows);
        strlist_free(&rows);
    }
    const char *task;
    json_t *ts;
    json_object_foreach(json_object_get(al, "TaskStates"), task, ts)
    {
        printf("\nTask \"%s\" is \"%s\"%s\n", task,
               format_jstr(ts, "State", "?"),
               json_is_true(json_object_get(ts, "Failed")) ? " (failed)" : "");
        printf("Restarts: %lld\n\nRecent Events:\n",
               (long long)format_jint(ts, "Restarts"));
        row(&rows, "Time|Type|Description");
        json_t *events = json_object_get(ts, "Events");
        for (size_t k = json_array_size(events); k-- > 0;) {
            json_t *ev = json_array_get(events, k);
            format_time(format_jint(ev, "Time"), when, sizeof(when));
            row(&rows, "%s|%s|%s", when, format_jstr(ev, "Type", "?"),
                format_jstr(ev, "DisplayMessage", ""));
        }
        format_columns(stdout, &rows);
        strlist_free(&rows);
    }
    json_decref(al);
    return 0;
}

static void write_stdout(void *arg, const char *data, size_t len)
{
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

static int cmd_alloc(int argc, char **argv)
{
    bool err_stream = false, follow = false;
    const char *address = NULL;
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0 ||
        strcmp(argv[0], "--help") == 0) {
        fputs(alloc_usage, argc < 1 ? stderr : stdout);
        return argc < 1;
    }
    const char *sub = argv[0];
    const struct flag flags[] = {{"stderr", FLAG_BOOL, &err_stream},
                                 {"f", FLAG_BOOL, &follow},
                                 {"address", FLAG_STRING, &address}};
    int pos = parse_flags("alloc", argc - 1, argv + 1, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(alloc_usage, stdout);
        return 0;
    }
    int nargs = pos < 0 ? -1 : argc - 1 - pos;
    char **args = argv + 1 + (pos < 0 ? 0 : pos);
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    if (strcmp(sub, "status") == 0 && nargs == 1) {
        rc = cmd_alloc_status(&api, args[0]);
    } else if (strcmp(sub, "logs") == 0 && (nargs == 1 || nargs == 2)) {
        char *path = xasprintf("/v1/client/fs/logs/%s?type=%s%s%s%s", args[0],
                               err_stream ? "stderr" : "stdout",
                               nargs == 2 ? "&task=" : "",
                               nargs == 2 ? args[1] : "",
                               follow ? "&follow=true" : "");
        char *txt = NULL;
        size_t len = 0;
        struct nc_error err = {0};
        if (follow) {
            if (api_stream_text(&api, path, write_stdout, NULL, &err) < 0)
                fprintf(stderr, "Error reading logs: %s\n", err.msg);
            else
                rc = 0;
        } else if (api_get_text(&api, path, &txt, &len, &err) < 0) {
            fprintf(stderr, "Error reading logs: %s\n", err.msg);
        } else {
            fwrite(txt, 1, len, stdout);
            rc = 0;
        }
        free(txt);
        free(path);
    } else {
        fprintf(stderr, "alloc: unknown subcommand or wrong arguments\n\n%s",
                alloc_usage);
    }
    api_client_free(&api);
    return rc;
}

static const char leftovers_usage[] =
    "Usage: nomclient leftovers [-clean] [-address=<addr>]\n"
    "\n"
    "  Lists what the kernel still holds for allocations this node no longer\n"
    "  runs: task cgroups, mounts under data_dir/alloc, and supervisors of\n"
    "  unknown or stopped allocations. -clean removes them.\n";

static int cmd_leftovers(int argc, char **argv)
{
    bool clean = false;
    const char *address = NULL;
    const struct flag flags[] = {{"clean", FLAG_BOOL, &clean},
                                 {"address", FLAG_STRING, &address}};
    int pos = parse_flags("leftovers", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(leftovers_usage, stdout);
        return 0;
    }
    if (pos < 0 || pos != argc) {
        fputs(leftovers_usage, stderr);
        return 1;
    }
    struct api_client api;
    api_client_init(&api, address);
    json_t *res = NULL;
    struct nc_error err = {0};
    int r = api_request(&api, clean ? "DELETE" : "GET", "/v1/client/leftovers",
                        NULL, &res, NULL, &err);
    api_client_free(&api);
    if (r < 0) {
        fprintf(stderr, "Error listing leftovers: %s\n", err.msg);
        return 1;
    }
    static const char *kinds[] = {"Cgroups", "Mounts", "Supervisors"};
    size_t total = 0;
    for (size_t k = 0; k < NC_ARRAY_LEN(kinds); k++) {
        json_t *list = json_object_get(res, kinds[k]);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            if (json_is_string(v))
                printf("%-12s %s\n", kinds[k], json_string_value(v));
            else
                printf("%-12s pid %lld (%s)\n", kinds[k],
                       (long long)format_jint(v, "Pid"),
                       format_jstr(v, "Spec", "?"));
            total++;
        }
    }
    /* network leftovers: recorded set-ups, namespaces, IPAM leases and
     * iptables rules of allocations this node no longer runs */
    json_t *net = json_object_get(res, "Network");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(net, "Setups"), i, v)
    {
        printf("%-12s allocation %s (%s, %s%s%s)\n", "Network",
               format_jstr(v, "AllocID", "?"), format_jstr(v, "Phase", "?"),
               format_jstr(v, "Netns", "no namespace"),
               json_string_value(json_object_get(v, "IP")) ? ", " : "",
               format_jstr(v, "IP", ""));
        total++;
    }
    json_array_foreach(json_object_get(net, "Namespaces"), i, v)
    {
        printf("%-12s %s\n", "Namespace", json_string_value(v));
        total++;
    }
    json_array_foreach(json_object_get(net, "IPAM"), i, v)
    {
        printf("%-12s %s leased to %s\n", "IPAM", format_jstr(v, "IP", "?"),
               format_jstr(v, "ContainerID", "?"));
        total++;
    }
    json_array_foreach(json_object_get(net, "Iptables"), i, v)
    {
        printf("%-12s %s %s: %s\n", "Iptables", format_jstr(v, "Table", "?"),
               format_jstr(v, "Chain", "?"), format_jstr(v, "Rule", ""));
        total++;
    }
    json_t *br = json_object_get(net, "Bridge");
    if (json_is_object(br)) {
        printf("%-12s %s%s%s (no allocation uses it)\n", "Bridge",
               format_jstr(br, "Name", "?"),
               json_is_true(json_object_get(br, "Link")) ? ", the link" : "",
               json_is_true(json_object_get(br, "AdminRule"))
                   ? ", its NOMAD-ADMIN rule"
                   : "");
        total++;
    }
    json_array_foreach(json_object_get(net, "Errors"), i, v)
        fprintf(stderr, "warning: %s\n", json_string_value(v));
    if (total == 0)
        printf("Nothing left behind: every cgroup, mount, supervisor, network "
               "namespace, IP lease and iptables rule belongs to a live "
               "allocation\n");
    else if (clean)
        printf("Removed %zu leftover(s)\n", total);
    else
        printf("%zu leftover(s); run with -clean to remove them\n", total);
    json_decref(res);
    return 0;
}

/* ---- checks ------------------------------------------------------------ */

static const char checks_usage[] =
    "Usage: nomclient checks [-verbose] [-json] [<alloc>]\n"
    "\n"
    "  The HTTP and TCP checks this node runs for its allocations' services:\n"
    "  status after thresholds, target, and the last probe's output.\n"
    "  With an allocation ID (or prefix), only that allocation's checks.\n"
    "\n"
    "  -verbose  Recent results and counters of each check\n"
    "  -json     The API's JSON (/v1/agent/checks)\n"
    "  -address=<addr>  The agent's HTTP API address.\n";

/* The first line of a probe's output, shortened for a table. */
static void first_line(const char *s, char *out, size_t len)
{
    size_t n = strcspn(s, "\r\n");
    if (n >= len)
        n = len - 4;
    snprintf(out, len, "%.*s%s", (int)n, s, s[n] && n == len - 4 ? "..." : "");
}

static int cmd_checks(int argc, char **argv)
{
    bool verbose = false, as_json = false;
    const char *address = NULL;
    const struct flag flags[] = {{"verbose", FLAG_BOOL, &verbose},
                                 {"json", FLAG_BOOL, &as_json},
                                 {"address", FLAG_STRING, &address}};
    int pos = parse_flags("checks", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(checks_usage, stdout);
        return 0;
    }
    if (pos < 0 || argc - pos > 1) {
        fputs(checks_usage, stderr);
        return 1;
    }
    const char *alloc = argc - pos == 1 ? argv[pos] : NULL;
    struct api_client api;
    api_client_init(&api, address);
    json_t *res = NULL;
    struct nc_error err = {0};
    int r = api_request(&api, "GET", "/v1/agent/checks", NULL, &res, NULL, &err);
    api_client_free(&api);
    if (r < 0) {
        fprintf(stderr, "Error querying checks: %s\n", err.msg);
        return 1;
    }
    const char *id;
    json_t *c;
    if (alloc) {
        json_t *keep = json_object();
        json_object_foreach(
            res, id,
            c) if (nc_str_has_prefix(format_jstr(c, "AllocID", ""), alloc))
            json_object_set(keep, id, c);
        json_decref(res);
        res = keep;
    }
    if (as_json) {
        print_json(res);
        json_decref(res);
        return 0;
    }
    if (json_object_size(res) == 0) {
        printf(alloc ? "No checks for allocations matching \"%s\"\n"
                     : "No checks running%s\n",
               alloc ? alloc : "");
        json_decref(res);
        return 0;
    }
    struct strlist rows = {0};
    row(&rows, "Alloc ID|Service|Check|Type|Target|Status|Output");
    json_object_foreach(res, id, c)
    {
        char out[64];
        first_line(format_jstr(c, "Output", ""), out, sizeof(out));
        row(&rows, "%.8s|%s|%s|%s|%s|%s|%s", format_jstr(c, "AllocID", "?"),
            format_jstr(c, "ServiceName", "?"), format_jstr(c, "Name", "?"),
            format_jstr(c, "Type", "?"),
            format_jstr(c, "URL", format_jstr(c, "Target", "?")),
            format_jstr(c, "Status", "?"), out);
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);
    if (verbose) {
        json_object_foreach(res, id, c)
        {
            json_t *k = json_object_get(c, "Counters");
            printf("\nCheck \"%s\" of service \"%s\" (%s)\n",
                   format_jstr(c, "Name", "?"),
                   format_jstr(c, "ServiceName", "?"), id);
            printf("  probes %lld: passing %lld, warning %lld, critical %lld, "
                   "timeouts %lld, skipped %lld, restarts %lld\n",
                   (long long)format_jint(k, "Probes"),
                   (long long)format_jint(k, "Passing"),
                   (long long)format_jint(k, "Warning"),
                   (long long)format_jint(k, "Critical"),
                   (long long)format_jint(k, "Timeouts"),
                   (long long)format_jint(k, "Skipped"),
                   (long long)format_jint(k, "Restarts"));
            struct strlist hist = {0};
            row(&hist, "  Time|Status|Code|Latency");
            size_t i;
            json_t *h;
            json_array_foreach(json_object_get(c, "History"), i, h)
            {
                char lat[32];
                nc_format_duration(format_jint(h, "Latency"), lat, sizeof(lat));
                row(&hist, "  %s|%s|%lld|%s", format_jstr(h, "Timestamp", "?"),
                    format_jstr(h, "Status", "?"),
                    (long long)format_jint(h, "Code"), lat);
            }
            format_columns(stdout, &hist);
            strlist_free(&hist);
        }
    }
    json_decref(res);
    return 0;
}

/* ---- services ---------------------------------------------------------- */

static const char services_usage[] =
    "Usage: nomclient services [-explain <name>] [-json] [-address=<addr>]\n"
    "\n"
    "  The services this node should have registered and whether each\n"
    "  registry agrees: Consul's and the built-in catalog's status first,\n"
    "  then every problem in one sentence, then per registration its\n"
    "  address:port, provider, registry, state (in sync, missing,\n"
    "  different, pending, rejected, unreachable, invalid), checks and ID,\n"
    "  and the stale entries Consul holds for this node.\n"
    "\n"
    "  -explain <name>  Walk a service (name, ID or ID prefix) from the job\n"
    "                   file to the registry: job, group, allocation, task,\n"
    "                   service block, address mode and how the address and\n"
    "                   port were chosen, the payload sent, the registry's\n"
    "                   last answer and next retry, its checks' results.\n"
    "  -json            The API's JSON (/v1/agent/registrations).\n"
    "  -address=<addr>  The agent's HTTP API address.\n";

static int cmd_services(int argc, char **argv)
{
    bool as_json = false;
    const char *explain = NULL, *address = NULL;
    const struct flag flags[] = {{"explain", FLAG_STRING, &explain},
                                 {"json", FLAG_BOOL, &as_json},
                                 {"address", FLAG_STRING, &address}};
    int pos = parse_flags("services", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(services_usage, stdout);
        return 0;
    }
    if (pos < 0 || pos != argc || (explain && !*explain)) {
        fputs(services_usage, stderr);
        return 1;
    }
    struct api_client api;
    api_client_init(&api, address);
    char *path = registrations_api_path(explain);
    json_t *view = NULL;
    struct nc_error err = {0};
    long status = 0;
    int r = api_request(&api, "GET", path, NULL, &view, &status, &err);
    free(path);
    const char *why = json_string_value(
        json_object_get(api_last_error_body(), "error"));
    if (r < 0 && status == 404 && why)
        fprintf(stderr, "Error: %s\n", why); /* names the known services */
    else if (r < 0)
        fprintf(stderr, "Error querying registrations: %s\n", err.msg);
    api_client_free(&api);
    if (r < 0)
        return 1;
    if (as_json)
        print_json(view);
    else if (explain)
        registrations_print_explain(stdout, view);
    else
        registrations_print(stdout, view);
    json_decref(view);
    return 0;
}

/* ---- status ------------------------------------------------------------ */

static int cmd_status_common(const char *cmd, int argc, char **argv,
                             bool node_only)
{
    bool self = false, stats = false, verbose = false, as_json = false;
    const char *address = NULL;
    const struct flag flags[] = {
        {"self", FLAG_BOOL, &self},       {"stats", FLAG_BOOL, &stats},
        {"verbose", FLAG_BOOL, &verbose}, {"json", FLAG_BOOL, &as_json},
        {"address", FLAG_STRING, &address},
    };
    int pos = parse_flags(cmd, argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(status_self_usage, stdout);
        return 0;
    }
    if (pos < 0 || argc - pos > 1) {
        if (pos >= 0)
            fprintf(stderr, "%s: too many arguments\n", cmd);
        fputs(status_self_usage, stderr);
        return 1;
    }
    struct api_client api;
    api_client_init(&api, address);
    int rc;
    if (self || (node_only && argc - pos == 1)) {
        rc = node_status_self(&api, stats, verbose, as_json);
    } else if (node_only) {
        fprintf(stderr, "%s: use -self: this agent knows only its own node\n", cmd);
        rc = 1;
    } else if (argc - pos == 1) {
        rc = print_job_status(&api, argv[pos]);
    } else {
        json_t *doc = NULL;
        struct nc_error err = {0};
        if (api_request(&api, "GET", "/v1/jobs", NULL, &doc, NULL, &err) < 0) {
            print_api_error("querying jobs", &err);
            rc = 1;
        } else {
            if (as_json)
                print_json(doc);
            else
                print_job_list(doc);
            json_decref(doc);
            rc = 0;
        }
    }
    api_client_free(&api);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    return cmd_status_common("status", argc, argv, false);
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("nomclient v%s (speaks Nomad API %s)\n", NOMCLIENT_VERSION,
           NOMAD_API_VERSION);
    return 0;
}

static const char main_usage[] =
    "Usage: nomclient [-version] [-help] <command> [args]\n"
    "\n"
    "Commands:\n"
    "    agent       Run the node agent\n"
    "    status      This node (-self), the job list, or one job\n"
    "    node        `node status -self`, as with Nomad\n"
    "    job         Run, validate, inspect, stop jobs and show their status\n"
    "    alloc       Allocation status and task logs\n"
    "    checks      Health checks of this node's services and their results\n"
    "    leftovers   Kernel objects no allocation owns (-clean removes them)\n"
    "    version     Print the version\n"
    "\n"
    "Every command takes -h. The CLI talks to the agent at -address,\n"
    "$NOMCLIENT_ADDR, or http://127.0.0.1:4646.\n";

int cli_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"agent", cmd_agent},   {"status", cmd_status},
                {"node", cmd_node},     {"job", cmd_job},
                {"alloc", cmd_alloc},   {"leftovers", cmd_leftovers},
                {"checks", cmd_checks},     {"services", cmd_services},
                {"version", cmd_version}};
    if (argc < 2) {
        fputs(main_usage, stderr);
        return 1;
    }
    const char *c = argv[1];
    if (strcmp(c, "-h") == 0 || strcmp(c, "-help") == 0 || strcmp(c, "--help") == 0 ||
        strcmp(c, "help") == 0) {
        fputs(main_usage, stdout);
        return 0;
    }
    if (strcmp(c, "-v") == 0 || strcmp(c, "-version") == 0 ||
        strcmp(c, "--version") == 0)
        return cmd_version(0, NULL);
    if (strcmp(c, "supervise") == 0) /* hidden: started by the agent */
        return supervisor_main(argc - 1, argv + 1);
    if (strcmp(c, "netns-helper") == 0) /* hidden: started by the agent */
        return netns_helper_main(argc - 1, argv + 1);
    for (size_t i = 0; i < NC_ARRAY_LEN(cmds); i++)
        if (strcmp(c, cmds[i].name) == 0)
            return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "nomclient: unknown command \"%s\"\n\n%s", c, main_usage);
    return 1;
}
