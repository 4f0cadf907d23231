/* jobspec_hcl_value.c - the leaves of the HCL conversion (jobspec_hcl.c
 * walks the blocks): typed attributes, meta/env and header blocks, and
 * opaque values (driver config, scaling policies) converted by Nomad's
 * generic rules; with the messages for values of the wrong type. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

/* ---- type errors ---- */

/* Expression text, shortened for messages. */
static char *short_text(const char *s)
{
    if (!s)
        return xstrdup("");
    size_t n = strlen(s);
    if (n <= 40)
        return xstrdup(s);
    char *t = xmalloc(44);
    memcpy(t, s, 40);
    memcpy(t + 40, "...", 4);
    return t;
}

static int type_error(struct js_hcl_ctx *c, const struct hcl_item *it,
                      const struct hcl_value *v, const char *want)
{
    if (v->kind == HCL_EXPR) {
        char *t = short_text(v->str);
        js_hcl_fail(c, v->pos, it->name,
                    "expected %s, got expression %s (variables, functions and "
                    "operators are not evaluated by this node)",
                    want, t);
        free(t);
        return -EINVAL;
    }
    return js_hcl_fail(c, v->pos, it->name, "expected %s, got %s", want,
                       hcl_kind_name(v->kind));
}

/* ---- numbers and strings ---- */

json_t *js_hcl_string(struct js_hcl_ctx *c, const char *s, struct hcl_pos pos,
                      const char *leaf)
{
    json_t *j = json_string(s ? s : "");
    if (!j)
        js_hcl_fail(c, pos, leaf, "string is not valid UTF-8");
    return j;
}

/* Sets obj[key] = v (stolen), failing on keys that are not UTF-8. */
int js_hcl_put(struct js_hcl_ctx *c, json_t *obj, const char *key, json_t *v,
               struct hcl_pos pos, const char *leaf)
{
    if (json_object_set_new(obj, key, v) < 0)
        return js_hcl_fail(c, pos, leaf, "name \"%s\" is not valid UTF-8", key);
    return 0;
}

bool js_hcl_number_i64(const struct hcl_value *v, int64_t *out)
{
    if (v->kind != HCL_NUMBER)
        return false;
    if (v->is_integer) {
        *out = v->integer;
        return true;
    }
    double d = v->number;
    if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return false;
    *out = (int64_t)d;
    return true;
}

static const char *number_text(const struct hcl_value *v, char *buf,
                               size_t len)
{
    if (v->str && *v->str)
        return v->str;
    if (v->is_integer)
        snprintf(buf, len, "%lld", (long long)v->integer);
    else
        snprintf(buf, len, "%.17g", v->number);
    return buf;
}

/* A number where a string is wanted (env, meta, constraint values): the
 * text hcl/v2 gives it, "1e3" -> "1000", not the text as written. */
static json_t *number_string(struct js_hcl_ctx *c, const struct hcl_value *v,
                             const char *leaf)
{
    char *text = hcl_number_text(v);
    if (!text) {
        js_hcl_fail(
            c, v->pos, leaf,
            "number %s is too long to convert to a string (more than %d "
            "characters)",
            v->str ? v->str : "", HCL_NUMBER_TEXT_MAX);
        return NULL;
    }
    json_t *j = json_string(text);
    free(text);
    return j;
}

/* ---- opaque values (driver config, policies) ---- */

