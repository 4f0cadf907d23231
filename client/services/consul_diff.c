/* consul_diff.c - desired vs. registered: what one payload asks for,
 * compared field by field with what Consul holds, as lines to read. */
#include "client/services/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_LINES_PER_FIELD 8 /* a hostile Meta stays readable */

/* ---- the diff ---- */

struct diff {
    struct strlist *lines; /* may be NULL */
    int count;
};

static void note(struct diff *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(struct diff *d, const char *fmt, ...)
{
    d->count++;
    if (!d->lines)
        return;
    struct nc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    strlist_add(d->lines, b.data ? b.data : "");
    nc_buf_free(&b);
}

/* A copy that json_string accepts: invalid UTF-8 and NULs become '?'. */
char *consul_utf8_clean(const char *s, size_t len, size_t max)
{
    bool cut = len > max;
    if (cut)
        len = max;
    char *out = xmalloc(len + 4);
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        bool ok = n && i + n <= len;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && n == 3) { /* overlong, surrogates */
            ok = !(c == 0xE0 && p[i + 1] < 0xA0) &&
                 !(c == 0xED && p[i + 1] >= 0xA0);
        } else if (ok && n == 4) {
            ok = !(c == 0xF0 && p[i + 1] < 0x90) &&
                 !(c == 0xF4 && p[i + 1] >= 0x90);
        }
        if (!ok || c == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* A value as the differences show it: JSON, cut to a readable length. */
static void render(const json_t *j, char *out, size_t outlen)
{
    if (!j) {
        snprintf(out, outlen, "nothing");
        return;
    }
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s) {
        snprintf(out, outlen, "(unprintable)");
        return;
    }
    size_t len = strlen(s);
    if (len >= outlen && outlen > 4) {
        size_t cut = outlen - 4; /* on a UTF-8 boundary */
        while (cut && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        snprintf(out, outlen, "%.*s...", (int)cut, s);
    } else {
        snprintf(out, outlen, "%s", s);
    }
    free(s);
}

static void render_str(const char *str, char *out, size_t outlen)
{
    char *clean = consul_utf8_clean(str, strlen(str), 200);
    json_t *j = json_string(clean);
    render(j, out, outlen);
    json_decref(j);
    free(clean);
}

/* Consul's side of a field: its value, or the raw text of a wrong one. */
static void render_have(enum fkind k, const char *str, struct span raw,
                        char *out, size_t outlen)
{
    if (k == FIELD_ABSENT) {
        snprintf(out, outlen, "nothing");
    } else if (k == FIELD_NULL) {
        snprintf(out, outlen, "null");
    } else if (k == FIELD_OK && str) {
        render_str(str, out, outlen);
    } else {
        char *clean = consul_utf8_clean(raw.p ? raw.p : "", raw.len, 120);
        snprintf(out, outlen, "%s", clean);
        free(clean);
    }
}

static void note_field(struct diff *d, const char *field, const char *have,
                       const json_t *want)
{
    char w[160];
    render(want, w, sizeof(w));
    note(d, "%s: Consul has %s, this node wants %s", field, have, w);
}

static void diff_str(struct diff *d, const char *field, enum fkind k,
                     const char *have, struct span raw, const char *want,
                     const json_t *want_json, bool absent_is_empty)
{
    if (k == FIELD_OK && want && strcmp(have, want) == 0)
        return;
    if ((k == FIELD_ABSENT || k == FIELD_NULL) && absent_is_empty && want &&
        !*want)
        return;
    char h[160];
    render_have(k, have, raw, h, sizeof(h));
    note_field(d, field, h, want_json);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void render_list(const struct consul_view *v, size_t first, size_t n,
                        char *out, size_t outlen)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n && i < 32; i++) {
        char *clean = consul_utf8_clean(v->strs[first + i],
                                        strlen(v->strs[first + i]), 100);
        json_array_append_new(a, json_string(clean));
        free(clean);
    }
    render(a, out, outlen);
    json_decref(a);
}

void consul_want_free(struct want *w)
{
    free(w->tags);
    free(w->checks);
    memset(w, 0, sizeof(*w));
}

/* A TTL as the payload writes it ("20s"), whole seconds without strtod;
 * anything else through nc_parse_duration. */
static bool ttl_parse(const char *s, int64_t *ns)
{
    int64_t v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9' && v < 1000000000LL)
        v = v * 10 + (*p++ - '0');
    if (p > s && p[0] == 's' && !p[1]) {
        *ns = v * 1000000000LL;
        return true;
    }
    return nc_parse_duration(s, ns) == 0;
}

void consul_want_from_payload(struct want *w, const json_t *payload)
{
    memset(w, 0, sizeof(*w));
    w->payload = payload;
    w->id = json_string_value(json_object_get(payload, "ID"));
    w->hash = w->id ? consul_hash_str(w->id) : 0;
    w->name = json_string_value(json_object_get(payload, "Name"));
    w->address = json_string_value(json_object_get(payload, "Address"));
    w->port = json_integer_value(json_object_get(payload, "Port"));
    w->eto = json_is_true(json_object_get(payload, "EnableTagOverride"));
    const json_t *tags = json_object_get(payload, "Tags");
    const json_t *meta = json_object_get(payload, "Meta");
    w->tags = xcalloc(json_array_size(tags) + 2 * json_object_size(meta) + 1,
                      sizeof(*w->tags));
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        if (json_string_value(t))
            w->tags[w->ntags++] = json_string_value(t);
    }
    const char *k;
    json_object_foreach((json_t *)meta, k, t)
    {
        if (!json_string_value(t))
            continue;
        w->tags[w->ntags + 2 * w->nmeta] = k;
        w->tags[w->ntags + 2 * w->nmeta + 1] = json_string_value(t);
        w->nmeta++;
    }
    const json_t *checks = json_object_get(payload, "Checks");
    w->checks = xcalloc(json_array_size(checks) + 1, sizeof(*w->checks));
    json_array_foreach(checks, i, t)
    {
        struct want_check *c = &w->checks[w->nchecks];
        c->id = json_string_value(json_object_get(t, "CheckID"));
        if (!c->id)
            continue;
        c->name = json_string_value(json_object_get(t, "Name"));
        const char *ttl = json_string_value(json_object_get(t, "TTL"));
        c->has_ttl = ttl && ttl_parse(ttl, &c->ttl_ns);
        c->hash = consul_hash_str(c->id);
        w->nchecks++;
    }
}

