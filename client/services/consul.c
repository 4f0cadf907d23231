/* consul.c - see consul.h.
 *
 * The loop in a few lines. consul_sync_update copies the desired
 * registrations (provider "consul"); a change of what is registered
 * schedules a pass, a change of check status only a push of those checks.
 * A pass GETs /v1/agent/services and /v1/agent/checks, diffs every desired
 * registration against them, queues a registration for what is missing or
 * different, a deregistration for every "_nomad-task-" service nothing
 * here wants, and a TTL update for every check whose status Consul does
 * not have; the pass ends when the queue answered. A pass that could not
 * talk to Consul is retried after an exponential, capped, jittered
 * backoff (no request goes out meanwhile but a stopping allocation's
 * deregistrations); a good one is followed by the next in 30 s. Check
 * status goes out on a change and as a keep-alive at half the TTL, from
 * one timer armed at the earliest keep-alive due. At most max_in_flight
 * requests run at once over reused connections. */
#include "client/services/services.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/curl_uv.h"

#define NOMAD_TASK_PREFIX "_nomad-task-"
#define SEC 1000000000ull
#define MS 1000000ull
#define ANSWER_BODY_KEEP 2048    /* of each answer, for the debugging view */
#define GET_MAX_BODY (64u << 20) /* a Consul agent with ~100k services */
#define WRITE_MAX_BODY (64u << 10)
#define KEEPALIVE_SLACK_NS SEC /* keep-alives due this soon go together */
#define DIFF_LINES_PER_FIELD 8 /* a hostile Meta stays readable */
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

/* how a field of Consul's entry came: absent, null, as expected, or not */
enum fkind { FIELD_ABSENT, FIELD_NULL, FIELD_OK, FIELD_BAD };

struct span {
    const char *p;
    size_t len;
};

struct cv_service {
    const char *id;
    bool is_object, forgotten;
    enum fkind service_k, tags_k, address_k, port_k, meta_k, eto_k;
    const char *service, *address;
    long long port;
    bool eto;
    size_t tags_first, ntags; /* into strs */
    size_t meta_first, nmeta; /* key/value pairs into strs */
    /* raw text of values of the wrong type, for the differences */
    struct span service_raw, tags_raw, address_raw, port_raw, meta_raw, eto_raw;
    long first_check; /* its checks in chks, linked by next; -1 none */
};

struct cv_check {
    const char *id, *service_id, *status, *output, *type;
    bool is_object;
    bool has_ttl;
    int64_t ttl_ns;
    long next;
};

struct consul_view {
    char *stext, *ctext; /* copies of the answers, decoded in place */
    struct cv_service *svcs;
    size_t nsvcs, svcs_cap;
    struct cv_check *chks;
    size_t nchks, chks_cap;
    const char **strs;
    size_t nstrs, strs_cap;
    uint32_t *svc_index, *chk_index; /* open addressing: slot + 1 */
    size_t svc_mask, chk_mask;
};

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

static uint64_t hash_str(const char *s)
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
        size_t slot = hash_str(id) & *mask;
        while ((*table)[slot] && strcmp(id_at(v, (*table)[slot] - 1), id) != 0)
            slot = (slot + 1) & *mask;
        (*table)[slot] = (uint32_t)(i + 1);
    }
}

