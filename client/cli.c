/* cli.c - the command line, laid out like Nomad's so its users feel at home:
 * `nomclient agent`, `status -self`, `job run|validate|status|stop|inspect`,
 * `alloc status|logs|signal|restart`, `version`. Every command takes -h;
 * exit 0 on success, 1 on error.
 *
 * This file holds the dispatch and the helpers every command uses; the
 * commands live by family in cli_agent.c, cli_node.c (node and `status`),
 * cli_job.c, cli_alloc.c (allocations, leftovers) and cli_services.c
 * (checks, services). */
#include "client/cli.h"
#include "client/cli_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/agent.h"
#include "client/api/api.h"
#include "client/drivers/driver.h"
#include "netns/netns.h"

#define NOMAD_API_VERSION "1.7.7"

/* Nomad's global TLS flags, taken by every command that talks to the
 * agent (the commands' own tables need not list them). */
static struct api_tls_flags tls_flags;
static const struct flag tls_flag_table[] = {
    {"ca-cert", FLAG_STRING, &tls_flags.ca_cert},
    {"client-cert", FLAG_STRING, &tls_flags.client_cert},
    {"client-key", FLAG_STRING, &tls_flags.client_key},
    {"tls-skip-verify", FLAG_BOOL, &tls_flags.skip_verify},
};

static const struct flag *find_flag(const struct flag *flags, size_t nflags,
                                    const char *name, size_t nlen)
{
    const struct flag *f = NULL;
    for (size_t k = 0; k < nflags; k++)
        if (strlen(flags[k].name) == nlen &&
            strncmp(flags[k].name, name, nlen) == 0)
            f = &flags[k];
    return f;
}

int cli_parse_flags(const char *cmd, int argc, char **argv,
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
        const struct flag *f = find_flag(flags, nflags, name, nlen);
        if (!f && nlen == 5 && strncmp(name, "token", 5) == 0) {
            /* every command talking to the agent takes -token */
            const char *tok = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!tok) {
                fprintf(stderr, "%s: flag needs an argument: -token\n", cmd);
                return -1;
            }
            api_client_set_token(tok);
            continue;
        }
        if (!f) {
            f = find_flag(tls_flag_table, NC_ARRAY_LEN(tls_flag_table), name,
                          nlen);
            if (f == &tls_flag_table[3])
                tls_flags.skip_verify_set = true;
        }
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
    api_client_set_tls_flags(&tls_flags);
    return i;
}

void cli_print_api_error(const char *what, const struct nc_error *err)
{
    fprintf(stderr, "Error %s: %s\n", what, err->msg);
}

void cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(4) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (s)
        printf("%s\n", s);
    free(s);
}

void cli_row(struct strlist *rows, const char *fmt, ...)
{
    struct nc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    strlist_add(rows, b.data ? b.data : "");
    nc_buf_free(&b);
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
    "    node        `node status -self`, `node drain`, `node eligibility`\n"
    "    job         Run, validate, inspect, stop jobs and show their status\n"
    "    alloc       Allocation status, logs, signal, restart, stop and fs\n"
    "    checks      Health checks of this node's services and their results\n"
    "    leftovers   Kernel objects no allocation owns (-clean removes them)\n"
    "    acl         ACL bootstrap, tokens and policies\n"
    "    version     Print the version\n"
    "\n"
    "Every command takes -h. The CLI talks to the agent at -address,\n"
    "$NOMCLIENT_ADDR, $NOMAD_ADDR, or http://127.0.0.1:4646; for https://\n"
    "-ca-cert, -client-cert, -client-key, -tls-skip-verify (or NOMAD_CACERT,\n"
    "NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY, NOMAD_SKIP_VERIFY).\n";

int cli_main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"agent", cli_cmd_agent},     {"status", cli_cmd_status},
                {"node", cli_cmd_node},       {"job", cli_cmd_job},
                {"alloc", cli_cmd_alloc},     {"leftovers", cli_cmd_leftovers},
                {"checks", cli_cmd_checks},   {"services", cli_cmd_services},
                {"acl", cli_cmd_acl},         {"version", cmd_version}};
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
