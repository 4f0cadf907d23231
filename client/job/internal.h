/* job/internal.h - what the job/ files share; not a public API.
 *
 * Both front ends produce Nomad's API JSON first: HCL is converted by a
 * schema (jobspec_hcl*.c), JSON arrives as is. From there one path applies
 * Nomad's defaults to the JSON (where "absent" and "null" are visible, as
 * Go's nil pointers are), decodes it into the model with type checks,
 * validates the model and collects warnings. Positions of HCL items are
 * kept in a side table keyed by JSON path, so errors found later (types,
 * validation) still point at file:line:col. */
#ifndef NOMCLIENT_JOB_INTERNAL_H
#define NOMCLIENT_JOB_INTERNAL_H

#include "client/hcl/hcl.h"
#include "client/job/job.h"

/* Deepest nesting accepted in opaque JSON (driver config, connect, ...). */
#define JS_MAX_DEPTH 64
/* Validation stops listing errors after this many. */
#define JS_MAX_ERRORS 16

/* JSON path ("Job.TaskGroups[0].Count") -> source position. */
struct js_posent {
    char *path;
    struct hcl_pos pos;
};
struct js_posmap {
    struct js_posent *items;
    size_t n, cap;
};
void js_posmap_add(struct js_posmap *m, const char *path, struct hcl_pos pos);
/* Exact path first, then its parents; NULL when nothing matches. */
const struct hcl_pos *js_posmap_find(const struct js_posmap *m,
                                     const char *path);
void js_posmap_free(struct js_posmap *m);

/* Where error messages come from: a file name (may be NULL) and, for HCL,
 * the position table. */
struct js_source {
    const char *filename;
    const struct js_posmap *pos;
};

/* Formats "file:line:col: " (or "file: ", or nothing) for a JSON path. */
void js_where(const struct js_source *src, const char *path, struct nc_buf *b);

