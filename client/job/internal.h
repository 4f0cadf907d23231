/* job/internal.h - what the job/ files share; not a public API.
 *
 * Both front ends produce Nomad's API JSON first: HCL is converted by a
 * schema (jobspec_hcl.c), JSON arrives as is. From there one path applies
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

/* JSON helpers shared by the files. */
json_t *js_string(const char *s); /* NULL -> "", invalid UTF-8 repaired */
/* Deep copy with object keys sorted, as Go prints maps. */
json_t *js_sorted_copy(const json_t *v);

/* Human path pieces: `group "api"`, `check[1]`, `network`. */
void js_seg_named(struct nc_buf *b, const char *kind, const char *name);
void js_seg_index(struct nc_buf *b, const char *kind, size_t i, size_t n);

#endif
