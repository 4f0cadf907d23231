/* funcs_builtin.c - Go's builtin template functions (funcs.go): and, or,
 * not, eq, ne, lt, le, gt, ge, len, index, slice, print, printf, println,
 * html, js, urlquery, call; and the function registry. */
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

/* ---- the registry ----------------------------------------------------------
 */

struct tmpl_funcs {
    const struct tmpl_func **sorted; /* by name; later tables win */
    size_t n, cap;
};

struct tmpl_funcs *tmpl_funcs_new(void)
{
    return xcalloc(1, sizeof(struct tmpl_funcs));
}

static int name_cmp(const char *a, const char *b, size_t bn)
{
    int c = strncmp(a, b, bn);
    if (c)
        return c;
    return a[bn] ? 1 : 0;
}

static size_t find_slot(const struct tmpl_funcs *r, const char *name, size_t n,
                        bool *found)
{
    size_t lo = 0, hi = r->n;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = name_cmp(r->sorted[mid]->name, name, n);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void tmpl_funcs_add(struct tmpl_funcs *r, const struct tmpl_func *table,
                    size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool found;
        size_t slot =
            find_slot(r, table[i].name, strlen(table[i].name), &found);
        if (found) {
            r->sorted[slot] = &table[i];
            continue;
        }
        nc_grow((void **)&r->sorted, &r->cap, r->n + 1, sizeof *r->sorted);
        memmove(r->sorted + slot + 1, r->sorted + slot,
                (r->n - slot) * sizeof *r->sorted);
        r->sorted[slot] = &table[i];
        r->n++;
    }
}

const struct tmpl_func *tmpl_funcs_find(const struct tmpl_funcs *r,
                                        const char *name, size_t n)
{
    if (!r)
        return NULL;
    bool found;
    size_t slot = find_slot(r, name, n, &found);
    return found ? r->sorted[slot] : NULL;
}

void tmpl_funcs_free(struct tmpl_funcs *r)
{
    if (!r)
        return;
    free(r->sorted);
    free(r);
}

/* ---- helpers
 * ------------------------------------------------------------------ */

/* indirectInterface: a nil interface is no value. */
static struct tmpl_value indirect_iface(struct tmpl_value v)
{
    return v.kind == TMPL_NIL ? tmpl_invalid() : v;
}

static struct tmpl_value take(struct tmpl_call *c, struct nc_buf *b)
{
    struct tmpl_value v = tp_arena_take_buf(tmpl_call_arena(c), b);
    nc_buf_free(b);
    return v;
}

/* The struct type a pointer type points to ("*x.Y" -> "x.Y"). */
static const char *elem_type_name(const struct tmpl_value *v)
{
    const char *t = tmpl_type_name(v);
    return v->kind == TMPL_OBJECT && t[0] == '*' ? t + 1 : t;
}

/* ---- and, or, not, call
 * ------------------------------------------------------ */

static int fn_unreachable(struct tmpl_call *c, const struct tmpl_value *a,
                          size_t n, struct tmpl_value *out)
{
    (void)a;
    (void)n;
    (void)out;
    return tmpl_call_fail(c, "unreachable");
}

static int fn_not(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                  struct tmpl_value *out)
{
    (void)c;
    (void)n;
    *out = tmpl_bool(!tp_value_truth(&a[0]));
    return 0;
}

static int fn_call(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                   struct tmpl_value *out)
{
    (void)n;
    (void)out;
    struct tmpl_value f = indirect_iface(a[0]);
    if (f.kind == TMPL_INVALID)
        return tmpl_call_fail(c, "call of nil");
    return tmpl_call_fail(c, "non-function of type %s", tmpl_type_name(&f));
}

/* ---- comparisons
 * ----------------------------------------------------------------- */

enum { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING, K_UINT };

static int basic_kind(const struct tmpl_value *v)
{
    switch (v->kind) {
    case TMPL_BOOL:
        return K_BOOL;
    case TMPL_INT:
        return K_INT;
    case TMPL_UINT:
        return K_UINT;
    case TMPL_FLOAT:
        return K_FLOAT;
    case TMPL_STRING:
        return K_STRING;
    }
    return K_INVALID;
}

static int str_cmp(const struct tmpl_value *a, const struct tmpl_value *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->s, b->s, n) : 0;
    if (c)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static char *fmt_alloc(const struct tmpl_value *v, int verb)
{
    struct nc_buf b = {0};
    tp_gofmt_value(&b, v, verb, 4096);
    return nc_buf_take(&b);
}