/* Collected validation errors, joined like Nomad's multierror. */
struct js_errors {
    const struct js_source *src;
    struct strlist msgs;
    size_t dropped;
};
void js_errors_add(struct js_errors *e, const char *path, const char *human,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 0 when empty; else fills err ("msg" or "N errors occurred:\n\t* ...")
 * and returns -EINVAL. Frees the list either way. */
int js_errors_finish(struct js_errors *e, struct nc_error *err);

/* HCL tree -> Nomad API job JSON (not yet defaulted). *job_vault receives
 * the job-level vault block (already copied into tasks) or NULL. */
int js_hcl_to_api(const struct hcl_file *file, struct js_posmap *pos,
                  json_t **out, json_t **job_vault, struct nc_error *err);

/* Applies Nomad's api Canonicalize defaults in place. Tolerates any JSON:
 * wrongly typed values are left for the decoder to report. */
void js_canonicalize(json_t *job);

/* Canonical API JSON -> model, checking every type. */
int js_decode(const json_t *job, const struct js_source *src,
              struct job **out, struct nc_error *err);

/* Validation with positions when src has them. */
int js_validate(struct job *job, const struct js_source *src,
                struct nc_error *err);

/* Fills job->warnings for stanzas kept but not acted on. */
void js_collect_warnings(struct job *job);

/* Takes ownership of api: defaults, decode, validate, warnings. */
int js_finish(json_t *api, const struct js_source *src, struct job **out,
              struct nc_error *err);

/* Cuts a path buffer back to its first n bytes (n <= b->len). */
void js_buf_truncate(struct nc_buf *b, size_t n);

/* JSON helpers shared by the files. */
json_t *js_string(const char *s); /* NULL -> "", invalid UTF-8 repaired */
/* Deep copy with object keys sorted, as Go prints maps. */
json_t *js_sorted_copy(const json_t *v);

/* Human path pieces: `group "api"`, `check[1]`, `network`. */
void js_seg_named(struct nc_buf *b, const char *kind, const char *name);
void js_seg_index(struct nc_buf *b, const char *kind, size_t i, size_t n);

/* ---- HCL conversion: what jobspec_hcl*.c share ----
 * jobspec_hcl.c walks the blocks of the HCL tree with the schema of
 * jobspec_hcl_schema.c; the leaf values are converted in
 * jobspec_hcl_value.c. */

/* How an attribute's value is converted. */
enum js_hcl_attr_kind {
    JS_A_NONE,
    JS_A_STRING,
    JS_A_SCALAR,   /* string; numbers and bools are taken as their text */
    JS_A_INT,      /* fits in int */
    JS_A_INT64,
    JS_A_BOOL,
    JS_A_DURATION, /* "10s" or a number of nanoseconds */
    JS_A_STRLIST,
    JS_A_INTLIST,
    JS_A_STRMAP,   /* name = { k = "v" }: attribute form of meta/env blocks */
};

/* How a block is converted. */
enum js_hcl_block_kind {
    JS_B_NONE,
    JS_B_ONE,         /* at most one, an object */
    JS_B_LIST,        /* repeated, a list of objects */
    JS_B_LABELED,     /* repeated with one label stored under label_key */
    JS_B_LABELED_MAP, /* one label, an object keyed by label */
    JS_B_STRMAP,      /* meta/env: name = "value" pairs */
    JS_B_OPAQUE,      /* driver config and the like: Nomad's generic rules */
    JS_B_HEADER,      /* check header { Name = ["v"] } */
    JS_B_PORT,        /* network port "label": reserved or dynamic list */
    JS_B_SCALING,     /* task scaling: optional label "cpu" / "mem" */
};

struct js_hcl_ctx;
struct js_hcl_schema;

/* One name a block's body accepts, as attribute, block or both. */
struct js_hcl_field {
    const char *name; /* HCL name */
    const char *key;  /* API JSON key */
    unsigned char attr, block;
    const struct js_hcl_schema *sub;
    const char *label_key;
};

/* Finishes a converted block's object (shortcuts, derived keys). */
typedef int (*js_hcl_post_fn)(struct js_hcl_ctx *c, json_t *obj,
                              const struct hcl_body *body);

/* The fields of one kind of block. */
struct js_hcl_schema {
    const struct js_hcl_field *fields;
    size_t n;
    js_hcl_post_fn post;
    bool driver_hint; /* task body: suggest moving driver keys to config */
};

/* The job block's schema, root of all the others. */
extern const struct js_hcl_schema js_hcl_job_schema;

/* Where the conversion is: the place twice (a human path for messages, a
 * JSON path for the position table) and the first error. */
struct js_hcl_ctx {
    struct js_posmap *pos;
    struct nc_error *err;
    const char *filename;
    struct nc_buf h; /* human path */
    struct nc_buf j; /* JSON path */
    const char *job_id;
    int depth;
};

/* Sets "file:line:col: path[ > leaf]: message" in c->err; -EINVAL. */
int js_hcl_fail(struct js_hcl_ctx *c, struct hcl_pos pos, const char *leaf,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A JSON string of s (NULL as ""); NULL after an error if not UTF-8. */
json_t *js_hcl_string(struct js_hcl_ctx *c, const char *s, struct hcl_pos pos,
                      const char *leaf);
/* Sets obj[key] = v (stolen), failing on keys that are not UTF-8. */
int js_hcl_put(struct js_hcl_ctx *c, json_t *obj, const char *key, json_t *v,
               struct hcl_pos pos, const char *leaf);
/* A whole number that fits in int64. */
bool js_hcl_number_i64(const struct hcl_value *v, int64_t *out);
/* An attribute's value converted as `kind`; *out is new. */
int js_hcl_attr(struct js_hcl_ctx *c, const struct hcl_item *it,
                enum js_hcl_attr_kind kind, json_t **out);
/* meta { k = "v" } / env { ... } as an object of strings; *out is new. */
int js_hcl_strmap_block(struct js_hcl_ctx *c, const struct hcl_item *blk,
                        json_t **out);
/* header { Name = ["v"] } as an object of string lists; *out is new. */
int js_hcl_header_block(struct js_hcl_ctx *c, const struct hcl_item *blk,
                        json_t **out);
/* A body by Nomad's generic rules (driver config) into obj. */
int js_hcl_opaque_body(struct js_hcl_ctx *c, const struct hcl_body *b,
                       json_t *obj, const char *leaf, int depth);
/* Copies a group's (or job's) vault block into its tasks that have none. */
void js_hcl_spread_vault(json_t *group, const json_t *vault);

/* ---- validation: what jobspec_validate*.c share ---- */

/* Where validation is: the errors so far and the place, twice (a human
 * path for the message, a JSON path for file:line:col). */
struct jv_ctx {
    struct js_errors e;
    struct nc_buf h; /* human path */
    struct nc_buf j; /* JSON path */
    const struct job *job;
};
/* A place to come back to after descending. */
struct jv_mark {
    size_t h, j;
};
/* The current place, to restore with jv_restore. */
struct jv_mark jv_mark(const struct jv_ctx *v);
/* Back to a place taken with jv_mark. */
void jv_restore(struct jv_ctx *v, struct jv_mark m);
/* Reports an error at the current place; jsuffix narrows the position to
 * a field (".PortLabel"). */
void jv_err(struct jv_ctx *v, const char *jsuffix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A duration as Go prints it, in buf. */
const char *jv_dur(int64_t ns, char *buf, size_t len);
/* Whether s (NULL as "") is one of list[0..n). */
bool jv_one_of(const char *s, const char *const *list, size_t n);
#define JV_ONE_OF(s, ...)                                                      \
    jv_one_of((s), (const char *const[]){__VA_ARGS__},                         \
              sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* An optionally signed run of decimal digits. */
bool jv_is_numeric(const char *s);

/* Constraints, affinities and spreads of one level. */
void jv_validate_constraints(struct jv_ctx *v, const struct constraint *c,
                             size_t n, bool task_level);
void jv_validate_affinities(struct jv_ctx *v, const struct affinity *a,
                            size_t n);
void jv_validate_spreads(struct jv_ctx *v, const struct spread *s, size_t n);
/* A group's networks and ports. */
void jv_validate_networks(struct jv_ctx *v, const struct task_group *g);
/* The services of a group (task NULL) or of one of its tasks. */
void jv_validate_services(struct jv_ctx *v, const struct service *svc,
                          size_t n, const struct task *task,
                          const struct task_group *g);

/* ---- placement: what placement*.c share ----
 * placement.c walks a job's groups; the operators, ports and resources it
 * asks have files of their own. */

/* NULL as "", for node and job strings in comparisons and messages. */
static inline const char *pl_or_empty(const char *s)
{
    return s ? s : "";
}

/* Go's %q (strconv.Quote) of s appended to b: Nomad quotes names that way,
 * which also neutralises control characters in hostile strings. */
void pl_go_quote(struct nc_buf *b, const char *s);
/* strconv.ParseUint(s, 10, 64): 0, or 1 for bad syntax, 2 for overflow. */
int pl_parse_uint64(const char *s, uint64_t *out);
/* strconv.ParseInt(s[0:n], 10, 64). */
bool pl_parse_int64_n(const char *s, size_t n, int64_t *out);
/* strconv.ParseFloat(s, 64) acceptance. */
bool pl_parse_float(const char *s, double *out);

/* A node's pool as Nomad canonicalises it ("default" when unset). */
const char *pl_node_pool(const struct node *node);
/* Nomad's resolveTarget: the value (never NULL; "" when missing, borrowed
 * from the node or the target) and whether it was found. */
const char *pl_resolve_target(const struct node *node, const char *target,
                              bool *found);
/* Constraint.String(): "ltarget operand rtarget"; caller frees. */
char *pl_constraint_string(const struct constraint *c);
/* version / semver operator: `version` (found or not) against the
 * constraint list; an invalid list fails with *why (allocated) when asked. */
bool pl_version_check(const char *version, bool found, const char *constraints,
                      bool semver, char **why);
/* regexp operator: `value` (found or not) searched with the vetted RE2
 * pattern; a refused pattern or value fails with *why when asked. */
bool pl_regexp_check(const char *value, bool found, const char *pattern,
                     char **why);

/* The failing check with the fewest allocations it lets through; ties go
 * to the check Nomad runs first. */
struct pl_limiter {
    int64_t allowed;
    enum placement_failure kind;
    char *what; /* filter constraint text or exhausted dimension */
};
/* Lowers lim to `allowed` (taking `what`) if that is fewer; frees `what`
 * otherwise. */
void pl_limit_by(struct pl_limiter *lim, int64_t allowed,
                 enum placement_failure kind, char *what);

/* Host ports in use on the node and the dynamic range left. */
struct pl_ports {
    uint8_t *used;         /* bitmap of host ports in use */
    int64_t dynamic_free;  /* unused ports in 20000-32000 ... */
    int64_t dynamic_taken; /* ... less those given to earlier allocations */
};
/* From the node's reserved_ports and the usage; -EINVAL with *message
 * (allocated, Nomad's words) when reserved_ports is invalid. */
int pl_ports_init(struct pl_ports *ports, const struct node *node,
                  const struct placement_usage *used, char **message);
void pl_ports_free(struct pl_ports *ports);
/* Limits by the group's static and dynamic ports; *ndynamic receives the
 * dynamic ports one allocation takes. */
void pl_ports_limit(const struct pl_ports *ports, const struct task_group *tg,
                    struct pl_limiter *lim, int64_t *ndynamic);
/* Takes the ports of `placed` allocations of the group. */
void pl_ports_take(struct pl_ports *ports, const struct task_group *tg,
                   int64_t placed, int64_t ndynamic);

/* cpu (MHz), memory and disk (MB) and cores: left on the node, or asked
 * by one allocation of a group. */
struct pl_resources {
    int64_t cpu, memory, disk, cores;
    int64_t mhz_per_core; /* the node's, for asks in cores */
};
/* What the node has left after its reservations and the usage. */
void pl_resources_init(struct pl_resources *res, const struct node *node,
                       const struct placement_usage *used);
/* What one allocation of the group asks (cores counted in MHz too). */
void pl_resources_ask(const struct pl_resources *res,
                      const struct task_group *tg, struct pl_resources *ask);
/* Limits by each dimension, in Nomad's order. */
void pl_resources_limit(const struct pl_resources *res,
                        const struct pl_resources *ask,
                        struct pl_limiter *lim);
/* Subtracts `placed` allocations' ask. */
void pl_resources_take(struct pl_resources *res,
                       const struct pl_resources *ask, int64_t placed);

#endif
