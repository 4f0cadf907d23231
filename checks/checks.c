/* checks.c - the engine: check table, definitions and their validation,
 * the schedule and probe deadline of each check, results, thresholds,
 * check_restart, callbacks and the JSON view. Probe kinds live in
 * probe_tcp.c, probe_http.c, probe_https.c, probe_grpc.c and
 * probe_script.c. */
#include "checks/checks_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NS_PER_MS 1000000ULL

/* ---- validation ---- */

static bool is_token_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_token(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!is_token_char((unsigned char)s[n]))
            return false;
    return n > 0 && n <= max;
}

/* Parses an IPv4 or IPv6 literal (brackets allowed) into addr. */
static int parse_address(const char *s, int port, struct chk *c)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        s = buf;
    }
    struct chk tmp;
    if (!c)
        c = &tmp;
    memset(&c->addr, 0, sizeof(c->addr));
    if (inet_pton(AF_INET, s, &c->addr.in4.sin_addr) == 1) {
        c->addr.in4.sin_family = AF_INET;
        c->addr.in4.sin_port = htons((uint16_t)port);
        c->addrlen = sizeof(c->addr.in4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, &c->addr.in6.sin6_addr) == 1) {
        c->addr.in6.sin6_family = AF_INET6;
        c->addr.in6.sin6_port = htons((uint16_t)port);
        c->addrlen = sizeof(c->addr.in6);
        return 0;
    }
    return -EINVAL;
}

static int validate_duration(const char *field, int64_t ns, int64_t min,
                             struct nc_error *err)
{
    char got[32], want[32];
    nc_format_duration(ns, got, sizeof(got));
    nc_format_duration(min, want, sizeof(want));
    if (ns == 0)
        return nc_error_set(err, -EINVAL,
                            "%s: missing required value %s (minimum check "
                            "%s is %s)",
                            field, field, field, want);
    if (ns < min)
        return nc_error_set(err, -EINVAL, "%s: minimum check %s is %s (got %s)",
                            field, field, want, got);
    return 0;
}

