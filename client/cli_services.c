/* cli_services.c - `checks` and `services`: this node's health checks
 * and service registrations. */
#include "client/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/format.h"
#include "client/services/services.h"

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

int cli_cmd_checks(int argc, char **argv)
{
    bool verbose = false, as_json = false;
    const char *address = NULL;
    const struct flag flags[] = {{"verbose", FLAG_BOOL, &verbose},
                                 {"json", FLAG_BOOL, &as_json},
                                 {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("checks", argc, argv, flags, NC_ARRAY_LEN(flags));
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
        cli_print_json(res);
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
    cli_row(&rows, "Alloc ID|Service|Check|Type|Target|Status|Output");
    json_object_foreach(res, id, c)
    {
        char out[64];
        first_line(format_jstr(c, "Output", ""), out, sizeof(out));
        cli_row(&rows, "%.8s|%s|%s|%s|%s|%s|%s", format_jstr(c, "AllocID", "?"),
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
            cli_row(&hist, "  Time|Status|Code|Latency");
            size_t i;
            json_t *h;
            json_array_foreach(json_object_get(c, "History"), i, h)
            {
                char lat[32];
                nc_format_duration(format_jint(h, "Latency"), lat, sizeof(lat));
                cli_row(&hist, "  %s|%s|%lld|%s",
                        format_jstr(h, "Timestamp", "?"),
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

int cli_cmd_services(int argc, char **argv)
{
    bool as_json = false;
    const char *explain = NULL, *address = NULL;
    const struct flag flags[] = {{"explain", FLAG_STRING, &explain},
                                 {"json", FLAG_BOOL, &as_json},
                                 {"address", FLAG_STRING, &address}};
    int pos = cli_parse_flags("services", argc, argv, flags, NC_ARRAY_LEN(flags));
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
        cli_print_json(view);
    else if (explain)
        registrations_print_explain(stdout, view);
    else
        registrations_print(stdout, view);
    json_decref(view);
    return 0;
}
