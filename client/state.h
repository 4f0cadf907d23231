/* state.h - the agent's durable job store: one JSON document per job under
 * data_dir/client/jobs/, each written atomically (temp file, fsync, rename,
 * directory fsync), so a crash at any moment leaves either the old or the
 * new version, never a torn one. */
#ifndef NOMCLIENT_STATE_H
#define NOMCLIENT_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "jobspec.h"
#include "util.h"

struct job_entry {
    struct job *job;      /* the validated model (owned) */
    bool stop;            /* stopped by the user */
    int64_t submit_time;  /* unix ns of the last registration */
    uint64_t create_index, modify_index, job_modify_index;
    uint64_t version;     /* bumped when the job's definition changes */
};

struct state_store {
    char *dir;                /* data_dir/client/jobs */
    struct job_entry **jobs;  /* sorted by job id */
    size_t njobs, cap;
    uint64_t index;           /* last index handed out */
};

/* Opens (creating) the store and loads every job. A file that cannot be
 * decoded is renamed to <name>.corrupt and reported in the log, never
 * deleted. */
int state_open(struct state_store **out, const char *data_dir,
               struct nc_error *err);
void state_close(struct state_store *s);

/* Stores a new or updated job, taking ownership of `job` (also on error).
 * *entry_out (optional) points at the stored entry. An update whose JSON
 * form is unchanged and which is not stopped keeps its version. */
int state_put_job(struct state_store *s, struct job *job,
                  struct job_entry **entry_out, struct nc_error *err);
struct job_entry *state_get_job(const struct state_store *s, const char *id);
/* Marks a job stopped (or removes it with purge). -ENOENT if unknown. */
int state_stop_job(struct state_store *s, const char *id, bool purge,
                   struct nc_error *err);

/* "pending", "running" or "dead", as Nomad reports a job's status. */
const char *state_job_status(const struct job_entry *e);

#endif
