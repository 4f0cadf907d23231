/* consul_loop.c - the sync loop: the backoff after a failure, what each
 * answer changes, check status pushes and keep-alives, and the passes
 * that compare the desired registrations with what Consul holds. */
#include "client/services/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEPALIVE_SLACK_NS SEC /* keep-alives due this soon go together */

/* ---- backoff and keep-alives ---- */

uint64_t consul_backoff_ns(unsigned failures, uint64_t base_ns, uint64_t cap_ns,
                           double random01)
{
    if (!failures || !base_ns)
        return 0;
    if (cap_ns < base_ns)
        cap_ns = base_ns;
    uint64_t d = base_ns;
    for (unsigned i = 1; i < failures && d < cap_ns; i++)
        d = d > cap_ns / 2 ? cap_ns : d * 2;
    if (d > cap_ns)
        d = cap_ns;
    if (!(random01 >= 0.0) || random01 >= 1.0) /* NaN too */
        random01 = 0.0;
    /* "equal jitter": never less than half, so a storm stays bounded */
    return d / 2 + (uint64_t)((double)(d - d / 2) * random01);
}

uint64_t consul_keepalive_due_ns(uint64_t last_write_ns, int64_t ttl_ns)
{
    if (!last_write_ns)
        return 0;
    return last_write_ns + (ttl_ns > 0 ? (uint64_t)ttl_ns / 2 : 0);
}

static double random01(void)
{
    uint32_t r;
    nc_random_bytes(&r, sizeof(r));
    return (double)r / 4294967296.0;
}

/* ---- stale entries and the last error ---- */

static struct cs_stale *stale_find(struct consul_sync *s, const char *id)
{
    for (size_t i = 0; i < s->nstale; i++)
        if (strcmp(s->stale[i].id, id) == 0)
            return &s->stale[i];
    return NULL;
}

static void stale_remove(struct consul_sync *s, const char *id)
{
    for (size_t i = 0; i < s->nstale; i++) {
        if (strcmp(s->stale[i].id, id) != 0)
            continue;
        consul_stale_free(&s->stale[i]);
        memmove(&s->stale[i], &s->stale[i + 1],
                (s->nstale - i - 1) * sizeof(*s->stale));
        s->nstale--;
        return;
    }
}

static void set_error(struct consul_sync *s, const char *text)
{
    snprintf(s->last_error, sizeof(s->last_error), "%s", text);
    s->last_error_unix_ns = nc_now_unix_ns();
}

/* ---- answers ---- */

/* Logs the first failure of a run of them (transitions only: the
 * others, and how they differ, go to the debug log and the status). */
static void log_failure(struct consul_sync *s, const char *text)
{
    char wait[32];
    nc_format_duration((int64_t)s->backoff_ns, wait, sizeof(wait));
    if (s->failures == 1)
        LOG_WARN("consul", "%s: %s; retrying in %s", s->display, text, wait);
    else
        LOG_DEBUG("consul",
                  "%s: still failing (%u in a row): %s; retrying "
                  "in %s",
                  s->display, s->failures, text, wait);
}

static void backoff_more(struct consul_sync *s)
{
    s->failures++;
    s->backoff_ns = consul_backoff_ns(s->failures, s->tune.backoff_base_ns,
                                      s->tune.backoff_cap_ns, random01());
    s->backoff_until_ns = nc_now_mono_ns() + s->backoff_ns;
}

/* No HTTP answer, or a 5xx: Consul is down or in trouble. */
static void note_transport(struct consul_sync *s, const char *text)
{
    set_error(s, text);
    if (s->pass_running) {
        s->pass_failed = s->pass_transport = true;
        return;
    }
    /* outside a pass (a push, a flush): the next pass finds out what
     * Consul lacks, after the backoff a failed pass would have waited */
    s->reachable = 0;
    if (s->failures && nc_now_mono_ns() < s->backoff_until_ns)
        return;
    backoff_more(s);
    log_failure(s, text);
    s->pass_wanted = true;
    consul_schedule_pass_at(s, s->backoff_until_ns, true);
}

static bool reg_check_missing(const struct curl_uv_response *resp)
{
    return resp->status == 404 ||
           (resp->status == 500 && resp->body &&
            strstr(resp->body, "does not have associated TTL"));
}