static long index_find_hashed(const uint32_t *table, size_t mask,
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

static long index_find(const uint32_t *table, size_t mask, const char *id,
                       const char *(*id_at)(const struct consul_view *, size_t),
                       const struct consul_view *v)
{
    if (!table || !id)
        return -1;
    size_t slot = hash_str(id) & mask;
    while (table[slot]) {
        if (strcmp(id_at(v, table[slot] - 1), id) == 0)
            return (long)table[slot] - 1;
        slot = (slot + 1) & mask;
    }
    return -1;
}

static const char *svc_id_at(const struct consul_view *v, size_t i)
{
    return v->svcs[i].id;
}

static const char *chk_id_at(const struct consul_view *v, size_t i)
{
    return v->chks[i].id;
}

static struct cv_service *view_service(const struct consul_view *v,
                                       const char *id)
{
    long i = v ? index_find(v->svc_index, v->svc_mask, id, svc_id_at, v) : -1;
    return i < 0 || v->svcs[i].forgotten ? NULL : &v->svcs[i];
}

static struct cv_check *view_check(const struct consul_view *v, const char *id)
{
    long i = v ? index_find(v->chk_index, v->chk_mask, id, chk_id_at, v) : -1;
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
static int view_parse_owned(struct consul_view **out, char *stext, size_t slen,
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
    index_build(&v->svc_index, &v->svc_mask, v->nsvcs, svc_id_at, v);
    index_build(&v->chk_index, &v->chk_mask, v->nchks, chk_id_at, v);
    /* each service's checks, in Consul's order (pushed in reverse) */
    for (size_t i = v->nchks; i-- > 0;) {
        struct cv_check *c = &v->chks[i];
        if (view_check(v, c->id) != c || !c->service_id)
            continue; /* a duplicate key: the last one counts */
        long si =
            index_find(v->svc_index, v->svc_mask, c->service_id, svc_id_at, v);
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
    return view_parse_owned(
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

static char *utf8_clean(const char *s, size_t len, size_t max);

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
    char *clean = utf8_clean(str, strlen(str), 200);
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
        char *clean = utf8_clean(raw.p ? raw.p : "", raw.len, 120);
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
        char *clean =
            utf8_clean(v->strs[first + i], strlen(v->strs[first + i]), 100);
        json_array_append_new(a, json_string(clean));
        free(clean);
    }
    render(a, out, outlen);
    json_decref(a);
}

/* What a payload asks for, taken out of its JSON once: the diff of a
 * registration in sync is then a few string compares. Strings point into
 * the payload, which must outlive it. */
struct want_check {
    const char *id, *name;
    int64_t ttl_ns;
    bool has_ttl;
    uint64_t hash;
};

struct want {
    const json_t *payload;
    const char *id, *name, *address;
    uint64_t hash;
    long long port;
    bool eto;
    const char **tags; /* ntags, then nmeta key/value pairs */
    size_t ntags, nmeta;
    struct want_check *checks;
    size_t nchecks;
};

static uint64_t hash_str(const char *s);

static void want_free(struct want *w)
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

static void want_from_payload(struct want *w, const json_t *payload)
{
    memset(w, 0, sizeof(*w));
    w->payload = payload;
    w->id = json_string_value(json_object_get(payload, "ID"));
    w->hash = w->id ? hash_str(w->id) : 0;
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
        c->hash = hash_str(c->id);
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

static long index_find_hashed(const uint32_t *table, size_t mask,
                              const char *id, uint64_t hash,
                              const char *(*id_at)(const struct consul_view *,
                                                   size_t),
                              const struct consul_view *v);

static void diff_checks(struct diff *d, const struct want *w,
                        const struct consul_view *v, const struct cv_service *e)
{
    size_t matched = 0;
    char h[200];
    for (size_t i = 0; i < w->nchecks; i++) {
        const struct want_check *wc = &w->checks[i];
        long ci = index_find_hashed(v->chk_index, v->chk_mask, wc->id, wc->hash,
                                    chk_id_at, v);
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

static enum consul_diff_state diff_want(const struct want *w,
                                        const struct consul_view *v,
                                        struct strlist *diffs)
{
    struct diff d = {diffs, 0};
    const json_t *p = w->payload;
    long si = v && w->id ? index_find_hashed(v->svc_index, v->svc_mask, w->id,
                                             w->hash, svc_id_at, v)
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
    want_from_payload(&w, payload);
    enum consul_diff_state st = diff_want(&w, v, diffs);
    want_free(&w);
    return st;
}

/* ---- the sync loop's state ---- */

enum reg_state {
    REG_PENDING,
    REG_IN_SYNC,
    REG_MISSING,
    REG_DIFFERENT,
    REG_REJECTED,
    REG_UNREACHABLE,
};

static const char *const reg_state_name[] = {
    "pending", "in sync", "missing", "different", "rejected", "unreachable",
};

/* The last request about one object and what came back. */
struct answer {
    int64_t time_ns;    /* unix; 0 = none yet */
    const char *method; /* static */
    char *path;
    long status; /* 0 = no HTTP answer */
    char *body;  /* cut to ANSWER_BODY_KEEP, valid UTF-8 */
    char *error; /* transport error, or NULL */
};

struct cs_check {
    char *id, *name;
    char *status, *output; /* what this node wants */
    int64_t ttl_ns;
    /* what Consul holds as far as we know (NULL: unknown) */
    char *consul_status, *consul_output;
    uint64_t last_write_ns;  /* monotonic: we last reset its TTL */
    uint64_t retry_after_ns; /* after a failed update */
    unsigned failures;
    bool queued;
    uint64_t updates;
    struct answer last;
};

struct cs_reg {
    char *key; /* reg_key() of what it was made from */
    size_t key_len;
    char *id, *name, *alloc_id;
    char *error;       /* services.c: cannot be registered, why */
    json_t *payload;   /* services_consul_payload() minus checks' Status */
    struct want want;  /* the payload, taken apart for the diff */
    json_t *last_sent; /* the last registration body */
    struct cs_check *checks;
    size_t nchecks;
    enum reg_state state;
    struct strlist diffs;    /* of the last comparison */
    struct strlist repaired; /* what the last registration fixed */
    struct answer last;
    unsigned gen;           /* bumped when the payload changes */
    unsigned attempts;      /* registrations sent for this payload */
    unsigned failures;      /* in a row */
    uint64_t next_retry_ns; /* monotonic, 0 = none */
    bool queued;
    bool in_consul;
};

struct cs_stale {
    char *id, *name, *address, *reason;
    json_int_t port;
    struct answer last;
};

struct cs_departed {
    char *id, *alloc_id;
};

struct flush {
    char *alloc_id;
    size_t pending;
    void (*done)(void *arg, const char *alloc_id);
    void *arg;
    struct flush *prev, *next;
};

enum op_kind {
    OP_GET_SERVICES,
    OP_GET_CHECKS,
    OP_REGISTER,
    OP_DEREGISTER,
    OP_CHECK_UPDATE,
};

struct op {
    struct consul_sync *s;
    enum op_kind kind;
    char *id;              /* service ID; check ID for an update */
    char *service_id;      /* the check's service */
    char *status, *output; /* what an update sent */
    json_t *sent;          /* what a registration sent */
    unsigned gen;          /* of the payload it sent */
    char *path;
    struct flush *flush;
    bool in_pass;
    uint64_t sent_ns;
    struct curl_uv_xfer *xfer;
    struct op *prev, *next;
};

struct op_list {
    struct op *head, *tail;
    size_t n;
};

struct consul_sync {
    uv_loop_t *loop;
    struct curl_uv *http;
    struct consul_addr addr;
    char *display;
    char *token_header;
    const char *headers[4];
    const char *json_headers[5];
    struct curl_uv_tls tls;
    struct consul_sync_tuning tune;

    struct cs_reg *regs; /* sorted by ID */
    size_t nregs;
    struct cs_departed *departed;
    size_t ndeparted, departed_cap;
    struct cs_stale *stale;
    size_t nstale;
    struct consul_view *view; /* of the last good pass */

    uv_timer_t pass_timer, keepalive_timer;
    bool updated; /* the first update came */
    bool pass_running, pass_wanted, pass_diffed, pass_failed;
    bool pass_transport; /* the failure was not an HTTP answer */
    uint64_t pass_start_ns, pass_due_ns, pass_writes;
    size_t pass_pending;
    char *got_services, *got_checks;
    size_t got_services_len, got_checks_len;
    unsigned failures; /* passes in a row */
    uint64_t backoff_ns, backoff_until_ns;
    int reachable;        /* -1 unknown */
    long pass_get_status; /* HTTP status of a failed GET */

    struct op_list queue, inflight;
    struct flush *flushes;
    bool pumping;

    uint64_t n_registrations, n_deregistrations, n_check_updates, n_errors,
        n_passes, n_requests, n_writes;
    int64_t last_sync_unix_ns;
    uint64_t last_pass_ns, last_diff_ns, last_pass_writes, last_read_bytes;
    char last_error[1024];
    int64_t last_error_unix_ns;

    bool closing;
    int open_handles;
};

static const struct consul_sync_tuning default_tuning = {
    .periodic_ns = 30 * SEC,
    .coalesce_ns = 20 * MS,
    .backoff_base_ns = SEC,
    .backoff_cap_ns = 60 * SEC,
    .max_in_flight = 8,
    .request_timeout_ms = 10000,
};

/* ---- small helpers ---- */

/* A copy that json_string accepts: invalid UTF-8 and NULs become '?'. */
static char *utf8_clean(const char *s, size_t len, size_t max)
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

static void answer_clear(struct answer *a)
{
    free(a->path);
    free(a->body);
    free(a->error);
    memset(a, 0, sizeof(*a));
}

static const char *transport_kind(const struct curl_uv_response *r)
{
    if (r->timed_out || r->os_errno == ETIMEDOUT)
        return "timeout";
    switch (r->os_errno) {
    case ECONNREFUSED:
        return "connection refused";
    case ENOENT:
        return "no such socket";
    case EACCES:
    case EPERM:
        return "permission denied";
    case ECONNRESET:
        return "connection reset";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "unreachable";
    default:
        return r->capped ? "answer too large" : "transport error";
    }
}

/* HTTP 2xx/404/other 4xx, 5xx, or no answer at all. */
enum outcome { OUT_OK, OUT_NOT_FOUND, OUT_REJECTED, OUT_SERVER, OUT_TRANSPORT };

static enum outcome classify(const struct curl_uv_response *r)
{
    if (r->status == 0 || (r->curl_code != 0 && !r->capped))
        return OUT_TRANSPORT;
    if (r->status >= 200 && r->status < 300)
        return r->capped ? OUT_TRANSPORT : OUT_OK;
    if (r->status == 404)
        return OUT_NOT_FOUND;
    if (r->status >= 400 && r->status < 500)
        return OUT_REJECTED;
    return OUT_SERVER;
}

/* "timeout: Operation timed out after 10001 milliseconds..." or
 * "HTTP 403: Permission denied" */
static void outcome_text(const struct curl_uv_response *r, char *out,
                         size_t outlen)
{
    if (classify(r) == OUT_TRANSPORT) {
        snprintf(out, outlen, "%s: %s", transport_kind(r),
                 r->error && *r->error ? r->error : "no answer");
        return;
    }
    char *body = utf8_clean(r->body, r->body_len, 300);
    size_t bl = strlen(body);
    while (bl && (body[bl - 1] == '\n' || body[bl - 1] == '\r'))
        body[--bl] = '\0';
    snprintf(out, outlen, "HTTP %ld%s%s", r->status, *body ? ": " : "", body);
    free(body);
}

static void answer_set(struct answer *a, const char *method, const char *path,
                       const struct curl_uv_response *r)
{
    answer_clear(a);
    a->time_ns = nc_now_unix_ns();
    a->method = method;
    a->path = xstrdup(path);
    a->status = classify(r) == OUT_TRANSPORT ? 0 : r->status;
    a->body = utf8_clean(r->body ? r->body : "", r->body_len, ANSWER_BODY_KEEP);
    if (classify(r) == OUT_TRANSPORT) {
        char text[600];
        outcome_text(r, text, sizeof(text));
        a->error = xstrdup(text);
    }
}

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

static json_t *answer_json(const struct answer *a)
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

static json_t *strlist_json(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static void set_str(char **dst, const char *src)
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
    answer_clear(&c->last);
}

static void reg_free(struct cs_reg *r)
{
    free(r->key);
    free(r->id);
    free(r->name);
    free(r->alloc_id);
    free(r->error);
    want_free(&r->want);
    json_decref(r->payload);
    json_decref(r->last_sent);
    for (size_t i = 0; i < r->nchecks; i++)
        check_free(&r->checks[i]);
    free(r->checks);
    strlist_free(&r->diffs);
    strlist_free(&r->repaired);
    answer_clear(&r->last);
    memset(r, 0, sizeof(*r));
}

static void stale_free(struct cs_stale *st)
{
    free(st->id);
    free(st->name);
    free(st->address);
    free(st->reason);
    answer_clear(&st->last);
}

static int reg_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct cs_reg *)elem)->id);
}

static struct cs_reg *reg_find(const struct consul_sync *s, const char *id)
{
    return s->nregs && id
               ? bsearch(id, s->regs, s->nregs, sizeof(*s->regs), reg_cmp)
               : NULL;
}

static struct cs_check *check_find(struct cs_reg *r, const char *id)
{
    for (size_t i = 0; r && i < r->nchecks; i++)
        if (strcmp(r->checks[i].id, id) == 0)
            return &r->checks[i];
    return NULL;
}

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
        stale_free(&s->stale[i]);
        memmove(&s->stale[i], &s->stale[i + 1],
                (s->nstale - i - 1) * sizeof(*s->stale));
        s->nstale--;
        return;
    }
}

