/* supervisor.h - the small process that runs one task, as a container
 * runtime's shim does. The agent starts `nomclient supervise SPEC` detached;
 * the supervisor outlives agent restarts, so tasks keep running while the
 * agent is upgraded or crashes.
 *
 * SPEC is a JSON file written by the agent (see supervisor_spec below for the
 * fields). The supervisor:
 *   - becomes a session leader and child subreaper;
 *   - places the task in its own cgroup with the spec's limits;
 *   - forks the task, which joins the allocation's network namespace,
 *     unshares a mount namespace, builds its chroot (exec isolation), drops
 *     capabilities, switches user and execs;
 *   - copies stdout/stderr into rotated files under the alloc's logs dir;
 *   - forwards SIGTERM/SIGINT as the task's kill signal and sends SIGKILL to
 *     the whole cgroup after the kill timeout;
 *   - writes the exit status atomically to StatusFile, then exits.
 * It links nothing the agent's event loop needs and allocates only at
 * start, so it stays well under 1 MB of private memory. */
#ifndef NOMCLIENT_SUPERVISOR_H
#define NOMCLIENT_SUPERVISOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

struct supervisor_mount {
    char *source;      /* host path */
    char *destination; /* inside the task root */
    bool read_only;
};

struct supervisor_spec {
    char *alloc_id, *task;
    char *command;
    struct strlist args;
    struct kvlist env;
    char *user;       /* NULL: run as the agent's user */
    char *task_dir;   /* absolute; the chroot for exec isolation */
    char *alloc_dir;  /* shared alloc/ dir, mounted at /alloc */
    char *status_file; /* where the exit status goes, outside the task's view */
    bool chroot;      /* exec (true) or raw_exec (false) */
    struct kvlist chroot_env; /* host path -> path inside the chroot */
    char *netns;      /* /run/netns/NAME, or NULL for the host's */
    int wait_fd;      /* >= 0: an inherited pipe; the task waits for a byte
                         on it (network ready) before joining netns and
                         exec; EOF aborts it. -1: no wait */
    struct supervisor_mount *mounts;
    size_t nmounts;
    char *cgroup;     /* relative name, e.g. "nomclient/<alloc>.<task>" */
    int cpu_shares;   /* MHz from resources.cpu, used as relative weight */
    int64_t memory_mb, memory_max_mb;
    struct strlist caps; /* "CAP_CHOWN", ...: the set the task keeps */
    char *log_dir;
    int log_max_files;
    int64_t log_max_file_bytes;
    int kill_signal;
    int64_t kill_timeout_ns;
};

/* Decodes a spec (as written by supervisor_spec_to_json). */
int supervisor_spec_from_json(const json_t *j, struct supervisor_spec *s,
                              struct nc_error *err);
/* Encodes a spec; returns a new reference. */
json_t *supervisor_spec_to_json(const struct supervisor_spec *s);
void supervisor_spec_free(struct supervisor_spec *s);

/* Resolves a signal name ("SIGINT", "INT") to its number; -1 if unknown. */
int supervisor_signal_number(const char *name);

/* Entry point of `nomclient supervise SPEC`; returns the process exit code. */
int supervisor_main(int argc, char **argv);

#endif
