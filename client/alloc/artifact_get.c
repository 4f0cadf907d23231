/* artifact_get.c - the pieces of fetching an artifact, off the loop:
 * checksum specs and digests (OpenSSL's libcrypto), the URL with options{}
 * in its query and the archive type, the sources refused, and writing or
 * unpacking (libarchive) below the allocation dir, never through a symlink.
 * libcrypto and libarchive are dlopen'd on first use, from the worker
 * thread that verifies and unpacks, so an agent that never fetches an
 * artifact maps neither. artifact.c drives a task's fetches. */
#include "client/alloc/internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Nomad's decompression limits (client.artifact defaults) */
#define ARTIFACT_MAX_FILES 4096
#define ARTIFACT_MAX_UNPACKED ((uint64_t)100 << 30)

/* ---- the libraries, loaded on first use (worker thread) ---- */

#define CRYPTO_FUNCTIONS(X)                                                    \
    X(EVP_get_digestbyname)                                                    \
    X(EVP_MD_CTX_new)                                                          \
    X(EVP_MD_CTX_free)                                                         \
    X(EVP_DigestInit_ex)                                                       \
    X(EVP_DigestUpdate)                                                        \
    X(EVP_DigestFinal_ex)

#define ARCHIVE_FUNCTIONS(X)                                                   \
    X(archive_read_new)                                                        \
    X(archive_read_support_filter_all)                                         \
    X(archive_read_support_format_all)                                         \
    X(archive_read_support_format_raw)                                         \
    X(archive_read_open_memory)                                                \
    X(archive_read_next_header)                                                \
    X(archive_read_data)                                                       \
    X(archive_read_free)                                                       \
    X(archive_error_string)                                                    \
    X(archive_entry_pathname)                                                  \
    X(archive_entry_filetype)                                                  \
    X(archive_entry_perm)                                                      \
    X(archive_entry_hardlink)

static struct {
#define X(name) __typeof__(name) *name;
    CRYPTO_FUNCTIONS(X)
    ARCHIVE_FUNCTIONS(X)
#undef X
} lib;
static uv_once_t crypto_once = UV_ONCE_INIT, archive_once = UV_ONCE_INIT;
static char crypto_error[256], archive_error[256];

static void crypto_load(void)
{
    static const char *const names[] = {"libcrypto.so.3", "libcrypto.so.1.1",
                                        NULL};
    static const struct nc_dlsym syms[] = {CRYPTO_FUNCTIONS(NC_DLSYM)};
    nc_dlopen_symbols("NOMCLIENT_LIBCRYPTO", names, names[0], syms,
                      NC_ARRAY_LEN(syms), crypto_error, sizeof(crypto_error));
}

static void archive_load(void)
{
    static const char *const names[] = {"libarchive.so.13", NULL};
    static const struct nc_dlsym syms[] = {ARCHIVE_FUNCTIONS(NC_DLSYM)};
    nc_dlopen_symbols("NOMCLIENT_LIBARCHIVE", names, names[0], syms,
                      NC_ARRAY_LEN(syms), archive_error, sizeof(archive_error));
}

static bool crypto_ready(void)
{
    uv_once(&crypto_once, crypto_load);
    return lib.EVP_DigestFinal_ex != NULL; /* the last one loaded */
}

static bool archive_ready(void)
{
    uv_once(&archive_once, archive_load);
    return lib.archive_entry_hardlink != NULL; /* the last one loaded */
}

