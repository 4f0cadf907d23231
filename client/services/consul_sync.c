/* consul_sync.c - the sync loop's state: the address of Consul, the
 * registrations made from the desired state (carried across updates),
 * the deregistrations a stopping allocation waits for, open, close and
 * tuning. */
#include "client/services/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_PASS_WAIT_NS (10 * SEC) /* without an update after open */

/* ---- address ---- */

void consul_addr_free(struct consul_addr *a)
{
    free(a->base_url);
    free(a->unix_socket);
    memset(a, 0, sizeof(*a));
}

int consul_addr_parse(const char *address, bool ssl, struct consul_addr *out,
                      struct nc_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!address || !*address)
        return nc_error_set(err, -EINVAL, "consul address is empty");
    for (const char *p = address; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return nc_error_set(err, -EINVAL,
                                "consul address \"%s\" contains a space or a "
                                "control character",
                                address);
    if (nc_str_has_prefix(address, "unix://")) {
        const char *path = address + strlen("unix://");
        if (*path != '/')
            return nc_error_set(err, -EINVAL,
                                "consul address \"%s\": the socket path must "
                                "be absolute (unix:///path/to/consul.sock)",
                                address);
        out->unix_socket = xstrdup(path);
        out->https = ssl;
        out->base_url = xstrdup(ssl ? "https://localhost" : "http://localhost");
        return 0;
    }
    bool https = ssl; /* as Consul's client: never back to http if asked */
    const char *hp = address;
    if (nc_str_has_prefix(hp, "https://")) {
        https = true;
        hp += strlen("https://");
    } else if (nc_str_has_prefix(hp, "http://")) {
        hp += strlen("http://");
    } else if (strstr(hp, "://")) {
        return nc_error_set(err, -EINVAL,
                            "consul address \"%s\": unknown scheme (use "
                            "http://, https:// or unix://)",
                            address);
    }
    size_t len = strlen(hp);
    while (len && hp[len - 1] == '/')
        len--;
    if (memchr(hp, '/', len) || memchr(hp, '?', len) || memchr(hp, '#', len) ||
        memchr(hp, '@', len))
        return nc_error_set(err, -EINVAL,
                            "consul address \"%s\": expected host:port, "
                            "without a path, query or user",
                            address);
    const char *host = hp, *port_s = NULL;
    size_t hostlen = len;
    if (len && hp[0] == '[') {
        const char *close = memchr(hp, ']', len);
        if (!close)
            return nc_error_set(err, -EINVAL,
                                "consul address \"%s\": unclosed [", address);
        hostlen = (size_t)(close - hp) + 1;
        if (hostlen < len) {
            if (close[1] != ':')
                return nc_error_set(err, -EINVAL,
                                    "consul address \"%s\": expected :port "
                                    "after ]",
                                    address);
            port_s = close + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', len);
        if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - hp)))
            return nc_error_set(err, -EINVAL,
                                "consul address \"%s\": write an IPv6 "
                                "address in brackets ([::1]:8500)",
                                address);
        if (colon) {
            hostlen = (size_t)(colon - hp);
            port_s = colon + 1;
        }
    }
    if (hostlen == 0 || (hostlen == 2 && host[0] == '['))
        return nc_error_set(err, -EINVAL, "consul address \"%s\": no host",
                            address);
    long port = 8500;
    if (port_s) {
        size_t plen = len - (size_t)(port_s - hp);
        char buf[8];
        char *end = NULL;
        if (plen == 0 || plen >= sizeof(buf))
            return nc_error_set(err, -EINVAL, "consul address \"%s\": bad port",
                                address);
        memcpy(buf, port_s, plen);
        buf[plen] = '\0';
        port = strtol(buf, &end, 10);
        if (*end || buf[0] == '-' || buf[0] == '+' || port < 1 || port > 65535)
            return nc_error_set(err, -EINVAL,
                                "consul address \"%s\": port must be "
                                "1-65535",
                                address);
    }
    out->https = https;
    out->base_url = xasprintf("%s://%.*s:%ld", https ? "https" : "http",
                              (int)hostlen, host, port);
    return 0;
}

/* ---- the sync loop's state ---- */

static const struct consul_sync_tuning default_tuning = {
    .periodic_ns = 30 * SEC,
    .coalesce_ns = 20 * MS,
    .backoff_base_ns = SEC,
    .backoff_cap_ns = 60 * SEC,
    .max_in_flight = 8,
    .request_timeout_ms = 10000,
};

void consul_set_str(char **dst, const char *src)
{
    if (*dst && src && strcmp(*dst, src) == 0)
        return;
    free(*dst);
    *dst = xstrdup(src);
}

