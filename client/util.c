/* util.c - see util.h. */
#include "client/util.h"

#include <jansson.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int nc_error_set(struct nc_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void nc_error_prefix(struct nc_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[512], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%s: %s", prefix, old);
    snprintf(err->msg, sizeof(err->msg), "%.*s", (int)sizeof(err->msg) - 1, b.data);
    nc_buf_free(&b);
}

static void oom(void)
{
    static const char m[] = "nomclient: out of memory\n";
    ssize_t r = write(2, m, sizeof(m) - 1);
    (void)r;
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *p = strdup(s);
    if (!p)
        oom();
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    va_start(ap, fmt);
    int r = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (r < 0)
        oom();
    return p;
}

void nc_grow(void **array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4;
    while (c < need)
        c *= 2;
    *array = xrealloc(*array, c * size);
    *cap = c;
}

void nc_buf_append(struct nc_buf *b, const char *s, size_t n)
{
    nc_grow((void **)&b->data, &b->cap, b->len + n + 1, 1);
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void nc_buf_puts(struct nc_buf *b, const char *s) { nc_buf_append(b, s, strlen(s)); }
void nc_buf_putc(struct nc_buf *b, char c) { nc_buf_append(b, &c, 1); }

void nc_buf_vprintf(struct nc_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    nc_grow((void **)&b->data, &b->cap, b->len + (size_t)n + 1, 1);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void nc_buf_printf(struct nc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *nc_buf_take(struct nc_buf *b)
{
    char *p = b->data ? b->data : xstrdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void nc_buf_free(struct nc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void kv_set(struct kvlist *l, const char *key, const char *value)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            char *v = xstrdup(value);
            free(l->items[i].value);
            l->items[i].value = v;
            return;
        }
    }
    nc_grow((void **)&l->items, &l->cap, l->n + 1, sizeof(*l->items));
    l->items[l->n].key = xstrdup(key);
    l->items[l->n].value = xstrdup(value);
    l->n++;
}

const char *kv_get(const struct kvlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

bool kv_remove(struct kvlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].key, key) == 0) {
            free(l->items[i].key);
            free(l->items[i].value);
            memmove(&l->items[i], &l->items[i + 1],
                    (l->n - i - 1) * sizeof(*l->items));
            l->n--;
            return true;
        }
    }
    return false;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

void kv_sort(struct kvlist *l)
{
    if (l->n > 1)
        qsort(l->items, l->n, sizeof(*l->items), kv_cmp);
}

void kv_copy(struct kvlist *dst, const struct kvlist *src)
{
    for (size_t i = 0; i < src->n; i++)
        kv_set(dst, src->items[i].key, src->items[i].value);
}

void kv_free(struct kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].key);
        free(l->items[i].value);
    }
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

void strlist_add(struct strlist *l, const char *s)
{
    nc_grow((void **)&l->items, &l->cap, l->n + 1, sizeof(*l->items));
    l->items[l->n++] = xstrdup(s);
}

bool strlist_contains(const struct strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], s) == 0)
            return true;
    return false;
}

void strlist_copy(struct strlist *dst, const struct strlist *src)
{
    for (size_t i = 0; i < src->n; i++)
        strlist_add(dst, src->items[i]);
}

void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

char *nc_read_file(const char *path, size_t *len, size_t max)
{
    if (!max)
        max = 64u << 20;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct nc_buf b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            nc_buf_free(&b);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r > max) {
            close(fd);
            nc_buf_free(&b);
            errno = EFBIG;
            return NULL;
        }
        nc_buf_append(&b, chunk, (size_t)r);
    }
    close(fd);
    if (len)
        *len = b.len;
    return nc_buf_take(&b);
}

static int fsync_dir_of(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int write_file_replace(const char *path, const char *data, size_t len,
                              int mode, bool durable)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = -errno;
        free(tmp);
        return e;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (durable && fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    free(tmp);
    return durable ? fsync_dir_of(path) : 0;
fail:;
    int e = -errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return e;
}

int nc_write_file_atomic(const char *path, const char *data, size_t len,
                         int mode)
{
    return write_file_replace(path, data, len, mode, true);
}

int nc_write_file_replace(const char *path, const char *data, size_t len,
                          int mode)
{
    return write_file_replace(path, data, len, mode, false);
}

int nc_write_file_inplace(const char *path, const char *data, size_t len,
                          int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    int r = 0;
    while (off < len && r == 0) {
        ssize_t w = pwrite(fd, data + off, len - off, (off_t)off);
        if (w < 0 && errno != EINTR)
            r = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (r == 0 && ftruncate(fd, (off_t)len) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    return r;
}

void nc_sched_short_slice(void)
{
    /* struct sched_attr of sched_setattr(2); glibc has no wrapper */
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } attr = {
        .size = sizeof(attr),
        .policy = 0,       /* SCHED_OTHER */
        .flags = 0x01,     /* SCHED_FLAG_RESET_ON_FORK */
        .nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)),
        .runtime = 100000, /* a 0.1 ms slice */
    };
    /* kernels without custom slices (before 6.12) take it as a no-op */
    (void)syscall(SYS_sched_setattr, 0, &attr, 0);
}