/* ---- checksums ---- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int artifact_checksum_parse(const char *spec, struct artifact_checksum *out,
                            char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    while (*spec == ' ' || *spec == '\t')
        spec++;
    size_t n = strlen(spec);
    while (n && (spec[n - 1] == ' ' || spec[n - 1] == '\t'))
        n--;
    if (!n) {
        snprintf(err, errlen, "checksum value cannot be empty");
        return -EINVAL;
    }
    const char *colon = memchr(spec, ':', n);
    if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - spec))) {
        snprintf(err, errlen,
                 "checksum must be given as \"type:value\"; got "
                 "\"%.*s\"",
                 (int)n, spec);
        return -EINVAL;
    }
    size_t tl = (size_t)(colon - spec);
    static const struct {
        const char *name;
        size_t len;
    } types[] = {{"md5", 16}, {"sha1", 20}, {"sha256", 32}, {"sha512", 64}};
    size_t want = 0;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i].name) == tl &&
            memcmp(types[i].name, spec, tl) == 0) {
            snprintf(out->type, sizeof(out->type), "%s", types[i].name);
            want = types[i].len;
        }
    if (!want) {
        snprintf(err, errlen, "unsupported checksum type: %.*s", (int)tl, spec);
        return -EINVAL;
    }
    const char *hex = colon + 1;
    size_t hl = n - tl - 1;
    if (hl != want * 2) {
        snprintf(err, errlen, "invalid %s checksum: %.*s", out->type, (int)hl,
                 hex);
        return -EINVAL;
    }
    for (size_t i = 0; i < want; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(err, errlen, "invalid checksum: %.*s", (int)hl, hex);
            return -EINVAL;
        }
        out->digest[i] = (unsigned char)(hi << 4 | lo);
    }
    out->len = want;
    return 0;
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
    out[2 * n] = '\0';
}

int artifact_checksum_verify(const struct artifact_checksum *c,
                             const void *data, size_t len, const char *what,
                             char *err, size_t errlen)
{
    if (!crypto_ready()) {
        snprintf(err, errlen, "cannot verify the %s checksum: %s", c->type,
                 crypto_error);
        return -ENOENT;
    }
    const EVP_MD *md = lib.EVP_get_digestbyname(c->type);
    EVP_MD_CTX *ctx = md ? lib.EVP_MD_CTX_new() : NULL;
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned int glen = 0;
    int ok = ctx && lib.EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
             lib.EVP_DigestUpdate(ctx, data, len) == 1 &&
             lib.EVP_DigestFinal_ex(ctx, got, &glen) == 1;
    if (ctx)
        lib.EVP_MD_CTX_free(ctx);
    if (!ok || glen != c->len) {
        snprintf(err, errlen, "cannot compute the %s checksum", c->type);
        return -EIO;
    }
    if (memcmp(got, c->digest, c->len) == 0)
        return 0;
    char want_hex[129], got_hex[129];
    to_hex(c->digest, c->len, want_hex);
    to_hex(got, glen, got_hex);
    /* go-getter's words */
    snprintf(err, errlen,
             "Checksums did not match for %s.\nExpected: %s\nGot: %s", what,
             want_hex, got_hex);
    return -EBADMSG;
}

/* ---- what the source is ---- */

/* go-getter's decompressors, longest suffix first */
static const char *const archive_types[] = {
    "tar.bz2", "tar.gz", "tar.xz", "tar.zst", "tbz2", "tgz", "txz", "tzst",
    "zip",     "tar",    "bz2",    "gz",      "xz",   "zst", NULL};

const char *artifact_archive_type(const char *path)
{
    const char *const *exts = archive_types;
    size_t n = strlen(path);
    for (size_t i = 0; exts[i]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && path[n - e - 1] == '.' &&
            strcmp(path + n - e, exts[i]) == 0)
            return exts[i];
    }
    return "";
}

bool artifact_archive_single_file(const char *type)
{
    return strcmp(type, "gz") == 0 || strcmp(type, "bz2") == 0 ||
           strcmp(type, "xz") == 0 || strcmp(type, "zst") == 0;
}

