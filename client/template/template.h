/* template.h - Go's text/template in C, for the `template` blocks of Nomad
 * jobs, with consul-template's functions that need no network.
 *
 * Parse once (tmpl_parse), render many times (tmpl_render); a parsed
 * template is read-only, so renders may run in parallel. The syntax, the
 * semantics and the error messages are Go 1.19's text/template ones (what
 * Nomad's consul-template runs), checked byte for byte against Go by
 * tests/test_template_diff.c; the few differences are listed at the top of
 * exec.c (no complex numbers, objects without methods, our bounds).
 *
 * Values are a small tagged model (struct tmpl_value) held in arenas: no
 * reference counts, no frees of single values. The caller's values (the
 * data given as dot, the answers to dependency lookups) live in the
 * caller's arena or in memory the caller keeps alive during the render
 * (tmpl_string_ref); what the render makes lives in its own arena, freed
 * when tmpl_render returns.
 *
 * Functions come from a registry (struct tmpl_funcs). A function that needs
 * something from outside (`env "X"`, `key "a/b"`, `service "web"`) asks the
 * render's environment (struct tmpl_env) through tmpl_call_dep: the answer
 * is "here is the value", "known to be absent" or "missing, not yet known".
 * A missing dependency renders as its zero value and the render goes on, as
 * consul-template does; tmpl_render then returns TMPL_MISSING, so the caller
 * (which saw every lookup in its callback) can record the dependencies,
 * emit "Missing: ..." and render again when one changes. */
#ifndef NOMCLIENT_TEMPLATE_H
#define NOMCLIENT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/util.h"

/* ---- values ---------------------------------------------------------- */

enum tmpl_kind {
    TMPL_INVALID, /* no value: a missing map key, nil data (Go's zero
                     reflect.Value) */
    TMPL_NIL,     /* a nil held by an interface{}: JSON null in a list or map */
    TMPL_BOOL,
    TMPL_INT,  /* sub: TMPL_INT_INT ("int"), TMPL_INT_INT64 */
    TMPL_UINT, /* sub: TMPL_UINT_UINT64, TMPL_UINT_UINT8 (a byte of a string) */
    TMPL_FLOAT, /* float64 */
    TMPL_STRING,
    TMPL_LIST,   /* sub: TMPL_ELEM_ANY ([]interface {}) or TMPL_ELEM_STRING
                    ([]string) */
    TMPL_MAP,    /* string keys, sorted; sub as for lists */
    TMPL_OBJECT, /* an opaque record with named fields (a service entry) */
    TMPL_STREAM, /* what `loop` returns (Go's <-chan int64): start, count */
};

enum { TMPL_INT_INT = 0, TMPL_INT_INT64 = 1 };
enum { TMPL_UINT_UINT64 = 0, TMPL_UINT_UINT8 = 1 };
enum { TMPL_ELEM_ANY = 0, TMPL_ELEM_STRING = 1 };

struct tmpl_value;
struct tmpl_map_entry;
struct tmpl_object;
struct tmpl_arena;

struct tmpl_value {
    uint8_t kind;  /* enum tmpl_kind */
    uint8_t sub;   /* the Go type within the kind, see above */
    uint8_t iface; /* internal: read out of an interface{} container */
    size_t len;    /* string bytes, list items, map entries, stream count */
    union {
        bool b;
        int64_t i; /* TMPL_INT; TMPL_STREAM: the first value */
        uint64_t u;
        double f;
        const char *s; /* not NUL-terminated */
        const struct tmpl_value *items;
        const struct tmpl_map_entry *entries;
        const struct tmpl_object *obj;
    };
};

struct tmpl_map_entry {
    const char *key;
    size_t klen;
    struct tmpl_value value;
};

/* An object: a Go struct pointer the template reads fields of
 * ({{ .Address }}). `field` answers 0 with *out set, or -ENOENT; it may
 * allocate the answer in `a` (the render's arena). `format` prints the
 * object for {{ . }} / %v (NULL: "&{<type name>}"); `to_json` for toJSON
 * (NULL: toJSON refuses it). `type_name` is Go's, for messages
 * ("*dependency.HealthService"). */
struct tmpl_object_type {
    const char *type_name;
    int (*field)(const void *data, const char *name, size_t len,
                 struct tmpl_arena *a, struct tmpl_value *out);
    void (*format)(const void *data, struct nc_buf *out);
    int (*to_json)(const void *data, struct tmpl_arena *a,
                   struct tmpl_value *out); /* as a value toJSON can encode */
};
struct tmpl_object {
    const struct tmpl_object_type *type;
    const void *data;
};

/* Arenas: chunks freed all at once. `chunk` is the first chunk's size
 * (0: 4 KiB); later chunks double up to 64 KiB. */