/* Tags as a set, as Nomad compares them: order is Consul's business. */
static void diff_tags(struct diff *d, const struct consul_view *v,
                      const struct cv_service *e, const struct want *w)
{
    const json_t *want = json_object_get(w->payload, "Tags");
    size_t n = w->ntags;
    char h[200];
    if (e->tags_k == FIELD_ABSENT || e->tags_k == FIELD_NULL ||
        e->tags_k == FIELD_BAD) {
        if (n || e->tags_k == FIELD_BAD) {
            render_have(e->tags_k, NULL, e->tags_raw, h, sizeof(h));
            note_field(d, "Tags", h, want);
        }
        return;
    }
    bool same = e->ntags == n; /* sizes first: a hostile list costs nothing */
    for (size_t i = 0; same && i < n; i++) /* the usual case: same order */
        same = strcmp(v->strs[e->tags_first + i], w->tags[i]) == 0;
    if (!same && e->ntags == n) {
        const char **hs = xcalloc(n + 1, sizeof(*hs));
        const char **ws = xcalloc(n + 1, sizeof(*ws));
        memcpy(hs, v->strs + e->tags_first, n * sizeof(*hs));
        memcpy(ws, w->tags, n * sizeof(*ws));
        qsort(hs, n, sizeof(*hs), cmp_str);
        qsort(ws, n, sizeof(*ws), cmp_str);
        same = true;
        for (size_t i = 0; i < n && same; i++)
            same = strcmp(hs[i], ws[i]) == 0;
        free(hs);
        free(ws);
    }
    if (!same) {
        render_list(v, e->tags_first, e->ntags, h, sizeof(h));
        note_field(d, "Tags", h, want);
    }
}

