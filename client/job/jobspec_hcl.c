/* jobspec_hcl.c - Nomad job files (HCL syntax tree from hcl.h) to Nomad's
 * API job JSON, driven by a schema of every block and attribute this node
 * accepts.
 *
 * The schema is strict the way Nomad's jobspec2 decoder is: an unknown or
 * misspelt name, a block where an attribute belongs, a wrong type or a bad
 * duration is an error naming file:line:col and the path to the item.
 * Decoding stops at the first such error. Driver config and scaling
 * policies are not ours to know: they are converted as Nomad converts them
 * (nested blocks become lists of objects) and kept as JSON. Every JSON
 * path written is recorded with its position, so later checks can point
 * into the file too.
 *
 * This file walks the blocks and says what is wrong where; the schema and
 * its hooks are in jobspec_hcl_schema.c, the leaf values (attributes,
 * meta/env, header, opaque config) in jobspec_hcl_value.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/hcl/hcl.h"
#include "client/job/internal.h"

/* ---- errors ---- */

/* Keys of common drivers' config: written at task level by mistake, they
 * get a hint instead of a bare "unknown attribute". */
static const char *const driver_keys[] = {
    "image",   "command",      "args",       "ports",     "volumes",
    "entrypoint", "network_mode", "mount",   "labels",    "auth",
    "work_dir", "privileged",  "cap_add",    "cap_drop",  "hostname",
    "dns_servers", "force_pull", "pid_mode", "ipc_mode",  "mounts",
};

/* "file:line:col: path[ > leaf]: message" */
int js_hcl_fail(struct js_hcl_ctx *c, struct hcl_pos pos, const char *leaf,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = hcl_vfail(c->err, c->filename, pos, c->h.data, leaf, fmt, ap);
    va_end(ap);
    return r;
}

/* Levenshtein distance, for "did you mean"; names are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = del < ins ? del : ins;
            if (sub < cur[j])
                cur[j] = sub;
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

static const char *closest(const char *name, const char *const *cands,
                           size_t n, size_t stride)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n; i++) {
        const char *cand = *(const char *const *)((const char *)cands +
                                                   i * stride);
        if (cand[0] == '_')
            continue;
        size_t d = edit_distance(name, cand);
        if (d < bestd) {
            bestd = d;
            best = cand;
        }
    }
    return best;
}

static int unknown_item(struct js_hcl_ctx *c, const struct js_hcl_schema *s,
                        const struct hcl_item *it)
{
    const char *what = it->type == HCL_ATTRIBUTE ? "attribute" : "block";
    const char *best = closest(it->name, &s->fields[0].name, s->n,
                               sizeof(struct js_hcl_field));
    if (best)
        return js_hcl_fail(c, it->pos, NULL,
                           "unknown %s \"%s\"; did you mean \"%s\"?", what,
                           it->name, best);
    if (s->driver_hint) {
        const char *dk = closest(it->name, driver_keys,
                                 NC_ARRAY_LEN(driver_keys), sizeof(char *));
        if (dk && strcmp(dk, it->name) == 0)
            return js_hcl_fail(
                c, it->pos, NULL,
                "unknown %s \"%s\"; driver options go inside the "
                "config block",
                what, it->name);
        if (dk)
            return js_hcl_fail(
                c, it->pos, NULL,
                "unknown %s \"%s\"; did you mean \"%s\"? (driver "
                "options go inside the config block)",
                what, it->name, dk);
    }
    return js_hcl_fail(c, it->pos, NULL, "unknown %s \"%s\"", what, it->name);
}

/* ---- small helpers ---- */

static void record(struct js_hcl_ctx *c, struct hcl_pos pos)
{
    js_posmap_add(c->pos, c->j.data ? c->j.data : "Job", pos);
}

/* ---- blocks ---- */

static int conv_body(struct js_hcl_ctx *c, const struct js_hcl_schema *s,
                     const struct hcl_body *b, json_t *obj);