bool artifact_source_supported(const char *src, char *err, size_t errlen)
{
    if (nc_str_has_prefix(src, "http://") || nc_str_has_prefix(src, "https://"))
        return true;
    const char *kind = "this";
    if (strstr(src, "::")) /* a forced getter: git::, s3::, gcs::, hg:: */
        kind = "a forced getter";
    else if (nc_str_has_prefix(src, "git@") || strstr(src, "github.com/") ||
             strstr(src, "gitlab.com/") || strstr(src, "bitbucket.org/") ||
             nc_str_has_suffix(src, ".git"))
        kind = "a git";
    else if (strstr(src, "amazonaws.com") || nc_str_has_prefix(src, "s3://"))
        kind = "an S3 bucket";
    else if (strstr(src, "googleapis.com") || nc_str_has_prefix(src, "gs://") ||
             nc_str_has_prefix(src, "gcs://"))
        kind = "a GCS bucket";
    snprintf(err, errlen,
             "%s source is not supported by this node: only http:// and "
             "https:// artifacts are fetched (git, hg, s3 and gcs are not)",
             kind);
    return false;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

static void url_escape(struct nc_buf *b, const char *s)
{
    for (; *s; s++) {
        if (unreserved((unsigned char)*s))
            nc_buf_putc(b, *s);
        else
            nc_buf_printf(b, "%%%02X", (unsigned char)*s);
    }
}

static char *url_unescape(const char *s, size_t n)
{
    struct nc_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            nc_buf_putc(&b, (char)(hi << 4 | lo));
            i += 2;
        } else {
            nc_buf_putc(&b, s[i] == '+' ? ' ' : s[i]);
        }
    }
    nc_buf_putc(&b, '\0');
    return nc_buf_take(&b);
}

static bool archive_known(const char *type)
{
    for (size_t i = 0; archive_types[i]; i++)
        if (strcmp(archive_types[i], type) == 0)
            return true;
    return false;
}

/* Takes `key` out of a query element p..end into *out (unescaped). */
static bool query_take(const char *p, const char *end, const char *key,
                       char **out)
{
    size_t kl = strlen(key);
    if ((size_t)(end - p) <= kl || strncmp(p, key, kl) != 0 || p[kl] != '=')
        return false;
    free(*out);
    *out = url_unescape(p + kl + 1, (size_t)(end - p - (ptrdiff_t)kl - 1));
    return true;
}

static bool query_overridden(const char *p, const char *end,
                             const struct kvlist *options)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    size_t kl = eq ? (size_t)(eq - p) : (size_t)(end - p);
    for (size_t i = 0; options && i < options->n; i++)
        if (strlen(options->items[i].key) == kl &&
            strncmp(options->items[i].key, p, kl) == 0)
            return true;
    return false;
}

int artifact_url(const char *src, const struct kvlist *options,
                 struct artifact_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *frag = strchr(src, '#');
    const char *srcend = frag ? frag : src + strlen(src);
    const char *q = memchr(src, '?', (size_t)(srcend - src));
    const char *base = q ? q : srcend;
    const char *scheme = strstr(src, "://");
    if (scheme && scheme + 3 > base)
        scheme = NULL; /* "://" in the query */
    const char *path =
        scheme ? memchr(scheme + 3, '/', (size_t)(base - scheme - 3)) : NULL;
    out->path = path ? xstrndup(path, (size_t)(base - path)) : xstrdup("/");
    struct nc_buf b = {0};
    nc_buf_append(&b, src, (size_t)(base - src));
    bool first = true;
    /* the source's own query: checksum and archive are taken out, as
     * go-getter does; options{} set the others (url.Values.Set) */
    for (const char *p = q ? q + 1 : srcend; p < srcend;) {
        const char *end = memchr(p, '&', (size_t)(srcend - p));
        if (!end)
            end = srcend;
        if (end > p && !query_take(p, end, "checksum", &out->checksum) &&
            !query_take(p, end, "archive", &out->archive) &&
            !query_overridden(p, end, options)) {
            nc_buf_putc(&b, first ? '?' : '&');
            nc_buf_append(&b, p, (size_t)(end - p));
            first = false;
        }
        p = end + 1;
    }
    for (size_t i = 0; options && i < options->n; i++) {
        const char *k = options->items[i].key, *v = options->items[i].value;
        char **keep = strcmp(k, "checksum") == 0  ? &out->checksum
                      : strcmp(k, "archive") == 0 ? &out->archive
                                                  : NULL;
        if (keep) {
            free(*keep);
            *keep = xstrdup(v);
            continue;
        }
        nc_buf_putc(&b, first ? '?' : '&');
        url_escape(&b, k);
        nc_buf_putc(&b, '=');
        url_escape(&b, v);
        first = false;
    }
    nc_buf_putc(&b, '\0');
    out->url = nc_buf_take(&b);
    if (out->checksum &&
        artifact_checksum_parse(out->checksum, &out->sum, err, errlen) < 0) {
        artifact_url_free(out);
        return -EINVAL;
    }
    out->has_sum = out->checksum != NULL;
    const char *type =
        out->archive ? out->archive : artifact_archive_type(out->path);
    if (strcmp(type, "false") == 0)
        type = "";
    if (*type && !archive_known(type)) {
        snprintf(err, errlen, "unsupported archive type: %s", type);
        artifact_url_free(out);
        return -EINVAL;
    }
    snprintf(out->type, sizeof(out->type), "%s", type);
    return 0;
}