static const char *meta_get(const struct consul_view *v,
                            const struct cv_service *e, const char *key)
{
    for (size_t i = 0; i < e->nmeta; i++)
        if (strcmp(v->strs[e->meta_first + 2 * i], key) == 0)
            return v->strs[e->meta_first + 2 * i + 1];
    return NULL;
}

static bool want_has_meta(const struct want *w, const char *key)
{
    for (size_t i = 0; i < w->nmeta; i++)
        if (strcmp(w->tags[w->ntags + 2 * i], key) == 0)
            return true;
    return false;
}

static void diff_meta(struct diff *d, const struct consul_view *v,
                      const struct cv_service *e, const struct want *w)
{
    const json_t *want = json_object_get(w->payload, "Meta");
    char h[200];
    if (e->meta_k == FIELD_ABSENT || e->meta_k == FIELD_NULL ||
        e->meta_k == FIELD_BAD) {
        if (e->meta_k == FIELD_BAD || w->nmeta) {
            render_have(e->meta_k, NULL, e->meta_raw, h, sizeof(h));
            note_field(d, "Meta", h, want);
        }
        return;
    }
    if (e->nmeta > w->nmeta + DIFF_LINES_PER_FIELD * 8) {
        /* do not walk a hostile map key by key */
        note(d, "Meta: Consul has %zu keys, this node sets %zu", e->nmeta,
             w->nmeta);
        return;
    }
    int lines = 0;
    size_t common = 0;
    for (size_t i = 0; i < w->nmeta; i++) {
        const char *k = w->tags[w->ntags + 2 * i];
        const char *wv = w->tags[w->ntags + 2 * i + 1];
        /* the usual case: the same key at the same place */
        const char *hv =
            i < e->nmeta && strcmp(v->strs[e->meta_first + 2 * i], k) == 0
                ? v->strs[e->meta_first + 2 * i + 1]
                : meta_get(v, e, k);
        common += hv != NULL;
        if (hv && strcmp(hv, wv) == 0)
            continue;
        if (lines++ >= DIFF_LINES_PER_FIELD) {
            d->count++;
            continue;
        }
        char field[200];
        snprintf(field, sizeof(field), "Meta[\"%.150s\"]", k);
        if (hv)
            render_str(hv, h, sizeof(h));
        else
            snprintf(h, sizeof(h), "nothing");
        note_field(d, field, h, json_object_get(want, k));
    }
    if (e->nmeta <= common)
        return;
    lines = 0;
    for (size_t i = 0; i < e->nmeta; i++) {
        const char *key = v->strs[e->meta_first + 2 * i];
        if (want_has_meta(w, key))
            continue;
        if (lines++ >= DIFF_LINES_PER_FIELD) {
            d->count++;
            continue;
        }
        char kb[160];
        render_str(key, kb, sizeof(kb));
        render_str(v->strs[e->meta_first + 2 * i + 1], h, sizeof(h));
        note(d, "Meta[%s]: Consul has %s, this node does not set it", kb, h);
    }
}

static bool want_has_check(const struct want *w, const char *check_id)
{
    for (size_t i = 0; i < w->nchecks; i++)
        if (strcmp(w->checks[i].id, check_id) == 0)
            return true;
    return false;
}