/* eq(arg1, arg2...): 1 true, 0 false, -1 failed. */
static int eq_values(struct tmpl_call *c, struct tmpl_value a1,
                     const struct tmpl_value *rest, size_t n)
{
    a1 = indirect_iface(a1);
    if (n == 0)
        return tmpl_call_fail(c, "missing argument for comparison");
    int k1 = basic_kind(&a1);
    for (size_t i = 0; i < n; i++) {
        struct tmpl_value a = indirect_iface(rest[i]);
        int k2 = basic_kind(&a);
        bool truth = false;
        if (k1 != k2) {
            if (k1 == K_INT && k2 == K_UINT)
                truth = a1.i >= 0 && (uint64_t)a1.i == a.u;
            else if (k1 == K_UINT && k2 == K_INT)
                truth = a.i >= 0 && a1.u == (uint64_t)a.i;
            else if (a1.kind != TMPL_INVALID && a.kind != TMPL_INVALID)
                return tmpl_call_fail(c, "incompatible types for comparison");
        } else {
            switch (k1) {
            case K_BOOL:
                truth = a1.b == a.b;
                break;
            case K_FLOAT:
                truth = a1.f == a.f;
                break;
            case K_INT:
                truth = a1.i == a.i;
                break;
            case K_STRING:
                truth = str_cmp(&a1, &a) == 0;
                break;
            case K_UINT:
                truth = a1.u == a.u;
                break;
            default: {
                bool inv1 = a1.kind == TMPL_INVALID,
                     inv = a.kind == TMPL_INVALID;
                if (a1.kind != a.kind && !inv1 && !inv) {
                    char *s1 = fmt_alloc(&a1, 's'), *s2 = fmt_alloc(&a, 'v');
                    tmpl_call_fail(c, "non-comparable types %s: %s, %s: %s", s1,
                                   tmpl_type_name(&a1), tmpl_type_name(&a), s2);
                    free(s1);
                    free(s2);
                    return -1;
                }
                if (inv1 || inv) {
                    truth = inv1 == inv;
                } else if (a.kind == TMPL_LIST || a.kind == TMPL_MAP) {
                    char *s = fmt_alloc(&a, 's');
                    tmpl_call_fail(c, "non-comparable type %s: %s", s,
                                   tmpl_type_name(&a));
                    free(s);
                    return -1;
                } else if (a.kind == TMPL_OBJECT) {
                    truth = a1.obj->data == a.obj->data &&
                            a1.obj->type == a.obj->type;
                } else {
                    truth = false; /* two chans: never the same one here */
                }
            }
            }
        }
        if (truth)
            return 1;
    }
    return 0;
}

/* lt: 1, 0, or -1 failed. */
static int lt_values(struct tmpl_call *c, struct tmpl_value a1,
                     struct tmpl_value a2)
{
    a1 = indirect_iface(a1);
    int k1 = basic_kind(&a1);
    if (k1 == K_INVALID)
        return tmpl_call_fail(c, "invalid type for comparison");
    a2 = indirect_iface(a2);
    int k2 = basic_kind(&a2);
    if (k2 == K_INVALID)
        return tmpl_call_fail(c, "invalid type for comparison");
    if (k1 != k2) {
        if (k1 == K_INT && k2 == K_UINT)
            return a1.i < 0 || (uint64_t)a1.i < a2.u;
        if (k1 == K_UINT && k2 == K_INT)
            return a2.i >= 0 && a1.u < (uint64_t)a2.i;
        return tmpl_call_fail(c, "incompatible types for comparison");
    }
    switch (k1) {
    case K_BOOL:
        return tmpl_call_fail(c, "invalid type for comparison");
    case K_FLOAT:
        return a1.f < a2.f;
    case K_INT:
        return a1.i < a2.i;
    case K_STRING:
        return str_cmp(&a1, &a2) < 0;
    case K_UINT:
        return a1.u < a2.u;
    }
    return 0;
}

static int fn_eq(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    int r = eq_values(c, a[0], a + 1, n - 1);
    if (r < 0)
        return -1;
    *out = tmpl_bool(r);
    return 0;
}

static int fn_ne(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    (void)n;
    int r = eq_values(c, a[0], a + 1, 1);
    if (r < 0)
        return -1;
    *out = tmpl_bool(!r);
    return 0;
}