struct tmpl_arena *tmpl_arena_new(size_t chunk);
void tmpl_arena_free(struct tmpl_arena *a);             /* NULL-safe */
void *tmpl_arena_alloc(struct tmpl_arena *a, size_t n); /* aligned, zeroed */
size_t tmpl_arena_used(const struct tmpl_arena *a);     /* bytes handed out */

/* Constructors. tmpl_string copies into `a`; tmpl_string_ref does not (the
 * caller keeps s alive while the value is used). */
struct tmpl_value tmpl_invalid(void);
struct tmpl_value tmpl_nil(void);
struct tmpl_value tmpl_bool(bool b);
struct tmpl_value tmpl_int(int64_t i);   /* Go int */
struct tmpl_value tmpl_int64(int64_t i); /* Go int64 */
struct tmpl_value tmpl_uint64(uint64_t u);
struct tmpl_value tmpl_float(double f);
struct tmpl_value tmpl_string(struct tmpl_arena *a, const char *s, size_t len);
struct tmpl_value tmpl_cstring(struct tmpl_arena *a, const char *s);
struct tmpl_value tmpl_string_ref(const char *s, size_t len);
/* A list of n items (all TMPL_INVALID) to fill through tmpl_list_items. */
struct tmpl_value tmpl_list(struct tmpl_arena *a, size_t n, int elem);
struct tmpl_value *tmpl_list_items(struct tmpl_value *list);
/* Maps: tmpl_map_new reserves room for `cap` entries; tmpl_map_put adds
 * one (the key copied into a); tmpl_map_seal sorts the keys, the last put
 * of a key winning. A map must be sealed before use. */
struct tmpl_value tmpl_map_new(struct tmpl_arena *a, size_t cap, int elem);
void tmpl_map_put(struct tmpl_arena *a, struct tmpl_value *map, const char *key,
                  size_t klen, struct tmpl_value v);
void tmpl_map_seal(struct tmpl_value *map);
/* Looks a key up in a sealed map: the value or NULL. */
const struct tmpl_value *tmpl_map_get(const struct tmpl_value *map,
                                      const char *key, size_t klen);
struct tmpl_value tmpl_object(struct tmpl_arena *a,
                              const struct tmpl_object_type *type,
                              const void *data);

/* JSON text into values. TMPL_JSON_GO_NUMBERS makes every number a float64
 * (Go's json.Unmarshal into interface{}, which parseJSON does); without it
 * integers without fraction or exponent become Go ints (how tests give data).
 * Errors are Go's json messages ("unexpected end of JSON input"). */
enum { TMPL_JSON_GO_NUMBERS = 1 };
int tmpl_value_from_json(struct tmpl_arena *a, const char *text, size_t len,
                         int flags, struct tmpl_value *out,
                         struct nc_error *err);

/* Go's reflect type name of a value ("[]interface {}", "int64"). */
const char *tmpl_type_name(const struct tmpl_value *v);

/* ---- functions --------------------------------------------------------- */

/* Go parameter types, for Go's argument checks and messages. */
enum tmpl_param {
    TMPL_P_VALUE, /* reflect.Value: anything, as it is (builtins) */
    TMPL_P_ANY,   /* interface{}: anything; no value and nil give TMPL_NIL */
    TMPL_P_STRING,
    TMPL_P_INT,     /* Go int */
    TMPL_P_STRINGS, /* []string */
    TMPL_P_LIST,    /* []interface {} */
};

struct tmpl_call; /* one call of a function, see tmpl_call_* below */

/* A function gets its checked arguments and sets *out; it returns 0, or
 * tmpl_call_fail(...) whose message becomes Go's
 * "error calling NAME: <message>". */
typedef int (*tmpl_fn)(struct tmpl_call *c, const struct tmpl_value *args,
                       size_t nargs, struct tmpl_value *out);

struct tmpl_func {
    const char *name;
    tmpl_fn fn;
    uint8_t nparams; /* with variadic, the last one repeats */
    bool variadic;
    uint8_t params[4]; /* enum tmpl_param */
    uint8_t builtin;   /* internal: Go's builtin and/or/... (0 for others) */
};

/* A registry: Go's builtins are always there; tmpl_funcs_add adds a table
 * (kept by pointer: static tables) whose names override earlier ones. */
struct tmpl_funcs;
struct tmpl_funcs *tmpl_funcs_new(void);
void tmpl_funcs_add(struct tmpl_funcs *r, const struct tmpl_func *table,
                    size_t n);
/* consul-template's functions that need no network (base64*, toJSON,
 * parseJSON, split, regexMatch, sha256Hex, add, loop, env, envOrDefault,
 * ...; plugin and writeToFile as Nomad disables them). */
void tmpl_funcs_add_consul(struct tmpl_funcs *r);
const struct tmpl_func *tmpl_funcs_find(const struct tmpl_funcs *r,
                                        const char *name, size_t len);