static void got_register(struct consul_sync *s, struct op *op,
                         const struct curl_uv_response *resp)
{
    struct cs_reg *r = consul_reg_find(s, op->id);
    if (!r) /* gone meanwhile: a later pass removes it if Consul has it */
        return;
    r->queued = false;
    enum outcome o = consul_classify(resp);
    char text[600];
    consul_outcome_text(resp, text, sizeof(text));
    bool same_rejection = r->state == REG_REJECTED &&
                          r->last.status == resp->status && r->last.body &&
                          resp->body &&
                          strncmp(r->last.body, resp->body, 300) == 0;
    consul_answer_set(&r->last, "PUT", op->path, resp);
    uint64_t now = nc_now_mono_ns();
    if (op->gen != r->gen) { /* the payload changed in flight */
        s->pass_wanted = true;
        return;
    }
    switch (o) {
    case OUT_OK: {
        s->n_registrations++;
        if (r->failures)
            LOG_INFO("consul",
                     "registered service %s (%s) after %u failed "
                     "attempt(s)",
                     r->name, r->id, r->failures);
        else
            LOG_DEBUG("consul", "registered service %s (%s)", r->name, r->id);
        r->in_consul = true;
        r->state = REG_IN_SYNC;
        r->failures = 0;
        r->next_retry_ns = 0;
        strlist_free(&r->repaired);
        r->repaired = r->diffs;
        memset(&r->diffs, 0, sizeof(r->diffs));
        /* Consul took each check's status from the body, with no output */
        json_t *checks = json_object_get(op->sent, "Checks");
        for (size_t i = 0; i < r->nchecks; i++) {
            struct cs_check *c = &r->checks[i];
            const char *st = json_string_value(
                json_object_get(json_array_get(checks, i), "Status"));
            consul_set_str(&c->consul_status, st ? st : "critical");
            consul_set_str(&c->consul_output, "");
            c->last_write_ns = op->sent_ns;
            c->failures = 0;
            c->retry_after_ns = 0;
        }
        break;
    }
    case OUT_NOT_FOUND:
    case OUT_REJECTED:
        s->n_errors++;
        r->failures++;
        r->next_retry_ns =
            now + consul_backoff_ns(r->failures, s->tune.backoff_base_ns,
                                    s->tune.backoff_cap_ns, random01());
        if (!same_rejection)
            LOG_WARN("consul", "Consul rejected service %s (%s): %s", r->name,
                     r->id, text);
        r->state = REG_REJECTED;
        break;
    case OUT_SERVER:
    case OUT_TRANSPORT:
        s->n_errors++;
        r->failures++;
        r->state = REG_UNREACHABLE;
        note_transport(s, text);
        break;
    }
}

static void got_deregister(struct consul_sync *s, struct op *op,
                           const struct curl_uv_response *resp)
{
    enum outcome o = consul_classify(resp);
    struct cs_stale *st = stale_find(s, op->id);
    if (o == OUT_OK || o == OUT_NOT_FOUND) {
        if (o == OUT_OK)
            s->n_deregistrations++;
        if (st)
            LOG_INFO("consul", "deregistered stale service %s (%s): %s",
                     st->name ? st->name : "", st->id, st->reason);
        else
            LOG_DEBUG("consul", "deregistered %s", op->id);
        stale_remove(s, op->id);
        consul_departed_remove(s, op->id);
        consul_view_forget(s->view, op->id); /* a flush asks no more */
        return;
    }
    char text[600];
    consul_outcome_text(resp, text, sizeof(text));
    s->n_errors++;
    if (st) {
        bool same = st->last.status == resp->status;
        consul_answer_set(&st->last, "PUT", op->path, resp);
        if (!same && o == OUT_REJECTED)
            LOG_WARN("consul", "cannot deregister %s: %s", op->id, text);
    } else if (o == OUT_REJECTED) {
        LOG_WARN("consul", "cannot deregister %s: %s", op->id, text);
    }
    if (o == OUT_SERVER || o == OUT_TRANSPORT)
        note_transport(s, text);
}

static void maybe_push(struct consul_sync *s, struct cs_reg *r,
                       struct cs_check *c, uint64_t now, bool in_pass);

