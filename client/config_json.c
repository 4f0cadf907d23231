/* config_json.c - JSON agent files, converted to the syntax tree HCL files
 * parse to (an object for a body, attributes whose values are objects or
 * lists of objects for blocks, as HCL1's JSON form writes them), so that
 * they go through the same decoder. jansson keeps no positions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "client/config.h"
#include "client/config_internal.h"

#include "client/hcl/hcl.h"

/* Shortest text that reads back as the same double. */
static char *real_text(double d)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof(buf), "%.17g", d);
    return xstrdup(buf);
}

/* A syntax tree without positions, built and freed here (hcl.c's own
 * allocation scheme is its business). */
static struct hcl_value *json_to_hcl(json_t *j)
{
    struct hcl_value *v = xcalloc(1, sizeof(*v));
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        size_t i = 0;
        v->kind = HCL_OBJECT;
        v->n = json_object_size(j);
        v->items = xcalloc(v->n, sizeof(*v->items));
        v->keys = xcalloc(v->n, sizeof(*v->keys));
        v->key_pos = xcalloc(v->n, sizeof(*v->key_pos));
        json_object_foreach(j, key, val)
        {
            if (i == v->n)
                break;
            v->keys[i] = xstrdup(key);
            v->items[i] = json_to_hcl(val);
            i++;
        }
        v->n = i;
        break;
    }
    case JSON_ARRAY:
        v->kind = HCL_LIST;
        v->n = json_array_size(j);
        v->items = xcalloc(v->n, sizeof(*v->items));
        for (size_t i = 0; i < v->n; i++)
            v->items[i] = json_to_hcl(json_array_get(j, i));
        break;
    case JSON_STRING:
        v->kind = HCL_STRING;
        v->str = xstrndup(json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        v->kind = HCL_NUMBER;
        v->is_integer = true;
        v->integer = json_integer_value(j);
        v->number = (double)v->integer;
        v->str = xasprintf("%lld", (long long)v->integer);
        break;
    case JSON_REAL:
        v->kind = HCL_NUMBER;
        v->number = json_real_value(j);
        v->str = real_text(v->number);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v->kind = HCL_BOOL;
        v->boolean = json_is_true(j);
        break;
    case JSON_NULL:
        v->kind = HCL_NULL;
        break;
    }
    return v;
}

int config_load_json(struct agent_config *cfg, const char *filename,
                     const char *src, size_t len, struct nc_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(src, len, 0, &je);
    if (!root)
        return nc_error_set(err, -EINVAL, "%s:%d:%d: %s", filename, je.line,
                            je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return nc_error_set(err, -EINVAL,
                            "%s: expected a JSON object at the top level",
                            filename);
    }
    struct hcl_value *tree = json_to_hcl(root);
    json_decref(root);
    int r = config_decode_file(cfg, filename, &(struct config_src){.obj = tree},
                               err);
    hcl_value_free(tree);
    return r;
}