static int validate_http(const struct chk_def *d, struct nc_error *err)
{
    if (d->protocol != CHK_PROTO_HTTP && d->protocol != CHK_PROTO_HTTPS)
        return nc_error_set(err, -EINVAL, "protocol: must be http or https");
    if (d->method && !is_token(d->method, 32))
        return nc_error_set(err, -EINVAL, "method: invalid HTTP method \"%s\"",
                            d->method);
    if (!d->path || !*d->path)
        return nc_error_set(err, -EINVAL,
                            "path: http type must have http check path");
    if (d->path[0] != '/')
        return nc_error_set(err, -EINVAL, "path: \"%s\" must start with \"/\"",
                            d->path);
    for (const unsigned char *p = (const unsigned char *)d->path; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return nc_error_set(err, -EINVAL,
                                "path: invalid character 0x%02x in \"%s\"", *p,
                                d->path);
    if (d->nheaders && !d->headers)
        return nc_error_set(err, -EINVAL, "header: list is NULL");
    for (size_t i = 0; i < d->nheaders; i++) {
        const struct chk_header *h = &d->headers[i];
        if (!h->name || !is_token(h->name, 256))
            return nc_error_set(err, -EINVAL,
                                "header \"%s\": invalid header name",
                                h->name ? h->name : "");
        if (h->value && strpbrk(h->value, "\r\n"))
            return nc_error_set(
                err, -EINVAL, "header \"%s\": value must not contain CR or LF",
                h->name);
    }
    return 0;
}

int chk_validate(const struct chk_def *d, struct nc_error *err)
{
    int r;
    if (!d)
        return nc_error_set(err, -EINVAL, "check: no definition");
    if (!d->id || !*d->id)
        return nc_error_set(err, -EINVAL, "id: must not be empty");
    if (strlen(d->id) > 512)
        return nc_error_set(err, -EINVAL, "id: longer than 512 bytes");
    if (d->type != CHK_TYPE_HTTP && d->type != CHK_TYPE_TCP &&
        d->type != CHK_TYPE_GRPC && d->type != CHK_TYPE_SCRIPT)
        return nc_error_set(err, -EINVAL,
                            "type: must be http, tcp, grpc or script");
    if (d->type == CHK_TYPE_SCRIPT) {
        if (!d->command || !*d->command)
            return nc_error_set(err, -EINVAL,
                                "command: script type must have a command");
        if (d->nargs && !d->args)
            return nc_error_set(err, -EINVAL, "args: list is NULL");
        for (size_t i = 0; i < d->nargs; i++)
            if (!d->args[i])
                return nc_error_set(err, -EINVAL, "args[%zu]: NULL", i);
    } else if (!d->address || !*d->address)
        return nc_error_set(err, -EINVAL, "address: required");
    if (d->type != CHK_TYPE_SCRIPT && (d->port < 1 || d->port > 65535))
        return nc_error_set(err, -EINVAL, "port: %d is out of range 1-65535",
                            d->port);
    if (d->type != CHK_TYPE_SCRIPT &&
        parse_address(d->address, d->port, NULL) < 0)
        return nc_error_set(err, -EINVAL,
                            "address: \"%s\" is not an IPv4 or IPv6 literal "
                            "(hostnames are not resolved)",
                            d->address);
    if (d->type == CHK_TYPE_HTTP && (r = validate_http(d, err)) < 0)
        return r;
    if (d->type == CHK_TYPE_GRPC && d->grpc_service &&
        strlen(d->grpc_service) > 4096)
        return nc_error_set(err, -EINVAL,
                            "grpc_service: longer than 4096 bytes");
    if ((r = validate_duration("interval", d->interval_ns, CHK_MIN_INTERVAL_NS,
                               err)) < 0 ||
        (r = validate_duration("timeout", d->timeout_ns, CHK_MIN_TIMEOUT_NS,
                               err)) < 0)
        return r;
    const struct {
        const char *name;
        int value;
    } counts[] = {
        {"success_before_passing", d->success_before_passing},
        {"failures_before_critical", d->failures_before_critical},
        {"failures_before_warning", d->failures_before_warning},
        {"check_restart.limit", d->check_restart.limit},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(counts); i++)
        if (counts[i].value < 0)
            return nc_error_set(err, -EINVAL,
                                "%s: must be greater than or equal to 0 but "
                                "found %d",
                                counts[i].name, counts[i].value);
    if (d->check_restart.grace_ns < 0)
        return nc_error_set(err, -EINVAL,
                            "check_restart.grace: must be greater than or "
                            "equal to 0");
    if (d->initial_status != CHK_PASSING && d->initial_status != CHK_WARNING &&
        d->initial_status != CHK_CRITICAL)
        return nc_error_set(err, -EINVAL,
                            "initial_status: must be passing, warning or "
                            "critical");
    const char *ou = d->on_update;
    if (ou && *ou && strcmp(ou, "require_healthy") != 0 &&
        strcmp(ou, "ignore_warnings") != 0 && strcmp(ou, "ignore") != 0)
        return nc_error_set(err, -EINVAL,
                            "on_update: must be \"require_healthy\", "
                            "\"ignore_warnings\" or \"ignore\" (got \"%s\")",
                            ou);
    if (ou && d->check_restart.limit > 0) {
        if (strcmp(ou, "ignore") == 0)
            return nc_error_set(err, -EINVAL,
                                "on_update: \"ignore\" is not supported with "
                                "check_restart");
        if (strcmp(ou, "ignore_warnings") == 0 &&
            !d->check_restart.ignore_warnings)
            return nc_error_set(err, -EINVAL,
                                "on_update: \"ignore_warnings\" requires "
                                "check_restart.ignore_warnings = true");
    }
    return 0;
}

/* ---- definitions ---- */

/* A definition's strings and headers live in one allocation (the header
 * array first, then the strings): a check costs one malloc for all of it,
 * and def_free is one free. */
static void def_free(struct chk_def *d)
{
    free(d->nheaders ? (void *)d->headers
         : d->nargs  ? (void *)d->args
                     : (void *)d->id);
    memset(d, 0, sizeof(*d));
}

struct arena {
    char *p;
};

static const char *arena_put(struct arena *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *dst = a->p;
    memcpy(dst, s, n);
    a->p += n;
    return dst;
}

static void def_copy(struct chk_def *dst, const struct chk_def *src)
{
    *dst = *src;
    const char *method = src->method && *src->method ? src->method : "GET";
    const char *path = src->path ? src->path : "/";
    const char *body = src->body && *src->body ? src->body : NULL;
    const char *ou =
        src->on_update && *src->on_update ? src->on_update : "require_healthy";
    const char *strs[] = {src->id,   src->name, src->address,      method,
                          path,      body,      ou,                src->command,
                          src->grpc_service};
    size_t size = src->nheaders * sizeof(struct chk_header) +
                  src->nargs * sizeof(char *);
    for (size_t i = 0; i < src->nargs; i++)
        size += strlen(src->args[i]) + 1;
    for (size_t i = 0; i < NC_ARRAY_LEN(strs); i++)
        size += strs[i] ? strlen(strs[i]) + 1 : 0;
    for (size_t i = 0; i < src->nheaders; i++) {
        const char *v = src->headers[i].value;
        size += strlen(src->headers[i].name) + 1 + (v ? strlen(v) : 0) + 1;
    }
    char *mem = xmalloc(size);
    struct chk_header *h = (struct chk_header *)mem;
    const char **args = (const char **)(mem + src->nheaders * sizeof(*h));
    struct arena a = {mem + src->nheaders * sizeof(*h) +
                      src->nargs * sizeof(char *)};
    /* id first: without headers, def_free frees the block through it */
    dst->id = arena_put(&a, src->id);
    dst->name = arena_put(&a, src->name);
    dst->address = arena_put(&a, src->address);
    dst->method = arena_put(&a, method);
    dst->path = arena_put(&a, path);
    dst->body = arena_put(&a, body);
    dst->on_update = arena_put(&a, ou);
    dst->command = arena_put(&a, src->command);
    dst->grpc_service = arena_put(&a, src->grpc_service);
    for (size_t i = 0; i < src->nargs; i++)
        args[i] = arena_put(&a, src->args[i]);
    dst->args = src->nargs ? args : NULL;
    for (size_t i = 0; i < src->nheaders; i++) {
        const char *v = src->headers[i].value;
        h[i].name = arena_put(&a, src->headers[i].name);
        h[i].value = arena_put(&a, v ? v : "");
    }
    dst->headers = src->nheaders ? h : NULL;
}

static const struct chk_probe_ops *ops_for(const struct chk_def *d)
{
    if (d->type == CHK_TYPE_TCP)
        return &chk_tcp_ops;
    if (d->type == CHK_TYPE_GRPC)
        return &chk_grpc_ops;
    if (d->type == CHK_TYPE_SCRIPT)
        return &chk_script_ops;
    return d->protocol == CHK_PROTO_HTTPS ? &chk_https_ops : &chk_http_ops;
}

/* Derived per-definition state: address, target, URL, request bytes. */
static void derive(struct chk *c)
{
    const struct chk_def *d = &c->def;
    free(c->target);
    free(c->url);
    free(c->prefix);
    free(c->request);
    c->url = c->request = c->prefix = NULL;
    c->request_len = 0;
    char ip[INET6_ADDRSTRLEN];
    if (d->type == CHK_TYPE_SCRIPT) {
        memset(&c->addr, 0, sizeof(c->addr));
        c->addrlen = 0;
        c->target = xstrdup(d->command);
    } else if (parse_address(d->address, d->port, c) == 0 &&
               c->addr.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &c->addr.in6.sin6_addr, ip, sizeof(ip));
        c->target = xasprintf("[%s]:%d", ip, d->port);
    } else {
        inet_ntop(AF_INET, &c->addr.in4.sin_addr, ip, sizeof(ip));
        c->target = xasprintf("%s:%d", ip, d->port);
    }
    c->ops = ops_for(d);
    if (d->type == CHK_TYPE_HTTP) {
        c->url = xasprintf("%s://%s%s",
                           d->protocol == CHK_PROTO_HTTPS ? "https" : "http",
                           c->target, d->path);
        if (d->protocol == CHK_PROTO_HTTP)
            chk_http_build_request(c);
        c->prefix = xasprintf("HTTP %s %s: ", d->method, c->url);
    } else if (d->type == CHK_TYPE_GRPC && d->grpc_service &&
               *d->grpc_service) {
        /* Consul's target, host:port/service */
        c->url = xasprintf("%s/%s", c->target, d->grpc_service);
        c->prefix = xstrdup("");
    } else {
        c->prefix = xstrdup("");
    }
    c->interval_ms = (uint64_t)d->interval_ns / NS_PER_MS;
    c->timeout_ms = (uint64_t)d->timeout_ns / NS_PER_MS;
}