static void departed_remove_at(struct consul_sync *s, size_t i)
{
    free(s->departed[i].id);
    free(s->departed[i].alloc_id);
    if (i != --s->ndeparted)
        s->departed[i] = s->departed[s->ndeparted];
}

static void departed_remove(struct consul_sync *s, const char *id)
{
    for (size_t i = 0; i < s->ndeparted; i++)
        if (strcmp(s->departed[i].id, id) == 0) {
            departed_remove_at(s, i);
            return;
        }
}

static void set_error(struct consul_sync *s, const char *text)
{
    snprintf(s->last_error, sizeof(s->last_error), "%s", text);
    s->last_error_unix_ns = nc_now_unix_ns();
}

/* ---- the request queue ---- */

static void list_push(struct op_list *l, struct op *op, bool front)
{
    op->prev = op->next = NULL;
    if (!l->head) {
        l->head = l->tail = op;
    } else if (front) {
        op->next = l->head;
        l->head->prev = op;
        l->head = op;
    } else {
        op->prev = l->tail;
        l->tail->next = op;
        l->tail = op;
    }
    l->n++;
}

static void list_unlink(struct op_list *l, struct op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    l->n--;
}

static void op_free(struct op *op)
{
    free(op->id);
    free(op->service_id);
    free(op->status);
    free(op->output);
    free(op->path);
    json_decref(op->sent);
    free(op);
}