static const struct hcl_value *body_attr(const struct hcl_body *b,
                                         const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].type == HCL_ATTRIBUTE &&
            strcmp(b->items[i].name, name) == 0)
            return b->items[i].value;
    return NULL;
}

static int need_labels(struct js_hcl_ctx *c, const struct hcl_item *it,
                       size_t min, size_t max)
{
    if (it->nlabels >= min && it->nlabels <= max)
        return 0;
    if (max == 0)
        return js_hcl_fail(c, it->pos, NULL,
                           "%s block takes no labels, got %zu", it->name,
                           it->nlabels);
    if (it->nlabels == 0)
        return js_hcl_fail(c, it->pos, NULL,
                           "%s block needs a name: %s \"name\" { ... }",
                           it->name, it->name);
    return js_hcl_fail(c, it->pos, NULL, "%s block takes one label, got %zu",
                       it->name, it->nlabels);
}

/* Converts one block into a new object, with the human and JSON paths
 * already extended by the caller. */
static int block_object(struct js_hcl_ctx *c, const struct js_hcl_schema *s,
                        const struct hcl_item *it, json_t **out)
{
    *out = NULL;
    if (++c->depth > JS_MAX_DEPTH) {
        c->depth--;
        return js_hcl_fail(c, it->pos, NULL, "nested deeper than %d levels",
                           JS_MAX_DEPTH);
    }
    json_t *o = json_object();
    record(c, it->pos);
    int r = conv_body(c, s, it->body, o);
    c->depth--;
    if (r < 0) {
        json_decref(o);
        return r;
    }
    *out = o;
    return 0;
}

/* Appends o to obj[key] (a list). */
static void append(json_t *obj, const char *key, json_t *o)
{
    json_t *list = json_object_get(obj, key);
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(obj, key, list);
    }
    json_array_append_new(list, o);
}

static size_t list_len(const json_t *obj, const char *key)
{
    return json_array_size(json_object_get(obj, key));
}

/* Human path piece for an unlabeled repeated block: its name when it is
 * alone, "name[i]" otherwise, or name "x" for named services/checks. */
static void list_segment(struct js_hcl_ctx *c, const struct hcl_item *it,
                         size_t i, size_t count)
{
    const struct hcl_value *nm = NULL;
    if (strcmp(it->name, "service") == 0 || strcmp(it->name, "check") == 0)
        nm = body_attr(it->body, "name");
    if (nm && nm->kind == HCL_STRING)
        js_seg_named(&c->h, it->name, nm->str);
    else
        js_seg_index(&c->h, it->name, i, count);
}

/* o[key] = the block's label; frees o on failure. */
static int set_label(struct js_hcl_ctx *c, json_t *o, const char *key,
                     const struct hcl_item *it)
{
    json_t *label = js_hcl_string(c, it->labels[0], it->pos, NULL);
    if (!label) {
        json_decref(o);
        return -EINVAL;
    }
    json_object_set_new(o, key, label);
    return 0;
}

