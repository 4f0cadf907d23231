/* consul_view.c - what Consul holds: its listings of services and
 * checks, scanned in place and indexed by ID. See internal.h for how the
 * consul_*.c files divide the Consul client. */
#include "client/services/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what Consul holds ----
 *
 * A no-change pass reads every service and check of the agent (1.6 MB for
 * 1000 services with 2 checks) and must take a few milliseconds, so the
 * listings are not turned into jansson trees: a strict scanner walks the
 * text once, decodes the strings it needs in place (NUL-terminated where
 * their closing quote was) and keeps pointers to them; everything else is
 * skipped. Hostile answers (not JSON, wrong types, deep nesting, huge
 * sizes) end in an error or in fields marked as of the wrong type, which
 * the diff reports as differences; nothing of theirs is trusted. */

#define VIEW_MAX_DEPTH 64
/* a key test that mostly stops at the first byte */
#define KEY_IS(k, lit) ((k)[0] == (lit)[0] && strcmp((k), (lit)) == 0)

struct js {
    char *start, *p, *end;
    const char *what;
    struct nc_error *err;
    bool failed;
};

static bool js_fail(struct js *s, const char *why)
{
    if (!s->failed)
        nc_error_set(s->err, -EINVAL,
                     "Consul's answer to %s is not valid JSON: %s at byte "
                     "%zu",
                     s->what, why, (size_t)(s->p - s->start));
    s->failed = true;
    return false;
}