void tmpl_funcs_free(struct tmpl_funcs *r); /* NULL-safe */

/* Inside a function: the render's arena (for results), a failure, and
 * dependency lookups through the environment. */
struct tmpl_arena *tmpl_call_arena(struct tmpl_call *c);
int tmpl_call_fail(struct tmpl_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Asks the environment for a dependency: 0 with *out set, TMPL_ABSENT
 * (known not to exist), TMPL_MISSING (not known yet; *out is TMPL_INVALID
 * and the render will return TMPL_MISSING), or -1 after tmpl_call_fail
 * (the environment's error). With no environment, every dependency is
 * absent. */
int tmpl_call_dep(struct tmpl_call *c, const char *kind,
                  const char *const *args, size_t nargs,
                  struct tmpl_value *out);
/* The render's clock (tmpl_env.now_unix_ns, or the real one). */
int64_t tmpl_call_now(struct tmpl_call *c);
/* Before making a result of `bytes`: fails the call when the render's
 * memory budget would be passed. Returns 0 or -1 (failed). */
int tmpl_call_reserve(struct tmpl_call *c, size_t bytes);

/* ---- parse and render ---------------------------------------------------- */

enum tmpl_missing_key {
    TMPL_MISSINGKEY_DEFAULT, /* Go's default: <no value> */
    TMPL_MISSINGKEY_ZERO,    /* missingkey=zero: consul-template without
                                error_on_missing_key */
    TMPL_MISSINGKEY_ERROR,   /* missingkey=error: error_on_missing_key = true */
};

/* Bounds for hostile templates: each exceeded bound is a clean error.
 * Zero fields take the defaults in brackets. A render runs on the calling
 * thread: on the agent's loop keep max_time_ns small (a legitimate
 * 1,000-line range renders in about half a millisecond). */
struct tmpl_limits {
    size_t max_output;    /* bytes rendered [16 MiB] */
    size_t max_memory;    /* bytes the render may allocate [64 MiB] */
    uint64_t max_steps;   /* nodes walked + range iterations + calls [10 M] */
    uint64_t max_time_ns; /* wall time of one render [250 ms] */
    unsigned max_nesting; /* nested actions and parentheses at parse [100] */
    unsigned max_depth;   /* {{template}} calls within calls [100] */
    size_t max_text;      /* template text at parse [4 MiB] */
};

struct tmpl_options {
    const char *left_delim;         /* NULL or "": "{{" */
    const char *right_delim;        /* NULL or "": "}}" */
    const struct tmpl_funcs *funcs; /* NULL: Go's builtins only */
    enum tmpl_missing_key missing_key;
    struct tmpl_limits limits;
};

struct tmpl;

/* Parses a template (its {{define}}s too). Returns NULL with err set to Go's
 * message ("template: name:3: function \"foo\" not defined"). The template
 * keeps a copy of text and the pointer to o->funcs (keep it alive). */
struct tmpl *tmpl_parse(const char *name, const char *text, size_t len,
                        const struct tmpl_options *o, struct nc_error *err);
void tmpl_free(struct tmpl *t); /* NULL-safe */
/* Bytes the parsed template holds (its text, tree and names). */
size_t tmpl_size(const struct tmpl *t);

/* A dependency asked by a function: kind is the function's name ("env",
 * "key", "service", ...) and args its string arguments. */
struct tmpl_dep {
    const char *kind;
    const char *const *args;
    size_t nargs;
};

enum {
    TMPL_MISSING =
        1, /* tmpl_render: rendered, but some dependency is not known yet */
    TMPL_ABSENT = 2, /* lookup: the dependency is known not to exist */
};

/* Where a render gets its dependencies. lookup returns 0 with *out set
 * (allocated in `a`, the render's arena, or kept alive by the caller),
 * TMPL_ABSENT, TMPL_MISSING, or a negative errno with `why` filled (the
 * function then fails with that text). Every call is one use: the caller
 * records what it is asked. */
struct tmpl_env {
    int (*lookup)(void *ctx, const struct tmpl_dep *dep, struct tmpl_arena *a,
                  struct tmpl_value *out, char *why, size_t whylen);
    void *ctx;
    int64_t now_unix_ns; /* timestamp's clock; 0: the real clock */
};

/* Renders t with `dot` as data (NULL: Go's nil) and appends to out.
 * Returns 0, TMPL_MISSING (output made with zero values for what is
 * missing), or a negative errno with err set to Go's message
 * ("template: name:1:10: executing \"name\" at <.a.b>: ..."); out then holds
 * what was rendered before the error. env may be NULL. */
int tmpl_render(const struct tmpl *t, const struct tmpl_value *dot,
                const struct tmpl_env *env, struct nc_buf *out,
                struct nc_error *err);

#endif