static int fn_lt(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    (void)n;
    int r = lt_values(c, a[0], a[1]);
    if (r < 0)
        return -1;
    *out = tmpl_bool(r);
    return 0;
}

static int le_values(struct tmpl_call *c, const struct tmpl_value *a)
{
    int r = lt_values(c, a[0], a[1]);
    if (r != 0)
        return r;
    return eq_values(c, a[0], a + 1, 1);
}

static int fn_le(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    (void)n;
    int r = le_values(c, a);
    if (r < 0)
        return -1;
    *out = tmpl_bool(r);
    return 0;
}

static int fn_gt(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    (void)n;
    int r = le_values(c, a);
    if (r < 0)
        return -1;
    *out = tmpl_bool(!r);
    return 0;
}

static int fn_ge(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    (void)n;
    int r = lt_values(c, a[0], a[1]);
    if (r < 0)
        return -1;
    *out = tmpl_bool(!r);
    return 0;
}

/* ---- len, index, slice
 * ------------------------------------------------------- */

static int fn_len(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                  struct tmpl_value *out)
{
    (void)n;
    const struct tmpl_value *v = &a[0];
    switch (v->kind) {
    case TMPL_NIL:
        return tmpl_call_fail(c, "len of nil pointer");
    case TMPL_INVALID:
        return tmpl_call_fail(
            c, "reflect: call of reflect.Value.Type on zero Value");
    case TMPL_LIST:
    case TMPL_MAP:
    case TMPL_STRING:
        *out = tmpl_int((int64_t)v->len);
        return 0;
    case TMPL_STREAM:
        *out = tmpl_int(0); /* an unbuffered channel holds nothing */
        return 0;
    }
    return tmpl_call_fail(c, "len of type %s", elem_type_name(v));
}

/* indexArg: an index of a list or string, or -1 failed. */
static int64_t index_arg(struct tmpl_call *c, const struct tmpl_value *idx,
                         size_t cap)
{
    int64_t x;
    switch (idx->kind) {
    case TMPL_INT:
        x = idx->i;
        break;
    case TMPL_UINT:
        x = (int64_t)idx->u;
        break;
    case TMPL_INVALID:
        tmpl_call_fail(c, "cannot index slice/array with nil");
        return -1;
    default:
        tmpl_call_fail(c, "cannot index slice/array with type %s",
                       tmpl_type_name(idx));
        return -1;
    }
    if (x < 0 || (uint64_t)x > cap) {
        tmpl_call_fail(c, "index out of range: %lld", (long long)x);
        return -1;
    }
    return x;
}

static int fn_index(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                    struct tmpl_value *out)
{
    struct tmpl_value item = indirect_iface(a[0]);
    if (item.kind == TMPL_INVALID)
        return tmpl_call_fail(c, "index of untyped nil");
    for (size_t i = 1; i < n; i++) {
        struct tmpl_value idx = indirect_iface(a[i]);
        if (item.kind == TMPL_NIL)
            return tmpl_call_fail(c, "index of nil pointer");
        switch (item.kind) {
        case TMPL_LIST:
        case TMPL_STRING: {
            int64_t x = index_arg(c, &idx, item.len);
            if (x < 0)
                return -1;
            if ((size_t)x == item.len)
                return tmpl_call_fail(
                    c, item.kind == TMPL_LIST
                           ? "reflect: slice index out of range"
                           : "reflect: string index out of range");
            if (item.kind == TMPL_LIST)
                item = item.items[x];
            else
                item = (struct tmpl_value){.kind = TMPL_UINT,
                                           .sub = TMPL_UINT_UINT8,
                                           .u = (unsigned char)item.s[x]};
            break;
        }
        case TMPL_MAP: {
            if (idx.kind == TMPL_INVALID)
                return tmpl_call_fail(c,
                                      "value is nil; should be of type string");
            if (idx.kind != TMPL_STRING)
                return tmpl_call_fail(c, "value has type %s; should be string",
                                      tmpl_type_name(&idx));
            const struct tmpl_value *v = tmpl_map_get(&item, idx.s, idx.len);
            if (v)
                item = *v;
            else
                item = item.sub == TMPL_ELEM_STRING ? tmpl_string_ref("", 0)
                                                    : tmpl_nil();
            break;
        }
        default:
            return tmpl_call_fail(c, "can't index item of type %s",
                                  elem_type_name(&item));
        }
    }
    *out = item;
    return 0;
}