/* ---- table ---- */

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void table_grow(struct chk_engine *e)
{
    size_t nb = e->nbuckets ? e->nbuckets * 2 : 64;
    struct chk **b = xcalloc(nb, sizeof(*b));
    for (struct chk *c = e->head; c; c = c->next) {
        size_t i = c->hash & (nb - 1);
        c->hnext = b[i];
        b[i] = c;
    }
    free(e->buckets);
    e->buckets = b;
    e->nbuckets = nb;
}

struct chk *chk_find(struct chk_engine *e, const char *id)
{
    if (!e || !id || !e->nbuckets)
        return NULL;
    uint32_t h = hash_id(id);
    for (struct chk *c = e->buckets[h & (e->nbuckets - 1)]; c; c = c->hnext)
        if (c->hash == h && strcmp(c->def.id, id) == 0)
            return c;
    return NULL;
}

static void table_insert(struct chk_engine *e, struct chk *c)
{
    c->prev = e->tail;
    if (e->tail)
        e->tail->next = c;
    else
        e->head = c;
    e->tail = c;
    e->n++;
    if (e->n > e->nbuckets) {
        table_grow(e); /* rehashes the list, c included */
        return;
    }
    size_t i = c->hash & (e->nbuckets - 1);
    c->hnext = e->buckets[i];
    e->buckets[i] = c;
}