static int conv_block(struct js_hcl_ctx *c, const struct js_hcl_field *f,
                      const struct hcl_item *it, json_t *obj, size_t index,
                      size_t count)
{
    size_t hmark = c->h.len, jmark = c->j.len;
    json_t *o = NULL;
    int r = 0;
    switch ((enum js_hcl_block_kind)f->block) {
    case JS_B_NONE:
        return -EINVAL;
    case JS_B_ONE:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        js_seg_named(&c->h, it->name, NULL);
        nc_buf_printf(&c->j, ".%s", f->key);
        if ((r = block_object(c, f->sub, it, &o)) == 0)
            json_object_set_new(obj, f->key, o);
        break;
    case JS_B_LIST:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        list_segment(c, it, index, count);
        nc_buf_printf(&c->j, ".%s[%zu]", f->key, list_len(obj, f->key));
        if ((r = block_object(c, f->sub, it, &o)) == 0)
            append(obj, f->key, o);
        break;
    case JS_B_LABELED:
        if ((r = need_labels(c, it, 1, 1)) < 0)
            return r;
        if (strcmp(it->name, "group") == 0)
            js_buf_truncate(&c->h, 0); /* group paths start at the group */
        js_seg_named(&c->h, it->name, it->labels[0]);
        nc_buf_printf(&c->j, ".%s[%zu]", f->key, list_len(obj, f->key));
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        if ((r = set_label(c, o, f->label_key, it)) < 0)
            break;
        append(obj, f->key, o);
        break;
    case JS_B_LABELED_MAP: {
        if ((r = need_labels(c, it, 1, 1)) < 0)
            return r;
        json_t *map = json_object_get(obj, f->key);
        if (json_object_get(map, it->labels[0])) {
            r = js_hcl_fail(c, it->pos, NULL, "duplicate %s \"%s\"", it->name,
                            it->labels[0]);
            break;
        }
        js_seg_named(&c->h, it->name, it->labels[0]);
        nc_buf_printf(&c->j, ".%s[\"%s\"]", f->key, it->labels[0]);
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        if ((r = set_label(c, o, f->label_key, it)) < 0)
            break;
        if (!map) {
            map = json_object();
            json_object_set_new(obj, f->key, map);
        }
        r = js_hcl_put(c, map, it->labels[0], o, it->pos, NULL);
        break;
    }
    case JS_B_STRMAP:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        nc_buf_printf(&c->j, ".%s", f->key);
        record(c, it->pos);
        if ((r = js_hcl_strmap_block(c, it, &o)) == 0)
            json_object_set_new(obj, f->key, o);
        break;
    case JS_B_OPAQUE:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        nc_buf_printf(&c->j, ".%s", f->key);
        record(c, it->pos);
        o = json_object();
        if ((r = js_hcl_opaque_body(c, it->body, o, it->name, c->depth + 1)) ==
            0)
            json_object_set_new(obj, f->key, o);
        else
            json_decref(o);
        break;
    case JS_B_HEADER:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        nc_buf_printf(&c->j, ".%s", f->key);
        record(c, it->pos);
        if ((r = js_hcl_header_block(c, it, &o)) == 0)
            json_object_set_new(obj, f->key, o);
        break;
    case JS_B_PORT: {
        if ((r = need_labels(c, it, 1, 1)) < 0)
            return r;
        /* A port with a static value is a reserved port (Nomad's
         * normalizeNetworkPorts); checked before converting so the
         * recorded path is the final one. */
        const struct hcl_value *st = body_attr(it->body, "static");
        int64_t sv = 0;
        bool reserved = st && js_hcl_number_i64(st, &sv) && sv != 0;
        const char *key = reserved ? "ReservedPorts" : "DynamicPorts";
        js_seg_named(&c->h, it->name, it->labels[0]);
        nc_buf_printf(&c->j, ".%s[%zu]", key, list_len(obj, key));
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        if ((r = set_label(c, o, f->label_key, it)) < 0)
            break;
        append(obj, key, o);
        break;
    }
    case JS_B_SCALING: {
        if ((r = need_labels(c, it, 0, 1)) < 0)
            return r;
        const char *type = "horizontal";
        if (it->nlabels) {
            if (strcmp(it->labels[0], "cpu") == 0)
                type = "vertical_cpu";
            else if (strcmp(it->labels[0], "mem") == 0)
                type = "vertical_mem";
            else
                return js_hcl_fail(
                    c, it->pos, NULL,
                    "scaling policy name must be \"cpu\" or \"mem\", "
                    "got \"%s\"",
                    it->labels[0]);
            js_seg_named(&c->h, it->name, it->labels[0]);
        } else {
            js_seg_index(&c->h, it->name, index, count);
        }
        json_t *list = json_object_get(obj, f->key);
        size_t i;
        json_t *prev;
        json_array_foreach(list, i, prev)
        {
            if (nc_streq(json_string_value(json_object_get(prev, "Type")),
                         type)) {
                r = js_hcl_fail(c, it->pos, NULL,
                                "only one %s scaling block is allowed",
                                it->nlabels ? it->labels[0] : "unlabeled");
                break;
            }
        }
        if (r < 0)
            break;
        nc_buf_printf(&c->j, ".%s[%zu]", f->key, list_len(obj, f->key));
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        const char *given = json_string_value(json_object_get(o, "Type"));
        if (given && strcmp(given, type) != 0 && it->nlabels) {
            json_decref(o);
            r = js_hcl_fail(
                c, it->pos, NULL,
                "invalid policy type, expected \"%s\" but found \"%s\"", type,
                given);
            break;
        }
        if (!given)
            json_object_set_new(o, "Type", json_string(type));
        append(obj, f->key, o);
        break;
    }
    }
    js_buf_truncate(&c->h, hmark);
    js_buf_truncate(&c->j, jmark);
    return r;
}