static int opaque_value(struct js_hcl_ctx *c, const struct hcl_value *v,
                        const char *leaf, int depth, json_t **out)
{
    *out = NULL;
    if (depth > JS_MAX_DEPTH)
        return js_hcl_fail(c, v->pos, leaf, "nested deeper than %d levels",
                           JS_MAX_DEPTH);
    switch (v->kind) {
    case HCL_NULL:
        *out = json_null();
        return 0;
    case HCL_BOOL:
        *out = json_boolean(v->boolean);
        return 0;
    case HCL_NUMBER: {
        int64_t n;
        /* Nomad keeps whole numbers as integers, others as floats */
        if (js_hcl_number_i64(v, &n))
            *out = json_integer(n);
        else if (isfinite(v->number))
            *out = json_real(v->number);
        else
            return js_hcl_fail(c, v->pos, leaf, "number out of range");
        return 0;
    }
    case HCL_STRING:
        *out = js_hcl_string(c, v->str, v->pos, leaf);
        return *out ? 0 : -EINVAL;
    case HCL_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->n; i++) {
            json_t *e;
            if (opaque_value(c, v->items[i], leaf, depth + 1, &e) < 0) {
                json_decref(a);
                return -EINVAL;
            }
            json_array_append_new(a, e);
        }
        *out = a;
        return 0;
    }
    case HCL_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->n; i++) {
            json_t *e;
            if (json_object_get(o, v->keys[i])) {
                json_decref(o);
                return js_hcl_fail(c, v->key_pos ? v->key_pos[i] : v->pos, leaf,
                                   "duplicate key \"%s\"", v->keys[i]);
            }
            if (opaque_value(c, v->items[i], leaf, depth + 1, &e) < 0 ||
                js_hcl_put(c, o, v->keys[i], e, v->pos, leaf) < 0) {
                json_decref(o);
                return -EINVAL;
            }
        }
        *out = o;
        return 0;
    }
    case HCL_EXPR: {
        char *t = short_text(v->str);
        js_hcl_fail(c, v->pos, leaf,
                    "expression %s is not supported (variables, functions and "
                    "operators are not evaluated by this node)",
                    t);
        free(t);
        return -EINVAL;
    }
    }
    return js_hcl_fail(c, v->pos, leaf, "unsupported value");
}

/* Nomad (jobspec2 BlocksAsAttrs): an attribute whose value is an object
 * becomes a one-element list; each block becomes an object appended to
 * the list under its type; labels nest it as {label: [object]}. */
int js_hcl_opaque_body(struct js_hcl_ctx *c, const struct hcl_body *b,
                       json_t *obj, const char *leaf, int depth)
{
    if (depth > JS_MAX_DEPTH)
        return js_hcl_fail(c, b->pos, leaf, "nested deeper than %d levels",
                           JS_MAX_DEPTH);
    json_t *from_blocks = json_object(); /* keys filled by blocks */
    int r = 0;
    for (size_t i = 0; i < b->n && r == 0; i++) {
        const struct hcl_item *it = &b->items[i];
        json_t *prev = json_object_get(obj, it->name);
        if (it->type == HCL_ATTRIBUTE) {
            if (prev) {
                r = js_hcl_fail(c, it->pos, leaf, "duplicate \"%s\"", it->name);
                break;
            }
            json_t *v;
            if ((r = opaque_value(c, it->value, leaf, depth + 1, &v)) < 0)
                break;
            if (json_is_object(v) && it->value->kind == HCL_OBJECT) {
                json_t *wrap = json_array();
                json_array_append_new(wrap, v);
                v = wrap;
            }
            r = js_hcl_put(c, obj, it->name, v, it->pos, leaf);
            continue;
        }
        if (prev && !json_object_get(from_blocks, it->name)) {
            r = js_hcl_fail(c, it->pos, leaf, "duplicate \"%s\"", it->name);
            break;
        }
        json_t *bo = json_object();
        if ((r = js_hcl_opaque_body(c, it->body, bo, leaf, depth + 1)) < 0) {
            json_decref(bo);
            break;
        }
        for (size_t l = it->nlabels; l-- > 0;) {
            json_t *wrap = json_object(), *list = json_array();
            json_array_append_new(list, bo);
            if ((r = js_hcl_put(c, wrap, it->labels[l], list, it->pos, leaf)) <
                0) {
                json_decref(wrap);
                bo = NULL;
                break;
            }
            bo = wrap;
        }
        if (r < 0) {
            json_decref(bo);
            break;
        }
        if (!prev) {
            prev = json_array();
            if ((r = js_hcl_put(c, obj, it->name, prev, it->pos, leaf)) < 0) {
                json_decref(bo);
                break;
            }
            json_object_set_new(from_blocks, it->name, json_true());
        }
        json_array_append_new(prev, bo);
    }
    json_decref(from_blocks);
    return r;
}