static void got_check_update(struct consul_sync *s, struct op *op,
                             const struct curl_uv_response *resp)
{
    struct cs_reg *r = consul_reg_find(s, op->service_id);
    struct cs_check *c = consul_check_find(r, op->id);
    if (!c)
        return;
    c->queued = false;
    consul_answer_set(&c->last, "PUT", op->path, resp);
    enum outcome o = consul_classify(resp);
    uint64_t now = nc_now_mono_ns();
    if (o == OUT_OK) {
        if (!nc_streq(c->consul_status, op->status))
            LOG_DEBUG("consul", "check %s of %s is now %s in Consul", c->id,
                      r->id, op->status);
        s->n_check_updates++;
        c->updates++;
        consul_set_str(&c->consul_status, op->status);
        consul_set_str(&c->consul_output, op->output);
        c->last_write_ns = op->sent_ns;
        c->failures = 0;
        c->retry_after_ns = 0;
        maybe_push(s, r, c, now, false); /* changed again in flight */
        return;
    }
    s->n_errors++;
    c->failures++;
    c->retry_after_ns =
        now + consul_backoff_ns(c->failures, s->tune.backoff_base_ns,
                                s->tune.backoff_cap_ns, random01());
    char text[600];
    consul_outcome_text(resp, text, sizeof(text));
    if (reg_check_missing(resp)) {
        /* Consul lost it (restarted without its state?): register again */
        if (r->state == REG_IN_SYNC)
            LOG_INFO("consul",
                     "Consul lost check %s of %s (%s); registering "
                     "again",
                     c->id, r->id, text);
        r->state = REG_MISSING;
        s->pass_wanted = true;
        consul_schedule_pass_at(s, now + s->tune.coalesce_ns, false);
    } else if (o == OUT_REJECTED) {
        if (c->failures == 1)
            LOG_WARN("consul",
                     "Consul rejected the status of check %s of "
                     "%s: %s",
                     c->id, r->id, text);
    } else {
        note_transport(s, text);
    }
}

static void got_get(struct consul_sync *s, struct op *op,
                    const struct curl_uv_response *resp)
{
    enum outcome o = consul_classify(resp);
    if (o != OUT_OK) {
        char text[700], full[800];
        consul_outcome_text(resp, text, sizeof(text));
        snprintf(full, sizeof(full), "GET %s: %s", op->path, text);
        s->n_errors++;
        s->pass_failed = true;
        s->pass_get_status = resp->status;
        if (o == OUT_SERVER || o == OUT_TRANSPORT)
            note_transport(s, full); /* in a pass: marks it */
        else
            set_error(s, full);
        return;
    }
    char **dst =
        op->kind == OP_GET_SERVICES ? &s->got_services : &s->got_checks;
    size_t *len =
        op->kind == OP_GET_SERVICES ? &s->got_services_len : &s->got_checks_len;
    free(*dst);
    *dst = xmalloc(resp->body_len + 1);
    if (resp->body_len)
        memcpy(*dst, resp->body, resp->body_len);
    (*dst)[resp->body_len] = '\0';
    *len = resp->body_len;
}

void consul_on_answer(void *arg, const struct curl_uv_response *resp)
{
    struct op *op = arg;
    struct consul_sync *s = op->s;
    consul_list_unlink(&s->inflight, op);
    op->xfer = NULL;
    if (consul_classify(resp) != OUT_TRANSPORT)
        s->reachable = 1;
    switch (op->kind) {
    case OP_GET_SERVICES:
    case OP_GET_CHECKS:
        got_get(s, op, resp);
        break;
    case OP_REGISTER:
        got_register(s, op, resp);
        break;
    case OP_DEREGISTER:
        got_deregister(s, op, resp);
        break;
    case OP_CHECK_UPDATE:
        got_check_update(s, op, resp);
        break;
    }
    consul_op_finish(s, op);
    consul_pump(s);
}

/* ---- check status: changes and keep-alives ---- */

/* Whether check c of r should go to Consul now: a status Consul does not
 * have, a first output after a registration, or its keep-alive due. */
static bool push_needed(const struct cs_reg *r, const struct cs_check *c,
                        uint64_t now)
{
    if (!r->in_consul || r->state != REG_IN_SYNC || r->queued || c->queued ||
        c->retry_after_ns > now)
        return false;
    if (!c->consul_status || strcmp(c->consul_status, c->status) != 0)
        return true;
    if (c->consul_output && !*c->consul_output && *c->output)
        return true;
    return consul_keepalive_due_ns(c->last_write_ns, c->ttl_ns) <=
           now + KEEPALIVE_SLACK_NS;
}

