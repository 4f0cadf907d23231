/* consul_status.c - the debugging view of the sync loop: each
 * registration's state and last answers, the stale entries, and the
 * loop's own status and counters. */
#include "client/services/internal.h"

#include <string.h>

/* ---- the debugging view ---- */

static const char *const reg_state_name[] = {
    "pending", "in sync", "missing", "different", "rejected", "unreachable",
};

static json_t *time_json(int64_t unix_ns)
{
    if (!unix_ns)
        return json_null();
    char buf[64];
    nc_format_time(unix_ns, buf, sizeof(buf));
    return json_string(buf);
}

/* A monotonic instant as wall-clock time, for the debugging view. */
static json_t *mono_json(uint64_t mono_ns)
{
    if (!mono_ns)
        return json_null();
    int64_t delta = (int64_t)(mono_ns - nc_now_mono_ns());
    return time_json(nc_now_unix_ns() + delta);
}

static json_t *duration_json(int64_t ns)
{
    char buf[64];
    nc_format_duration(ns, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *answer_json(const struct cs_answer *a)
{
    if (!a->time_ns)
        return json_null();
    json_t *j = json_object();
    json_object_set_new(j, "Time", time_json(a->time_ns));
    json_object_set_new(j, "Method", json_string(a->method));
    json_object_set_new(j, "Path", json_string(a->path));
    json_object_set_new(j, "Status", json_integer(a->status));
    json_object_set_new(j, "Body", json_string(a->body ? a->body : ""));
    json_object_set_new(j, "Error",
                        a->error ? json_string(a->error) : json_null());
    return j;
}

static json_t *check_json(const struct cs_reg *r, const struct cs_check *c)
{
    json_t *j = json_object();
    json_object_set_new(j, "CheckID", json_string(c->id));
    json_object_set_new(j, "Name", json_string(c->name));
    json_object_set_new(j, "Status", json_string(c->status));
    json_object_set_new(j, "ConsulStatus",
                        c->consul_status ? json_string(c->consul_status)
                                         : json_null());
    json_object_set_new(j, "TTL", duration_json(c->ttl_ns));
    json_object_set_new(j, "LastUpdate", answer_json(&c->last));
    uint64_t due = consul_keepalive_due_ns(c->last_write_ns, c->ttl_ns);
    json_object_set_new(j, "NextKeepAlive",
                        r->in_consul && r->state == REG_IN_SYNC && due
                            ? mono_json(due)
                            : json_null());
    json_object_set_new(j, "Updates", json_integer((json_int_t)c->updates));
    return j;
}

json_t *consul_sync_describe(const struct consul_sync *s,
                             const char *service_id)
{
    const struct cs_reg *r = s ? consul_reg_find(s, service_id) : NULL;
    if (!r)
        return NULL;
    enum reg_state st = r->state;
    if (s->reachable == 0 && st != REG_REJECTED)
        st = REG_UNREACHABLE;
    if (r->queued && st != REG_UNREACHABLE)
        st = REG_PENDING;
    json_t *j = json_object();
    json_object_set_new(j, "ServiceID", json_string(r->id));
    json_object_set_new(j, "Name", json_string(r->name));
    json_object_set_new(j, "State", json_string(reg_state_name[st]));
    json_object_set_new(j, "Differences", nc_strlist_json(&r->diffs));
    json_object_set_new(j, "Repaired", nc_strlist_json(&r->repaired));
    const char *error =
        r->error ? r->error
        : st == REG_UNREACHABLE || (st == REG_REJECTED && !r->last.time_ns)
            ? s->last_error
            : NULL;
    json_object_set_new(j, "Error",
                        error && *error ? json_string(error) : json_null());
    json_object_set_new(j, "LastPayload",
                        r->last_sent ? json_incref(r->last_sent) : json_null());
    json_object_set_new(j, "LastAnswer", answer_json(&r->last));
    uint64_t retry = st == REG_REJECTED      ? r->next_retry_ns
                     : st == REG_UNREACHABLE ? s->pass_due_ns
                                             : 0;
    json_object_set_new(j, "NextRetry", mono_json(retry));
    json_object_set_new(j, "Attempts", json_integer(r->attempts));
    json_t *checks = json_array();
    for (size_t k = 0; k < r->nchecks; k++)
        json_array_append_new(checks, check_json(r, &r->checks[k]));
    json_object_set_new(j, "Checks", checks);
    return j;
}

json_t *consul_sync_stale(const struct consul_sync *s)
{
    json_t *a = json_array();
    for (size_t i = 0; s && i < s->nstale; i++) {
        const struct cs_stale *st = &s->stale[i];
        json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:s}", "ID", st->id, "Name",
                              st->name ? st->name : "", "Address",
                              st->address ? st->address : "", "Port", st->port,
                              "Reason", st->reason);
        if (!e)
            continue;
        if (st->last.time_ns)
            json_object_set_new(e, "LastAnswer", answer_json(&st->last));
        json_array_append_new(a, e);
    }
    return a;
}

json_t *consul_sync_status(const struct consul_sync *s)
{
    if (!s)
        return json_object();
    json_t *j = json_object();
    json_object_set_new(j, "Address",
                        json_string(s->display + strlen("Consul at ")));
    json_object_set_new(j, "Reachable",
                        s->reachable < 0 ? json_null()
                                         : json_boolean(s->reachable));
    json_object_set_new(j, "LastSync", time_json(s->last_sync_unix_ns));
    json_object_set_new(j, "LastSyncDuration",
                        duration_json((int64_t)s->last_pass_ns));
    json_object_set_new(j, "LastError",
                        s->last_error[0] ? json_string(s->last_error)
                                         : json_null());
    json_object_set_new(j, "LastErrorTime", time_json(s->last_error_unix_ns));
    json_object_set_new(j, "NextRetry",
                        s->failures ? mono_json(s->backoff_until_ns)
                                    : json_null());
    json_object_set_new(j, "Backoff", duration_json((int64_t)s->backoff_ns));
    json_object_set_new(
        j, "Counters",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "Registrations",
                  (json_int_t)s->n_registrations, "Deregistrations",
                  (json_int_t)s->n_deregistrations, "CheckUpdates",
                  (json_int_t)s->n_check_updates, "Errors",
                  (json_int_t)s->n_errors, "Passes", (json_int_t)s->n_passes,
                  "Requests", (json_int_t)s->n_requests, "Writes",
                  (json_int_t)s->n_writes));
    size_t nchecks = 0;
    for (size_t i = 0; i < s->nregs; i++)
        nchecks += s->regs[i].nchecks;
    json_object_set_new(j, "LastPass",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                                  "DurationNs", (json_int_t)s->last_pass_ns,
                                  "DiffNs", (json_int_t)s->last_diff_ns,
                                  "ReadBytes", (json_int_t)s->last_read_bytes,
                                  "Writes", (json_int_t)s->last_pass_writes,
                                  "Services", (json_int_t)s->nregs, "Checks",
                                  (json_int_t)nchecks));
    json_object_set_new(j, "InFlight", json_integer((json_int_t)s->inflight.n));
    json_object_set_new(j, "Queued", json_integer((json_int_t)s->queue.n));
    json_object_set_new(j, "Stale", json_integer((json_int_t)s->nstale));
    return j;
}