/* ---- typed attributes ---- */

int js_hcl_attr(struct js_hcl_ctx *c, const struct hcl_item *it,
                enum js_hcl_attr_kind kind, json_t **out)
{
    const struct hcl_value *v = it->value;
    char nb[64];
    int64_t n;
    *out = NULL;
    switch (kind) {
    case JS_A_NONE:
        break;
    case JS_A_STRING:
        if (v->kind != HCL_STRING)
            return type_error(c, it, v, "a string");
        *out = js_hcl_string(c, v->str, v->pos, it->name);
        return *out ? 0 : -EINVAL;
    case JS_A_SCALAR:
        if (v->kind == HCL_STRING)
            *out = js_hcl_string(c, v->str, v->pos, it->name);
        else if (v->kind == HCL_NUMBER)
            *out = number_string(c, v, it->name);
        else if (v->kind == HCL_BOOL)
            *out = json_string(v->boolean ? "true" : "false");
        else
            return type_error(c, it, v, "a string");
        return *out ? 0 : -EINVAL;
    case JS_A_INT:
    case JS_A_INT64:
        if (v->kind != HCL_NUMBER)
            return type_error(c, it, v, "a number");
        if (!js_hcl_number_i64(v, &n))
            return js_hcl_fail(c, v->pos, it->name,
                               "expected a whole number, got %s",
                               number_text(v, nb, sizeof(nb)));
        if (kind == JS_A_INT && (n < -2147483648LL || n > 2147483647LL))
            return js_hcl_fail(c, v->pos, it->name,
                               "number %lld is out of range", (long long)n);
        *out = json_integer(n);
        return 0;
    case JS_A_BOOL:
        if (v->kind != HCL_BOOL)
            return type_error(c, it, v, "a bool");
        *out = json_boolean(v->boolean);
        return 0;
    case JS_A_DURATION:
        if (v->kind == HCL_NUMBER && js_hcl_number_i64(v, &n)) {
            *out = json_integer(n); /* nanoseconds, as Nomad accepts */
            return 0;
        }
        if (v->kind != HCL_STRING)
            return type_error(c, it, v, "a duration string like \"10s\"");
        int r = nc_parse_duration(v->str, &n);
        if (r == -ERANGE)
            return js_hcl_fail(c, v->pos, it->name,
                               "duration \"%s\" is too large", v->str);
        if (r < 0)
            return js_hcl_fail(
                c, v->pos, it->name,
                "invalid duration \"%s\"; use a number and a unit, "
                "like \"10s\" or \"1m30s\"",
                v->str);
        *out = json_integer(n);
        return 0;
    case JS_A_STRLIST:
    case JS_A_INTLIST: {
        bool ints = kind == JS_A_INTLIST;
        const char *want = ints ? "a list of numbers" : "a list of strings";
        if (v->kind != HCL_LIST)
            return type_error(c, it, v, want);
        json_t *a = json_array();
        for (size_t i = 0; i < v->n; i++) {
            const struct hcl_value *e = v->items[i];
            json_t *x = NULL;
            if (!ints && e->kind == HCL_STRING)
                x = js_hcl_string(c, e->str, e->pos, it->name);
            else if (ints && js_hcl_number_i64(e, &n))
                x = json_integer(n);
            else if (e->kind == HCL_EXPR) {
                json_decref(a);
                return type_error(c, it, e, want);
            } else {
                json_decref(a);
                return js_hcl_fail(c, e->pos, it->name,
                                   "expected %s, got a list "
                                   "containing %s",
                                   want, hcl_kind_name(e->kind));
            }
            if (!x) {
                json_decref(a);
                return -EINVAL;
            }
            json_array_append_new(a, x);
        }
        *out = a;
        return 0;
    }
    case JS_A_STRMAP: {
        if (v->kind != HCL_OBJECT)
            return type_error(c, it, v, "an object of strings");
        json_t *o = json_object();
        for (size_t i = 0; i < v->n; i++) {
            const struct hcl_value *e = v->items[i];
            struct hcl_pos kp = v->key_pos ? v->key_pos[i] : e->pos;
            json_t *x = NULL;
            if (json_object_get(o, v->keys[i])) {
                json_decref(o);
                return js_hcl_fail(c, kp, it->name, "duplicate key \"%s\"",
                                   v->keys[i]);
            }
            if (e->kind == HCL_STRING)
                x = js_hcl_string(c, e->str, e->pos, it->name);
            else if (e->kind == HCL_NUMBER)
                x = number_string(c, e, it->name);
            else if (e->kind == HCL_BOOL)
                x = json_string(e->boolean ? "true" : "false");
            else {
                json_decref(o);
                return js_hcl_fail(c, e->pos, it->name,
                                   "value of \"%s\": expected a string, got %s",
                                   v->keys[i], hcl_kind_name(e->kind));
            }
            if (!x || js_hcl_put(c, o, v->keys[i], x, kp, it->name) < 0) {
                json_decref(o);
                return -EINVAL;
            }
        }
        *out = o;
        return 0;
    }
    }
    return js_hcl_fail(c, it->pos, it->name, "unsupported attribute kind");
}