static void maybe_push(struct consul_sync *s, struct cs_reg *r,
                       struct cs_check *c, uint64_t now, bool in_pass)
{
    if (!push_needed(r, c, now))
        return;
    struct op *op = consul_op_new(s, OP_CHECK_UPDATE, c->id, in_pass);
    op->service_id = xstrdup(r->id);
    c->queued = true;
    consul_enqueue(s, op, false);
}

/* Queues every check update due. Outside a pass and while Consul is known
 * down, nothing: the pass after the backoff does it. */
void consul_collect_pushes(struct consul_sync *s, bool in_pass)
{
    if (!in_pass && s->failures)
        return;
    uint64_t now = nc_now_mono_ns();
    for (size_t i = 0; i < s->nregs; i++)
        for (size_t k = 0; k < s->regs[i].nchecks; k++)
            maybe_push(s, &s->regs[i], &s->regs[i].checks[k], now, in_pass);
}

static void on_keepalive_timer(uv_timer_t *t)
{
    struct consul_sync *s = t->data;
    consul_collect_pushes(s, false);
    consul_pump(s);
    if (!s->queue.head && !s->inflight.n)
        consul_arm_keepalive(s);
}

/* One timer at the earliest keep-alive due; re-armed when the queue is
 * empty. Stopped while Consul is down (the next pass re-arms it). */
void consul_arm_keepalive(struct consul_sync *s)
{
    if (s->closing)
        return;
    uv_timer_stop(&s->keepalive_timer);
    if (s->failures)
        return;
    uint64_t now = nc_now_mono_ns(), min = UINT64_MAX;
    for (size_t i = 0; i < s->nregs; i++) {
        const struct cs_reg *r = &s->regs[i];
        if (!r->in_consul || r->state != REG_IN_SYNC || r->queued)
            continue;
        for (size_t k = 0; k < r->nchecks; k++) {
            const struct cs_check *c = &r->checks[k];
            if (c->queued)
                continue;
            uint64_t due = consul_keepalive_due_ns(c->last_write_ns, c->ttl_ns);
            if (due > KEEPALIVE_SLACK_NS)
                due -= KEEPALIVE_SLACK_NS;
            if (c->retry_after_ns > due)
                due = c->retry_after_ns;
            if (due < min)
                min = due;
        }
    }
    if (min == UINT64_MAX)
        return;
    uint64_t wait_ms = min > now ? (min - now) / MS + 1 : 1;
    uv_timer_start(&s->keepalive_timer, on_keepalive_timer, wait_ms, 0);
}

/* ---- passes ---- */

static void pass_start(struct consul_sync *s);

static void on_pass_timer(uv_timer_t *t)
{
    struct consul_sync *s = t->data;
    if (s->pass_running)
        s->pass_wanted = true; /* pass_end schedules the next */
    else
        pass_start(s);
}

/* Arms the pass timer for `due` (monotonic); unless forced, only earlier
 * than what it waits for already. */
void consul_schedule_pass_at(struct consul_sync *s, uint64_t due, bool force)
{
    if (s->closing)
        return;
    if (!force && uv_is_active((uv_handle_t *)&s->pass_timer) &&
        due >= s->pass_due_ns)
        return;
    uint64_t now = nc_now_mono_ns();
    s->pass_due_ns = due;
    uv_timer_start(&s->pass_timer, on_pass_timer,
                   due > now ? (due - now + MS - 1) / MS : 0, 0);
}

/* The desired registrations changed: a pass soon, never before the
 * backoff of a failure ends. */
void consul_request_pass(struct consul_sync *s)
{
    s->pass_wanted = true;
    if (s->pass_running)
        return;
    uint64_t due = nc_now_mono_ns() + s->tune.coalesce_ns;
    if (s->failures && due < s->backoff_until_ns)
        due = s->backoff_until_ns;
    consul_schedule_pass_at(s, due, false);
}