void artifact_url_free(struct artifact_url *u)
{
    free(u->url);
    free(u->path);
    free(u->checksum);
    free(u->archive);
    memset(u, 0, sizeof(*u));
}

/* ---- writing inside the allocation dir, never through a symlink ---- */

bool artifact_entry_safe(const char *path)
{
    if (!path || !*path || path[0] == '/')
        return false;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        p += *p == '/';
    }
    return true;
}

/* Opens (making them) the directories of `rel` below dirfd, one
 * component at a time with O_NOFOLLOW; with `last_is_file` the last
 * component is left for the caller (*name). Returns a new fd or -errno. */
static int open_dirs(int dirfd, const char *rel, bool last_is_file,
                     const char **name)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return -errno;
    const char *p = rel;
    while (*p == '/')
        p++;
    while (*p) {
        size_t n = strcspn(p, "/");
        const char *next = p + n;
        while (*next == '/')
            next++;
        if (last_is_file && !*next) {
            if (name)
                *name = p;
            return fd;
        }
        if (n == 0 || (n == 1 && *p == '.')) {
            p = next;
            continue;
        }
        char comp[256];
        if (n >= sizeof(comp)) {
            close(fd);
            return -ENAMETOOLONG;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
            int e = -errno;
            close(fd);
            return e;
        }
        int sub =
            openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = -errno;
        close(fd);
        if (sub < 0)
            return e == -ENOTDIR || e == -ELOOP ? -ELOOP : e;
        fd = sub;
        p = next;
    }
    if (last_is_file) { /* "dir/" for a file */
        close(fd);
        return -EISDIR;
    }
    return fd;
}

static bool write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Writes `rel` below dirfd from data or from the archive's current entry
 * (*budget: unpacked bytes still allowed, -EFBIG beyond). */
static int write_file(int dirfd, const char *rel, mode_t mode, const void *data,
                      size_t len, struct archive *ar, uint64_t *budget)
{
    const char *name = NULL;
    int d = open_dirs(dirfd, rel, true, &name);
    if (d < 0)
        return d;
    char comp[256];
    snprintf(comp, sizeof(comp), "%s", name);
    /* setuid, setgid and sticky bits are dropped, as Nomad's umask */
    int fd =
        openat(d, comp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
               mode & 0777);
    int e = -errno;
    close(d);
    if (fd < 0)
        return e == -ENOTDIR ? -ELOOP : e;
    int r = 0;
    if (ar) {
        char buf[65536];
        la_ssize_t n;
        while ((n = lib.archive_read_data(ar, buf, sizeof(buf))) > 0) {
            if ((uint64_t)n > *budget) {
                r = -EFBIG;
                break;
            }
            *budget -= (uint64_t)n;
            if (!write_all(fd, buf, (size_t)n)) {
                r = -errno;
                break;
            }
        }
        if (n < 0 && r == 0)
            r = -EIO;
    } else if (!write_all(fd, data, len)) {
        r = -errno;
    }
    if (fchmod(fd, mode & 0777) < 0 && r == 0)
        r = -errno;
    close(fd);
    return r;
}

int artifact_save_file(int dirfd, const char *rel, const void *data, size_t len,
                       char *err, size_t errlen)
{
    int r = write_file(dirfd, rel, 0644, data, len, NULL, NULL);
    if (r < 0)
        snprintf(err, errlen, "%s: %s", rel,
                 r == -ELOOP ? "a path component is a symlink" : strerror(-r));
    return r;
}

