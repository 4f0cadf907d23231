/* cli_job.c - `job run|validate|status|stop|inspect`. */
#include "client/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/drivers/driver.h"
#include "client/format.h"
#include "client/job/job.h"

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

/* With driver_checks, also the drivers' checks that need no agent config
 * (keys, types, image references); the agent checks the rest when the job
 * reaches it. */
static int load_job_file(const char *path, struct job **job,
                         bool driver_checks)
{
    struct nc_error err = {0};
    if (jobspec_parse_file(path, job, &err) < 0 ||
        (driver_checks && drivers_validate_job(NULL, *job, &err) < 0)) {
        fprintf(stderr, "Error parsing job file from %s:\n%s\n", path, err.msg);
        jobspec_free(*job);
        *job = NULL;
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
    int pos = cli_parse_flags("job run", argc, argv, flags, NC_ARRAY_LEN(flags));
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
    /* -output converts, as Nomad's: the agent checks driver config */
    if (load_job_file(argv[pos], &job, !output) < 0)
        return 1;
    json_t *body = json_pack("{s:o}", "Job", jobspec_to_json(job));
    int rc = 1;
    if (output) {
        cli_print_json(body);
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
            cli_print_api_error("submitting job", &err);
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
    int pos = cli_parse_flags("job validate", argc, argv, NULL, 0);
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
    if (load_job_file(argv[pos], &job, true) < 0)
        return 1;
    char *w = warnings_text(&job->warnings);
    print_warnings(w);
    free(w);
    printf("Job validation successful\n");
    jobspec_free(job);
    return 0;
}

void cli_print_job_list(const json_t *list)
{
    if (json_array_size(list) == 0) {
        printf("No running jobs\n");
        return;
    }
    struct strlist rows = {0};
    cli_row(&rows, "ID|Type|Priority|Status|Submit Date");
    size_t i;
    json_t *j;
    json_array_foreach(list, i, j)
    {
        char when[32];
        format_time(format_jint(j, "SubmitTime"), when, sizeof(when));
        cli_row(&rows, "%s|%s|%lld|%s|%s", format_jstr(j, "ID", "?"),
                format_jstr(j, "Type", "?"),
                (long long)format_jint(j, "Priority"),
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

int cli_print_job_status(struct api_client *api, const char *id)
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
            cli_print_api_error("querying job", &err);
        return 1;
    }
    struct strlist rows = {0};
    char when[32];
    format_time(format_jint(job, "SubmitTime"), when, sizeof(when));
    char *dcs = join_json_strings(json_object_get(job, "Datacenters"));
    cli_row(&rows, "ID|%s", format_jstr(job, "ID", "?"));
    cli_row(&rows, "Name|%s", format_jstr(job, "Name", "?"));
    cli_row(&rows, "Submit Date|%s", when);
    cli_row(&rows, "Type|%s", format_jstr(job, "Type", "?"));
    cli_row(&rows, "Priority|%lld", (long long)format_jint(job, "Priority"));
    cli_row(&rows, "Datacenters|%s", dcs);
    cli_row(&rows, "Namespace|%s", format_jstr(job, "Namespace", "default"));
    cli_row(&rows, "Node Pool|%s", format_jstr(job, "NodePool", "default"));
    cli_row(&rows, "Status|%s", format_jstr(job, "Status", "?"));
    cli_row(&rows, "Periodic|%s", json_is_object(json_object_get(job, "Periodic")) ? "true" : "false");
    cli_row(&rows, "Parameterized|%s",
            json_is_object(json_object_get(job, "ParameterizedJob")) ? "true"
                                                                     : "false");
    free(dcs);
    format_kv(stdout, &rows);
    strlist_free(&rows);

    printf("\nSummary\n");
    cli_row(&rows, "Task Group|Queued|Starting|Running|Failed|Complete|Lost|Unknown");
    bool stopped = json_is_true(json_object_get(job, "Stop"));
    bool per_node = nc_streq(format_jstr(job, "Type", ""), "system") ||
                    nc_streq(format_jstr(job, "Type", ""), "sysbatch");
    size_t i;
    json_t *tg;
    json_array_foreach(json_object_get(job, "TaskGroups"), i, tg)
    {
        long long q =
            stopped ? 0 : (per_node ? 1 : (long long)format_jint(tg, "Count"));
        cli_row(&rows, "%s|%lld|0|0|0|0|0|0", format_jstr(tg, "Name", "?"), q);
    }
    format_columns(stdout, &rows);
    strlist_free(&rows);
    char *apath =
        xasprintf("/v1/job/%s/allocations", format_jstr(job, "ID", ""));
    cli_print_alloc_table(api, apath, NULL);
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
    int pos = cli_parse_flags("job status", argc, argv, flags, NC_ARRAY_LEN(flags));
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
        return cli_print_job_status(api, argv[pos]);
    json_t *doc = NULL;
    char *path = argc - pos == 1 ? xasprintf("/v1/job/%s", argv[pos]) : xstrdup("/v1/jobs");
    int r = api_request(api, "GET", path, NULL, &doc, NULL, &err);
    free(path);
    if (r < 0) {
        cli_print_api_error("querying jobs", &err);
        return 1;
    }
    if (as_json)
        cli_print_json(doc);
    else
        cli_print_job_list(doc);
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
    int pos = cli_parse_flags("job stop", argc, argv, flags, NC_ARRAY_LEN(flags));
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
            cli_print_api_error("deregistering job", &err);
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
    int pos = cli_parse_flags("job inspect", argc, argv, flags, NC_ARRAY_LEN(flags));
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
            cli_print_api_error("inspecting job", &err);
        return 1;
    }
    json_t *wrapped = json_pack("{s:o}", "Job", job);
    cli_print_json(wrapped);
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

int cli_cmd_job(int argc, char **argv)
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