static void pass_start(struct consul_sync *s)
{
    if (s->pass_running || s->closing)
        return;
    s->pass_running = true;
    s->pass_diffed = s->pass_failed = s->pass_transport = false;
    s->pass_get_status = 0;
    s->pass_writes = 0;
    s->pass_start_ns = nc_now_mono_ns();
    free(s->got_services);
    free(s->got_checks);
    s->got_services = s->got_checks = NULL;
    /* at the front: a long queue of check updates does not delay it */
    consul_enqueue(s, consul_op_new(s, OP_GET_CHECKS, NULL, true), true);
    consul_enqueue(s, consul_op_new(s, OP_GET_SERVICES, NULL, true), true);
    consul_pump(s);
}

static bool wanted_here(void *arg, const char *id)
{
    return consul_reg_find(arg, id) != NULL;
}

/* The allocation ID inside a Nomad task service ID, if it has one. */
static bool id_alloc(const char *id, char out[37])
{
    if (!consul_is_nomad_task_id(id))
        return false;
    const char *p = id + strlen(NOMAD_TASK_PREFIX);
    if (strlen(p) < 36 || (p[36] && p[36] != '-'))
        return false;
    memcpy(out, p, 36);
    out[36] = '\0';
    return true;
}

static char *stale_reason(struct consul_sync *s, const char *id)
{
    char alloc[37];
    for (size_t i = 0; i < s->ndeparted; i++)
        if (strcmp(s->departed[i].id, id) == 0)
            return xstrdup("its allocation or task stopped on this node");
    if (id_alloc(id, alloc))
        return xasprintf("no running allocation of this node is %.8s: left "
                         "by an earlier run of the agent or another agent",
                         alloc);
    return xstrdup("no allocation of this node registers this ID");
}

static void pass_find_stale(struct consul_sync *s)
{
    struct strlist ids = {0};
    consul_view_stale(s->view, wanted_here, s, &ids);
    /* keep the answers of entries still stale; forget the others */
    for (size_t i = 0; i < s->nstale;) {
        if (strlist_contains(&ids, s->stale[i].id)) {
            i++;
            continue;
        }
        stale_remove(s, s->stale[i].id);
    }
    for (size_t i = 0; i < ids.n; i++) {
        const char *id = ids.items[i];
        struct cs_stale *st = stale_find(s, id);
        if (!st) {
            s->stale = xrealloc(s->stale, (s->nstale + 1) * sizeof(*s->stale));
            st = &s->stale[s->nstale++];
            memset(st, 0, sizeof(*st));
            st->id = xstrdup(id);
            st->reason = stale_reason(s, id);
        }
        const char *name = "", *address = "";
        long long port = 0;
        consul_view_service(s->view, id, &name, &address, &port);
        consul_set_str(&st->name, name);
        consul_set_str(&st->address, address);
        st->port = (json_int_t)port;
        consul_enqueue(s, consul_op_new(s, OP_DEREGISTER, id, true), false);
        s->pass_writes++;
    }
    strlist_free(&ids);
    /* departed entries Consul no longer has need nothing more */
    for (size_t i = 0; i < s->ndeparted;) {
        if (consul_view_service(s->view, s->departed[i].id, NULL, NULL, NULL))
            i++;
        else
            consul_departed_remove_at(s, i);
    }
}

