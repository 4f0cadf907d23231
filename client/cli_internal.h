/* cli_internal.h - what the command files of the CLI share: Go-style flag
 * parsing, printing helpers, the tables several commands show, and the
 * commands cli_main dispatches to. Not for use outside client/cli*.c. */
#ifndef NOMCLIENT_CLI_INTERNAL_H
#define NOMCLIENT_CLI_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client/util.h"

struct api_client;

/* ---- flags and printing (cli.c) ---- */

enum flag_kind { FLAG_BOOL, FLAG_STRING, FLAG_MULTI };

struct flag {
    const char *name;
    enum flag_kind kind;
    void *target; /* bool *, const char **, struct strlist * */
};

/* Parses Go-style flags ("-x", "-x=v", "-x v", "--x") up to the first
 * argument that is not a flag, as Nomad's CLI does. Returns the index of the
 * first positional argument, -1 on error (message printed), -2 for -h. */
int cli_parse_flags(const char *cmd, int argc, char **argv,
                    const struct flag *flags, size_t nflags);
/* "Error <what>: <message>" on stderr. */
void cli_print_api_error(const char *what, const struct nc_error *err);
/* Indented, keys sorted, on stdout. */
void cli_print_json(const json_t *v);
/* Appends one formatted row ("a|b|c") for format_columns / format_kv. */
void cli_row(struct strlist *rows, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- tables shared between commands ---- */

/* Nomad's allocation table, from an endpoint listing allocation stubs, under
 * an "Allocations" title (cli_alloc.c). */
void cli_print_alloc_table(struct api_client *api, const char *path,
                           const char *node_id);
/* The job list of `job status` and `status` (cli_job.c). */
void cli_print_job_list(const json_t *list);
/* One job, as `job status <id>` shows it; returns the exit code. */
int cli_print_job_status(struct api_client *api, const char *id);

/* `alloc exec`'s session on the agent's exec websocket at `path`
 * (cli_alloc_exec.c): the command's exit code, or -1 with err (Nomad's
 * words, printed after "failed to exec into task: "). escape: the escape
 * character with tty, -1 for none. */
int cli_exec_session(struct api_client *api, const char *path, bool tty,
                     bool use_stdin, int escape, struct nc_error *err);

/* ---- commands: each gets the arguments after its name and returns the
 * exit code ---- */

int cli_cmd_agent(int argc, char **argv);    /* cli_agent.c */
int cli_cmd_status(int argc, char **argv);   /* cli_node.c */
int cli_cmd_node(int argc, char **argv);     /* cli_node.c */
int cli_cmd_job(int argc, char **argv);      /* cli_job.c */
int cli_cmd_alloc(int argc, char **argv);    /* cli_alloc.c */
int cli_cmd_leftovers(int argc, char **argv); /* cli_alloc.c */
int cli_cmd_checks(int argc, char **argv);   /* cli_services.c */
int cli_cmd_services(int argc, char **argv); /* cli_services.c */
int cli_cmd_acl(int argc, char **argv);      /* cli_acl.c */

#endif
