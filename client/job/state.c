/* state.c - see client/job/job.h. */
#include "client/job/job.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Job IDs may hold any byte but NUL and space; file names get a
 * percent-encoded form so "a/b" cannot escape the directory. */
static char *job_file_name(const struct state_store *s, const char *id)
{
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%s/", s->dir);
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
            (*p == '.' && p != (const unsigned char *)id))
            nc_buf_putc(&b, (char)*p);
        else
            nc_buf_printf(&b, "%%%02X", *p);
    }
    nc_buf_puts(&b, ".json");
    return nc_buf_take(&b);
}

static void entry_free(struct job_entry *e)
{
    if (!e)
        return;
    jobspec_free(e->job);
    free(e);
}

static size_t find_slot(const struct state_store *s, const char *id,
                        bool *found)
{
    size_t lo = 0, hi = s->njobs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->jobs[mid]->job->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void insert_entry(struct state_store *s, struct job_entry *e)
{
    bool found;
    size_t i = find_slot(s, e->job->id, &found);
    if (found) {
        entry_free(s->jobs[i]);
        s->jobs[i] = e;
        return;
    }
    nc_grow((void **)&s->jobs, &s->cap, s->njobs + 1, sizeof(*s->jobs));
    memmove(&s->jobs[i + 1], &s->jobs[i], (s->njobs - i) * sizeof(*s->jobs));
    s->jobs[i] = e;
    s->njobs++;
}

static json_t *entry_to_json(const struct job_entry *e)
{
    return json_pack("{s:o, s:b, s:I, s:I, s:I, s:I, s:I}",
                     "Job", jobspec_to_json(e->job), "Stop", e->stop,
                     "SubmitTime", (json_int_t)e->submit_time,
                     "CreateIndex", (json_int_t)e->create_index,
                     "ModifyIndex", (json_int_t)e->modify_index,
                     "JobModifyIndex", (json_int_t)e->job_modify_index,
                     "Version", (json_int_t)e->version);
}

static int persist(struct state_store *s, const struct job_entry *e,
                   struct nc_error *err)
{
    json_t *doc = entry_to_json(e);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    char *path = job_file_name(s, e->job->id);
    int r = nc_write_file_atomic(path, text, strlen(text), 0600);
    if (r < 0)
        nc_error_set(err, r, "write %s: %s", path, strerror(-r));
    free(path);
    free(text);
    return r;
}

static uint64_t json_u64(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) > 0
               ? (uint64_t)json_integer_value(v)
               : 0;
}

static int load_one(struct state_store *s, const char *path)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    struct nc_error err = {0};
    struct job *job = NULL;
    if (!doc) {
        nc_error_set(&err, -EINVAL, "%s:%d:%d: %s", path, jerr.line,
                     jerr.column, jerr.text);
    } else if (jobspec_from_json(json_object_get(doc, "Job"), &job, &err) == 0) {
        struct job_entry *e = xcalloc(1, sizeof(*e));
        e->job = job;
        json_t *stop = json_object_get(doc, "Stop");
        e->stop = json_is_true(stop);
        json_t *st = json_object_get(doc, "SubmitTime");
        e->submit_time = json_is_integer(st) ? json_integer_value(st) : 0;
        e->create_index = json_u64(doc, "CreateIndex");
        e->modify_index = json_u64(doc, "ModifyIndex");
        e->job_modify_index = json_u64(doc, "JobModifyIndex");
        e->version = json_u64(doc, "Version");
        if (e->modify_index > s->index)
            s->index = e->modify_index;
        insert_entry(s, e);
        json_decref(doc);
        return 0;
    } else {
        nc_error_prefix(&err, "%s", path);
    }
    json_decref(doc);
    char *aside = xasprintf("%s.corrupt", path);
    LOG_ERROR("state", "cannot load job: %s; moved to %s", err.msg, aside);
    if (rename(path, aside) < 0)
        LOG_ERROR("state", "rename %s: %s", path, strerror(errno));
    free(aside);
    return -EINVAL;
}

int state_open(struct state_store **out, const char *data_dir,
               struct nc_error *err)
{
    struct state_store *s = xcalloc(1, sizeof(*s));
    s->dir = xasprintf("%s/client/jobs", data_dir);
    int r = nc_mkdir_p(s->dir, 0700);
    if (r < 0) {
        nc_error_set(err, r, "create %s: %s", s->dir, strerror(-r));
        state_close(s);
        return r;
    }
    DIR *d = opendir(s->dir);
    if (!d) {
        r = -errno;
        nc_error_set(err, r, "open %s: %s", s->dir, strerror(errno));
        state_close(s);
        return r;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.')
            continue;
        char *path = xasprintf("%s/%s", s->dir, n);
        if (nc_str_has_suffix(n, ".json"))
            load_one(s, path);
        else if (strstr(n, ".json.tmp."))
            unlink(path); /* a write that a crash interrupted */
        free(path);
    }
    closedir(d);
    *out = s;
    return 0;
}

void state_close(struct state_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->njobs; i++)
        entry_free(s->jobs[i]);
    free(s->jobs);
    free(s->dir);
    free(s);
}

static bool same_definition(const struct job *a, const struct job *b)
{
    json_t *ja = jobspec_to_json(a), *jb = jobspec_to_json(b);
    bool same = json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}

int state_put_job(struct state_store *s, struct job *job,
                  struct job_entry **entry_out, struct nc_error *err)
{
    struct job_entry *old = state_get_job(s, job->id);
    struct job_entry *e = xcalloc(1, sizeof(*e));
    e->job = job;
    e->submit_time = nc_now_unix_ns();
    e->modify_index = e->job_modify_index = ++s->index;
    if (old) {
        e->create_index = old->create_index;
        bool same = !old->stop && same_definition(old->job, job);
        e->version = same ? old->version : old->version + 1;
        if (same)
            e->job_modify_index = old->job_modify_index;
    } else {
        e->create_index = e->modify_index;
    }
    int r = persist(s, e, err);
    if (r < 0) {
        entry_free(e);
        return r;
    }
    insert_entry(s, e);
    if (entry_out)
        *entry_out = e;
    return 0;
}

struct job_entry *state_get_job(const struct state_store *s, const char *id)
{
    bool found;
    size_t i = find_slot(s, id, &found);
    return found ? s->jobs[i] : NULL;
}

int state_stop_job(struct state_store *s, const char *id, bool purge,
                   struct nc_error *err)
{
    bool found;
    size_t i = find_slot(s, id, &found);
    if (!found)
        return nc_error_set(err, -ENOENT, "job not found");
    struct job_entry *e = s->jobs[i];
    if (purge) {
        char *path = job_file_name(s, id);
        int r = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        if (r < 0)
            nc_error_set(err, r, "remove %s: %s", path, strerror(-r));
        free(path);
        if (r < 0)
            return r;
        entry_free(e);
        memmove(&s->jobs[i], &s->jobs[i + 1],
                (s->njobs - i - 1) * sizeof(*s->jobs));
        s->njobs--;
        s->index++;
        return 0;
    }
    bool was = e->stop;
    uint64_t old_index = e->modify_index, old_jmi = e->job_modify_index;
    e->stop = true;
    e->modify_index = e->job_modify_index = ++s->index;
    int r = persist(s, e, err);
    if (r < 0) {
        e->stop = was;
        e->modify_index = old_index;
        e->job_modify_index = old_jmi;
    }
    return r;
}

const char *state_job_status(const struct job_entry *e)
{
    /* Until allocations run (issue 4), a live job waits to be run. */
    return e->stop ? "dead" : "pending";
}
