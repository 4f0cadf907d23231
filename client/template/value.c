/* value.c - the arenas and the tagged values templates work on. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

/* ---- arena --------------------------------------------------------------- */

struct chunk {
    struct chunk *next;
    size_t size, used;
    max_align_t data[];
};

struct tmpl_arena {
    struct chunk *head;
    size_t next_size;
    size_t used;
};

#define ARENA_MAX_CHUNK (64 * 1024)

struct tmpl_arena *tmpl_arena_new(size_t chunk)
{
    struct tmpl_arena *a = xcalloc(1, sizeof *a);
    a->next_size = chunk ? chunk : 4096;
    return a;
}

void tmpl_arena_free(struct tmpl_arena *a)
{
    if (!a)
        return;
    for (struct chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *tmpl_arena_alloc(struct tmpl_arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    struct chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = a->next_size;
        if (size < n)
            size = n;
        c = xmalloc(sizeof *c + size);
        c->size = size;
        c->used = 0;
        /* A big request gets its own chunk behind the current one, so
         * the current one's free room is not lost. */
        if (a->head && size > a->next_size) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
        if (a->next_size < ARENA_MAX_CHUNK)
            a->next_size *= 2;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

size_t tmpl_arena_used(const struct tmpl_arena *a)
{
    return a ? a->used : 0;
}

char *tp_arena_strdup(struct tmpl_arena *a, const char *s, size_t n)
{
    char *p = tmpl_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void tp_arena_grow(struct tmpl_arena *a, void **arr, size_t *cap, size_t need,
                   size_t size)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap * 2 : 4;
    while (ncap < need)
        ncap *= 2;
    void *p = tmpl_arena_alloc(a, ncap * size);
    if (*cap)
        memcpy(p, *arr, *cap * size);
    *arr = p;
    *cap = ncap;
}

struct tmpl_value tp_arena_take_buf(struct tmpl_arena *a, struct nc_buf *b)
{
    struct tmpl_value v = tmpl_string(a, b->data ? b->data : "", b->len);
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
    return v;
}

bool tp_tstr_eq(struct tstr a, const char *s, size_t n)
{
    return a.n == n && (n == 0 || memcmp(a.s, s, n) == 0);
}

/* ---- constructors ----------------------------------------------------------
 */

struct tmpl_value tmpl_invalid(void)
{
    return (struct tmpl_value){.kind = TMPL_INVALID};
}

struct tmpl_value tmpl_nil(void)
{
    return (struct tmpl_value){.kind = TMPL_NIL};
}

struct tmpl_value tmpl_bool(bool b)
{
    return (struct tmpl_value){.kind = TMPL_BOOL, .b = b};
}

struct tmpl_value tmpl_int(int64_t i)
{
    return (struct tmpl_value){.kind = TMPL_INT, .sub = TMPL_INT_INT, .i = i};
}

struct tmpl_value tmpl_int64(int64_t i)
{
    return (struct tmpl_value){.kind = TMPL_INT, .sub = TMPL_INT_INT64, .i = i};
}

struct tmpl_value tmpl_uint64(uint64_t u)
{
    return (struct tmpl_value){.kind = TMPL_UINT, .u = u};
}

struct tmpl_value tmpl_float(double f)
{
    return (struct tmpl_value){.kind = TMPL_FLOAT, .f = f};
}

struct tmpl_value tmpl_string(struct tmpl_arena *a, const char *s, size_t len)
{
    return (struct tmpl_value){
        .kind = TMPL_STRING, .len = len, .s = tp_arena_strdup(a, s, len)};
}

struct tmpl_value tmpl_cstring(struct tmpl_arena *a, const char *s)
{
    return tmpl_string(a, s, strlen(s));
}

struct tmpl_value tmpl_string_ref(const char *s, size_t len)
{
    return (struct tmpl_value){.kind = TMPL_STRING, .len = len, .s = s};
}

struct tmpl_value tmpl_list(struct tmpl_arena *a, size_t n, int elem)
{
    struct tmpl_value v = {.kind = TMPL_LIST, .sub = (uint8_t)elem, .len = n};
    v.items = n ? tmpl_arena_alloc(a, n * sizeof(struct tmpl_value)) : NULL;
    return v;
}

struct tmpl_value *tmpl_list_items(struct tmpl_value *list)
{
    return (struct tmpl_value *)list->items;
}

/* An unsealed map keeps its capacity after the entries. */
struct map_head {
    size_t cap;
};

struct tmpl_value tmpl_map_new(struct tmpl_arena *a, size_t cap, int elem)
{
    struct tmpl_value v = {.kind = TMPL_MAP, .sub = (uint8_t)elem};
    if (cap == 0)
        cap = 4;
    struct map_head *h = tmpl_arena_alloc(
        a, sizeof(max_align_t) + cap * sizeof(struct tmpl_map_entry));
    h->cap = cap;
    v.entries = (void *)((char *)h + sizeof(max_align_t));
    return v;
}

void tmpl_map_put(struct tmpl_arena *a, struct tmpl_value *map, const char *key,
                  size_t klen, struct tmpl_value val)
{
    struct map_head *h =
        (struct map_head *)((char *)map->entries - sizeof(max_align_t));
    if (map->len == h->cap) {
        struct tmpl_value bigger = tmpl_map_new(a, h->cap * 2, map->sub);
        memcpy((void *)bigger.entries, map->entries,
               map->len * sizeof(struct tmpl_map_entry));
        bigger.len = map->len;
        *map = bigger;
    }
    struct tmpl_map_entry *e =
        (struct tmpl_map_entry *)&map->entries[map->len++];
    e->key = tp_arena_strdup(a, key, klen);
    e->klen = klen;
    e->value = val;
}

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

/* A stable merge sort, so that of equal keys the last put stays last. */
static void sort_entries(struct tmpl_map_entry *e, size_t n)
{
    struct tmpl_map_entry *tmp = xmalloc(n * sizeof *tmp);
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (key_cmp(e[j].key, e[j].klen, e[i].key, e[i].klen) < 0)
                    tmp[k++] = e[j++];
                else
                    tmp[k++] = e[i++];
            }
            while (i < mid)
                tmp[k++] = e[i++];
            while (j < hi)
                tmp[k++] = e[j++];
        }
        memcpy(e, tmp, n * sizeof *e);
    }
    free(tmp);
}