static void check_free(struct cs_check *c)
{
    free(c->id);
    free(c->name);
    free(c->status);
    free(c->output);
    free(c->consul_status);
    free(c->consul_output);
    consul_answer_clear(&c->last);
}

static void reg_free(struct cs_reg *r)
{
    free(r->key);
    free(r->id);
    free(r->name);
    free(r->alloc_id);
    free(r->error);
    consul_want_free(&r->want);
    json_decref(r->payload);
    json_decref(r->last_sent);
    for (size_t i = 0; i < r->nchecks; i++)
        check_free(&r->checks[i]);
    free(r->checks);
    strlist_free(&r->diffs);
    strlist_free(&r->repaired);
    consul_answer_clear(&r->last);
    memset(r, 0, sizeof(*r));
}

void consul_stale_free(struct cs_stale *st)
{
    free(st->id);
    free(st->name);
    free(st->address);
    free(st->reason);
    consul_answer_clear(&st->last);
}

static int reg_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct cs_reg *)elem)->id);
}

struct cs_reg *consul_reg_find(const struct consul_sync *s, const char *id)
{
    return s->nregs && id
               ? bsearch(id, s->regs, s->nregs, sizeof(*s->regs), reg_cmp)
               : NULL;
}

struct cs_check *consul_check_find(struct cs_reg *r, const char *id)
{
    for (size_t i = 0; r && i < r->nchecks; i++)
        if (strcmp(r->checks[i].id, id) == 0)
            return &r->checks[i];
    return NULL;
}

void consul_departed_remove_at(struct consul_sync *s, size_t i)
{
    free(s->departed[i].id);
    free(s->departed[i].alloc_id);
    if (i != --s->ndeparted)
        s->departed[i] = s->departed[s->ndeparted];
}

void consul_departed_remove(struct consul_sync *s, const char *id)
{
    for (size_t i = 0; i < s->ndeparted; i++)
        if (strcmp(s->departed[i].id, id) == 0) {
            consul_departed_remove_at(s, i);
            return;
        }
}

/* ---- the desired state ---- */

/* The payload without the checks' Status: a status change is a push, not
 * a new registration. */
static json_t *identity_payload(const struct svc_reg *r)
{
    json_t *p = services_consul_payload(r);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(p, "Checks"), i, c)
    {
        json_object_del(c, "Status");
    }
    return p;
}

static void key_put(struct nc_buf *b, const char *s)
{
    size_t n = s ? strlen(s) + 1 : 0; /* NULL and "" differ */
    nc_buf_append(b, (const char *)&n, sizeof(n));
    if (s)
        nc_buf_append(b, s, n);
}

/* Everything of r that services_consul_payload() reads, but the checks'
 * status and output: equal keys make equal payloads, so an update that
 * changed nothing builds no JSON. */
static void reg_key(struct nc_buf *b, const struct svc_reg *r)
{
    b->len = 0;
    char num[64];
    key_put(b, r->id);
    key_put(b, r->name);
    key_put(b, r->address);
    key_put(b, r->error);
    snprintf(num, sizeof(num), "%d %d %zu %zu %zu", r->port,
             r->enable_tag_override, r->tags.n, r->meta.n, r->nchecks);
    key_put(b, num);
    for (size_t i = 0; i < r->tags.n; i++)
        key_put(b, r->tags.items[i]);
    for (size_t i = 0; i < r->meta.n; i++) {
        key_put(b, r->meta.items[i].key);
        key_put(b, r->meta.items[i].value);
    }
    for (size_t i = 0; i < r->nchecks; i++) {
        key_put(b, r->checks[i].id);
        key_put(b, r->checks[i].name);
        snprintf(num, sizeof(num), "%lld", (long long)r->checks[i].interval_ns);
        key_put(b, num);
    }
}

/* The checks' status and output of r into n, whose checks are r's (same
 * key): true when a status changed. */
static bool reg_refresh(struct cs_reg *n, const struct svc_reg *r)
{
    bool changed = false;
    for (size_t k = 0; k < n->nchecks && k < r->nchecks; k++) {
        struct cs_check *c = &n->checks[k];
        const char *st = r->checks[k].status && *r->checks[k].status
                             ? r->checks[k].status
                             : "critical";
        if (strcmp(c->status, st) != 0) {
            consul_set_str(&c->status, st);
            changed = true;
        }
        consul_set_str(&c->output,
                       r->checks[k].output ? r->checks[k].output : "");
    }
    return changed;
}

