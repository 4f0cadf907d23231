/* cli_alloc.c - `alloc status|logs|signal|restart|stop|fs|exec` and
 * `leftovers` (exec's session itself: cli_alloc_exec.c). */
#include "client/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/format.h"

/* Nomad's allocation table of the stubs in `list`, IDs cut to `idlen`. */
static void alloc_rows(FILE *out, const json_t *list, const char *node_id,
                       int idlen)
{
    struct strlist rows = {0};
    cli_row(&rows, "ID|Node ID|Task Group|Version|Desired|Status|Created");
    size_t i;
    json_t *al;
    json_array_foreach(list, i, al)
    {
        char when[64];
        format_time(format_jint(al, "CreateTime"), when, sizeof(when));
        cli_row(&rows, "%.*s|%.*s|%s|%lld|%s|%s|%s", idlen,
                format_jstr(al, "ID", "?"), idlen, node_id ? node_id : "",
                format_jstr(al, "TaskGroup", "?"),
                (long long)format_jint(al, "JobVersion"),
                format_jstr(al, "DesiredStatus", "?"),
                format_jstr(al, "ClientStatus", "?"), when);
    }
    format_columns(out, &rows);
    strlist_free(&rows);
}

void cli_print_alloc_table(struct api_client *api, const char *path,
                           const char *node_id)
{
    json_t *list = NULL;
    struct nc_error err = {0};
    printf("\nAllocations\n");
    if (api_request(api, "GET", path, NULL, &list, NULL, &err) < 0 ||
        json_array_size(list) == 0)
        printf("No allocations placed\n");
    else
        alloc_rows(stdout, list, node_id, 8);
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
    "  signal [-s SIG] [-task T] <alloc> [task]\n"
    "                               Send a signal to a task, or to them all\n"
    "  restart [-task T | -all-tasks] <alloc> [task]\n"
    "                               Restart a task in place, or them all\n"
    "  stop [-detach] [-no-shutdown-delay] <alloc>\n"
    "                               Stop an allocation; a replacement is\n"
    "                               placed on this node once it stopped\n"
    "  fs [-stat] [-f] [-tail [-n N | -c N]] <alloc> [path]\n"
    "                               List a directory of the allocation, or\n"
    "                               print (follow, tail) one of its files\n"
    "  exec [-task T] [-job] [-i] [-t] [-e C] <alloc> <command>...\n"
    "                               Run a command inside a running task\n"
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

/* Reads the flags and the one or two arguments of `alloc signal` or `alloc
 * restart`. Returns -1 to go on (*pos: the allocation argument), or the
 * exit code after printing usage or Nomad's `arity` message. */
static int lifecycle_args(const char *cmd, const char *usage,
                          const char *arity, int argc, char **argv,
                          const struct flag *flags, size_t nflags, int *pos)
{
    *pos = cli_parse_flags(cmd, argc, argv, flags, nflags);
    if (*pos < 0) {
        fputs(usage, *pos == -2 ? stdout : stderr);
        return *pos == -2 ? 0 : 1;
    }
    if (argc - *pos < 1 || argc - *pos > 2) {
        fprintf(stderr, "%s\nFor additional help try 'nomclient %s -help'\n",
                arity, cmd);
        return 1;
    }
    return -1;
}

/* Nomad's lookup for the lifecycle commands: at least two characters, a
 * trailing odd hex digit dropped (IDs are matched by whole bytes), and a
 * prefix matching one allocation of the node, whose full form is returned
 * (new reference). NULL after printing why. */
static json_t *lookup_alloc(struct api_client *api, const char *arg,
                            bool verbose)
{
    if (strlen(arg) == 1) {
        fprintf(stderr, "Alloc ID must contain at least two characters.\n");
        return NULL;
    }
    size_t hyphens = 0;
    for (const char *p = arg; *p; p++)
        hyphens += *p == '-';
    char *prefix = xstrndup(arg, strlen(arg) - (strlen(arg) - hyphens) % 2);
    json_t *list = NULL, *match = json_array(), *al = NULL;
    struct nc_error err = {0};
    if (api_request(api, "GET", "/v1/allocations", NULL, &list, NULL, &err) <
        0) {
        fprintf(stderr, "Error querying allocation: %s\n", err.msg);
        goto out;
    }
    size_t i;
    json_t *stub;
    json_array_foreach(list, i, stub)
    {
        if (nc_str_has_prefix(format_jstr(stub, "ID", ""), prefix))
            json_array_append(match, stub);
    }
    if (json_array_size(match) == 0) {
        fprintf(stderr, "No allocation(s) with prefix or id \"%s\" found\n",
                prefix);
    } else if (json_array_size(match) > 1) {
        fprintf(stderr, "Prefix matched multiple allocations\n\n");
        alloc_rows(stderr, match, NULL, verbose ? 36 : 8);
    } else {
        char *path = xasprintf("/v1/allocation/%s",
                               format_jstr(json_array_get(match, 0), "ID", ""));
        if (api_request(api, "GET", path, NULL, &al, NULL, &err) < 0)
            fprintf(stderr, "Error querying allocation: %s\n", err.msg);
        free(path);
    }
out:
    json_decref(list);
    json_decref(match);
    free(prefix);
    return al;
}

/* The allocation's task group in its job, or NULL. */
static json_t *alloc_group_json(const json_t *al)
{
    const char *group = format_jstr(al, "TaskGroup", "");
    json_t *tg = NULL, *t;
    size_t i;
    json_array_foreach(json_object_get(json_object_get(al, "Job"), "TaskGroups"),
                       i, t)
    {
        if (nc_streq(format_jstr(t, "Name", NULL), group))
            tg = t;
    }
    return tg;
}

/* Nomad checks a named task against the allocation's task group before
 * asking the agent. Returns 0, or 1 after printing the group's tasks. */
static int check_task(const json_t *al, const char *task)
{
    const char *group = format_jstr(al, "TaskGroup", "");
    json_t *tg = alloc_group_json(al), *t;
    size_t i;
    struct nc_buf names = {0};
    if (tg) {
        json_array_foreach(json_object_get(tg, "Tasks"), i, t)
        {
            const char *name = format_jstr(t, "Name", "");
            if (strcmp(name, task) == 0)
                goto found;
            nc_buf_printf(&names, "%s%s", names.len ? "\n" : "",
                          *name ? name : "<none>");
        }
    } else {
        /* an allocation kept without its job: its task states name the
         * tasks */
        const char *name;
        json_object_foreach(json_object_get(al, "TaskStates"), name, t)
        {
            if (strcmp(name, task) == 0)
                goto found;
            nc_buf_printf(&names, "%s%s", names.len ? "\n" : "", name);
        }
    }
    if (!tg && !names.len)
        fprintf(stderr, "Could not find allocation task group: %s\n", group);
    else
        fprintf(stderr, "Could not find task named: %s, found:\n%s\n", task,
                names.data);
    nc_buf_free(&names);
    return 1;
found:
    nc_buf_free(&names);
    return 0;
}

/* What both commands do once their arguments are read: find the
 * allocation, check the task (if one is named) and PUT `body` (stolen) to
 * /v1/client/allocation/<id>/<action>, printing `failed` before the agent's
 * refusal. Returns the exit code. */
static int lifecycle_send(const char *address, const char *arg, bool verbose,
                          const char *task, const char *action, json_t *body,
                          const char *failed)
{
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    json_t *al = lookup_alloc(&api, arg, verbose), *resp = NULL;
    if (al && (!*task || check_task(al, task) == 0)) {
        char *path = xasprintf("/v1/client/allocation/%s/%s",
                               format_jstr(al, "ID", ""), action);
        struct nc_error err = {0};
        if (api_request(&api, "PUT", path, body, &resp, NULL, &err) < 0)
            fprintf(stderr, "%s%s\n", failed, err.msg);
        else
            rc = 0;
        free(path);
    }
    json_decref(resp);
    json_decref(body);
    json_decref(al);
    api_client_free(&api);
    return rc;
}

static const char alloc_signal_usage[] =
    "Usage: nomclient alloc signal [options] <allocation> <task>\n"
    "\n"
    "  Sends a signal to the tasks of an allocation: to the task named by\n"
    "  -task or by the second argument, or else to every task it runs.\n"
    "  Prints nothing on success.\n"
    "\n"
    "Signal Options:\n"
    "  -s <signal>        The signal, by name (SIGUSR1 or USR1). Defaults to\n"
    "                     SIGKILL.\n"
    "  -task <task-name>  The task to signal; it wins over a task given as\n"
    "                     argument.\n"
    "  -verbose           Full IDs when a prefix matches several allocations.\n"
    "  -address=<addr>    Agent address.\n";

/* `alloc signal [-s SIG] [-task T] <alloc> [task]` */
static int cmd_alloc_signal(int argc, char **argv)
{
    bool verbose = false;
    const char *sig = "SIGKILL", *task = NULL, *address = NULL;
    const struct flag flags[] = {{"s", FLAG_STRING, &sig},
                                 {"task", FLAG_STRING, &task},
                                 {"verbose", FLAG_BOOL, &verbose},
                                 {"address", FLAG_STRING, &address}};
    int pos;
    int rc = lifecycle_args("alloc signal", alloc_signal_usage,
                            "This command takes up to two arguments: "
                            "<alloc-id> <task>",
                            argc, argv, flags, NC_ARRAY_LEN(flags), &pos);
    if (rc >= 0)
        return rc;
    if (!task || !*task)
        task = argc - pos == 2 ? argv[pos + 1] : "";
    return lifecycle_send(
        address, argv[pos], verbose, task, "signal",
        json_pack("{s:s, s:s}", "Task", task, "Signal", sig),
        "Error signalling allocation: ");
}

static const char alloc_restart_usage[] =
    "Usage: nomclient alloc restart [options] <allocation> <task>\n"
    "\n"
    "  Restarts tasks of an allocation in place: the task named by -task or\n"
    "  by the second argument, or else every task that is running. A user\n"
    "  restart does not count against the restart policy's attempts. Prints\n"
    "  nothing on success.\n"
    "\n"
    "Restart Options:\n"
    "  -all-tasks         Restart every task of the allocation, also those\n"
    "                     that already ran (prestart and poststart tasks);\n"
    "                     not with -task or a task argument.\n"
    "  -task <task-name>  The task to restart; it wins over a task given as\n"
    "                     argument. Not with -all-tasks.\n"
    "  -verbose           Full IDs when a prefix matches several allocations.\n"
    "  -address=<addr>    Agent address.\n";

/* `alloc restart [-task T] [-all-tasks] <alloc> [task]` */
static int cmd_alloc_restart(int argc, char **argv)
{
    bool all = false, verbose = false;
    const char *task = NULL, *address = NULL;
    const struct flag flags[] = {{"all-tasks", FLAG_BOOL, &all},
                                 {"task", FLAG_STRING, &task},
                                 {"verbose", FLAG_BOOL, &verbose},
                                 {"address", FLAG_STRING, &address}};
    int pos;
    int rc = lifecycle_args("alloc restart", alloc_restart_usage,
                            "This command takes one or two arguments: "
                            "<alloc-id> <task-name>",
                            argc, argv, flags, NC_ARRAY_LEN(flags), &pos);
    if (rc >= 0)
        return rc;
    if (!task || !*task)
        task = argc - pos == 2 ? argv[pos + 1] : "";
    if (all && *task) {
        fprintf(stderr, "The -all-tasks option is not allowed when restarting "
                        "a specific task.\n");
        return 1;
    }
    return lifecycle_send(address, argv[pos], verbose, task, "restart",
                          all ? json_pack("{s:b}", "AllTasks", true)
                              : json_pack("{s:s}", "TaskName", task),
                          *task ? "Failed to restart task:\n\n"
                                : "Failed to restart allocation:\n\n");
}

static const char alloc_stop_usage[] =
    "Usage: nomclient alloc stop [options] <allocation>\n"
    "\n"
    "  Stops an allocation in Nomad's order (its services deregistered,\n"
    "  shutdown_delay, the kill signal). As Nomad's scheduler would place\n"
    "  its replacement on some node, this node places it here once the\n"
    "  allocation has stopped, unless the node is draining or ineligible (a\n"
    "  finished batch allocation is not run again).\n"
    "\n"
    "Stop Options:\n"
    "  -detach             Print the evaluation ID only.\n"
    "  -no-shutdown-delay  Skip the group's and tasks' shutdown_delay.\n"
    "  -verbose            Full IDs.\n"
    "  -address=<addr>     Agent address.\n";

/* `alloc stop [-detach] [-no-shutdown-delay] [-verbose] <alloc>` */
static int cmd_alloc_stop(int argc, char **argv)
{
    bool detach = false, verbose = false, no_delay = false;
    const char *address = NULL;
    const struct flag flags[] = {{"detach", FLAG_BOOL, &detach},
                                 {"verbose", FLAG_BOOL, &verbose},
                                 {"no-shutdown-delay", FLAG_BOOL, &no_delay},
                                 {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("alloc stop", argc, argv, flags,
                              NC_ARRAY_LEN(flags));
    if (pos < 0) {
        fputs(alloc_stop_usage, pos == -2 ? stdout : stderr);
        return pos == -2 ? 0 : 1;
    }
    if (argc - pos != 1) {
        fprintf(stderr, "This command takes one argument: <alloc-id>\n"
                        "For additional help try 'nomclient alloc stop "
                        "-help'\n");
        return 1;
    }
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    json_t *al = lookup_alloc(&api, argv[pos], verbose), *resp = NULL;
    if (al) {
        char *path = xasprintf("/v1/allocation/%s/stop%s",
                               format_jstr(al, "ID", ""),
                               no_delay ? "?no_shutdown_delay=true" : "");
        struct nc_error err = {0};
        if (api_request(&api, "PUT", path, NULL, &resp, NULL, &err) < 0) {
            fprintf(stderr, "Error stopping allocation: %s\n", err.msg);
        } else if (detach) {
            printf("%s\n", format_jstr(resp, "EvalID", ""));
            rc = 0;
        } else {
            printf("==> Allocation \"%.*s\" stopping (evaluation \"%.*s\")\n",
                   verbose ? 36 : 8, format_jstr(al, "ID", ""),
                   verbose ? 36 : 8, format_jstr(resp, "EvalID", ""));
            rc = 0;
        }
        free(path);
    }
    json_decref(resp);
    json_decref(al);
    api_client_free(&api);
    return rc;
}

/* A query value, percent-encoded (new string). */
static char *query_escape(const char *s)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-_.~/", *p))
            nc_buf_printf(&b, "%c", *p);
        else
            nc_buf_printf(&b, "%%%02X", *p);
    }
    return nc_buf_take(&b);
}

/* "Mode|Size|Modified Time|..." cells of an AllocFileInfo. */
static void fs_cells(const json_t *f, bool machine, char *size, size_t slen,
                     char *when, size_t wlen)
{
    if (machine)
        snprintf(size, slen, "%lld", (long long)format_jint(f, "Size"));
    else
        format_bytes((uint64_t)format_jint(f, "Size"), size, slen);
    /* RFC 3339 to the second, as Nomad's formatTime */
    const char *t = format_jstr(f, "ModTime", "");
    snprintf(when, wlen, "%.19s%s", t, strlen(t) > 19 ? "Z" : "");
}

static void write_stdout(void *arg, const char *data, size_t len)
{
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

/* Keeps the last `lines` lines of a text (in place). */
static size_t last_lines(char *txt, size_t len, long lines)
{
    size_t start = len, seen = 0;
    if (start && txt[start - 1] == '\n')
        start--;
    while (start > 0) {
        if (txt[start - 1] == '\n' && ++seen == (size_t)lines)
            break;
        start--;
    }
    memmove(txt, txt + start, len - start);
    return len - start;
}

static const char alloc_fs_usage[] =
    "Usage: nomclient alloc fs [options] <allocation> [<path>]\n"
    "\n"
    "  Lists a directory of the allocation (its root when no path is\n"
    "  given) or prints a file. Paths are inside the allocation dir; \"../\"\n"
    "  and symlinks leading out are refused.\n"
    "\n"
    "FS Specific Options:\n"
    "  -H        Sizes in bytes.\n"
    "  -stat     Show the file's stat information instead of its contents.\n"
    "  -f        Follow the file: print what is appended until interrupted.\n"
    "  -tail     Show the end of the file (10 lines unless -n or -c).\n"
    "  -n <N>    With -tail: the last N lines.\n"
    "  -c <N>    With -tail: the last N bytes.\n"
    "  -verbose  Full IDs.\n"
    "  -address=<addr>  Agent address.\n";

/* `alloc fs [-H] [-stat] [-f] [-tail [-n N] [-c N]] <alloc> [path]` */
static int cmd_alloc_fs(int argc, char **argv)
{
    bool machine = false, stat = false, follow = false, tail = false,
         verbose = false;
    const char *address = NULL, *nlines = NULL, *nbytes = NULL;
    const struct flag flags[] = {
        {"H", FLAG_BOOL, &machine},    {"stat", FLAG_BOOL, &stat},
        {"f", FLAG_BOOL, &follow},     {"tail", FLAG_BOOL, &tail},
        {"n", FLAG_STRING, &nlines},   {"c", FLAG_STRING, &nbytes},
        {"verbose", FLAG_BOOL, &verbose},
        {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("alloc fs", argc, argv, flags,
                              NC_ARRAY_LEN(flags));
    if (pos < 0) {
        fputs(alloc_fs_usage, pos == -2 ? stdout : stderr);
        return pos == -2 ? 0 : 1;
    }
    if (argc - pos < 1 || argc - pos > 2) {
        fprintf(stderr, "This command takes one or two arguments: "
                        "<allocation> [<path>]\n"
                        "For additional help try 'nomclient alloc fs "
                        "-help'\n");
        return 1;
    }
    long n_lines = -1, n_bytes = -1;
    char *end = NULL;
    if (nlines && nbytes) {
        fprintf(stderr, "Both -n and -c are not allowed\n");
        return 1;
    }
    if ((nlines && ((n_lines = strtol(nlines, &end, 10)) < -1 || *end)) ||
        (nbytes && ((n_bytes = strtol(nbytes, &end, 10)) < -1 || *end))) {
        fprintf(stderr, "Invalid size is specified\n");
        return 1;
    }
    const char *fpath = argc - pos == 2 ? argv[pos + 1] : "/";
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    char *q = query_escape(fpath), *url = NULL, *txt = NULL;
    json_t *al = lookup_alloc(&api, argv[pos], verbose), *info = NULL;
    struct nc_error err = {0};
    const char *id = al ? format_jstr(al, "ID", "") : NULL;
    if (!al)
        goto out;
    url = xasprintf("/v1/client/fs/stat/%s?path=%s", id, q);
    if (api_request(&api, "GET", url, NULL, &info, NULL, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        goto out;
    }
    char size[32], when[40];
    bool is_dir = json_is_true(json_object_get(info, "IsDir"));
    if (stat) {
        struct strlist rows = {0};
        cli_row(&rows, "Mode|Size|Modified Time|Content Type|Name");
        fs_cells(info, machine, size, sizeof(size), when, sizeof(when));
        cli_row(&rows, "%s|%s|%s|%s|%s%s", format_jstr(info, "FileMode", ""),
                size, when, format_jstr(info, "ContentType", ""),
                format_jstr(info, "Name", ""), is_dir ? "/" : "");
        format_columns(stdout, &rows);
        strlist_free(&rows);
        rc = 0;
        goto out;
    }
    free(url);
    if (is_dir) {
        json_t *list = NULL;
        url = xasprintf("/v1/client/fs/ls/%s?path=%s", id, q);
        if (api_request(&api, "GET", url, NULL, &list, NULL, &err) < 0) {
            fprintf(stderr, "Error listing alloc dir: %s\n", err.msg);
            goto out;
        }
        struct strlist rows = {0};
        cli_row(&rows, "Mode|Size|Modified Time|Name");
        size_t i;
        json_t *f;
        json_array_foreach(list, i, f)
        {
            fs_cells(f, machine, size, sizeof(size), when, sizeof(when));
            cli_row(&rows, "%s|%s|%s|%s%s", format_jstr(f, "FileMode", ""),
                    size, when, format_jstr(f, "Name", ""),
                    json_is_true(json_object_get(f, "IsDir")) ? "/" : "");
        }
        format_columns(stdout, &rows);
        strlist_free(&rows);
        json_decref(list);
        rc = 0;
        goto out;
    }
    /* Nomad's -tail: 10 lines of about 120 bytes unless -n or -c */
    long long fsize = (long long)format_jint(info, "Size");
    long long back = tail ? (n_bytes >= 0 ? n_bytes
                                          : (n_lines >= 0 ? n_lines : 10) * 120)
                          : 0;
    if (back > fsize)
        back = fsize;
    if (tail && n_bytes < 0 && n_lines < 0)
        n_lines = 10;
    if (follow) {
        url = xasprintf("/v1/client/fs/stream/%s?path=%s&plain=true&origin=%s"
                        "&offset=%lld", id, q, tail ? "end" : "start", back);
        if (api_stream_text(&api, url, write_stdout, NULL, &err) < 0)
            fprintf(stderr, "Error %s file: %s\n",
                    tail ? "tailing" : "reading", err.msg);
        else
            rc = 0;
        goto out;
    }
    url = tail ? xasprintf("/v1/client/fs/readat/%s?path=%s&offset=%lld", id,
                           q, fsize - back)
               : xasprintf("/v1/client/fs/cat/%s?path=%s", id, q);
    size_t len = 0;
    if (api_get_text(&api, url, &txt, &len, &err) < 0) {
        fprintf(stderr, "Error %s file: %s\n", tail ? "tailing" : "reading",
                err.msg);
        goto out;
    }
    if (tail && n_lines >= 0)
        len = last_lines(txt, len, n_lines);
    fwrite(txt, 1, len, stdout);
    rc = 0;
out:
    free(txt);
    free(url);
    free(q);
    json_decref(info);
    json_decref(al);
    api_client_free(&api);
    return rc;
}


static const char alloc_exec_usage[] =
    "Usage: nomclient alloc exec [options] <allocation> <command> [args...]\n"
    "\n"
    "  Runs a command inside a running task of the allocation, in what the\n"
    "  task sees: its namespaces, filesystem, cgroup, user and environment\n"
    "  (exec), the host as the task's user (raw_exec), or the container\n"
    "  (docker). The exit code is the command's.\n"
    "\n"
    "  With ACLs, the token needs alloc-exec in the allocation's namespace,\n"
    "  and alloc-node-exec too for a task without filesystem isolation\n"
    "  (raw_exec).\n"
    "\n"
    "Exec Options:\n"
    "  -task <task-name>  The task to run the command in; needed when the\n"
    "                     allocation has several.\n"
    "  -job               Take <allocation> as a job ID (or prefix) and use a\n"
    "                     random running allocation of that job.\n"
    "  -i                 Pass stdin to the command (default true); -i=false\n"
    "                     gives it an empty one.\n"
    "  -t                 Run the command on a pseudo-terminal, the local\n"
    "                     terminal in raw mode; the default when stdin and\n"
    "                     stdout are terminals. -t=false to turn it off.\n"
    "  -e <escape_char>   With a terminal, this character at the start of a\n"
    "                     line followed by '.' closes the session (default\n"
    "                     '~'); typed twice it sends itself. 'none' turns\n"
    "                     escapes off.\n"
    "  -address=<addr>    Agent address.\n";

static void exec_command_error(const char *what)
{
    fprintf(stderr, "%s\nFor additional help try 'nomclient alloc exec "
                    "-help'\n",
            what);
}

/* -job: a random running allocation of the job (any when none runs), as
 * Nomad picks one; its ID (new string), or NULL after printing why. */
static char *job_alloc_id(struct api_client *api, const char *prefix)
{
    json_t *jobs = NULL, *allocs = NULL, *match = json_array();
    struct nc_error err = {0};
    char *id = NULL;
    if (api_request(api, "GET", "/v1/jobs", NULL, &jobs, NULL, &err) < 0) {
        fprintf(stderr, "Error querying job prefix \"%s\": %s\n", prefix,
                err.msg);
        goto out;
    }
    size_t i;
    json_t *j, *exact = NULL;
    json_array_foreach(jobs, i, j)
    {
        const char *jid = format_jstr(j, "ID", "");
        if (strcmp(jid, prefix) == 0)
            exact = j;
        if (nc_str_has_prefix(jid, prefix))
            json_array_append(match, j);
    }
    if (!exact && json_array_size(match) == 0) {
        fprintf(stderr, "No job(s) with prefix or ID \"%s\" found\n", prefix);
        goto out;
    }
    if (!exact && json_array_size(match) > 1) {
        fprintf(stderr, "Prefix \"%s\" matched multiple jobs\n\n", prefix);
        cli_print_job_list(match);
        goto out;
    }
    const char *job = format_jstr(exact ? exact : json_array_get(match, 0),
                                  "ID", "");
    char *q = query_escape(job);
    char *path = xasprintf("/v1/job/%s/allocations", q);
    free(q);
    int r = api_request(api, "GET", path, NULL, &allocs, NULL, &err);
    free(path);
    if (r < 0) {
        fprintf(stderr, "Error fetching allocations: error querying job "
                        "\"%s\": %s\n",
                job, err.msg);
        goto out;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    json_t *running = json_array(), *al;
    json_array_foreach(allocs, i, al)
    {
        if (nc_streq(format_jstr(al, "ClientStatus", ""), "running"))
            json_array_append(running, al);
    }
    json_t *pool = json_array_size(running) ? running : allocs;
    if (json_array_size(pool) == 0)
        fprintf(stderr, "Error fetching allocations: job \"%s\" doesn't "
                        "exist or it has no allocations\n",
                job);
    else
        id = xstrdup(format_jstr(
            json_array_get(pool, (size_t)rand() % json_array_size(pool)),
            "ID", ""));
    json_decref(running);
out:
    json_decref(jobs);
    json_decref(allocs);
    json_decref(match);
    return id;
}

/* The task when the allocation's group has only one; else NULL after
 * printing Nomad's list of them. */
static const char *only_task(const json_t *al)
{
    const char *group = format_jstr(al, "TaskGroup", "");
    json_t *tg = alloc_group_json(al), *t;
    size_t i;
    json_t *tasks = json_object_get(tg, "Tasks");
    if (!tg) {
        fprintf(stderr, "Could not find allocation task group: %s\n", group);
        return NULL;
    }
    if (json_array_size(tasks) == 1)
        return format_jstr(json_array_get(tasks, 0), "Name", "");
    fprintf(stderr, "Allocation \"%.8s\" is running the following tasks:\n",
            format_jstr(al, "ID", ""));
    json_array_foreach(tasks, i, t)
        fprintf(stderr, "  * %s\n", format_jstr(t, "Name", ""));
    fprintf(stderr, "\nPlease specify the task.\n");
    return NULL;
}

/* `alloc exec [-task T] [-job] [-i] [-t] [-e C] <alloc> <command>...` */
static int cmd_alloc_exec(int argc, char **argv)
{
    bool job = false, use_stdin = true, tty = isatty(0) && isatty(1);
    const char *task = "", *escape = "~", *address = NULL;
    const struct flag flags[] = {{"task", FLAG_STRING, &task},
                                 {"job", FLAG_BOOL, &job},
                                 {"i", FLAG_BOOL, &use_stdin},
                                 {"t", FLAG_BOOL, &tty},
                                 {"e", FLAG_STRING, &escape},
                                 {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("alloc exec", argc, argv, flags,
                              NC_ARRAY_LEN(flags));
    if (pos < 0) {
        fputs(alloc_exec_usage, pos == -2 ? stdout : stderr);
        return pos == -2 ? 0 : 1;
    }
    int nargs = argc - pos;
    if (nargs < 1) {
        exec_command_error(job ? "A job ID is required"
                               : "An allocation ID is required");
        return 1;
    }
    if (!job && strlen(argv[pos]) == 1) {
        fprintf(stderr, "Alloc ID must contain at least two characters\n");
        return 1;
    }
    if (nargs < 2) {
        exec_command_error("A command is required");
        return 1;
    }
    if (tty && !use_stdin) {
        fprintf(stderr, "-i must be enabled if running with tty\n");
        return 1;
    }
    if (strcmp(escape, "none") == 0)
        escape = "";
    if (strlen(escape) > 1) {
        fprintf(stderr, "-e requires 'none' or a single character\n");
        return 1;
    }
    struct api_client api;
    api_client_init(&api, address);
    int rc = 1;
    json_t *al = NULL;
    char *id = job ? job_alloc_id(&api, argv[pos]) : NULL;
    if (job && !id)
        goto out;
    if (!(al = lookup_alloc(&api, id ? id : argv[pos], false)))
        goto out;
    if (*task ? check_task(al, task) != 0 : !(task = only_task(al)))
        goto out;
    json_t *cmd = json_array();
    for (int i = pos + 1; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    char *cmd_txt = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    char *qc = query_escape(cmd_txt), *qt = query_escape(task);
    char *path = xasprintf("/v1/client/allocation/%s/exec?command=%s&task=%s"
                           "&tty=%s",
                           format_jstr(al, "ID", ""), qc, qt,
                           tty ? "true" : "false");
    free(cmd_txt);
    free(qc);
    free(qt);
    struct nc_error err = {0};
    int code = cli_exec_session(&api, path, tty, use_stdin,
                                *escape ? (unsigned char)*escape : -1, &err);
    free(path);
    if (code < 0)
        fprintf(stderr, "failed to exec into task: %s\n", err.msg);
    else
        rc = code;
out:
    json_decref(al);
    free(id);
    api_client_free(&api);
    return rc;
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
    if (strcmp(sub, "signal") == 0)
        return cmd_alloc_signal(argc - 1, argv + 1);
    if (strcmp(sub, "restart") == 0)
        return cmd_alloc_restart(argc - 1, argv + 1);
    if (strcmp(sub, "stop") == 0)
        return cmd_alloc_stop(argc - 1, argv + 1);
    if (strcmp(sub, "fs") == 0)
        return cmd_alloc_fs(argc - 1, argv + 1);
    if (strcmp(sub, "exec") == 0)
        return cmd_alloc_exec(argc - 1, argv + 1);
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
    /* the docker driver's containers and pause containers */
    size_t di;
    json_t *dv;
    json_array_foreach(json_object_get(res, "DockerContainers"), di, dv)
    {
        printf("%-12s %.12s %s (allocation %s, %s)\n", "Container",
               format_jstr(dv, "ID", "?"), format_jstr(dv, "Name", "?"),
               format_jstr(dv, "AllocID", "?"), format_jstr(dv, "State", "?"));
        total++;
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
        printf("%-12s %s %s: %s%s\n", "Iptables", format_jstr(v, "Table", "?"),
               format_jstr(v, "Chain", "?"), format_jstr(v, "Rule", ""),
               json_is_true(json_object_get(v, "Duplicate")) ? " (duplicate)"
                                                             : "");
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