static struct op *op_new(struct consul_sync *s, enum op_kind kind,
                         const char *id, bool in_pass)
{
    struct op *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->kind = kind;
    op->id = xstrdup(id);
    op->in_pass = in_pass;
    if (in_pass)
        s->pass_pending++;
    return op;
}

static void pump(struct consul_sync *s);
static void pass_op_done(struct consul_sync *s);
static void arm_keepalive(struct consul_sync *s);

static void flush_op_done(struct consul_sync *s, struct flush *f)
{
    if (--f->pending)
        return;
    if (f->prev)
        f->prev->next = f->next;
    else
        s->flushes = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->done(f->arg, f->alloc_id);
    free(f->alloc_id);
    free(f);
}

static void enqueue(struct consul_sync *s, struct op *op, bool front)
{
    list_push(&s->queue, op, front);
}

/* Ends an op that was answered, failed to start or is no longer wanted:
 * the pass and the flush it belongs to learn of it. */
static void op_finish(struct consul_sync *s, struct op *op)
{
    bool in_pass = op->in_pass;
    struct flush *f = op->flush;
    op_free(op);
    if (f)
        flush_op_done(s, f);
    if (in_pass)
        pass_op_done(s);
}

static void escape_path(struct nc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
            *p == '~') {
            nc_buf_putc(b, (char)*p);
        } else {
            nc_buf_putc(b, '%');
            nc_buf_putc(b, hex[*p >> 4]);
            nc_buf_putc(b, hex[*p & 15]);
        }
    }
}