static int fn_slice(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                    struct tmpl_value *out)
{
    struct tmpl_value item = indirect_iface(a[0]);
    if (item.kind == TMPL_INVALID)
        return tmpl_call_fail(c, "slice of untyped nil");
    size_t nidx = n - 1;
    if (nidx > 3)
        return tmpl_call_fail(c, "too many slice indexes: %zu", nidx);
    if (item.kind == TMPL_STRING) {
        if (nidx == 3)
            return tmpl_call_fail(c, "cannot 3-index slice a string");
    } else if (item.kind != TMPL_LIST) {
        return tmpl_call_fail(c, "can't slice item of type %s",
                              elem_type_name(&item));
    }
    size_t cap = item.len;
    int64_t idx[3] = {0, (int64_t)item.len, 0};
    for (size_t i = 0; i < nidx; i++) {
        int64_t x = index_arg(c, &a[1 + i], cap);
        if (x < 0)
            return -1;
        idx[i] = x;
    }
    if (idx[0] > idx[1])
        return tmpl_call_fail(c, "invalid slice index: %lld > %lld",
                              (long long)idx[0], (long long)idx[1]);
    if (nidx == 3 && idx[1] > idx[2])
        return tmpl_call_fail(c, "invalid slice index: %lld > %lld",
                              (long long)idx[1], (long long)idx[2]);
    *out = item;
    out->len = (size_t)(idx[1] - idx[0]);
    if (item.kind == TMPL_STRING)
        out->s = item.s + idx[0];
    else
        out->items = item.items + idx[0];
    return 0;
}

/* ---- printing and escaping
 * ---------------------------------------------------- */

static int fn_print(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                    struct tmpl_value *out)
{
    struct nc_buf b = {0};
    if (tp_gofmt_sprint(&b, a, n, tp_call_room(c)) < 0) {
        nc_buf_free(&b);
        return tmpl_call_reserve(c, (size_t)-1);
    }
    *out = take(c, &b);
    return 0;
}

static int fn_println(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                      struct tmpl_value *out)
{
    struct nc_buf b = {0};
    if (tp_gofmt_sprintln(&b, a, n, tp_call_room(c)) < 0) {
        nc_buf_free(&b);
        return tmpl_call_reserve(c, (size_t)-1);
    }
    *out = take(c, &b);
    return 0;
}

static int fn_printf(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                     struct tmpl_value *out)
{
    struct nc_buf b = {0};
    if (tp_gofmt_sprintf(&b, a[0].s, a[0].len, a + 1, n - 1, tp_call_room(c)) <
        0) {
        nc_buf_free(&b);
        return tmpl_call_reserve(c, (size_t)-1);
    }
    *out = take(c, &b);
    return 0;
}

/* evalArgs: fmt.Sprint of the arguments, no value printed as "<no value>". */
static int eval_args(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                     struct nc_buf *b)
{
    if (n == 1 && a[0].kind == TMPL_STRING) {
        nc_buf_append(b, a[0].s, a[0].len);
        return 0;
    }
    struct tmpl_value *args =
        tmpl_arena_alloc(tmpl_call_arena(c), (n ? n : 1) * sizeof *args);
    for (size_t i = 0; i < n; i++) {
        args[i] = a[i];
        if (a[i].kind == TMPL_NIL || a[i].kind == TMPL_INVALID)
            args[i] = tmpl_string_ref("<no value>", 10);
    }
    if (tp_gofmt_sprint(b, args, n, tp_call_room(c)) < 0)
        return tmpl_call_reserve(c, (size_t)-1);
    return 0;
}

static int fn_html(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                   struct tmpl_value *out)
{
    struct nc_buf s = {0}, b = {0};
    if (eval_args(c, a, n, &s) < 0) {
        nc_buf_free(&s);
        return -1;
    }
    nc_buf_append(&b, "", 0);
    for (size_t i = 0; i < s.len; i++) {
        switch (s.data[i]) {
        case 0:
            nc_buf_puts(&b, "\xEF\xBF\xBD");
            break;
        case '"':
            nc_buf_puts(&b, "&#34;");
            break;
        case '\'':
            nc_buf_puts(&b, "&#39;");
            break;
        case '&':
            nc_buf_puts(&b, "&amp;");
            break;
        case '<':
            nc_buf_puts(&b, "&lt;");
            break;
        case '>':
            nc_buf_puts(&b, "&gt;");
            break;
        default:
            nc_buf_putc(&b, s.data[i]);
        }
    }
    nc_buf_free(&s);
    *out = take(c, &b);
    return 0;
}

