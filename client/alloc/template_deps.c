/* template_deps.c - the pure pieces of a task's templates, for
 * template_hook.c and tests/test_template_hook.c: where a template's
 * source and destination are (Nomad's ClientPath rules), go-envparse's
 * reading of an env = true file, and the "Missing: ..." text. */
#include "client/alloc/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* filepath.Clean of an absolute path, in place. */
static void clean_abs(char *p)
{
    char *out = xmalloc(strlen(p) + 2);
    size_t o = 0;
    const char *in = p;
    while (*in) {
        while (*in == '/')
            in++;
        if (!*in)
            break;
        const char *e = in;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - in);
        if (n == 2 && in[0] == '.' && in[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else if (!(n == 1 && in[0] == '.')) {
            out[o++] = '/';
            memcpy(out + o, in, n);
            o += n;
        }
        in = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    strcpy(p, out);
    free(out);
}

/* Whether `path` (clean, absolute) is `dir` or below it. */
static bool within(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int template_path(const char *raw, const struct kvlist *env,
                  const struct node *n, const char *task_dir,
                  const char *shared_dir, bool join_escape, char **out)
{
    char *p = alloc_interpolate(raw ? raw : "", env, n);
    char *path = NULL;
    bool escapes = true;
    if (p[0] == '/') {
        path = xstrdup(p);
        clean_abs(path);
        escapes = !within(task_dir, path) && !within(shared_dir, path);
    }
    if (p[0] != '/' || (escapes && join_escape)) {
        if (p[0] == '/')
            free(path);
        path = xasprintf("%s/%s", task_dir, p);
        clean_abs(path);
    }
    free(p);
    escapes = !within(task_dir, path) && !within(shared_dir, path);
    if (escapes) {
        free(path);
        *out = NULL;
        return -EPERM;
    }
    *out = path;
    return 0;
}

/* ---- go-envparse ---- */

static bool key_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void put_utf8(struct nc_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    nc_buf_append(b, u, n);
}

int template_env_parse(const char *text, size_t len, struct kvlist *out,
                       char *err, size_t errlen)
{
    size_t i = 0, line = 1;
    struct nc_buf v = {0};
    int rc = 0;
#define FAIL(fmt, ...)                                                         \
    do {                                                                       \
        snprintf(err, errlen, "line %zu: " fmt, line, ##__VA_ARGS__);          \
        rc = -EINVAL;                                                          \
        goto out;                                                              \
    } while (0)
    while (i < len) {
        while (i < len &&
               (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
            i++;
        if (i < len && text[i] == '\n') {
            i++;
            line++;
            continue;
        }
        if (i >= len)
            break;
        if (text[i] == '#') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        if (len - i > 7 && strncmp(text + i, "export", 6) == 0 &&
            (text[i + 6] == ' ' || text[i + 6] == '\t')) {
            i += 6;
            while (i < len && (text[i] == ' ' || text[i] == '\t'))
                i++;
        }
        size_t k0 = i;
        while (i < len && key_char(text[i], i == k0))
            i++;
        if (i == k0)
            FAIL("invalid key: a key starts with a letter or '_'");
        char *key = xstrndup(text + k0, i - k0);
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i >= len || text[i] != '=') {
            free(key);
            FAIL("expected '=' after the key");
        }
        i++;
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        v.len = 0;
        nc_buf_puts(&v, "");
        if (i < len && text[i] == '\'') {
            i++;
            while (i < len && text[i] != '\'') {
                if (text[i] == '\n')
                    line++;
                nc_buf_putc(&v, text[i++]);
            }
            if (i >= len) {
                free(key);
                FAIL("unterminated single-quoted value");
            }
            i++;
        } else if (i < len && text[i] == '"') {
            i++;
            while (i < len && text[i] != '"') {
                char c = text[i++];
                if (c == '\n')
                    line++;
                if (c != '\\') {
                    nc_buf_putc(&v, c);
                    continue;
                }
                if (i >= len)
                    break;
                c = text[i++];
                switch (c) {
                case 'a':
                    nc_buf_putc(&v, '\a');
                    break;
                case 'b':
                    nc_buf_putc(&v, '\b');
                    break;
                case 'f':
                    nc_buf_putc(&v, '\f');
                    break;
                case 'n':
                    nc_buf_putc(&v, '\n');
                    break;
                case 'r':
                    nc_buf_putc(&v, '\r');
                    break;
                case 't':
                    nc_buf_putc(&v, '\t');
                    break;
                case 'v':
                    nc_buf_putc(&v, '\v');
                    break;
                case '\\':
                case '"':
                case '$':
                case '`':
                case '\'':
                    nc_buf_putc(&v, c);
                    break;
                case '\n': /* a line continuation */
                    line++;
                    break;
                case 'u':
                case 'x': {
                    int nd = c == 'u' ? 4 : 2;
                    unsigned cp = 0;
                    for (int d = 0; d < nd; d++) {
                        int h = i < len ? hexval(text[i]) : -1;
                        if (h < 0) {
                            free(key);
                            FAIL("invalid escape \\%c", c);
                        }
                        cp = cp * 16 + (unsigned)h;
                        i++;
                    }
                    put_utf8(&v, cp);
                    break;
                }
                default:
                    free(key);
                    FAIL("invalid escape \\%c", c);
                }
            }
            if (i >= len) {
                free(key);
                FAIL("unterminated double-quoted value");
            }
            i++;
        } else {
            /* unquoted: to the end of the line or a comment after a
             * space; backslash escapes the next character */
            while (i < len && text[i] != '\n') {
                char c = text[i];
                if (c == '#' && v.len > 0 &&
                    (v.data[v.len - 1] == ' ' || v.data[v.len - 1] == '\t'))
                    break;
                if (c == '\'' || c == '"') {
                    free(key);
                    FAIL("unexpected quote in an unquoted value");
                }
                if (c == '\\' && i + 1 < len && text[i + 1] != '\n') {
                    nc_buf_putc(&v, text[i + 1]);
                    i += 2;
                    continue;
                }
                nc_buf_putc(&v, c);
                i++;
            }
            while (v.len > 0 &&
                   (v.data[v.len - 1] == ' ' || v.data[v.len - 1] == '\t' ||
                    v.data[v.len - 1] == '\r'))
                v.data[--v.len] = '\0';
        }
        /* after the value: spaces and a comment only */
        while (i < len &&
               (text[i] == ' ' || text[i] == '\t' || text[i] == '\r'))
            i++;
        if (i < len && text[i] == '#')
            while (i < len && text[i] != '\n')
                i++;
        if (i < len && text[i] != '\n') {
            free(key);
            FAIL("unexpected text after the value");
        }
        kv_set(out, key, v.data);
        free(key);
    }
out:
#undef FAIL
    nc_buf_free(&v);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *template_missing_text(const struct strlist *deps)
{
    char **s = xcalloc(deps->n + 1, sizeof(*s));
    for (size_t i = 0; i < deps->n; i++)
        s[i] = deps->items[i];
    qsort(s, deps->n, sizeof(*s), cmp_str);
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    size_t shown = 0;
    for (size_t i = 0; i < deps->n; i++) {
        if (i && strcmp(s[i], s[i - 1]) == 0)
            continue;
        if (shown == 3) { /* Nomad's missingDepEventLimit */
            size_t rest = 0;
            for (size_t k = i; k < deps->n; k++)
                rest += !(k && strcmp(s[k], s[k - 1]) == 0);
            nc_buf_printf(&b, ", and %zu more", rest);
            break;
        }
        nc_buf_printf(&b, "%s%s", shown ? ", " : "", s[i]);
        shown++;
    }
    free(s);
    return nc_buf_take(&b);
}