static void reg_fill(struct cs_reg *n, const struct svc_reg *r)
{
    memset(n, 0, sizeof(*n));
    n->id = xstrdup(r->id);
    n->name = xstrdup(r->name);
    n->alloc_id = xstrdup(r->alloc_id);
    n->error = xstrdup(r->error);
    n->payload = r->error ? NULL : identity_payload(r);
    if (n->payload)
        consul_want_from_payload(&n->want, n->payload);
    n->nchecks = r->nchecks;
    n->checks = n->nchecks ? xcalloc(n->nchecks, sizeof(*n->checks)) : NULL;
    for (size_t k = 0; k < r->nchecks; k++) {
        struct cs_check *c = &n->checks[k];
        const struct svc_check *sc = &r->checks[k];
        c->id = xstrdup(sc->id);
        c->name = xstrdup(sc->name);
        c->status =
            xstrdup(sc->status && *sc->status ? sc->status : "critical");
        c->output = xstrdup(sc->output ? sc->output : "");
        /* what the payload's "TTL" says: whole seconds */
        c->ttl_ns =
            services_ttl_ns(sc->interval_ns) / (int64_t)SEC * (int64_t)SEC;
    }
}

/* Carries what is known of Consul from old to n (same ID). Returns whether
 * the registration itself changed; *status_changed when a check's status
 * did. */
static bool reg_carry(struct cs_reg *n, struct cs_reg *old,
                      bool *status_changed)
{
    bool same =
        json_equal(n->payload, old->payload) && nc_streq(n->error, old->error);
    for (size_t k = 0; k < n->nchecks; k++) {
        struct cs_check *c = &n->checks[k];
        struct cs_check *o = consul_check_find(old, c->id);
        if (!o) {
            *status_changed = true;
            continue;
        }
        if (strcmp(o->status, c->status) != 0)
            *status_changed = true;
        c->consul_status = o->consul_status;
        c->consul_output = o->consul_output;
        o->consul_status = o->consul_output = NULL;
        c->last_write_ns = o->last_write_ns;
        c->retry_after_ns = o->retry_after_ns;
        c->failures = o->failures;
        c->queued = o->queued;
        c->updates = o->updates;
        c->last = o->last;
        memset(&o->last, 0, sizeof(o->last));
    }
    n->last_sent = old->last_sent;
    old->last_sent = NULL;
    n->last = old->last;
    memset(&old->last, 0, sizeof(old->last));
    n->repaired = old->repaired;
    memset(&old->repaired, 0, sizeof(old->repaired));
    n->in_consul = old->in_consul;
    n->queued = old->queued;
    n->gen = old->gen;
    if (same) {
        n->state = old->state;
        n->diffs = old->diffs;
        memset(&old->diffs, 0, sizeof(old->diffs));
        n->attempts = old->attempts;
        n->failures = old->failures;
        n->next_retry_ns = old->next_retry_ns;
        return false;
    }
    n->gen++;
    n->state = REG_PENDING;
    return true;
}

static void departed_add(struct consul_sync *s, const struct cs_reg *r)
{
    for (size_t i = 0; i < s->ndeparted; i++)
        if (strcmp(s->departed[i].id, r->id) == 0)
            return;
    nc_grow((void **)&s->departed, &s->departed_cap, s->ndeparted + 1,
            sizeof(*s->departed));
    s->departed[s->ndeparted].id = xstrdup(r->id);
    s->departed[s->ndeparted].alloc_id = xstrdup(r->alloc_id);
    s->ndeparted++;
}

static int svc_ptr_cmp(const void *a, const void *b)
{
    return strcmp((*(const struct svc_reg *const *)a)->id,
                  (*(const struct svc_reg *const *)b)->id);
}