/* meta { k = "v" } / env { ... }: attributes only, values become text. */
int js_hcl_strmap_block(struct js_hcl_ctx *c, const struct hcl_item *blk,
                        json_t **out)
{
    json_t *o = json_object();
    for (size_t i = 0; i < blk->body->n; i++) {
        const struct hcl_item *it = &blk->body->items[i];
        if (it->type != HCL_ATTRIBUTE) {
            json_decref(o);
            return js_hcl_fail(
                c, it->pos, blk->name,
                "unexpected block \"%s\"; %s takes name = \"value\" "
                "pairs",
                it->name, blk->name);
        }
        if (json_object_get(o, it->name)) {
            json_decref(o);
            return js_hcl_fail(c, it->pos, blk->name, "duplicate key \"%s\"",
                               it->name);
        }
        const struct hcl_value *e = it->value;
        json_t *x;
        if (e->kind == HCL_STRING)
            x = js_hcl_string(c, e->str, e->pos, blk->name);
        else if (e->kind == HCL_NUMBER)
            x = number_string(c, e, blk->name);
        else if (e->kind == HCL_BOOL)
            x = json_string(e->boolean ? "true" : "false");
        else {
            struct hcl_item fake = *it;
            json_decref(o);
            size_t mark = c->h.len;
            if (c->h.len)
                nc_buf_puts(&c->h, " > ");
            nc_buf_puts(&c->h, blk->name);
            type_error(c, &fake, e, "a string");
            js_buf_truncate(&c->h, mark);
            return -EINVAL;
        }
        if (!x || js_hcl_put(c, o, it->name, x, it->pos, blk->name) < 0) {
            json_decref(o);
            return -EINVAL;
        }
    }
    *out = o;
    return 0;
}

/* header { Authorization = ["Basic ..."] } */
int js_hcl_header_block(struct js_hcl_ctx *c, const struct hcl_item *blk,
                        json_t **out)
{
    json_t *o = json_object();
    for (size_t i = 0; i < blk->body->n; i++) {
        const struct hcl_item *it = &blk->body->items[i];
        if (it->type != HCL_ATTRIBUTE) {
            json_decref(o);
            return js_hcl_fail(c, it->pos, "header",
                               "unexpected block \"%s\"; header takes Name = "
                               "[\"value\"] pairs",
                               it->name);
        }
        json_t *vals;
        if (json_object_get(o, it->name)) {
            json_decref(o);
            return js_hcl_fail(c, it->pos, "header", "duplicate header \"%s\"",
                               it->name);
        }
        size_t mark = c->h.len;
        nc_buf_puts(&c->h, c->h.len ? " > header" : "header");
        int r = js_hcl_attr(c, it, JS_A_STRLIST, &vals);
        js_buf_truncate(&c->h, mark);
        if (r < 0 || js_hcl_put(c, o, it->name, vals, it->pos, "header") < 0) {
            json_decref(o);
            return -EINVAL;
        }
    }
    *out = o;
    return 0;
}