static void js_ws(struct js *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool js_peek(struct js *s, char c)
{
    js_ws(s);
    return s->p < s->end && *s->p == c;
}

static bool js_expect(struct js *s, char c)
{
    if (!js_peek(s, c)) {
        char why[32];
        snprintf(why, sizeof(why), "expected '%c'", c);
        return js_fail(s, why);
    }
    s->p++;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool js_hex4(struct js *s, const char *at, unsigned *out)
{
    if (s->end - at < 4)
        return js_fail(s, "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(at[i]);
        if (h < 0)
            return js_fail(s, "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

/* At a '"': decodes the string in place and returns it NUL-terminated
 * (where its closing quote or earlier), or NULL with the error set. With
 * decode false it only skips it. */
static char *js_string(struct js *s, bool decode)
{
    js_ws(s);
    if (s->p >= s->end || *s->p != '"') {
        js_fail(s, "expected a string");
        return NULL;
    }
    /* the common case, no escape: runs of plain bytes, table-driven */
    static const unsigned char special[256] = {
        [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1};
    char *start = ++s->p, *p = s->p;
    /* eight bytes at a time while none is a quote, a backslash or below
     * 0x20 (the usual bit tricks: a byte is "less than n" or "zero") */
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    while (s->end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit =
            (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) &
            high;
        if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* the lowest flag is exact (borrows only reach above it) */
            p += __builtin_ctzll(hit) >> 3;
#endif
            break;
        }
        p += 8;
    }
    while (p < s->end && !special[(unsigned char)*p])
        p++;
    if (p < s->end && *p == '"') {
        if (decode)
            *p = '\0';
        s->p = p + 1;
        return start;
    }
    s->p = p; /* what came before stays where it is */
    char *w = p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            if (decode)
                *w = '\0';
            return start;
        }
        if (c < 0x20) {
            js_fail(s, "control character in a string");
            return NULL;
        }
        if (c != '\\') {
            if (decode)
                *w++ = (char)c;
            s->p++;
            continue;
        }
        if (s->end - s->p < 2) {
            js_fail(s, "unfinished escape");
            return NULL;
        }
        char e = s->p[1];
        s->p += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            if (decode)
                *w++ = map[simple - "\"\\/bfnrt"];
            continue;
        }
        if (e != 'u') {
            js_fail(s, "bad escape");
            return NULL;
        }
        unsigned cp;
        if (!js_hex4(s, s->p, &cp))
            return NULL;
        s->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            js_fail(s, "lone low surrogate");
            return NULL;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
                !js_hex4(s, s->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                js_fail(s, "lone high surrogate");
                return NULL;
            }
            s->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) {
            js_fail(s, "\\u0000 in a string");
            return NULL;
        }
        if (!decode)
            continue;
        /* at most 4 bytes from at least 6 read: w stays behind p */
        if (cp < 0x80) {
            *w++ = (char)cp;
        } else if (cp < 0x800) {
            *w++ = (char)(0xC0 | cp >> 6);
            *w++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *w++ = (char)(0xE0 | cp >> 12);
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *w++ = (char)(0xF0 | cp >> 18);
            *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    js_fail(s, "unterminated string");
    return NULL;
}

static bool js_literal(struct js *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return js_fail(s, "unexpected character");
    s->p += n;
    return true;
}

static bool js_number(struct js *s)
{
    const char *st = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || !(*s->p >= '0' && *s->p <= '9'))
        return js_fail(s, "bad number");
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || !(*s->p >= '0' && *s->p <= '9'))
            return js_fail(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || !(*s->p >= '0' && *s->p <= '9'))
            return js_fail(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    return s->p > st;
}

/* Skips one value of any kind, nesting bounded. */
static bool js_skip(struct js *s, int depth)
{
    js_ws(s);
    if (s->p >= s->end)
        return js_fail(s, "unexpected end");
    if (depth > VIEW_MAX_DEPTH)
        return js_fail(s, "nested too deep");
    char c = *s->p;
    if (c == '"')
        return js_string(s, false) != NULL;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->p++;
        if (js_peek(s, close)) {
            s->p++;
            return true;
        }
        for (;;) {
            if (c == '{' && (!js_string(s, false) || !js_expect(s, ':')))
                return false;
            if (!js_skip(s, depth + 1))
                return false;
            if (js_peek(s, ',')) {
                s->p++;
                continue;
            }
            return js_expect(s, close);
        }
    }
    if (c == 't')
        return js_literal(s, "true");
    if (c == 'f')
        return js_literal(s, "false");
    if (c == 'n')
        return js_literal(s, "null");
    return js_number(s);
}

/* Walks an object: fn gets each key (decoded) with s at its value, and
 * must consume the value. */
static bool js_object(struct js *s,
                      void (*fn)(struct js *s, char *key, void *arg), void *arg)
{
    if (!js_expect(s, '{'))
        return false;
    if (js_peek(s, '}')) {
        s->p++;
        return true;
    }
    for (;;) {
        char *key = js_string(s, true);
        if (!key || !js_expect(s, ':'))
            return false;
        js_ws(s);
        fn(s, key, arg);
        if (s->failed)
            return false;
        if (js_peek(s, ',')) {
            s->p++;
            continue;
        }
        return js_expect(s, '}');
    }
}

/* Skips a value of the wrong type, keeping its text for the message. */
static void js_bad(struct js *s, enum fkind *k, struct span *raw)
{
    js_ws(s);
    const char *st = s->p;
    if (js_peek(s, 'n') && (size_t)(s->end - s->p) >= 4 &&
        memcmp(s->p, "null", 4) == 0) {
        s->p += 4;
        *k = FIELD_NULL;
        return;
    }
    js_skip(s, 1);
    *k = FIELD_BAD;
    raw->p = st;
    raw->len = (size_t)(s->p - st);
}

static void js_field_string(struct js *s, enum fkind *k, const char **val,
                            struct span *raw)
{
    if (js_peek(s, '"')) {
        *val = js_string(s, true);
        *k = FIELD_OK;
    } else {
        js_bad(s, k, raw);
    }
}

static void push_str(struct consul_view *v, const char *str)
{
    nc_grow((void **)&v->strs, &v->strs_cap, v->nstrs + 1, sizeof(*v->strs));
    v->strs[v->nstrs++] = str;
}

/* At a '[' or '{': whether every element (every value) is a string,
 * without decoding anything, s left after it. */
static bool js_all_strings(struct js *s)
{
    char open = *s->p, close = open == '{' ? '}' : ']';
    bool all = true;
    s->p++;
    if (js_peek(s, close)) {
        s->p++;
        return true;
    }
    for (;;) {
        if (open == '{' && (!js_string(s, false) || !js_expect(s, ':')))
            return false;
        if (js_peek(s, '"')) {
            if (!js_string(s, false))
                return false;
        } else {
            all = false;
            if (!js_skip(s, 2))
                return false;
        }
        if (js_peek(s, ',')) {
            s->p++;
            continue;
        }
        return js_expect(s, close) && all;
    }
}

/* Tags and Meta: a list of strings or a map of strings, decoded into
 * strs once known to be one; else of the wrong type, raw text kept. */
static void js_field_strings(struct js *s, struct consul_view *v, char open,
                             enum fkind *k, size_t *first, size_t *n,
                             struct span *raw)
{
    if (!js_peek(s, open)) {
        js_bad(s, k, raw);
        return;
    }
    char *st = s->p;
    if (!js_all_strings(s)) {
        *k = FIELD_BAD;
        raw->p = st;
        raw->len = (size_t)(s->p - st);
        return;
    }
    char *end = s->p;
    s->p = st + 1; /* again, decoding: known to be well formed */
    *k = FIELD_OK;
    *first = v->nstrs;
    *n = 0;
    while (!js_peek(s, open == '{' ? '}' : ']')) {
        if (open == '{') {
            push_str(v, js_string(s, true));
            js_expect(s, ':');
        }
        push_str(v, js_string(s, true));
        (*n)++;
        if (js_peek(s, ','))
            s->p++;
    }
    s->p = end;
}

struct entry_ctx {
    struct consul_view *v;
    size_t idx; /* the entry: the array may move while the listing is read */
};

static bool js_at_number(struct js *s)
{
    js_ws(s);
    return s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'));
}

/* At a number: whether it is an integer that fits, its text in raw. */
static bool js_integer(struct js *s, long long *out, struct span *raw)
{
    js_ws(s);
    const char *st = s->p;
    if (!js_number(s))
        return false;
    raw->p = st;
    raw->len = (size_t)(s->p - st);
    char buf[24], *end = NULL;
    if (raw->len >= sizeof(buf))
        return false;
    memcpy(buf, st, raw->len);
    buf[raw->len] = '\0';
    errno = 0;
    *out = strtoll(buf, &end, 10);
    return !*end && errno == 0;
}

static void service_field(struct js *s, char *key, void *arg)
{
    struct entry_ctx *c = arg;
    struct cv_service *e = &c->v->svcs[c->idx];
    if (KEY_IS(key, "Service")) {
        js_field_string(s, &e->service_k, &e->service, &e->service_raw);
    } else if (KEY_IS(key, "Address")) {
        js_field_string(s, &e->address_k, &e->address, &e->address_raw);
    } else if (KEY_IS(key, "Tags")) {
        js_field_strings(s, c->v, '[', &e->tags_k, &e->tags_first, &e->ntags,
                         &e->tags_raw);
    } else if (KEY_IS(key, "Meta")) {
        js_field_strings(s, c->v, '{', &e->meta_k, &e->meta_first, &e->nmeta,
                         &e->meta_raw);
    } else if (KEY_IS(key, "Port")) {
        if (js_at_number(s))
            e->port_k =
                js_integer(s, &e->port, &e->port_raw) ? FIELD_OK : FIELD_BAD;
        else
            js_bad(s, &e->port_k, &e->port_raw);
    } else if (KEY_IS(key, "EnableTagOverride")) {
        if (js_peek(s, 't') || js_peek(s, 'f')) {
            e->eto = *s->p == 't';
            e->eto_k =
                js_literal(s, e->eto ? "true" : "false") ? FIELD_OK : FIELD_BAD;
        } else {
            js_bad(s, &e->eto_k, &e->eto_raw);
        }
    } else {
        js_skip(s, 1);
    }
}

/* At an entry of a listing: true if it is an object, else skipped. */
static bool entry_is_object(struct js *s)
{
    if (js_peek(s, '{'))
        return true;
    js_skip(s, 1);
    return false;
}

static void one_service(struct js *s, char *key, void *arg)
{
    struct consul_view *v = arg;
    nc_grow((void **)&v->svcs, &v->svcs_cap, v->nsvcs + 1, sizeof(*v->svcs));
    struct cv_service *e = &v->svcs[v->nsvcs++];
    memset(e, 0, sizeof(*e));
    e->id = key;
    e->first_check = -1;
    if (!(e->is_object = entry_is_object(s)))
        return;
    struct entry_ctx c = {v, v->nsvcs - 1};
    js_object(s, service_field, &c);
}

/* A TTL: a duration string, or nanoseconds as Go marshals a
 * time.Duration. Anything else is no TTL. */
static void js_ttl(struct js *s, struct cv_check *e)
{
    int64_t ns = 0;
    long long n = 0;
    struct span raw;
    if (js_peek(s, '"')) {
        const char *t = js_string(s, true);
        e->has_ttl = t && nc_parse_duration(t, &ns) == 0 && ns > 0;
    } else if (js_at_number(s)) {
        e->has_ttl = js_integer(s, &n, &raw) && n > 0;
        ns = n;
    } else {
        js_skip(s, 3);
    }
    if (e->has_ttl)
        e->ttl_ns = ns;
}

static void definition_field(struct js *s, char *key, void *arg)
{
    if (KEY_IS(key, "TTL"))
        js_ttl(s, arg);
    else
        js_skip(s, 3);
}

static void check_field(struct js *s, char *key, void *arg)
{
    struct entry_ctx *c = arg;
    struct cv_check *e = &c->v->chks[c->idx];
    const char **dst = KEY_IS(key, "ServiceID") ? &e->service_id
                       : KEY_IS(key, "Status")  ? &e->status
                       : KEY_IS(key, "Output")  ? &e->output
                       : KEY_IS(key, "Type")    ? &e->type
                                                : NULL;
    if (dst) {
        if (js_peek(s, '"')) {
            *dst = js_string(s, true);
        } else {
            *dst = NULL; /* of the wrong type: as if absent */
            js_skip(s, 2);
        }
    } else if (KEY_IS(key, "Definition") && js_peek(s, '{')) {
        js_object(s, definition_field, e);
    } else if (KEY_IS(key, "TTL") && !e->has_ttl) {
        js_ttl(s, e);
    } else {
        js_skip(s, 2);
    }
}

static void one_check(struct js *s, char *key, void *arg)
{
    struct consul_view *v = arg;
    nc_grow((void **)&v->chks, &v->chks_cap, v->nchks + 1, sizeof(*v->chks));
    struct cv_check *e = &v->chks[v->nchks++];
    memset(e, 0, sizeof(*e));
    e->id = key;
    e->next = -1;
    if (!(e->is_object = entry_is_object(s)))
        return;
    struct entry_ctx c = {v, v->nchks - 1};
    js_object(s, check_field, &c);
}

static bool parse_listing(struct consul_view *v, char *text, size_t len,
                          const char *what,
                          void (*one)(struct js *, char *, void *),
                          struct nc_error *err)
{
    struct js s = {text, text, text + len, what, err, false};
    js_ws(&s);
    if (s.p < s.end && *s.p != '{') {
        nc_error_set(err, -EINVAL,
                     "Consul's answer to %s is not a JSON "
                     "object",
                     what);
        return false;
    }
    if (!js_object(&s, one, v))
        return false;
    js_ws(&s);
    if (s.p != s.end)
        return js_fail(&s, "text after the object");
    return true;
}

uint64_t consul_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* An index of IDs, by open addressing; a duplicate ID: the last wins. */
static void index_build(uint32_t **table, size_t *mask, size_t n,
                        const char *(*id_at)(const struct consul_view *,
                                             size_t),
                        const struct consul_view *v)
{
    size_t size = 16;
    while (size < n * 2)
        size *= 2;
    *table = xcalloc(size, sizeof(**table));
    *mask = size - 1;
    for (size_t i = 0; i < n; i++) {
        const char *id = id_at(v, i);
        size_t slot = consul_hash_str(id) & *mask;
        while ((*table)[slot] && strcmp(id_at(v, (*table)[slot] - 1), id) != 0)
            slot = (slot + 1) & *mask;
        (*table)[slot] = (uint32_t)(i + 1);
    }
}

long consul_index_find_hashed(const uint32_t *table, size_t mask,
                              const char *id, uint64_t hash,
                              const char *(*id_at)(const struct consul_view *,
                                                   size_t),
                              const struct consul_view *v)
{
    if (!table || !id)
        return -1;
    size_t slot = hash & mask;
    while (table[slot]) {
        if (strcmp(id_at(v, table[slot] - 1), id) == 0)
            return (long)table[slot] - 1;
        slot = (slot + 1) & mask;
    }
    return -1;
}

long consul_index_find(const uint32_t *table, size_t mask, const char *id,
                       const char *(*id_at)(const struct consul_view *, size_t),
                       const struct consul_view *v)
{
    if (!table || !id)
        return -1;
    size_t slot = consul_hash_str(id) & mask;
    while (table[slot]) {
        if (strcmp(id_at(v, table[slot] - 1), id) == 0)
            return (long)table[slot] - 1;
        slot = (slot + 1) & mask;
    }
    return -1;
}

const char *consul_svc_id_at(const struct consul_view *v, size_t i)
{
    return v->svcs[i].id;
}

const char *consul_chk_id_at(const struct consul_view *v, size_t i)
{
    return v->chks[i].id;
}

static struct cv_service *view_service(const struct consul_view *v,
                                       const char *id)
{
    long i = v ? consul_index_find(v->svc_index, v->svc_mask, id,
                                   consul_svc_id_at, v)
               : -1;
    return i < 0 || v->svcs[i].forgotten ? NULL : &v->svcs[i];
}

static struct cv_check *view_check(const struct consul_view *v, const char *id)
{
    long i = v ? consul_index_find(v->chk_index, v->chk_mask, id,
                                   consul_chk_id_at, v)
               : -1;
    return i < 0 ? NULL : &v->chks[i];
}

void consul_view_free(struct consul_view *v)
{
    if (!v)
        return;
    free(v->stext);
    free(v->ctext);
    free(v->svcs);
    free(v->chks);
    free(v->strs);
    free(v->svc_index);
    free(v->chk_index);
    free(v);
}

static char *copy_text(const char *text, size_t len)
{
    char *c = xmalloc(len + 1);
    if (len)
        memcpy(c, text, len);
    c[len] = '\0';
    return c;
}

/* Parses answers it takes ownership of (NUL-terminated at len). */
int consul_view_parse_owned(struct consul_view **out, char *stext, size_t slen,
                            char *ctext, size_t clen, struct nc_error *err)
{
    *out = NULL;
    struct consul_view *v = xcalloc(1, sizeof(*v));
    v->stext = stext ? stext : copy_text("{}", slen = 2);
    v->ctext = ctext ? ctext : copy_text("{}", clen = 2);
    if (!parse_listing(v, v->stext, slen, "GET /v1/agent/services", one_service,
                       err) ||
        !parse_listing(v, v->ctext, clen, "GET /v1/agent/checks", one_check,
                       err)) {
        consul_view_free(v);
        return -EINVAL;
    }
    index_build(&v->svc_index, &v->svc_mask, v->nsvcs, consul_svc_id_at, v);
    index_build(&v->chk_index, &v->chk_mask, v->nchks, consul_chk_id_at, v);
    /* each service's checks, in Consul's order (pushed in reverse) */
    for (size_t i = v->nchks; i-- > 0;) {
        struct cv_check *c = &v->chks[i];
        if (view_check(v, c->id) != c || !c->service_id)
            continue; /* a duplicate key: the last one counts */
        long si = consul_index_find(v->svc_index, v->svc_mask, c->service_id,
                                    consul_svc_id_at, v);
        if (si < 0)
            continue;
        c->next = v->svcs[si].first_check;
        v->svcs[si].first_check = (long)i;
    }
    *out = v;
    return 0;
}

int consul_view_parse(struct consul_view **out, const char *services,
                      size_t services_len, const char *checks,
                      size_t checks_len, struct nc_error *err)
{
    return consul_view_parse_owned(
        out, services ? copy_text(services, services_len) : NULL, services_len,
        checks ? copy_text(checks, checks_len) : NULL, checks_len, err);
}

size_t consul_view_count(const struct consul_view *v, size_t *checks)
{
    size_t n = 0;
    for (size_t i = 0; v && i < v->nsvcs; i++)
        n += !v->svcs[i].forgotten &&
             view_service(v, v->svcs[i].id) == &v->svcs[i];
    if (checks)
        *checks = v ? v->nchks : 0;
    return n;
}

bool consul_is_nomad_task_id(const char *id)
{
    return id && nc_str_has_prefix(id, NOMAD_TASK_PREFIX);
}

/* The live entries: duplicates and forgotten ones left out. */
static bool view_live(const struct consul_view *v, size_t i)
{
    return !v->svcs[i].forgotten &&
           view_service(v, v->svcs[i].id) == &v->svcs[i];
}

void consul_view_stale(const struct consul_view *v,
                       bool (*wanted)(void *arg, const char *id), void *arg,
                       struct strlist *out)
{
    for (size_t i = 0; v && i < v->nsvcs; i++)
        if (view_live(v, i) && consul_is_nomad_task_id(v->svcs[i].id) &&
            !wanted(arg, v->svcs[i].id))
            strlist_add(out, v->svcs[i].id);
}

void consul_view_with_prefix(const struct consul_view *v, const char *prefix,
                             struct strlist *out)
{
    for (size_t i = 0; v && i < v->nsvcs; i++)
        if (view_live(v, i) && nc_str_has_prefix(v->svcs[i].id, prefix) &&
            !strlist_contains(out, v->svcs[i].id))
            strlist_add(out, v->svcs[i].id);
}

bool consul_view_service(const struct consul_view *v, const char *id,
                         const char **name, const char **address,
                         long long *port)
{
    const struct cv_service *e = view_service(v, id);
    if (!e)
        return false;
    if (name)
        *name = e->service_k == FIELD_OK ? e->service : "";
    if (address)
        *address = e->address_k == FIELD_OK ? e->address : "";
    if (port)
        *port = e->port_k == FIELD_OK ? e->port : 0;
    return true;
}

void consul_view_forget(struct consul_view *v, const char *id)
{
    struct cv_service *e = view_service(v, id);
    if (e)
        e->forgotten = true;
}

const char *consul_view_check_status(const struct consul_view *v,
                                     const char *check_id, const char **output)
{
    const struct cv_check *c = view_check(v, check_id);
    if (output)
        *output = c && c->output ? c->output : "";
    return c ? c->status : NULL;
}