static char *op_path(const char *prefix, const char *id, const char *suffix)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, prefix);
    if (id)
        escape_path(&b, id);
    if (suffix)
        nc_buf_puts(&b, suffix);
    return nc_buf_take(&b);
}

/* The registration body: the stored payload with each check's current
 * status, so Consul starts the TTL check where this node stands. */
static json_t *register_body(const struct cs_reg *r)
{
    json_t *body = json_deep_copy(r->payload);
    json_t *checks = json_object_get(body, "Checks");
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        if (i < r->nchecks)
            json_object_set_new(c, "Status", json_string(r->checks[i].status));
    }
    return body;
}

static void on_answer(void *arg, const struct curl_uv_response *r);

/* Fills in what an op sends, from the state at sending time: false when
 * there is nothing to send any more. */
static bool op_prepare(struct consul_sync *s, struct op *op,
                       const char **method, char **body)
{
    *body = NULL;
    switch (op->kind) {
    case OP_GET_SERVICES:
        *method = "GET";
        op->path = xstrdup("/v1/agent/services");
        return true;
    case OP_GET_CHECKS:
        *method = "GET";
        op->path = xstrdup("/v1/agent/checks");
        return true;
    case OP_DEREGISTER:
        *method = "PUT";
        op->path = op_path("/v1/agent/service/deregister/", op->id, NULL);
        return true;
    case OP_REGISTER: {
        struct cs_reg *r = reg_find(s, op->id);
        if (!r || r->error || !r->payload)
            return false;
        *method = "PUT";
        op->path = xstrdup(r->in_consul ? "/v1/agent/service/register"
                                          "?replace-existing-checks=true"
                                        : "/v1/agent/service/register");
        op->sent = register_body(r);
        op->gen = r->gen;
        *body = json_dumps(op->sent, JSON_COMPACT);
        json_decref(r->last_sent);
        r->last_sent = json_incref(op->sent);
        r->attempts++;
        return *body != NULL;
    }
    case OP_CHECK_UPDATE: {
        struct cs_check *c = check_find(reg_find(s, op->service_id), op->id);
        if (!c)
            return false;
        *method = "PUT";
        op->path = op_path("/v1/agent/check/update/", op->id, NULL);
        op->status = xstrdup(c->status);
        op->output = xstrdup(c->output);
        json_t *j =
            json_pack("{s:s, s:s}", "Status", c->status, "Output", c->output);
        *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return *body != NULL;
    }
    }
    return false;
}