static int conv_body(struct js_hcl_ctx *c, const struct js_hcl_schema *s,
                     const struct hcl_body *b, json_t *obj)
{
    /* seen[i]: position of the attribute or single block already given */
    const struct hcl_item **seen = xcalloc(s->n, sizeof(*seen));
    size_t *count = xcalloc(s->n, sizeof(*count));
    size_t *index = xcalloc(s->n, sizeof(*index));
    int r = 0;
    for (size_t i = 0; i < b->n; i++)
        for (size_t f = 0; f < s->n; f++)
            if (strcmp(b->items[i].name, s->fields[f].name) == 0 &&
                b->items[i].type == HCL_BLOCK)
                count[f]++;
    for (size_t i = 0; i < b->n && r == 0; i++) {
        const struct hcl_item *it = &b->items[i];
        const struct js_hcl_field *f = NULL;
        size_t fi = 0;
        for (; fi < s->n; fi++) {
            if (strcmp(it->name, s->fields[fi].name) == 0 &&
                (s->fields[fi].attr || s->fields[fi].block)) {
                f = &s->fields[fi];
                break;
            }
        }
        if (!f) {
            r = unknown_item(c, s, it);
            break;
        }
        bool single = it->type == HCL_ATTRIBUTE || f->block == JS_B_ONE ||
                      f->block == JS_B_STRMAP || f->block == JS_B_OPAQUE ||
                      f->block == JS_B_HEADER;
        if (single && seen[fi]) {
            r = js_hcl_fail(
                c, it->pos, NULL,
                "duplicate %s \"%s\"; it was already defined at %d:%d",
                it->type == HCL_ATTRIBUTE ? "attribute" : "block", it->name,
                seen[fi]->pos.line, seen[fi]->pos.col);
            break;
        }
        seen[fi] = it;
        if (it->type == HCL_ATTRIBUTE) {
            if (!f->attr) {
                r = js_hcl_fail(
                    c, it->pos, NULL,
                    "\"%s\" is a block, not an attribute; write %s { "
                    "... }",
                    it->name, it->name);
                break;
            }
            json_t *v;
            size_t jmark = c->j.len;
            nc_buf_printf(&c->j, ".%s", f->key);
            js_posmap_add(c->pos, c->j.data, it->value->pos);
            js_buf_truncate(&c->j, jmark);
            if (f->key[0] == '_' && strcmp(f->key, "_Vault") != 0) {
                /* a constraint shortcut fills Operand and a target */
                nc_buf_puts(&c->j, ".Operand");
                js_posmap_add(c->pos, c->j.data, it->value->pos);
                js_buf_truncate(&c->j, jmark);
                nc_buf_puts(&c->j, strcmp(f->key, "_distinct_property") == 0
                                       ? ".LTarget"
                                       : ".RTarget");
                js_posmap_add(c->pos, c->j.data, it->value->pos);
                js_buf_truncate(&c->j, jmark);
            }
            r = js_hcl_attr(c, it, (enum js_hcl_attr_kind)f->attr, &v);
            if (r == 0)
                json_object_set_new(obj, f->key, v);
            continue;
        }
        if (!f->block) {
            r = js_hcl_fail(
                c, it->pos, NULL,
                "\"%s\" is an attribute, not a block; write %s = ...", it->name,
                it->name);
            break;
        }
        r = conv_block(c, f, it, obj, index[fi]++, count[fi]);
    }
    free(seen);
    free(count);
    free(index);
    if (r == 0 && s->post)
        r = s->post(c, obj, b);
    return r;
}

