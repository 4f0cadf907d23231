/* hcl_value.c - what is done with a parsed value once the parser (hcl.c)
 * has built it: freeing, kind names, a debugging dump, numbers as hcl/v2
 * writes them as strings, and the decoders' positioned errors. */
#include "client/hcl/hcl.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void hcl_value_free(struct hcl_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        hcl_value_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_pos);
    free(v->str);
    free(v);
}

const char *hcl_kind_name(enum hcl_kind k)
{
    switch (k) {
    case HCL_NULL: return "null";
    case HCL_BOOL: return "bool";
    case HCL_NUMBER: return "number";
    case HCL_STRING: return "string";
    case HCL_LIST: return "list";
    case HCL_OBJECT: return "object";
    case HCL_EXPR: return "expression";
    }
    return "unknown";
}

static void dump_string(struct nc_buf *b, const char *s)
{
    nc_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            nc_buf_putc(b, '\\');
            nc_buf_putc(b, (char)c);
        } else if (c == '\n') {
            nc_buf_puts(b, "\\n");
        } else if (c == '\t') {
            nc_buf_puts(b, "\\t");
        } else if (c < 0x20) {
            nc_buf_printf(b, "\\u%04x", c);
        } else {
            nc_buf_putc(b, (char)c);
        }
    }
    nc_buf_putc(b, '"');
}

static void dump(struct nc_buf *b, const struct hcl_value *v)
{
    switch (v->kind) {
    case HCL_NULL: nc_buf_puts(b, "null"); break;
    case HCL_BOOL: nc_buf_puts(b, v->boolean ? "true" : "false"); break;
    case HCL_NUMBER: nc_buf_puts(b, v->str); break;
    case HCL_STRING: dump_string(b, v->str); break;
    case HCL_EXPR:
        nc_buf_puts(b, "expr(");
        nc_buf_puts(b, v->str);
        nc_buf_putc(b, ')');
        break;
    case HCL_LIST:
        nc_buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                nc_buf_puts(b, ", ");
            dump(b, v->items[i]);
        }
        nc_buf_putc(b, ']');
        break;
    case HCL_OBJECT:
        nc_buf_putc(b, '{');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                nc_buf_puts(b, ", ");
            dump_string(b, v->keys[i]);
            nc_buf_puts(b, ": ");
            dump(b, v->items[i]);
        }
        nc_buf_putc(b, '}');
        break;
    }
}

char *hcl_value_to_string(const struct hcl_value *v)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    if (v)
        dump(&b, v);
    return nc_buf_take(&b);
}

/* Works on the literal's source text, not on the double: the digits are
 * exactly what cty's 512-bit number holds (for up to ~150 of them), so
 * normalising them is the shortest decimal that reads back the same. */
char *hcl_number_text(const struct hcl_value *v)
{
    if (!v || v->kind != HCL_NUMBER)
        return NULL;
    if (!v->str || !*v->str)
        return v->is_integer ? xasprintf("%lld", (long long)v->integer)
                             : NULL;
    const char *p = v->str;
    bool negative = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    struct nc_buf digits = {0};
    long long exp10 = 0; /* value = digits x 10^exp10 */
    bool fraction = false;
    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            fraction = true;
        } else if (isdigit((unsigned char)*p)) {
            if (digits.len || *p != '0')
                nc_buf_putc(&digits, *p);
            if (fraction)
                exp10--;
        } else {
            nc_buf_free(&digits);
            return NULL;
        }
    }
    if (*p) {
        p++;
        bool eneg = *p == '-';
        if (*p == '-' || *p == '+')
            p++;
        long long e = 0;
        for (; isdigit((unsigned char)*p); p++)
            if (e < 1000000000LL) /* saturates: refused below anyway */
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    char *d = nc_buf_take(&digits);
    size_t n = strlen(d);
    while (n && d[n - 1] == '0') {
        d[--n] = '\0';
        exp10++;
    }
    if (n == 0) { /* any zero, -0 included */
        free(d);
        return xstrdup("0");
    }
    /* integer digits + fraction digits + sign and point */
    long long whole = (long long)n + exp10;
    long long len = (whole > 0 ? whole : 1) +
                    (exp10 < 0 ? -exp10 : 0) + 2;
    if (len > HCL_NUMBER_TEXT_MAX) {
        free(d);
        return NULL;
    }
    struct nc_buf b = {0};
    if (negative)
        nc_buf_putc(&b, '-');
    if (exp10 >= 0) {
        nc_buf_puts(&b, d);
        for (long long i = 0; i < exp10; i++)
            nc_buf_putc(&b, '0');
    } else if (whole > 0) {
        nc_buf_printf(&b, "%.*s.%s", (int)whole, d, d + whole);
    } else {
        nc_buf_puts(&b, "0.");
        for (long long i = 0; i < -whole; i++)
            nc_buf_putc(&b, '0');
        nc_buf_puts(&b, d);
    }
    free(d);
    return nc_buf_take(&b);
}

int hcl_vfail(struct nc_error *err, const char *filename, struct hcl_pos pos,
              const char *path, const char *leaf, const char *fmt, va_list ap)
{
    struct nc_buf b = {0};
    bool has_path = path && *path;
    if (pos.line > 0)
        nc_buf_printf(&b, "%s:%d:%d: ", filename, pos.line, pos.col);
    else
        nc_buf_printf(&b, "%s: ", filename);
    if (has_path)
        nc_buf_puts(&b, path);
    if (leaf)
        nc_buf_printf(&b, "%s%s", has_path ? " > " : "", leaf);
    if (has_path || leaf)
        nc_buf_puts(&b, ": ");
    nc_buf_vprintf(&b, fmt, ap);
    nc_error_set(err, -EINVAL, "%s", b.data);
    nc_buf_free(&b);
    return -EINVAL;
}
