/* probe_script.c - the script probe: the engine's caller runs the command
 * (chk_callbacks.script_start: inside the task, through its driver) and
 * hands back its exit code and output. As Nomad's script checks: exit 0
 * passing, 1 warning, anything else critical; the output is the command's
 * (stdout and stderr together, its last 4 KiB); a command that could not
 * run is critical with the reason as output; one still running at the
 * deadline is killed (script_cancel) and reported as Nomad does,
 * "context deadline exceeded". */
#include "checks/checks_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum chk_status chk_script_status(int exit_code)
{
    return exit_code == 0   ? CHK_PASSING
           : exit_code == 1 ? CHK_WARNING
                            : CHK_CRITICAL;
}

static void script_done(void *ctx, int exit_code, const char *output,
                        size_t output_len, const char *error)
{
    struct chk *c = ctx;
    if (!c->running || !c->script_run)
        return;
    c->script_run = NULL;
    c->output.len = 0;
    if (error) {
        chk_output_append_clean(&c->output, (const unsigned char *)error,
                                strlen(error));
        chk_probe_finish(c, CHK_CRITICAL, 0, false);
        return;
    }
    if (output_len > CHK_OUTPUT_MAX) { /* the end, as Nomad's ring buffer */
        output += output_len - CHK_OUTPUT_MAX;
        output_len = CHK_OUTPUT_MAX;
    }
    chk_output_append_clean(&c->output, (const unsigned char *)output,
                            output_len);
    chk_probe_finish(c, chk_script_status(exit_code), 0, false);
}

static int script_start(struct chk *c)
{
    struct chk_engine *e = c->e;
    if (!e->cb.script_start) {
        chk_probe_finishf(c, CHK_CRITICAL, 0, false,
                          "script checks cannot run here (no task to run "
                          "them in)");
        return 0;
    }
    const struct chk_def *d = &c->def;
    char **argv = xcalloc(d->nargs + 2, sizeof(*argv));
    argv[0] = (char *)d->command;
    for (size_t i = 0; i < d->nargs; i++)
        argv[i + 1] = (char *)d->args[i];
    struct nc_error err = {0};
    void *run = NULL;
    /* the runner's own limit is a backstop: the engine's deadline decides */
    int r = e->cb.script_start(e->arg, c, argv, d->timeout_ns + 1000000000LL,
                               script_done, c, &run, &err);
    free(argv);
    if (r < 0) {
        c->output.len = 0;
        const char *msg = err.msg[0] ? err.msg : strerror(-r);
        chk_output_append_clean(&c->output, (const unsigned char *)msg,
                                strlen(msg));
        chk_probe_finish(c, CHK_CRITICAL, 0, false);
        return 0;
    }
    c->script_run = run;
    return 0;
}

static void script_abort(struct chk *c)
{
    void *run = c->script_run;
    c->script_run = NULL;
    if (run && c->e->cb.script_cancel)
        c->e->cb.script_cancel(c->e->arg, run);
}

const struct chk_probe_ops chk_script_ops = {
    .name = "script",
    .start = script_start,
    .abort = script_abort,
};