void consul_sync_update(struct consul_sync *s, const struct svc_set *desired)
{
    if (!s || s->closing)
        return;
    /* the Consul ones, sorted by ID (services_rebuild sorts; not relied
     * on), each ID once */
    const struct svc_reg **in = xcalloc(desired->n + 1, sizeof(*in));
    size_t n = 0;
    bool sorted = true;
    for (size_t i = 0; i < desired->n; i++) {
        const struct svc_reg *r = &desired->regs[i];
        if (!nc_streq(r->provider, "consul") || !r->id)
            continue;
        sorted &= !n || strcmp(in[n - 1]->id, r->id) <= 0;
        in[n++] = r;
    }
    if (!sorted)
        qsort(in, n, sizeof(*in), svc_ptr_cmp);
    struct cs_reg *regs = n ? xcalloc(n, sizeof(*regs)) : NULL;
    bool changed = !s->updated, status_changed = false;
    size_t j = 0, o = 0;
    struct nc_buf key = {0};
    /* both sorted by ID: one merge */
    for (size_t i = 0; i < n; i++) {
        const struct svc_reg *r = in[i];
        if (j && strcmp(regs[j - 1].id, r->id) == 0)
            continue; /* the same ID twice: Consul holds one */
        struct cs_reg *nr = &regs[j++];
        while (o < s->nregs && strcmp(s->regs[o].id, r->id) < 0) {
            departed_add(s, &s->regs[o]);
            reg_free(&s->regs[o++]);
            changed = true;
        }
        reg_key(&key, r);
        struct cs_reg *old = o < s->nregs && strcmp(s->regs[o].id, r->id) == 0
                                 ? &s->regs[o++]
                                 : NULL;
        if (old && old->key_len == key.len &&
            memcmp(old->key, key.data, key.len) == 0) {
            *nr = *old; /* the same registration: moved as it is */
            memset(old, 0, sizeof(*old));
            status_changed |= reg_refresh(nr, r);
            continue;
        }
        reg_fill(nr, r);
        nr->key = xmalloc(key.len);
        memcpy(nr->key, key.data, key.len);
        nr->key_len = key.len;
        if (old) {
            changed |= reg_carry(nr, old, &status_changed);
            reg_free(old);
        } else {
            consul_departed_remove(s, nr->id);
            changed = true;
        }
    }
    nc_buf_free(&key);
    free(in);
    for (; o < s->nregs; o++) {
        departed_add(s, &s->regs[o]);
        reg_free(&s->regs[o]);
        changed = true;
    }
    free(s->regs);
    s->regs = regs;
    s->nregs = j;
    s->updated = true;
    if (changed)
        consul_request_pass(s);
    if (status_changed || changed) {
        consul_collect_pushes(s, false);
        consul_pump(s);
    }
}

void consul_sync_flush_alloc(struct consul_sync *s, const char *alloc_id,
                             void (*done)(void *arg, const char *alloc_id),
                             void *arg)
{
    if (!s || s->closing || !alloc_id) {
        done(arg, alloc_id);
        return;
    }
    struct strlist ids = {0};
    for (size_t i = 0; i < s->ndeparted; i++)
        if (nc_streq(s->departed[i].alloc_id, alloc_id))
            strlist_add(&ids, s->departed[i].id);
    /* and what Consul was last seen holding for it, left by anyone */
    char *prefix = xasprintf(NOMAD_TASK_PREFIX "%s-", alloc_id);
    struct strlist seen = {0};
    consul_view_with_prefix(s->view, prefix, &seen);
    for (size_t i = 0; i < seen.n; i++)
        if (!consul_reg_find(s, seen.items[i]) &&
            !strlist_contains(&ids, seen.items[i]))
            strlist_add(&ids, seen.items[i]);
    strlist_free(&seen);
    free(prefix);
    if (!ids.n) {
        strlist_free(&ids);
        done(arg, alloc_id);
        return;
    }
    struct flush *f = xcalloc(1, sizeof(*f));
    f->alloc_id = xstrdup(alloc_id);
    f->pending = ids.n;
    f->done = done;
    f->arg = arg;
    f->next = s->flushes;
    if (s->flushes)
        s->flushes->prev = f;
    s->flushes = f;
    /* at the front and whatever the backoff: the tasks wait for this */
    for (size_t i = ids.n; i-- > 0;) {
        struct op *op = consul_op_new(s, OP_DEREGISTER, ids.items[i], false);
        op->flush = f;
        consul_enqueue(s, op, true);
    }
    LOG_DEBUG("consul", "deregistering %zu service(s) of allocation %.8s",
              ids.n, alloc_id);
    strlist_free(&ids);
    consul_pump(s);
}

/* ---- open and close ---- */

static bool has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return true;
    return false;
}