static void op_start(struct consul_sync *s, struct op *op)
{
    const char *method = "GET";
    char *body = NULL;
    if (!op_prepare(s, op, &method, &body)) {
        free(body);
        if (op->kind == OP_CHECK_UPDATE) {
            struct cs_check *c =
                check_find(reg_find(s, op->service_id), op->id);
            if (c)
                c->queued = false;
        } else if (op->kind == OP_REGISTER) {
            struct cs_reg *r = reg_find(s, op->id);
            if (r)
                r->queued = false;
        }
        op_finish(s, op);
        return;
    }
    char *url = xasprintf("%s%s", s->addr.base_url, op->path);
    struct curl_uv_request req = {
        .method = method,
        .url = url,
        .unix_socket = s->addr.unix_socket,
        .headers = body ? s->json_headers : s->headers,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .tls = &s->tls,
        .timeout_ms = s->tune.request_timeout_ms,
        .connect_timeout_ms = s->tune.request_timeout_ms < 3000
                                  ? s->tune.request_timeout_ms
                                  : 3000,
        .max_body = strcmp(method, "GET") == 0 ? GET_MAX_BODY : WRITE_MAX_BODY,
    };
    op->sent_ns = nc_now_mono_ns();
    s->n_requests++;
    if (strcmp(method, "GET") != 0)
        s->n_writes++;
    list_push(&s->inflight, op, false);
    int rc = curl_uv_start(s->http, &req, on_answer, op, &op->xfer);
    free(url);
    free(body);
    if (rc < 0) { /* on_answer unlinks it */
        struct curl_uv_response r = {.error = "cannot start the request",
                                     .curl_code = -1};
        on_answer(op, &r);
    }
}

/* Sends what the queue holds, max_in_flight at a time. */
static void pump(struct consul_sync *s)
{
    if (s->pumping || s->closing)
        return;
    s->pumping = true;
    while (s->queue.head && s->inflight.n < s->tune.max_in_flight &&
           !s->closing) {
        struct op *op = s->queue.head;
        list_unlink(&s->queue, op);
        op_start(s, op);
    }
    s->pumping = false;
    if (!s->closing && !s->queue.head && !s->inflight.n)
        arm_keepalive(s);
}

