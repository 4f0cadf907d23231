/* util.h - small helpers shared by every module: errors, growable buffers,
 * key/value lists, files, durations and logging.
 *
 * Conventions: functions return 0 or a negative errno; an optional
 * `struct nc_error *` out-parameter receives a human message with context.
 * Allocation failure aborts (there is no sane way to continue an agent
 * without memory), so the x* helpers never return NULL. */
#ifndef NOMCLIENT_UTIL_H
#define NOMCLIENT_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* An error travelling up to where the user sees it: errno-style code and a
 * message that already names the file, line, field or object involved. */
struct nc_error {
    int code;       /* negative errno, 0 when unset */
    char msg[1024]; /* "file:line:col: what is wrong" or similar */
};

/* Fills err (if not NULL) and returns code, so callers can
 * `return nc_error_set(err, -EINVAL, "...")`. */
int nc_error_set(struct nc_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing message. */
void nc_error_prefix(struct nc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);            /* NULL stays NULL */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Grows an array to hold at least `need` elements of `size` bytes. */
void nc_grow(void **array, size_t *cap, size_t need, size_t size);

/* A growable byte buffer, always NUL-terminated when data != NULL. */
struct nc_buf {
    char *data;
    size_t len, cap;
};
void nc_buf_append(struct nc_buf *b, const char *s, size_t n);
void nc_buf_puts(struct nc_buf *b, const char *s);
void nc_buf_putc(struct nc_buf *b, char c);
void nc_buf_printf(struct nc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void nc_buf_vprintf(struct nc_buf *b, const char *fmt, va_list ap);
/* Hands the string to the caller (never NULL) and resets the buffer. */
char *nc_buf_take(struct nc_buf *b);
void nc_buf_free(struct nc_buf *b);

/* An ordered list of string pairs (meta, env, attributes). Keys are unique:
 * kv_set replaces an existing value. */
struct kv {
    char *key;
    char *value;
};
struct kvlist {
    struct kv *items;
    size_t n, cap;
};
void kv_set(struct kvlist *l, const char *key, const char *value);
const char *kv_get(const struct kvlist *l, const char *key);
bool kv_remove(struct kvlist *l, const char *key);
void kv_sort(struct kvlist *l);
void kv_copy(struct kvlist *dst, const struct kvlist *src);
void kv_free(struct kvlist *l);

/* A list of owned strings. */
struct strlist {
    char **items;
    size_t n, cap;
};
void strlist_add(struct strlist *l, const char *s);
bool strlist_contains(const struct strlist *l, const char *s);
void strlist_copy(struct strlist *dst, const struct strlist *src);
void strlist_free(struct strlist *l);

/* Reads a whole file; caller frees. Returns NULL and sets errno on failure.
 * `max` bounds the size (0 = 64 MiB). */
char *nc_read_file(const char *path, size_t *len, size_t max);
/* Writes via temp file + fsync + rename + directory fsync. */
int nc_write_file_atomic(const char *path, const char *data, size_t len,
                         int mode);
/* The same without the fsyncs: readers see the old or the new content,
 * never a mix, but a power loss may keep the old one. For a state whose
 * loss costs nothing because a durable write follows (an allocation's
 * first save). */
int nc_write_file_replace(const char *path, const char *data, size_t len,
                          int mode);
/* Overwrites path in place (made if missing): no new file, so nothing
 * to allocate or free on the filesystem, but a reader at the same moment
 * or a crash mid-write sees a mix. For files only their writer reads
 * (a task's spec, written before its supervisor starts). */
int nc_write_file_inplace(const char *path, const char *data, size_t len,
                          int mode);
/* Asks the scheduler for short time slices for the calling thread (EEVDF
 * custom slice, Linux 6.12+; a no-op before): the same CPU share, but on
 * waking it preempts a busy CPU at once instead of waiting up to a few ms
 * for the running task's slice to end. For threads that do little work
 * and wait on events: the agent's loop, the network helper's threads.
 * Not inherited by the processes they start (reset on fork). */
void nc_sched_short_slice(void);
/* mkdir -p with the given mode. */
int nc_mkdir_p(const char *path, int mode);

/* Nomad durations ("10s", "1h30m", "250ms", "1.5s", "0") to nanoseconds.
 * Returns 0 or -EINVAL. */
int nc_parse_duration(const char *s, int64_t *ns);
/* Go's strconv.ParseBool ("1", "t", "TRUE", "true", "True", and the same
 * for false): false when s is none of them. */
bool nc_parse_go_bool(const char *s, bool *out);
/* Formats nanoseconds like Go's time.Duration.String ("1m30s"). */
void nc_format_duration(int64_t ns, char *out, size_t outlen);

/* RFC 3339 UTC time with nanoseconds, as Go's time.Time marshals
 * ("2026-11-24T20:51:02.123456789Z"); 0 gives Go's zero time
 * "0001-01-01T00:00:00Z". nc_parse_time accepts what nc_format_time writes
 * (fraction optional) and returns 0 or -EINVAL. */
void nc_format_time(int64_t unix_ns, char *out, size_t outlen);
int nc_parse_time(const char *s, int64_t *unix_ns);

/* Monotonic and wall clocks. */
uint64_t nc_now_mono_ns(void);
int64_t nc_now_unix_ns(void);

/* Random bytes (getrandom), and a UUID v4 string (37 bytes with NUL). */
void nc_random_bytes(void *buf, size_t n);
void nc_uuid(char out[37]);

bool nc_str_has_prefix(const char *s, const char *prefix);
bool nc_str_has_suffix(const char *s, const char *suffix);
bool nc_streq(const char *a, const char *b); /* NULL-safe */

/* Logging: levelled lines on stderr, or one JSON object per line. */
enum nc_log_level { NC_LOG_TRACE, NC_LOG_DEBUG, NC_LOG_INFO, NC_LOG_WARN,
                    NC_LOG_ERROR, NC_LOG_OFF };
/* Parses "trace|debug|info|warn|error|off" (case-insensitive); -EINVAL else. */
int nc_log_parse_level(const char *s, enum nc_log_level *out);
void nc_log_setup(enum nc_log_level level, bool json);
bool nc_log_enabled(enum nc_log_level level);
/* `module` is a short subsystem name ("agent", "http", ...). */
void nc_log(enum nc_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_TRACE(mod, ...) nc_log(NC_LOG_TRACE, mod, __VA_ARGS__)
#define LOG_DEBUG(mod, ...) nc_log(NC_LOG_DEBUG, mod, __VA_ARGS__)
#define LOG_INFO(mod, ...) nc_log(NC_LOG_INFO, mod, __VA_ARGS__)
#define LOG_WARN(mod, ...) nc_log(NC_LOG_WARN, mod, __VA_ARGS__)
#define LOG_ERROR(mod, ...) nc_log(NC_LOG_ERROR, mod, __VA_ARGS__)

/* scope-bound cleanup, as crun does */
void nc_cleanup_freep(void *p);
void nc_cleanup_closep(int *fd);
#define cleanup_free __attribute__((cleanup(nc_cleanup_freep)))
#define cleanup_close __attribute__((cleanup(nc_cleanup_closep)))

/* A library loaded on first use (libcurl, OpenSSL, libarchive), so the
 * agent's start-up and the supervisors never map it: nc_dlopen_symbols
 * dlopen()s the path in $env when it is set, else the first of `names`
 * (NULL-terminated) that loads, and fills each slot from its symbol in
 * order; on failure it returns NULL with `why` set: dlerror()'s text, or
 * "<label> has no <symbol>" (the slots before it filled). No dlclose. */
struct nc_dlsym {
    const char *name;
    void **slot;
};
void *nc_dlopen_symbols(const char *env, const char *const *names,
                        const char *label, const struct nc_dlsym *syms,
                        size_t nsyms, char *why, size_t whylen);
/* The entry of a symbol table for a struct of function pointers named
 * `lib` whose fields carry the functions' names. */
#define NC_DLSYM(name) {#name, (void **)&lib.name},

/* SHA-256 (FIPS 180-4), streaming: init, add any number of times, then
 * hex (which finishes the digest: 64 hex digits and a NUL). */
struct nc_sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t fill;
    uint64_t bytes;
};
void nc_sha256_init(struct nc_sha256 *s);
void nc_sha256_add(struct nc_sha256 *s, const void *data, size_t len);
void nc_sha256_hex(struct nc_sha256 *s, char out[65]);

/* A list as a JSON array of strings, a kvlist as a JSON object of
 * strings (jansson; new references). */
typedef struct json_t json_t;
json_t *nc_strlist_json(const struct strlist *l);
json_t *nc_kvlist_json(const struct kvlist *l);

/* Base64 (RFC 4648): the standard alphabet with padding, or the URL-safe
 * one (§5, still padded, as Go's base64.URLEncoding). Caller frees. */
char *nc_base64_encode(const void *data, size_t len, bool url);
/* Decodes either alphabet, padding optional; the bits left over must be
 * zero (one encoding per value). Appends to out; 0, or -EINVAL. */
int nc_base64_decode(const char *s, size_t len, struct nc_buf *out);

#endif