static void table_unlink(struct chk_engine *e, struct chk *c)
{
    struct chk **pp = &e->buckets[c->hash & (e->nbuckets - 1)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    if (c->prev)
        c->prev->next = c->next;
    else
        e->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        e->tail = c->prev;
    c->next = c->prev = c->hnext = NULL;
    e->n--;
}

/* ---- engine life ---- */

static void engine_free(struct chk_engine *e)
{
    free(e->buckets);
    free(e);
}

void chk_engine_handle_closed(struct chk_engine *e)
{
    if (--e->open_handles == 0 && e->closing)
        engine_free(e);
}

int chk_engine_new(struct chk_engine **out, uv_loop_t *loop,
                   const struct chk_callbacks *callbacks, void *arg)
{
    if (!out || !loop)
        return -EINVAL;
    struct chk_engine *e = xcalloc(1, sizeof(*e));
    e->loop = loop;
    if (callbacks)
        e->cb = *callbacks;
    e->arg = arg;
    e->epfd = -1;
    int r = chk_net_open(e);
    if (r < 0) {
        engine_free(e);
        return r;
    }
    table_grow(e);
    chk_timers_init(e);
    *out = e;
    return 0;
}

void chk_check_free(struct chk *c)
{
    chk_net_release(c);
    if (c->ops && c->ops->release)
        c->ops->release(c);
    def_free(&c->def);
    free(c->target);
    free(c->url);
    free(c->prefix);
    free(c->request);
    nc_buf_free(&c->body);
    nc_buf_free(&c->location);
    nc_buf_free(&c->redirect);
    nc_buf_free(&c->output);
    free(c);
}

/* Stops a check for good; its memory goes on a later loop iteration, as
 * a callback up the stack may still hold it. */
static void check_retire(struct chk *c)
{
    if (c->running) {
        c->ops->abort(c);
        c->running = false;
    }
    c->removed = true;
    chk_timers_bury(c);
}

void chk_engine_close(struct chk_engine *e)
{
    if (!e || e->closing)
        return;
    e->closing = true;
    e->open_handles++; /* hold the engine while retiring */
    while (e->head) {
        struct chk *c = e->head;
        table_unlink(e, c);
        check_retire(c);
    }
    chk_curl_engine_close(e);
    chk_net_close(e);
    chk_timers_close(e);
    chk_engine_handle_closed(e);
}

/* ---- scheduling ---- */

static void arm(struct chk *c)
{
    if (c->removed || c->e->closing)
        return;
    uint64_t when = c->due_ms;
    if (c->running && c->deadline_ms < when)
        when = c->deadline_ms;
    chk_timer_arm(c, when);
}

static void probe_start(struct chk *c, uint64_t now_ms, uint64_t slot_ms)
{
    c->running = true;
    c->started_hr_ns = uv_hrtime();
    c->started_unix_ns = nc_now_unix_ns();
    c->lateness_ns = (int64_t)c->started_hr_ns - (int64_t)(slot_ms * NS_PER_MS);
    /* anchored to the schedule too: with timeout == interval a hung
     * target times out exactly when the next probe is due, never a few
     * milliseconds after it (which would skip every other probe) */
    c->deadline_ms = slot_ms + c->timeout_ms;
    if (c->deadline_ms <= now_ms) /* a late start still gets a moment */
        c->deadline_ms = now_ms + 1;
    c->body.len = 0;
    int r = c->ops->start(c);
    if (r < 0 && c->running) {
        chk_output_begin(c);
        chk_net_format_error(c, "connect", r, &c->output);
        chk_probe_finish(c, CHK_CRITICAL, 0, false);
    }
}

void chk_output_begin(struct chk *c)
{
    c->output.len = 0;
    nc_buf_puts(&c->output, c->prefix);
}

void chk_output_timeout(struct chk *c)
{
    char d[32];
    nc_format_duration(c->def.timeout_ns, d, sizeof(d));
    chk_output_begin(c);
    if (c->def.type == CHK_TYPE_TCP)
        nc_buf_printf(&c->output, "dial tcp %s: ", c->target);
    if (c->def.type == CHK_TYPE_SCRIPT) {
        /* Nomad's words for a script that outlived its timeout */
        nc_buf_puts(&c->output, "context deadline exceeded");
        return;
    }
    nc_buf_printf(&c->output, "timeout after %s", d);
}

void chk_check_due(struct chk *c)
{
    uint64_t now = uv_now(c->e->loop);
    if (c->running && now >= c->deadline_ms) {
        /* the probe kind may still conclude (an HTTP status was read) */
        if (c->ops->expire)
            c->ops->expire(c);
        else
            c->ops->abort(c);
        if (c->running) {
            chk_output_timeout(c);
            chk_probe_finish(c, CHK_CRITICAL, 0, true);
        }
        if (c->removed)
            return;
    }
    if (now >= c->due_ms) {
        uint64_t slot = c->due_ms;
        c->due_ms = chk_schedule_next(slot, c->interval_ms, now, NULL);
        if (c->running)
            c->counters.skipped++; /* never two probes of one check */
        else
            probe_start(c, now, slot);
        if (c->removed)
            return;
    }
    arm(c);
}

/* ---- results ---- */

void chk_probe_finish(struct chk *c, enum chk_status status, int http_code,
                      bool timed_out)
{
    struct chk_engine *e = c->e;
    if (!c->running)
        return;
    c->running = false;
    nc_buf_puts(&c->output, ""); /* NUL-terminated even when empty */
    struct chk_result *r = &c->last;
    r->status = status;
    r->output = c->output.data;
    r->http_code = http_code;
    r->timed_out = timed_out;
    r->time_unix_ns = c->started_unix_ns;
    r->latency_ns = (int64_t)(uv_hrtime() - c->started_hr_ns);
    r->lateness_ns = c->lateness_ns;
    c->has_last = true;

    struct chk_counters *k = &c->counters;
    k->probes++;
    if (status == CHK_PASSING)
        k->passing++;
    else if (status == CHK_WARNING)
        k->warning++;
    else
        k->critical++;
    if (timed_out)
        k->timeouts++;

    c->hist_head = (c->hist_head + CHK_HISTORY - 1) % CHK_HISTORY;
    c->hist[c->hist_head] = (struct chk_history_entry){
        .time_unix_ns = r->time_unix_ns,
        .latency_us = r->latency_ns / 1000 > UINT32_MAX
                          ? UINT32_MAX
                          : (uint32_t)(r->latency_ns / 1000),
        .http_code = (int16_t)http_code,
        .status = (uint8_t)status,
        .timed_out = timed_out,
    };
    if (c->hist_n < CHK_HISTORY)
        c->hist_n++;

    enum chk_status old = c->ts.status;
    struct chk_thresholds th = {
        .success_before_passing = c->def.success_before_passing,
        .failures_before_warning = c->def.failures_before_warning,
        .failures_before_critical = c->def.failures_before_critical,
    };
    enum chk_status now_status = chk_threshold_apply(&c->ts, &th, status);
    bool in_grace = uv_now(e->loop) < c->grace_until_ms;
    bool restart = chk_restart_apply(
        &c->restart_unhealthy, &c->def.check_restart, now_status, in_grace);
    if (restart)
        k->restarts++;
    arm(c);

    if (e->cb.on_result)
        e->cb.on_result(e->arg, c, r);
    if (c->removed)
        return;
    if (old != now_status) {
        LOG_INFO("checks", "check %s: %s -> %s: %s", c->def.id,
                 chk_status_name(old), chk_status_name(now_status),
                 c->output.data);
        if (e->cb.on_status_change)
            e->cb.on_status_change(e->arg, c, old, now_status);
        if (c->removed)
            return;
    }
    if (restart) {
        LOG_INFO("checks", "check %s: unhealthy %d times in a row: restart",
                 c->def.id, c->def.check_restart.limit);
        if (e->cb.on_restart)
            e->cb.on_restart(e->arg, c);
    }
}

void chk_probe_finishf(struct chk *c, enum chk_status status, int http_code,
                       bool timed_out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    c->output.len = 0;
    nc_buf_vprintf(&c->output, fmt, ap);
    va_end(ap);
    chk_probe_finish(c, status, http_code, timed_out);
}

/* ---- public calls ---- */

static uint64_t random_u64(void)
{
    uint64_t r;
    nc_random_bytes(&r, sizeof(r));
    return r;
}

static void schedule_fresh(struct chk *c)
{
    uint64_t now = uv_now(c->e->loop);
    c->due_ms = chk_schedule_first(now, c->interval_ms,
                                   (uint64_t)CHK_STAGGER_CAP_NS / NS_PER_MS,
                                   random_u64());
    arm(c);
}

int chk_add(struct chk_engine *e, const struct chk_def *def,
            struct nc_error *err)
{
    if (!e || e->closing)
        return nc_error_set(err, -EINVAL, "checks: engine is closed");
    int r = chk_validate(def, err);
    if (r < 0)
        return r;
    if (chk_find(e, def->id))
        return nc_error_set(err, -EEXIST, "id: check \"%s\" already exists",
                            def->id);
    struct chk *c = xcalloc(1, sizeof(*c));
    c->e = e;
    c->fd = -1;
    def_copy(&c->def, def);
    derive(c);
    c->hash = hash_id(c->def.id);
    c->ts.status = def->initial_status;
    c->grace_until_ms =
        uv_now(e->loop) + (uint64_t)def->check_restart.grace_ns / NS_PER_MS;
    table_insert(e, c);
    schedule_fresh(c);
    return 0;
}

int chk_update(struct chk_engine *e, const struct chk_def *def,
               struct nc_error *err)
{
    int r = chk_validate(def, err);
    if (r < 0)
        return r;
    struct chk *c = chk_find(e, def->id);
    if (!c)
        return nc_error_set(err, -ENOENT, "id: no check \"%s\"", def->id);
    /* the probe in flight uses the old request bytes and handles */
    if (c->running) {
        c->ops->abort(c);
        c->running = false;
    }
    if (c->ops->release)
        c->ops->release(c);
    chk_net_release(c); /* the address family may change */
    int64_t old_interval = c->def.interval_ns;
    def_free(&c->def);
    def_copy(&c->def, def);
    derive(c);
    if (old_interval != def->interval_ns)
        schedule_fresh(c);
    else
        arm(c);
    return 0;
}

int chk_remove(struct chk_engine *e, const char *id)
{
    struct chk *c = chk_find(e, id);
    if (!c)
        return -ENOENT;
    table_unlink(e, c);
    check_retire(c);
    return 0;
}

int chk_reset_grace(struct chk_engine *e, const char *id)
{
    struct chk *c = chk_find(e, id);
    if (!c)
        return -ENOENT;
    c->restart_unhealthy = 0;
    c->grace_until_ms =
        uv_now(e->loop) + (uint64_t)c->def.check_restart.grace_ns / NS_PER_MS;
    return 0;
}

const char *chk_id(const struct chk *c)
{
    return c->def.id;
}
void *chk_owner(const struct chk *c)
{
    return c->def.owner;
}
enum chk_status chk_get_status(const struct chk *c)
{
    return c->ts.status;
}
size_t chk_engine_count(const struct chk_engine *e)
{
    return e ? e->n : 0;
}

void chk_get_counters(const struct chk *c, struct chk_counters *out)
{
    *out = c->counters;
}

/* ---- JSON ---- */

static const char *type_name(enum chk_type t)
{
    switch (t) {
    case CHK_TYPE_TCP:
        return "tcp";
    case CHK_TYPE_GRPC:
        return "grpc";
    case CHK_TYPE_SCRIPT:
        return "script";
    default:
        return "http";
    }
}

static json_t *time_json(int64_t unix_ns)
{
    char buf[64];
    nc_format_time(unix_ns, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *history_json(const struct chk *c)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < c->hist_n; i++) {
        const struct chk_history_entry *h =
            &c->hist[(c->hist_head + i) % CHK_HISTORY];
        json_array_append_new(
            a, json_pack("{s:s, s:o, s:I, s:i, s:b}", "Status",
                         chk_status_name((enum chk_status)h->status),
                         "Timestamp", time_json(h->time_unix_ns), "Latency",
                         (json_int_t)h->latency_us * 1000, "Code",
                         (int)h->http_code, "TimedOut", h->timed_out));
    }
    return a;
}

json_t *chk_to_json(const struct chk *c)
{
    const struct chk_def *d = &c->def;
    const struct chk_counters *k = &c->counters;
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:i, s:i, s:s, s:s, s:b}",
        "ID", d->id, "Name", d->name ? d->name : d->id, "Type",
        type_name(d->type), "Target", c->url && d->type == CHK_TYPE_GRPC ? c->url : c->target, "Status",
        chk_status_name(c->ts.status), "Interval", (json_int_t)d->interval_ns,
        "Timeout", (json_int_t)d->timeout_ns, "SuccessBeforePassing",
        d->success_before_passing, "FailuresBeforeWarning",
        d->failures_before_warning ? d->failures_before_warning
                                   : d->failures_before_critical,
        "FailuresBeforeCritical", d->failures_before_critical, "InitialStatus",
        chk_status_name(d->initial_status), "OnUpdate", d->on_update, "Running",
        c->running);
    if (d->type == CHK_TYPE_HTTP) {
        json_object_set_new(
            j, "Protocol",
            json_string(d->protocol == CHK_PROTO_HTTPS ? "https" : "http"));
        json_object_set_new(j, "Method", json_string(d->method));
        json_object_set_new(j, "URL", json_string(c->url));
        json_object_set_new(j, "TLSSkipVerify",
                            json_boolean(d->tls_skip_verify));
    } else if (d->type == CHK_TYPE_GRPC) {
        json_object_set_new(j, "GRPCService",
                            json_string(d->grpc_service ? d->grpc_service
                                                        : ""));
        json_object_set_new(j, "GRPCUseTLS", json_boolean(d->grpc_use_tls));
        json_object_set_new(j, "TLSSkipVerify",
                            json_boolean(d->tls_skip_verify));
    } else if (d->type == CHK_TYPE_SCRIPT) {
        json_t *args = json_array();
        for (size_t i = 0; i < d->nargs; i++)
            json_array_append_new(args, json_string(d->args[i]));
        json_object_set_new(j, "Command", json_string(d->command));
        json_object_set_new(j, "Args", args);
    }
    const struct chk_result *r = &c->last;
    json_object_set_new(
        j, "Output",
        json_string(c->has_last && c->output.data ? c->output.data : ""));
    json_object_set_new(j, "Timestamp",
                        time_json(c->has_last ? r->time_unix_ns : 0));
    json_object_set_new(j, "Latency",
                        json_integer(c->has_last ? r->latency_ns : 0));
    if (c->has_last)
        json_object_set_new(j, "LastResult",
                            json_pack("{s:s, s:i, s:b, s:I}", "Status",
                                      chk_status_name(r->status), "Code",
                                      r->http_code, "TimedOut", r->timed_out,
                                      "Lateness", (json_int_t)r->lateness_ns));
    else
        json_object_set_new(j, "LastResult", json_null());
    json_object_set_new(j, "History", history_json(c));
    json_object_set_new(
        j, "Counters",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "Probes",
                  (json_int_t)k->probes, "Passing", (json_int_t)k->passing,
                  "Warning", (json_int_t)k->warning, "Critical",
                  (json_int_t)k->critical, "Timeouts", (json_int_t)k->timeouts,
                  "Skipped", (json_int_t)k->skipped, "Restarts",
                  (json_int_t)k->restarts));
    json_object_set_new(
        j, "CheckRestart",
        json_pack("{s:i, s:I, s:b, s:i}", "Limit", d->check_restart.limit,
                  "Grace", (json_int_t)d->check_restart.grace_ns,
                  "IgnoreWarnings", d->check_restart.ignore_warnings,
                  "Unhealthy", c->restart_unhealthy));
    return j;
}

json_t *chk_engine_to_json(const struct chk_engine *e)
{
    json_t *o = json_object();
    for (const struct chk *c = e ? e->head : NULL; c; c = c->next)
        json_object_set_new(o, c->def.id, chk_to_json(c));
    return o;
}