/* ---- top level ---- */

int js_hcl_to_api(const struct hcl_file *file, struct js_posmap *pos,
                  json_t **out, json_t **job_vault, struct nc_error *err)
{
    *out = NULL;
    *job_vault = NULL;
    const char *filename = file->filename ? file->filename : "job.nomad";
    struct js_hcl_ctx c = {.pos = pos, .err = err, .filename = filename};
    const struct hcl_body *top = file->body;
    const struct hcl_item *jobblk = NULL;
    int r = 0;
    static const char *const top_names[] = {"job"};
    for (size_t i = 0; top && i < top->n && r == 0; i++) {
        const struct hcl_item *it = &top->items[i];
        if (it->type == HCL_BLOCK && strcmp(it->name, "job") == 0) {
            if (jobblk)
                r = js_hcl_fail(
                    &c, it->pos, NULL,
                    "only one job block is allowed per file (the first "
                    "is at %d:%d)",
                    jobblk->pos.line, jobblk->pos.col);
            jobblk = it;
        } else if (strcmp(it->name, "variable") == 0 ||
                   strcmp(it->name, "variables") == 0 ||
                   strcmp(it->name, "locals") == 0) {
            r = js_hcl_fail(
                &c, it->pos, NULL,
                "%s blocks are not supported by this node: write the "
                "values into the job",
                it->name);
        } else {
            const char *best =
                closest(it->name, top_names, 1, sizeof(char *));
            if (best)
                r = js_hcl_fail(&c, it->pos, NULL,
                                "unknown %s \"%s\"; did you mean \"job\"?",
                                it->type == HCL_ATTRIBUTE ? "attribute"
                                                          : "block",
                                it->name);
            else
                r = js_hcl_fail(&c, it->pos, NULL,
                                "unexpected %s \"%s\" at top level; a job file "
                                "holds one job \"name\" { ... } block",
                                it->type == HCL_ATTRIBUTE ? "attribute"
                                                          : "block",
                                it->name);
        }
    }
    if (r < 0)
        return r;
    if (!jobblk) {
        struct hcl_pos p = {1, 1};
        return js_hcl_fail(
            &c, p, NULL,
            "no job block found; a job file holds one job \"name\" "
            "{ ... } block");
    }
    if (jobblk->nlabels == 0)
        return js_hcl_fail(&c, jobblk->pos, NULL,
                           "job block needs a name: job \"name\" { ... }");
    if (jobblk->nlabels > 1)
        return js_hcl_fail(&c, jobblk->pos, NULL,
                           "job block takes one label (the job ID), got %zu",
                           jobblk->nlabels);
    c.job_id = jobblk->labels[0];
    json_t *root = json_object();
    json_t *id = js_hcl_string(&c, jobblk->labels[0], jobblk->pos, NULL);
    if (!id) {
        json_decref(root);
        return -EINVAL;
    }
    json_object_set_new(root, "ID", id);
    nc_buf_puts(&c.j, "Job");
    js_seg_named(&c.h, "job", jobblk->labels[0]);
    record(&c, jobblk->pos);
    r = conv_body(&c, &js_hcl_job_schema, jobblk->body, root);
    nc_buf_free(&c.h);
    nc_buf_free(&c.j);
    if (r < 0) {
        json_decref(root);
        return r;
    }
    if (!json_object_get(root, "Name"))
        json_object_set(root, "Name", id);
    json_t *v = json_object_get(root, "_Vault");
    if (v) {
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(root, "TaskGroups"), i, g)
            js_hcl_spread_vault(g, v);
        *job_vault = json_incref(v);
        json_object_del(root, "_Vault");
    }
    *out = root;
    return 0;
}