/* ---- answers ---- */

static void schedule_pass_at(struct consul_sync *s, uint64_t due, bool force);

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
    schedule_pass_at(s, s->backoff_until_ns, true);
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
    struct cs_reg *r = reg_find(s, op->id);
    if (!r) /* gone meanwhile: a later pass removes it if Consul has it */
        return;
    r->queued = false;
    enum outcome o = classify(resp);
    char text[600];
    outcome_text(resp, text, sizeof(text));
    bool same_rejection = r->state == REG_REJECTED &&
                          r->last.status == resp->status && r->last.body &&
                          resp->body &&
                          strncmp(r->last.body, resp->body, 300) == 0;
    answer_set(&r->last, "PUT", op->path, resp);
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
            set_str(&c->consul_status, st ? st : "critical");
            set_str(&c->consul_output, "");
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
    enum outcome o = classify(resp);
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
        departed_remove(s, op->id);
        consul_view_forget(s->view, op->id); /* a flush asks no more */
        return;
    }
    char text[600];
    outcome_text(resp, text, sizeof(text));
    s->n_errors++;
    if (st) {
        bool same = st->last.status == resp->status;
        answer_set(&st->last, "PUT", op->path, resp);
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
    struct cs_reg *r = reg_find(s, op->service_id);
    struct cs_check *c = check_find(r, op->id);
    if (!c)
        return;
    c->queued = false;
    answer_set(&c->last, "PUT", op->path, resp);
    enum outcome o = classify(resp);
    uint64_t now = nc_now_mono_ns();
    if (o == OUT_OK) {
        if (!nc_streq(c->consul_status, op->status))
            LOG_DEBUG("consul", "check %s of %s is now %s in Consul", c->id,
                      r->id, op->status);
        s->n_check_updates++;
        c->updates++;
        set_str(&c->consul_status, op->status);
        set_str(&c->consul_output, op->output);
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
    outcome_text(resp, text, sizeof(text));
    if (reg_check_missing(resp)) {
        /* Consul lost it (restarted without its state?): register again */
        if (r->state == REG_IN_SYNC)
            LOG_INFO("consul",
                     "Consul lost check %s of %s (%s); registering "
                     "again",
                     c->id, r->id, text);
        r->state = REG_MISSING;
        s->pass_wanted = true;
        schedule_pass_at(s, now + s->tune.coalesce_ns, false);
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
    enum outcome o = classify(resp);
    if (o != OUT_OK) {
        char text[700], full[800];
        outcome_text(resp, text, sizeof(text));
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

static void on_answer(void *arg, const struct curl_uv_response *resp)
{
    struct op *op = arg;
    struct consul_sync *s = op->s;
    list_unlink(&s->inflight, op);
    op->xfer = NULL;
    if (classify(resp) != OUT_TRANSPORT)
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
    op_finish(s, op);
    pump(s);
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
    struct op *op = op_new(s, OP_CHECK_UPDATE, c->id, in_pass);
    op->service_id = xstrdup(r->id);
    c->queued = true;
    enqueue(s, op, false);
}

/* Queues every check update due. Outside a pass and while Consul is known
 * down, nothing: the pass after the backoff does it. */
static void collect_pushes(struct consul_sync *s, bool in_pass)
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
    collect_pushes(s, false);
    pump(s);
    if (!s->queue.head && !s->inflight.n)
        arm_keepalive(s);
}

/* One timer at the earliest keep-alive due; re-armed when the queue is
 * empty. Stopped while Consul is down (the next pass re-arms it). */
static void arm_keepalive(struct consul_sync *s)
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
static void schedule_pass_at(struct consul_sync *s, uint64_t due, bool force)
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
static void request_pass(struct consul_sync *s)
{
    s->pass_wanted = true;
    if (s->pass_running)
        return;
    uint64_t due = nc_now_mono_ns() + s->tune.coalesce_ns;
    if (s->failures && due < s->backoff_until_ns)
        due = s->backoff_until_ns;
    schedule_pass_at(s, due, false);
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
    enqueue(s, op_new(s, OP_GET_CHECKS, NULL, true), true);
    enqueue(s, op_new(s, OP_GET_SERVICES, NULL, true), true);
    pump(s);
}

static bool wanted_here(void *arg, const char *id)
{
    return reg_find(arg, id) != NULL;
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
        set_str(&st->name, name);
        set_str(&st->address, address);
        st->port = (json_int_t)port;
        enqueue(s, op_new(s, OP_DEREGISTER, id, true), false);
        s->pass_writes++;
    }
    strlist_free(&ids);
    /* departed entries Consul no longer has need nothing more */
    for (size_t i = 0; i < s->ndeparted;) {
        if (consul_view_service(s->view, s->departed[i].id, NULL, NULL, NULL))
            i++;
        else
            departed_remove_at(s, i);
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
    int rc = view_parse_owned(&v, s->got_services, s->got_services_len,
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
        enum consul_diff_state st = diff_want(&r->want, v, &r->diffs);
        r->in_consul = st != CONSUL_MISSING;
        bool hashed = r->want.nchecks == r->nchecks;
        for (size_t k = 0; k < r->nchecks; k++) {
            struct cs_check *c = &r->checks[k];
            /* the hash the diff computed once for this check */
            long ci =
                hashed ? index_find_hashed(v->chk_index, v->chk_mask, c->id,
                                           r->want.checks[k].hash, chk_id_at, v)
                       : index_find(v->chk_index, v->chk_mask, c->id, chk_id_at,
                                    v);
            const char *cs = ci >= 0 ? v->chks[ci].status : NULL;
            const char *out =
                ci >= 0 && v->chks[ci].output ? v->chks[ci].output : "";
            if (cs) {
                set_str(&c->consul_status, cs);
                set_str(&c->consul_output, out);
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
            enqueue(s, op_new(s, OP_REGISTER, r->id, true), false);
            s->pass_writes++;
        }
    }
    pass_find_stale(s);
    size_t before = s->queue.n;
    collect_pushes(s, true);
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
        schedule_pass_at(s, next, true);
        collect_pushes(s, false); /* changes that came during the pass */
        pump(s);
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
        schedule_pass_at(s, s->backoff_until_ns, true);
    }
    free(s->got_services);
    free(s->got_checks);
    s->got_services = s->got_checks = NULL;
    arm_keepalive(s);
    if (s->tune.on_pass)
        s->tune.on_pass(s->tune.arg, ok);
}

static void pass_op_done(struct consul_sync *s)
{
    if (--s->pass_pending)
        return;
    if (!s->pass_diffed) {
        pass_diff(s);
        pump(s);
        if (s->pass_pending)
            return;
    }
    pass_end(s);
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
            set_str(&c->status, st);
            changed = true;
        }
        set_str(&c->output, r->checks[k].output ? r->checks[k].output : "");
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
        want_from_payload(&n->want, n->payload);
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
        struct cs_check *o = check_find(old, c->id);
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
            departed_remove(s, nr->id);
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
        request_pass(s);
    if (status_changed || changed) {
        collect_pushes(s, false);
        pump(s);
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
        if (!reg_find(s, seen.items[i]) &&
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
        struct op *op = op_new(s, OP_DEREGISTER, ids.items[i], false);
        op->flush = f;
        enqueue(s, op, true);
    }
    LOG_DEBUG("consul", "deregistering %zu service(s) of allocation %.8s",
              ids.n, alloc_id);
    strlist_free(&ids);
    pump(s);
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
    schedule_pass_at(s, nc_now_mono_ns() + FIRST_PASS_WAIT_NS, true);
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
        stale_free(&s->stale[i]);
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
            list_unlink(lists[l], op);
            op_free(op);
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
        schedule_pass_at(s, nc_now_mono_ns(), true);
}

/* ---- the debugging view ---- */

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
    const struct cs_reg *r = s ? reg_find(s, service_id) : NULL;
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
    json_object_set_new(j, "Differences", strlist_json(&r->diffs));
    json_object_set_new(j, "Repaired", strlist_json(&r->repaired));
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