int nc_mkdir_p(const char *path, int mode)
{
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST) {
            int e = -errno;
            free(p);
            return e;
        }
        *s = '/';
    }
    int r = 0;
    if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
        r = -errno;
    free(p);
    return r;
}

/* Go's time.ParseDuration units. */
bool nc_parse_go_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < NC_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

int nc_parse_duration(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    if (!s || !*s)
        return -EINVAL;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    double total = 0;
    if (!*s)
        return -EINVAL;
    while (*s) {
        if (!isdigit((unsigned char)*s) && *s != '.')
            return -EINVAL;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno)
            return -EINVAL;
        s = end;
        size_t best = 0;
        double mult = 0;
        for (size_t i = 0; i < NC_ARRAY_LEN(units); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, ul) == 0 && ul > best) {
                best = ul;
                mult = units[i].mult;
            }
        }
        if (!best)
            return -EINVAL;
        s += best;
        total += v * mult;
        if (total > 9.2e18)
            return -ERANGE;
    }
    *ns = (int64_t)llround(neg ? -total : total);
    return 0;
}

void nc_format_duration(int64_t ns, char *out, size_t outlen)
{
    struct nc_buf b = {0};
    if (ns == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    uint64_t u = ns < 0 ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
    if (ns < 0)
        nc_buf_putc(&b, '-');
    if (u < 1000000000ull) {
        if (u < 1000)
            nc_buf_printf(&b, "%lluns", (unsigned long long)u);
        else if (u < 1000000)
            nc_buf_printf(&b, "%gus", (double)u / 1e3);
        else
            nc_buf_printf(&b, "%gms", (double)u / 1e6);
    } else {
        uint64_t h = u / 3600000000000ull;
        uint64_t m = (u / 60000000000ull) % 60;
        uint64_t rem = u % 60000000000ull;
        if (h)
            nc_buf_printf(&b, "%lluh", (unsigned long long)h);
        if (h || m)
            nc_buf_printf(&b, "%llum", (unsigned long long)m);
        if (rem % 1000000000ull == 0)
            nc_buf_printf(&b, "%llus", (unsigned long long)(rem / 1000000000ull));
        else
            nc_buf_printf(&b, "%.9gs", (double)rem / 1e9);
    }
    snprintf(out, outlen, "%s", b.data);
    nc_buf_free(&b);
}

uint64_t nc_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t nc_now_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void nc_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* last resort: never expected on Linux >= 3.17 */
            for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)rand();
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

void nc_uuid(char out[37])
{
    unsigned char b[16];
    nc_random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

bool nc_str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool nc_str_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool nc_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static enum nc_log_level log_level = NC_LOG_INFO;
static bool log_json;

int nc_log_parse_level(const char *s, enum nc_log_level *out)
{
    static const char *names[] = {"trace", "debug", "info", "warn", "error", "off"};
    for (size_t i = 0; i < NC_ARRAY_LEN(names); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum nc_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0 || strcasecmp(s, "err") == 0) {
        *out = s[0] == 'w' || s[0] == 'W' ? NC_LOG_WARN : NC_LOG_ERROR;
        return 0;
    }
    return -EINVAL;
}

void nc_log_setup(enum nc_log_level level, bool json)
{
    log_level = level;
    log_json = json;
}

bool nc_log_enabled(enum nc_log_level level) { return level >= log_level; }

static void json_escape_into(struct nc_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            nc_buf_putc(b, '\\');
            nc_buf_putc(b, (char)c);
        } else if (c == '\n') {
            nc_buf_puts(b, "\\n");
        } else if (c < 0x20) {
            nc_buf_printf(b, "\\u%04x", c);
        } else {
            nc_buf_putc(b, (char)c);
        }
    }
}