static void diff_checks(struct diff *d, const struct want *w,
                        const struct consul_view *v, const struct cv_service *e)
{
    size_t matched = 0;
    char h[200];
    for (size_t i = 0; i < w->nchecks; i++) {
        const struct want_check *wc = &w->checks[i];
        long ci = consul_index_find_hashed(v->chk_index, v->chk_mask, wc->id,
                                           wc->hash, consul_chk_id_at, v);
        const struct cv_check *c = ci < 0 ? NULL : &v->chks[ci];
        if (!c) {
            render_str(wc->name ? wc->name : "", h, sizeof(h));
            note(d, "Check %s (%s): Consul does not have it", h, wc->id);
            continue;
        }
        if (!c->is_object) {
            note(d, "Check %s: Consul's entry is not an object", wc->id);
            continue;
        }
        if (!nc_streq(c->service_id, w->id)) {
            if (c->service_id)
                render_str(c->service_id, h, sizeof(h));
            else
                snprintf(h, sizeof(h), "nothing");
            note(d, "Check %s: Consul has it on service %s, not this one",
                 wc->id, h);
            continue;
        }
        matched++;
        if (c->type && *c->type && strcmp(c->type, "ttl") != 0) {
            render_str(c->type, h, sizeof(h));
            note(d,
                 "Check %s: Consul has a %s check, this node wants a TTL "
                 "check",
                 wc->id, h);
            continue;
        }
        if (c->has_ttl && wc->has_ttl && c->ttl_ns != wc->ttl_ns) {
            char hv[32], wv[32];
            nc_format_duration(c->ttl_ns, hv, sizeof(hv));
            nc_format_duration(wc->ttl_ns, wv, sizeof(wv));
            note(d, "Check %s: TTL: Consul has %s, this node wants %s", wc->id,
                 hv, wv);
        }
    }
    size_t linked = 0;
    for (long k = e->first_check; k >= 0; k = v->chks[k].next)
        linked++;
    if (linked <= matched) /* each of Consul's is one of ours */
        return;
    int lines = 0;
    for (long k = e->first_check; k >= 0; k = v->chks[k].next) {
        const char *cid = v->chks[k].id;
        if (want_has_check(w, cid))
            continue;
        if (lines++ >= DIFF_LINES_PER_FIELD) {
            d->count++;
            continue;
        }
        render_str(cid, h, sizeof(h));
        note(d,
             "Check %s: Consul has it on this service, this node does not "
             "want it",
             h);
    }
}

enum consul_diff_state consul_diff_want(const struct want *w,
                                        const struct consul_view *v,
                                        struct strlist *diffs)
{
    struct diff d = {diffs, 0};
    const json_t *p = w->payload;
    long si = v && w->id
                  ? consul_index_find_hashed(v->svc_index, v->svc_mask, w->id,
                                             w->hash, consul_svc_id_at, v)
                  : -1;
    const struct cv_service *e =
        si < 0 || v->svcs[si].forgotten ? NULL : &v->svcs[si];
    if (!e) {
        note(&d, "Consul does not have this service");
        return CONSUL_MISSING;
    }
    if (!e->is_object) {
        note(&d, "Consul's entry for this service is not an object");
        return CONSUL_DIFFERENT;
    }
    diff_str(&d, "Service", e->service_k, e->service, e->service_raw, w->name,
             json_object_get(p, "Name"), false);
    diff_tags(&d, v, e, w);
    diff_str(&d, "Address", e->address_k, e->address, e->address_raw,
             w->address, json_object_get(p, "Address"), true);
    if (!(e->port_k == FIELD_OK && e->port == w->port) &&
        !(e->port_k == FIELD_ABSENT && w->port == 0)) {
        char h[160];
        if (e->port_k == FIELD_OK)
            snprintf(h, sizeof(h), "%lld", e->port);
        else
            render_have(e->port_k, NULL, e->port_raw, h, sizeof(h));
        note_field(&d, "Port", h, json_object_get(p, "Port"));
    }
    diff_meta(&d, v, e, w);
    if (!(e->eto_k == FIELD_OK && e->eto == w->eto) &&
        !(e->eto_k == FIELD_ABSENT && !w->eto)) {
        char h[160];
        if (e->eto_k == FIELD_OK)
            snprintf(h, sizeof(h), "%s", e->eto ? "true" : "false");
        else
            render_have(e->eto_k, NULL, e->eto_raw, h, sizeof(h));
        note_field(&d, "EnableTagOverride", h,
                   w->eto ? json_true() : json_false());
    }
    diff_checks(&d, w, v, e);
    return d.count ? CONSUL_DIFFERENT : CONSUL_IN_SYNC;
}

enum consul_diff_state consul_diff(const json_t *payload,
                                   const struct consul_view *v,
                                   struct strlist *diffs)
{
    struct want w;
    consul_want_from_payload(&w, payload);
    enum consul_diff_state st = consul_diff_want(&w, v, diffs);
    consul_want_free(&w);
    return st;
}
