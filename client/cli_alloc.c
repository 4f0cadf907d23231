/* cli_alloc.c - `alloc status|logs` and `leftovers`. */
#include "client/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/format.h"

/* Nomad's allocation table, from an endpoint listing allocation stubs. */
void cli_print_alloc_table(struct api_client *api, const char *path,
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
    cli_row(&rows, "ID|Node ID|Task Group|Version|Desired|Status|Created");
    size_t i;
    json_t *al;
    json_array_foreach(list, i, al)
    {
        char when[64];
        format_time(format_jint(al, "CreateTime"), when, sizeof(when));
        cli_row(&rows, "%.8s|%.8s|%s|%lld|%s|%s|%s", format_jstr(al, "ID", "?"),
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
    cli_row(&rows, "ID|%s", format_jstr(al, "ID", "?"));
    cli_row(&rows, "Name|%s", format_jstr(al, "Name", "?"));
    cli_row(&rows, "Job ID|%s", format_jstr(al, "JobID", "?"));
    cli_row(&rows, "Job Version|%lld", (long long)format_jint(al, "JobVersion"));
    cli_row(&rows, "Client Status|%s", format_jstr(al, "ClientStatus", "?"));
    cli_row(&rows, "Client Description|%s",
        format_jstr(al, "ClientDescription", ""));
    cli_row(&rows, "Desired Status|%s", format_jstr(al, "DesiredStatus", "?"));
    cli_row(&rows, "Created|%s", when);
    json_t *net = json_array_get(json_object_get(json_object_get(
                                     json_object_get(al, "AllocatedResources"),
                                     "Shared"), "Networks"), 0);
    cli_row(&rows, "Network Mode|%s", format_jstr(net, "Mode", "host"));
    format_kv(stdout, &rows);
    strlist_free(&rows);
    json_t *ports = json_object_get(net, "Ports");
    if (json_array_size(ports)) {
        printf("\nAllocation Addresses (mode = \"%s\")\n",
               format_jstr(net, "Mode", "host"));
        cli_row(&rows, "Label|Host Port|To");
        size_t i;
        json_t *pt;
        json_array_foreach(ports, i, pt)
            cli_row(&rows, "*%s|%lld|%lld", format_jstr(pt, "Label", "?"),
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
        cli_row(&rows, "Time|Type|Description");
        json_t *events = json_object_get(ts, "Events");
        for (size_t k = json_array_size(events); k-- > 0;) {
            json_t *ev = json_array_get(events, k);
            format_time(format_jint(ev, "Time"), when, sizeof(when));
            cli_row(&rows, "%s|%s|%s", when, format_jstr(ev, "Type", "?"),
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

int cli_cmd_alloc(int argc, char **argv)
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
    int pos = cli_parse_flags("alloc", argc - 1, argv + 1, flags, NC_ARRAY_LEN(flags));
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

int cli_cmd_leftovers(int argc, char **argv)
{
    bool clean = false;
    const char *address = NULL;
    const struct flag flags[] = {{"clean", FLAG_BOOL, &clean},
                                 {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("leftovers", argc, argv, flags, NC_ARRAY_LEN(flags));
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