/* Both GETs answered: compares and queues what Consul needs. */
static void pass_diff(struct consul_sync *s)
{
    s->pass_diffed = true;
    if (s->pass_failed)
        return;
    uint64_t t0 = nc_now_mono_ns();
    struct consul_view *v;
    struct nc_error err = {0};
    int rc = consul_view_parse_owned(&v, s->got_services, s->got_services_len,
                                     s->got_checks, s->got_checks_len, &err);
    s->got_services = s->got_checks = NULL; /* the view's, or freed */
    if (rc < 0) {
        s->pass_failed = true;
        s->n_errors++;
        set_error(s, err.msg);
        return;
    }
    s->last_read_bytes = s->got_services_len + s->got_checks_len;
    consul_view_free(s->view);
    s->view = v;
    s->pass_wanted = false;
    uint64_t now = nc_now_mono_ns();
    for (size_t i = 0; i < s->nregs; i++) {
        struct cs_reg *r = &s->regs[i];
        strlist_free(&r->diffs);
        if (r->error) {
            r->state = REG_REJECTED;
            continue;
        }
        enum consul_diff_state st = consul_diff_want(&r->want, v, &r->diffs);
        r->in_consul = st != CONSUL_MISSING;
        bool hashed = r->want.nchecks == r->nchecks;
        for (size_t k = 0; k < r->nchecks; k++) {
            struct cs_check *c = &r->checks[k];
            /* the hash the diff computed once for this check */
            long ci = hashed ? consul_index_find_hashed(
                                   v->chk_index, v->chk_mask, c->id,
                                   r->want.checks[k].hash, consul_chk_id_at, v)
                             : consul_index_find(v->chk_index, v->chk_mask,
                                                 c->id, consul_chk_id_at, v);
            const char *cs = ci >= 0 ? v->chks[ci].status : NULL;
            const char *out =
                ci >= 0 && v->chks[ci].output ? v->chks[ci].output : "";
            if (cs) {
                consul_set_str(&c->consul_status, cs);
                consul_set_str(&c->consul_output, out);
            } else {
                free(c->consul_status);
                free(c->consul_output);
                c->consul_status = c->consul_output = NULL;
            }
        }
        if (st == CONSUL_IN_SYNC) {
            r->state = REG_IN_SYNC;
            continue;
        }
        /* a rejected payload waits for its own backoff */
        if (r->state == REG_REJECTED && r->next_retry_ns > now)
            continue;
        r->state = st == CONSUL_MISSING ? REG_MISSING : REG_DIFFERENT;
        if (!r->queued) {
            r->queued = true;
            consul_enqueue(s, consul_op_new(s, OP_REGISTER, r->id, true),
                           false);
            s->pass_writes++;
        }
    }
    pass_find_stale(s);
    size_t before = s->queue.n;
    consul_collect_pushes(s, true);
    s->pass_writes += s->queue.n - before;
    s->last_diff_ns = nc_now_mono_ns() - t0;
}

static void pass_end(struct consul_sync *s)
{
    s->pass_running = false;
    uint64_t now = nc_now_mono_ns();
    s->last_pass_ns = now - s->pass_start_ns;
    s->last_pass_writes = s->pass_writes;
    bool ok = !s->pass_failed;
    if (ok) {
        if (s->failures)
            LOG_INFO("consul", "%s: in sync again after %u failed attempt(s)",
                     s->display, s->failures);
        s->failures = 0;
        s->backoff_ns = s->backoff_until_ns = 0;
        s->last_error[0] = '\0'; /* LastErrorTime keeps when it was */
        s->n_passes++;
        s->last_sync_unix_ns = nc_now_unix_ns();
        uint64_t next = now + s->tune.periodic_ns;
        for (size_t i = 0; i < s->nregs; i++)
            if (s->regs[i].state == REG_REJECTED && s->regs[i].next_retry_ns &&
                s->regs[i].next_retry_ns < next)
                next = s->regs[i].next_retry_ns;
        if (s->pass_wanted && now + s->tune.coalesce_ns < next)
            next = now + s->tune.coalesce_ns;
        consul_schedule_pass_at(s, next, true);
        consul_collect_pushes(s, false); /* changes that came during the pass */
        consul_pump(s);
    } else {
        backoff_more(s);
        if (s->pass_transport)
            s->reachable = 0;
        log_failure(s, s->last_error);
        /* every registration waits for Consul: unreachable, or refused
         * (a 403 on the listings); after an unreadable answer each keeps
         * what it had */
        for (size_t i = 0; i < s->nregs; i++) {
            struct cs_reg *r = &s->regs[i];
            if (r->error || r->state == REG_REJECTED)
                continue;
            if (s->pass_transport)
                r->state = REG_UNREACHABLE;
            else if (s->pass_get_status >= 400)
                r->state = REG_REJECTED;
        }
        consul_schedule_pass_at(s, s->backoff_until_ns, true);
    }
    free(s->got_services);
    free(s->got_checks);
    s->got_services = s->got_checks = NULL;
    consul_arm_keepalive(s);
    if (s->tune.on_pass)
        s->tune.on_pass(s->tune.arg, ok);
}

void consul_pass_op_done(struct consul_sync *s)
{
    if (--s->pass_pending)
        return;
    if (!s->pass_diffed) {
        pass_diff(s);
        consul_pump(s);
        if (s->pass_pending)
            return;
    }
    pass_end(s);
}