void tmpl_map_seal(struct tmpl_value *map)
{
    struct tmpl_map_entry *e = (struct tmpl_map_entry *)map->entries;
    if (map->len < 2)
        return;
    /* Already sorted and unique (maps built from sorted data)? */
    size_t i;
    for (i = 1; i < map->len; i++)
        if (key_cmp(e[i - 1].key, e[i - 1].klen, e[i].key, e[i].klen) >= 0)
            break;
    if (i == map->len)
        return;
    sort_entries(e, map->len);
    size_t out = 0;
    for (i = 0; i < map->len; i++) {
        if (i + 1 < map->len &&
            key_cmp(e[i].key, e[i].klen, e[i + 1].key, e[i + 1].klen) == 0)
            continue; /* a later put of the same key wins */
        e[out++] = e[i];
    }
    map->len = out;
}

const struct tmpl_value *tmpl_map_get(const struct tmpl_value *map,
                                      const char *key, size_t klen)
{
    size_t lo = 0, hi = map->len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct tmpl_map_entry *e = &map->entries[mid];
        int c = key_cmp(e->key, e->klen, key, klen);
        if (c == 0)
            return &e->value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

struct tmpl_value tmpl_object(struct tmpl_arena *a,
                              const struct tmpl_object_type *type,
                              const void *data)
{
    struct tmpl_object *o = tmpl_arena_alloc(a, sizeof *o);
    o->type = type;
    o->data = data;
    return (struct tmpl_value){.kind = TMPL_OBJECT, .obj = o};
}

const char *tmpl_type_name(const struct tmpl_value *v)
{
    switch (v->kind) {
    case TMPL_INVALID:
        return "<nil>";
    case TMPL_NIL:
        return "interface {}";
    case TMPL_BOOL:
        return "bool";
    case TMPL_INT:
        return v->sub == TMPL_INT_INT64 ? "int64" : "int";
    case TMPL_UINT:
        return v->sub == TMPL_UINT_UINT8 ? "uint8" : "uint64";
    case TMPL_FLOAT:
        return "float64";
    case TMPL_STRING:
        return "string";
    case TMPL_LIST:
        return v->sub == TMPL_ELEM_STRING ? "[]string" : "[]interface {}";
    case TMPL_MAP:
        return v->sub == TMPL_ELEM_STRING ? "map[string]string"
                                          : "map[string]interface {}";
    case TMPL_OBJECT:
        return v->obj->type->type_name;
    case TMPL_STREAM:
        return "<-chan int64";
    }
    return "?";
}

/* Go's truth (exec.go isTrue) of a value, interfaces looked through. */
bool tp_value_truth(const struct tmpl_value *v)
{
    switch (v->kind) {
    case TMPL_INVALID:
    case TMPL_NIL:
        return false;
    case TMPL_BOOL:
        return v->b;
    case TMPL_INT:
        return v->i != 0;
    case TMPL_UINT:
        return v->u != 0;
    case TMPL_FLOAT:
        return v->f != 0;
    case TMPL_STRING:
    case TMPL_LIST:
    case TMPL_MAP:
        return v->len > 0;
    case TMPL_OBJECT:
    case TMPL_STREAM:
        return true;
    }
    return false;
}