int artifact_unpack(int dirfd, const char *rel, const void *data, size_t len,
                    const char *type, bool as_file, char *err, size_t errlen)
{
    if (!archive_ready()) {
        snprintf(err, errlen, "cannot unpack the %s archive: %s", type,
                 archive_error);
        return -ENOENT;
    }
    bool single = artifact_archive_single_file(type);
    if (as_file && !single) {
        snprintf(err, errlen,
                 "a %s archive cannot be unpacked into a single "
                 "file (mode \"file\")",
                 type);
        return -EINVAL;
    }
    struct archive *ar = lib.archive_read_new();
    if (!ar) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    lib.archive_read_support_filter_all(ar);
    if (single)
        lib.archive_read_support_format_raw(ar);
    else
        lib.archive_read_support_format_all(ar);
    int r = 0;
    if (lib.archive_read_open_memory(ar, data, len) != ARCHIVE_OK) {
        snprintf(err, errlen, "error unpacking the %s archive: %s", type,
                 lib.archive_error_string(ar));
        lib.archive_read_free(ar);
        return -EINVAL;
    }
    int root = as_file ? dup(dirfd) : open_dirs(dirfd, rel, false, NULL);
    if (root < 0) {
        snprintf(err, errlen, "%s: %s", rel,
                 root == -ELOOP ? "a path component is a symlink"
                                : strerror(-root));
        lib.archive_read_free(ar);
        return root;
    }
    struct archive_entry *e;
    size_t files = 0;
    uint64_t budget = ARTIFACT_MAX_UNPACKED;
    int h;
    while ((h = lib.archive_read_next_header(ar, &e)) == ARCHIVE_OK ||
           h == ARCHIVE_WARN) {
        const char *name = single ? rel : lib.archive_entry_pathname(e);
        unsigned ft = (unsigned)lib.archive_entry_filetype(e);
        if (++files > ARTIFACT_MAX_FILES) {
            snprintf(err, errlen,
                     "archive has more than %d files (the "
                     "decompression limit)",
                     ARTIFACT_MAX_FILES);
            r = -E2BIG;
            break;
        }
        if (!single && !artifact_entry_safe(name)) {
            snprintf(err, errlen,
                     "archive entry \"%s\" escapes the "
                     "destination directory",
                     name ? name : "");
            r = -EPERM;
            break;
        }
        if (ft == AE_IFLNK || (!single && lib.archive_entry_hardlink(e))) {
            snprintf(err, errlen,
                     "archive entry \"%s\": copying of %s has "
                     "been disabled",
                     name, ft == AE_IFLNK ? "symlinks" : "hard links");
            r = -EPERM;
            break;
        }
        if (ft == AE_IFDIR) {
            int d = open_dirs(root, name, false, NULL);
            if (d < 0) {
                r = d;
            } else {
                fchmod(d, (lib.archive_entry_perm(e) & 0777) | 0700);
                close(d);
            }
        } else if (ft == AE_IFREG || single) {
            mode_t m =
                single ? 0644 : (lib.archive_entry_perm(e) & 0777) | 0600;
            r = write_file(root, name, m, NULL, 0, ar, &budget);
        } /* devices, fifos and sockets are skipped, as go-getter does */
        if (r < 0) {
            snprintf(err, errlen, "archive entry \"%s\": %s", name,
                     r == -ELOOP ? "a path component is a symlink"
                     : r == -EFBIG
                         ? "unpacked size over the decompression limit"
                     : r == -EIO ? lib.archive_error_string(ar)
                                 : strerror(-r));
            break;
        }
        if (single)
            break;
    }
    if (r == 0 && h != ARCHIVE_OK && h != ARCHIVE_WARN && h != ARCHIVE_EOF) {
        snprintf(err, errlen, "error unpacking the %s archive: %s", type,
                 lib.archive_error_string(ar));
        r = -EINVAL;
    }
    close(root);
    lib.archive_read_free(ar);
    return r;
}
