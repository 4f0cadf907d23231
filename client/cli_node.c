/* cli_node.c - `node status -self` and `status` (this node, the job list
 * or one job), laid out like `nomad node status`; `node drain` and `node
 * eligibility` of this node. */
#include "client/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/format.h"

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
    cli_row(&rows, "Driver|Detected|Healthy|Message|Time");
    const char *name;
    json_t *d;
    json_object_foreach((json_t *)drivers, name, d)
    {
        char when[32];
        format_time(format_jint(d, "UpdateTime"), when, sizeof(when));
        cli_row(&rows, "%s|%s|%s|%s|%s", name,
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
        cli_row(&rows, "%s|%s", l.items[i].key, l.items[i].value);
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
        cli_row(&rows, "CPU|%s", format_jstr(cpu, "CPU", "?"));
        cli_row(&rows, "User|%.2f%%", json_number_value(json_object_get(cpu, "User")));
        cli_row(&rows, "System|%.2f%%", json_number_value(json_object_get(cpu, "System")));
        cli_row(&rows, "Idle|%.2f%%", json_number_value(json_object_get(cpu, "Idle")));
        format_kv(stdout, &rows);
        strlist_free(&rows);
        printf("\n");
    }
    json_t *mem = json_object_get(stats, "Memory");
    printf("Detailed Memory Stats\n");
    struct strlist rows = {0};
    format_bytes((uint64_t)format_jint(mem, "Total"), a, sizeof a);
    cli_row(&rows, "Total|%s", a);
    format_bytes((uint64_t)format_jint(mem, "Available"), a, sizeof a);
    cli_row(&rows, "Available|%s", a);
    format_bytes((uint64_t)format_jint(mem, "Used"), a, sizeof a);
    cli_row(&rows, "Used|%s", a);
    format_bytes((uint64_t)format_jint(mem, "Free"), a, sizeof a);
    cli_row(&rows, "Free|%s", a);
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
        cli_row(&r, "Device|%s", format_jstr(disk, "Device", "?"));
        cli_row(&r, "MountPoint|%s", format_jstr(disk, "Mountpoint", "?"));
        cli_row(&r, "Size|%s", a);
        cli_row(&r, "Used|%s", b);
        cli_row(&r, "Available|%s", c);
        cli_row(&r, "Used Percent|%.2f%%",
                json_number_value(json_object_get(disk, "UsedPercent")));
        cli_row(&r, "Inodes Percent|%.2f%%",
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
        cli_print_api_error("querying node status", &err);
        return 1;
    }
    if (as_json) {
        cli_print_json(node);
        json_decref(node);
        return 0;
    }
    /* stats are best effort: the node is still worth showing without them */
    if (api_request(api, "GET", "/v1/client/stats", NULL, &hs, NULL, &err) < 0)
        hs = NULL;

    const char *id = format_jstr(node, "ID", "?");
    json_t *attrs = json_object_get(node, "Attributes");
    struct strlist rows = {0};
    cli_row(&rows, "ID|%.*s", verbose ? 36 : 8, id);
    cli_row(&rows, "Name|%s", format_jstr(node, "Name", "<none>"));
    cli_row(&rows, "Node Pool|%s", format_jstr(node, "NodePool", "default"));
    cli_row(&rows, "Class|%s", format_jstr(node, "NodeClass", "<none>"));
    cli_row(&rows, "DC|%s", format_jstr(node, "Datacenter", "<none>"));
    cli_row(&rows, "Drain|%s", json_is_true(json_object_get(node, "Drain")) ? "true" : "false");
    cli_row(&rows, "Eligibility|%s",
            format_jstr(node, "SchedulingEligibility", "eligible"));
    cli_row(&rows, "Status|%s", format_jstr(node, "Status", "unknown"));
    cli_row(&rows, "CSI Controllers|<none>");
    cli_row(&rows, "CSI Drivers|<none>");
    if (hs) {
        char up[64];
        nc_format_duration(format_jint(hs, "Uptime") * 1000000000LL, up,
                           sizeof(up));
        cli_row(&rows, "Uptime|%s", up);
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
    cli_row(&rows, "Host Volumes|%s", vols.len ? vols.data : "<none>");
    cli_row(&rows, "Host Networks|<none>");
    cli_row(&rows, "CSI Volumes|<none>");
    cli_row(&rows, "Driver Status|%s", drivers.len ? drivers.data : "<none>");
    nc_buf_free(&vols);
    nc_buf_free(&drivers);
    format_kv(stdout, &rows);
    strlist_free(&rows);

    printf("\nNode Events\n");
    cli_row(&rows, "Time|Subsystem|Message");
    json_t *ev;
    size_t i;
    json_array_foreach(json_object_get(node, "Events"), i, ev)
    {
        char when[32];
        format_time(format_jint(ev, "Timestamp"), when, sizeof(when));
        cli_row(&rows, "%s|%s|%s", when, format_jstr(ev, "Subsystem", ""),
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
    cli_row(&rows, "CPU|Memory|Disk");
    cli_row(&rows, "%lld/%lld MHz|%s/%s|%s/%s",
            (long long)format_jint(alloc, "CpuMHz"), (long long)cpu_total, m1,
            m2, d1, d2);
    format_columns(stdout, &rows);
    strlist_free(&rows);

    printf("\nAllocation Resource Utilization\n");
    json_t *used = json_object_get(node, "AllocationUtilization");
    format_bytes((uint64_t)format_jint(used, "MemoryBytes"), m1, sizeof m1);
    cli_row(&rows, "CPU|Memory");
    cli_row(&rows, "%lld/%lld MHz|%s/%s",
            (long long)format_jint(used, "CpuMHz"), (long long)cpu_total, m1,
            m2);
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
        cli_row(&rows, "CPU|Memory|Disk");
        cli_row(&rows, "%.0f/%lld MHz|%s/%s|%s/%s",
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
    cli_print_alloc_table(api, "/v1/node/self/allocations",
                      format_jstr(node, "ID", ""));
    if (verbose) {
        print_sorted_kv("Attributes", attrs);
        print_sorted_kv("Meta", json_object_get(node, "Meta"));
    }
    json_decref(hs);
    json_decref(node);
    return 0;
}

static int status_common(const char *cmd, int argc, char **argv, bool node_only)
{
    bool self = false, stats = false, verbose = false, as_json = false;
    const char *address = NULL;
    const struct flag flags[] = {
        {"self", FLAG_BOOL, &self},       {"stats", FLAG_BOOL, &stats},
        {"verbose", FLAG_BOOL, &verbose}, {"json", FLAG_BOOL, &as_json},
        {"address", FLAG_STRING, &address},
    };
    int pos = cli_parse_flags(cmd, argc, argv, flags, NC_ARRAY_LEN(flags));
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
        rc = cli_print_job_status(&api, argv[pos]);
    } else {
        json_t *doc = NULL;
        struct nc_error err = {0};
        if (api_request(&api, "GET", "/v1/jobs", NULL, &doc, NULL, &err) < 0) {
            cli_print_api_error("querying jobs", &err);
            rc = 1;
        } else {
            if (as_json)
                cli_print_json(doc);
            else
                cli_print_job_list(doc);
            json_decref(doc);
            rc = 0;
        }
    }
    api_client_free(&api);
    return rc;
}

int cli_cmd_status(int argc, char **argv)
{
    return status_common("status", argc, argv, false);
}

/* The node id for `node drain` and `node eligibility`: -self or an id (a
 * prefix of at least two characters) of this node, which is the only one
 * the agent knows. NULL after printing why. */
static char *node_target(struct api_client *api, bool self, int nargs,
                         char **args, const char *cmd, const char *failed)
{
    if (!self && nargs != 1) {
        fprintf(stderr, "Node ID must be specified if -self isn't being "
                        "used\nFor additional help try 'nomclient %s "
                        "-help'\n", cmd);
        return NULL;
    }
    if (!self && strlen(args[0]) == 1) {
        fprintf(stderr, "Identifier must contain at least two characters.\n");
        return NULL;
    }
    json_t *node = NULL;
    struct nc_error err = {0};
    if (api_request(api, "GET", "/v1/node/self", NULL, &node, NULL, &err) < 0) {
        fprintf(stderr, "%s%s\n", failed, err.msg);
        return NULL;
    }
    char *id = xstrdup(format_jstr(node, "ID", ""));
    json_decref(node);
    if (!self && !nc_str_has_prefix(id, args[0])) {
        fprintf(stderr, "No node(s) with prefix or id \"%s\" found\n", args[0]);
        free(id);
        return NULL;
    }
    return id;
}

/* PUTs `body` (stolen) to /v1/node/<id>/<action>; 0, or -1 after printing
 * `failed` and the agent's answer. */
static int node_put(struct api_client *api, const char *id, const char *action,
                    json_t *body, const char *failed)
{
    char *path = xasprintf("/v1/node/%s/%s", id, action);
    json_t *resp = NULL;
    struct nc_error err = {0};
    int r = api_request(api, "PUT", path, body, &resp, NULL, &err);
    if (r < 0)
        fprintf(stderr, "%s%s\n", failed, err.msg);
    json_decref(resp);
    json_decref(body);
    free(path);
    return r < 0 ? -1 : 0;
}

static const char node_drain_usage[] =
    "Usage: nomclient node drain [options] <node>\n"
    "\n"
    "  Toggles drain mode of this node. A draining node takes no new\n"
    "  allocations; its service allocations are stopped migrate.max_parallel\n"
    "  per group at a time, batch allocations may finish until the deadline,\n"
    "  system allocations go last. Once drained the node stays ineligible\n"
    "  until -disable (or `node eligibility -enable`).\n"
    "\n"
    "Node Drain Options:\n"
    "  -enable / -disable  Start or stop draining.\n"
    "  -deadline <d>       Stop what is left after this long (default 1h).\n"
    "  -force              Stop every allocation at once.\n"
    "  -no-deadline        Never force the remaining allocations.\n"
    "  -ignore-system      Leave system job allocations running.\n"
    "  -keep-ineligible    With -disable: stay ineligible.\n"
    "  -self               This node (else give its ID).\n"
    "  -yes                Do not ask for confirmation.\n"
    "  -detach             Accepted; the agent does not monitor the drain.\n"
    "  -address=<addr>     Agent address.\n";

static int cmd_node_drain(int argc, char **argv)
{
    bool enable = false, disable = false, force = false, no_deadline = false,
         ignore_system = false, keep = false, self = false, yes = false,
         detach = false;
    const char *deadline = NULL, *address = NULL;
    const struct flag flags[] = {
        {"enable", FLAG_BOOL, &enable},
        {"disable", FLAG_BOOL, &disable},
        {"deadline", FLAG_STRING, &deadline},
        {"force", FLAG_BOOL, &force},
        {"no-deadline", FLAG_BOOL, &no_deadline},
        {"ignore-system", FLAG_BOOL, &ignore_system},
        {"keep-ineligible", FLAG_BOOL, &keep},
        {"self", FLAG_BOOL, &self},
        {"yes", FLAG_BOOL, &yes},
        {"detach", FLAG_BOOL, &detach},
        {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("node drain", argc, argv, flags,
                              NC_ARRAY_LEN(flags));
    if (pos < 0) {
        fputs(node_drain_usage, pos == -2 ? stdout : stderr);
        return pos == -2 ? 0 : 1;
    }
    const char *more = "\nFor additional help try 'nomclient node drain -help'\n";
    if (enable == disable) {
        fprintf(stderr, "Either the '-enable' or '-disable' flag must be set, "
                        "unless using '-monitor'%s", more);
        return 1;
    }
    if (disable && (deadline || force || no_deadline || ignore_system)) {
        fprintf(stderr, "-disable can't be combined with flags configuring "
                        "drain strategy%s", more);
        return 1;
    }
    if (deadline && (force || no_deadline)) {
        fprintf(stderr, "-deadline can't be combined with -force or "
                        "-no-deadline%s", more);
        return 1;
    }
    if (force && no_deadline) {
        fprintf(stderr, "-force and -no-deadline are mutually exclusive%s", more);
        return 1;
    }
    int64_t ns = 3600LL * 1000000000LL;
    if (deadline && nc_parse_duration(deadline, &ns) < 0) {
        fprintf(stderr, "Failed to parse deadline \"%s\": invalid duration\n",
                deadline);
        return 1;
    }
    if (deadline && ns <= 0) {
        fprintf(stderr, "A positive drain duration must be given\n");
        return 1;
    }
    ns = force ? -1 : no_deadline ? 0 : ns;
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    char *id = node_target(&api, self, argc - pos, argv + pos, "node drain",
                           "Error toggling drain mode: ");
    if (id && !yes) {
        printf("Are you sure you want to %s drain mode for node \"%s\"? [y/N] ",
               enable ? "enable" : "disable", id);
        fflush(stdout);
        char answer[16] = "";
        if (!fgets(answer, sizeof(answer), stdin) ||
            (strcmp(answer, "y\n") != 0 && strcmp(answer, "y") != 0)) {
            printf("\nCanceling drain toggle\n");
            free(id);
            id = NULL;
            rc = 0;
        }
    }
    if (id) {
        json_t *body = enable
            ? json_pack("{s:s, s:{s:I, s:b}, s:b}", "NodeID", id, "DrainSpec",
                        "Deadline", (json_int_t)ns, "IgnoreSystemJobs",
                        ignore_system, "MarkEligible", false)
            : json_pack("{s:s, s:n, s:b}", "NodeID", id, "DrainSpec",
                        "MarkEligible", !keep);
        if (node_put(&api, id, "drain", body,
                     "Error updating drain specification: ") == 0) {
            printf("Node \"%s\" drain strategy %s\n", id,
                   enable ? "set" : "unset");
            rc = 0;
        }
    }
    free(id);
    api_client_free(&api);
    return rc;
}

static const char node_eligibility_usage[] =
    "Usage: nomclient node eligibility [options] <node>\n"
    "\n"
    "  Toggles whether this node takes new allocations; those it runs stay.\n"
    "\n"
    "Node Eligibility Options:\n"
    "  -enable / -disable  Make the node eligible or ineligible.\n"
    "  -self               This node (else give its ID).\n"
    "  -address=<addr>     Agent address.\n";

static int cmd_node_eligibility(int argc, char **argv)
{
    bool enable = false, disable = false, self = false;
    const char *address = NULL;
    const struct flag flags[] = {{"enable", FLAG_BOOL, &enable},
                                 {"disable", FLAG_BOOL, &disable},
                                 {"self", FLAG_BOOL, &self},
                                 {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("node eligibility", argc, argv, flags,
                              NC_ARRAY_LEN(flags));
    if (pos < 0) {
        fputs(node_eligibility_usage, pos == -2 ? stdout : stderr);
        return pos == -2 ? 0 : 1;
    }
    if (enable == disable) {
        fprintf(stderr, "Either the '-enable' or '-disable' flag must be set\n"
                        "For additional help try 'nomclient node eligibility "
                        "-help'\n");
        return 1;
    }
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    const char *failed = "Error updating scheduling eligibility: ";
    char *id = node_target(&api, self, argc - pos, argv + pos,
                           "node eligibility", failed);
    if (id) {
        json_t *body = json_pack("{s:s, s:s}", "NodeID", id, "Eligibility",
                                 enable ? "eligible" : "ineligible");
        if (node_put(&api, id, "eligibility", body, failed) == 0) {
            printf("Node \"%s\" scheduling eligibility set: %s for "
                   "scheduling\n", id, enable ? "eligible" : "ineligible");
            rc = 0;
        }
    }
    free(id);
    api_client_free(&api);
    return rc;
}

int cli_cmd_node(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0 ||
        strcmp(argv[0], "--help") == 0) {
        fputs(status_self_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 1 : 0;
    }
    if (strcmp(argv[0], "drain") == 0)
        return cmd_node_drain(argc - 1, argv + 1);
    if (strcmp(argv[0], "eligibility") == 0)
        return cmd_node_eligibility(argc - 1, argv + 1);
    if (strcmp(argv[0], "status") != 0) {
        fprintf(stderr, "node: unknown subcommand \"%s\"; this node supports "
                        "`node status -self`, `node drain` and `node "
                        "eligibility`\n", argv[0]);
        return 1;
    }
    return status_common("node status", argc - 1, argv + 1, true);
}