static int fn_js(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    static const char hex[] = "0123456789ABCDEF";
    struct nc_buf s = {0}, b = {0};
    if (eval_args(c, a, n, &s) < 0) {
        nc_buf_free(&s);
        return -1;
    }
    nc_buf_append(&b, "", 0);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.data[i];
        if (ch < 0x80) {
            switch (ch) {
            case '\\':
                nc_buf_puts(&b, "\\\\");
                continue;
            case '\'':
                nc_buf_puts(&b, "\\'");
                continue;
            case '"':
                nc_buf_puts(&b, "\\\"");
                continue;
            case '<':
                nc_buf_puts(&b, "\\u003C");
                continue;
            case '>':
                nc_buf_puts(&b, "\\u003E");
                continue;
            case '&':
                nc_buf_puts(&b, "\\u0026");
                continue;
            case '=':
                nc_buf_puts(&b, "\\u003D");
                continue;
            }
            if (ch < ' ') {
                nc_buf_puts(&b, "\\u00");
                nc_buf_putc(&b, hex[ch >> 4]);
                nc_buf_putc(&b, hex[ch & 0xF]);
            } else {
                nc_buf_putc(&b, (char)ch);
            }
            continue;
        }
        size_t w;
        uint32_t r = tp_utf8_decode(s.data + i, s.len - i, &w);
        if (tp_uni_is_print(r))
            nc_buf_append(&b, s.data + i, w);
        else
            nc_buf_printf(&b, "\\u%04X", r);
        i += w - 1;
    }
    nc_buf_free(&s);
    *out = take(c, &b);
    return 0;
}

static int fn_urlquery(struct tmpl_call *c, const struct tmpl_value *a,
                       size_t n, struct tmpl_value *out)
{
    static const char hex[] = "0123456789ABCDEF";
    struct nc_buf s = {0}, b = {0};
    if (eval_args(c, a, n, &s) < 0) {
        nc_buf_free(&s);
        return -1;
    }
    nc_buf_append(&b, "", 0);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.data[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
            ch == '~') {
            nc_buf_putc(&b, (char)ch);
        } else if (ch == ' ') {
            nc_buf_putc(&b, '+');
        } else {
            nc_buf_putc(&b, '%');
            nc_buf_putc(&b, hex[ch >> 4]);
            nc_buf_putc(&b, hex[ch & 0xF]);
        }
    }
    nc_buf_free(&s);
    *out = take(c, &b);
    return 0;
}

/* ---- the table
 * ----------------------------------------------------------------- */

#define V TMPL_P_VALUE
#define A TMPL_P_ANY
#define S TMPL_P_STRING

static const struct tmpl_func builtins[] = {
    {"and", fn_unreachable, 2, true, {V, V}, B_AND},
    {"call", fn_call, 2, true, {V, V}, B_OTHER},
    {"eq", fn_eq, 2, true, {V, V}, B_OTHER},
    {"ge", fn_ge, 2, false, {V, V}, B_OTHER},
    {"gt", fn_gt, 2, false, {V, V}, B_OTHER},
    {"html", fn_html, 1, true, {A}, B_OTHER},
    {"index", fn_index, 2, true, {V, V}, B_OTHER},
    {"js", fn_js, 1, true, {A}, B_OTHER},
    {"le", fn_le, 2, false, {V, V}, B_OTHER},
    {"len", fn_len, 1, false, {V}, B_OTHER},
    {"lt", fn_lt, 2, false, {V, V}, B_OTHER},
    {"ne", fn_ne, 2, false, {V, V}, B_OTHER},
    {"not", fn_not, 1, false, {V}, B_OTHER},
    {"or", fn_unreachable, 2, true, {V, V}, B_OR},
    {"print", fn_print, 1, true, {A}, B_OTHER},
    {"printf", fn_printf, 2, true, {S, A}, B_OTHER},
    {"println", fn_println, 1, true, {A}, B_OTHER},
    {"slice", fn_slice, 2, true, {V, V}, B_OTHER},
    {"urlquery", fn_urlquery, 1, true, {A}, B_OTHER},
};

const struct tmpl_func *tp_builtin_find(const char *name, size_t n)
{
    size_t lo = 0, hi = NC_ARRAY_LEN(builtins);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = name_cmp(builtins[mid].name, name, n);
        if (c == 0)
            return &builtins[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