int consul_sync_open(struct consul_sync **out, uv_loop_t *loop,
                     const struct agent_config *cfg, const struct node *node,
                     struct nc_error *err)
{
    (void)node;
    *out = NULL;
    const char *token = cfg->consul.token;
    if (has_control(token))
        return nc_error_set(err, -EINVAL,
                            "consul token contains a control character");
    struct consul_addr addr;
    int r = consul_addr_parse(cfg->consul.address ? cfg->consul.address
                                                  : "127.0.0.1:8500",
                              cfg->consul.ssl, &addr, err);
    if (r < 0)
        return r;
    struct curl_uv *http = NULL;
    if ((r = curl_uv_open(&http, loop, err)) < 0) {
        consul_addr_free(&addr);
        return r;
    }
    struct consul_sync *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->http = http;
    s->addr = addr;
    s->display = addr.unix_socket
                     ? xasprintf("Consul at unix://%s%s", addr.unix_socket,
                                 addr.https ? " (TLS)" : "")
                     : xasprintf("Consul at %s", addr.base_url);
    s->tune = default_tuning;
    s->reachable = -1;
    size_t h = 0;
    if (token && *token) {
        s->token_header = xasprintf("X-Consul-Token: %s", token);
        s->headers[h++] = s->token_header;
    }
    s->headers[h++] = "User-Agent: nomclient";
    memcpy(s->json_headers, s->headers, h * sizeof(*s->headers));
    s->json_headers[h] = "Content-Type: application/json";
    s->tls.ca_file = cfg->consul.ca_file;
    s->tls.cert_file = cfg->consul.cert_file;
    s->tls.key_file = cfg->consul.key_file;
    s->tls.insecure = !cfg->consul.verify_ssl;
    /* the strings live in cfg, which outlives the agent's loop; copies
     * keep this module honest about it */
    s->tls.ca_file = xstrdup(s->tls.ca_file);
    s->tls.cert_file = xstrdup(s->tls.cert_file);
    s->tls.key_file = xstrdup(s->tls.key_file);
    uv_timer_init(loop, &s->pass_timer);
    uv_timer_init(loop, &s->keepalive_timer);
    s->pass_timer.data = s->keepalive_timer.data = s;
    s->open_handles = 3;
    /* the first update starts the first pass; without one (an agent with
     * no allocations) stale services still go, a little later */
    consul_schedule_pass_at(s, nc_now_mono_ns() + FIRST_PASS_WAIT_NS, true);
    *out = s;
    return 0;
}

static void sync_free(struct consul_sync *s)
{
    for (size_t i = 0; i < s->nregs; i++)
        reg_free(&s->regs[i]);
    free(s->regs);
    for (size_t i = 0; i < s->ndeparted; i++) {
        free(s->departed[i].id);
        free(s->departed[i].alloc_id);
    }
    free(s->departed);
    for (size_t i = 0; i < s->nstale; i++)
        consul_stale_free(&s->stale[i]);
    free(s->stale);
    consul_view_free(s->view);
    free(s->got_services);
    free(s->got_checks);
    free(s->display);
    free(s->token_header);
    free((char *)s->tls.ca_file);
    free((char *)s->tls.cert_file);
    free((char *)s->tls.key_file);
    consul_addr_free(&s->addr);
    free(s);
}

static void on_closed(struct consul_sync *s)
{
    if (--s->open_handles == 0)
        sync_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_closed(h->data);
}

static void on_http_closed(void *arg)
{
    on_closed(arg);
}

void consul_sync_close(struct consul_sync *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    /* requests in flight are abandoned with the multi handle: no
     * callbacks, so their ops are freed here, flushes without done */
    struct op_list *lists[] = {&s->queue, &s->inflight};
    for (size_t l = 0; l < NC_ARRAY_LEN(lists); l++)
        while (lists[l]->head) {
            struct op *op = lists[l]->head;
            consul_list_unlink(lists[l], op);
            consul_op_free(op);
        }
    while (s->flushes) {
        struct flush *f = s->flushes;
        s->flushes = f->next;
        free(f->alloc_id);
        free(f);
    }
    uv_timer_stop(&s->pass_timer);
    uv_timer_stop(&s->keepalive_timer);
    uv_close((uv_handle_t *)&s->pass_timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->keepalive_timer, on_timer_closed);
    curl_uv_close(s->http, on_http_closed, s);
    s->http = NULL;
}

/* ---- tuning ---- */

void consul_sync_get_tuning(const struct consul_sync *s,
                            struct consul_sync_tuning *t)
{
    *t = s->tune;
}

void consul_sync_set_tuning(struct consul_sync *s,
                            const struct consul_sync_tuning *t)
{
    s->tune = *t;
    if (!s->tune.max_in_flight)
        s->tune.max_in_flight = 1;
    if (!s->tune.backoff_base_ns)
        s->tune.backoff_base_ns = default_tuning.backoff_base_ns;
    if (s->tune.backoff_cap_ns < s->tune.backoff_base_ns)
        s->tune.backoff_cap_ns = s->tune.backoff_base_ns;
    if (!s->tune.periodic_ns)
        s->tune.periodic_ns = default_tuning.periodic_ns;
    if (s->tune.request_timeout_ms <= 0)
        s->tune.request_timeout_ms = default_tuning.request_timeout_ms;
}

void consul_sync_reconcile_now(struct consul_sync *s)
{
    if (!s || s->closing)
        return;
    s->updated = true;
    if (s->pass_running)
        s->pass_wanted = true;
    else
        consul_schedule_pass_at(s, nc_now_mono_ns(), true);
}