void nc_log(enum nc_log_level level, const char *module, const char *fmt, ...)
{
    static const char *upper[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
    static const char *lower[] = {"trace", "debug", "info", "warn", "error"};
    if (level < log_level || level >= NC_LOG_OFF)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    struct nc_buf msg = {0}, line = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (log_json) {
        nc_buf_printf(&line, "{\"@timestamp\":\"%s\",\"@level\":\"%s\",\"@module\":\"",
                      when, lower[level]);
        json_escape_into(&line, module);
        nc_buf_puts(&line, "\",\"@message\":\"");
        json_escape_into(&line, msg.data ? msg.data : "");
        nc_buf_puts(&line, "\"}\n");
    } else {
        nc_buf_printf(&line, "%s [%s] %s: %s\n", when, upper[level], module,
                      msg.data ? msg.data : "");
    }
    /* one write per line so concurrent writers do not interleave */
    ssize_t r = write(2, line.data, line.len);
    (void)r;
    nc_buf_free(&msg);
    nc_buf_free(&line);
}

void nc_cleanup_freep(void *p) { free(*(void **)p); }

void nc_cleanup_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

void nc_format_time(int64_t unix_ns, char *out, size_t outlen)
{
    if (unix_ns <= 0) {
        snprintf(out, outlen, "0001-01-01T00:00:00Z");
        return;
    }
    time_t t = (time_t)(unix_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%09lldZ", date,
             (long long)(unix_ns % 1000000000));
}

int nc_parse_time(const char *s, int64_t *unix_ns)
{
    *unix_ns = 0;
    if (!s || nc_str_has_prefix(s, "0001-01-01T"))
        return 0;
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -EINVAL;
    int64_t frac = 0;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*rest - '0');
        for (; digits < 9; digits++)
            frac *= 10;
    }
    if (strcmp(rest, "Z") != 0)
        return -EINVAL;
    *unix_ns = (int64_t)timegm(&tm) * 1000000000 + frac;
    return 0;
}

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------- */

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(struct nc_sha256 *s, const uint8_t *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof(v));
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof(*v));
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += v[i];
}

void nc_sha256_init(struct nc_sha256 *s)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                   0xa54ff53a, 0x510e527f, 0x9b05688c,
                                   0x1f83d9ab, 0x5be0cd19};
    memset(s, 0, sizeof(*s));
    memcpy(s->h, h0, sizeof(h0));
}

void nc_sha256_add(struct nc_sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bytes += len;
    while (len) {
        size_t take = 64 - s->fill < len ? 64 - s->fill : len;
        memcpy(s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        len -= take;
        if (s->fill == 64) {
            sha256_block(s, s->block);
            s->fill = 0;
        }
    }
}

void nc_sha256_hex(struct nc_sha256 *s, char out[65])
{
    uint64_t bits = s->bytes * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    nc_sha256_add(s, &pad, 1);
    while (s->fill != 56)
        nc_sha256_add(s, &zero, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    nc_sha256_add(s, len, 8);
    for (int i = 0; i < 8; i++)
        snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

void *nc_dlopen_symbols(const char *env, const char *const *names,
                        const char *label, const struct nc_dlsym *syms,
                        size_t nsyms, char *why, size_t whylen)
{
    const char *path = env ? getenv(env) : NULL;
    void *h = NULL;
    if (path && *path) {
        if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
            snprintf(why, whylen, "%s", dlerror());
    } else {
        for (size_t i = 0; !h && names[i]; i++)
            if (!(h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL)))
                snprintf(why, whylen, "%s", dlerror());
    }
    for (size_t i = 0; h && i < nsyms; i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            snprintf(why, whylen, "%s has no %s", label, syms[i].name);
            return NULL;
        }
    return h;
}

/* ---- base64 ------------------------------------------------------------- */

char *nc_base64_encode(const void *data, size_t n, bool url)
{
    const char *tbl = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = xcalloc(1, (n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = tbl[(v >> 18) & 63];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int nc_base64_decode(const char *s, size_t len, struct nc_buf *out)
{
    size_t pad = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
        return -EINVAL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            nc_buf_putc(out, (char)(acc >> bits & 0xff));
        }
    }
    if (bits && (acc & ((1u << bits) - 1)))
        return -EINVAL;
    return 0;
}

/* ---- lists as JSON ------------------------------------------------------ */

json_t *nc_strlist_json(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

json_t *nc_kvlist_json(const struct kvlist *l)
{
    json_t *o = json_object();
    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
    return o;
}
