/* drivers/docker_config_internal.h - what the files of the docker
 * driver's config half share (docker_config.c, docker_image_ref.c,
 * docker_validate.c, docker_body.c, docker_auth.c) and nothing else
 * includes: the JSON value readers, the path helpers and the checks the
 * container create body runs again after interpolation. */
#ifndef NOMCLIENT_DRIVERS_DOCKER_CONFIG_INTERNAL_H
#define NOMCLIENT_DRIVERS_DOCKER_CONFIG_INTERNAL_H

#include "client/drivers/docker_config.h"

#define MINUTE_NS (60 * (int64_t)1000000000)
#define HUB_REGISTRY "https://index.docker.io/v1/"

/* ---- JSON values, converted as HCL converts them (docker_config.c) ---- */

/* The value under key, NULL when absent or null. */
const json_t *cget(const json_t *o, const char *key);
/* A scalar's text (a string, a number, a bool), NULL for anything else.
 * Caller frees. */
char *jtext(const json_t *v);
/* A bool, or its text as HCL reads it. */
bool jbool(const json_t *v, bool *out);
/* A whole number: an integer, a real without fraction, or its text. */
bool jint(const json_t *v, int64_t *out);
/* Whether s holds "${", interpolated at run time. */
bool has_interp(const char *s);
/* A block's objects: an object is one, a list holds them. */
size_t nblocks(const json_t *v);
const json_t *block_at(const json_t *v, size_t i);

/* Accessors of a config that passed the structural check. cstr: the
 * text, caller frees; cstrlist appends to out, cstrmap sets into it. */
char *cstr(const json_t *o, const char *key);
bool cbool(const json_t *o, const char *key);
int64_t cint(const json_t *o, const char *key, int64_t dflt);
void cstrlist(const json_t *o, const char *key, struct strlist *out);
void cstrmap(const json_t *o, const char *key, struct kvlist *out);
const json_t *cblock(const json_t *o, const char *key);

/* A deep copy with every string interpolated (keys are kept). New
 * reference. */
json_t *interpolate(const json_t *v, const struct kvlist *env,
                    const struct node *n, int depth);

/* ---- paths (docker_config.c) ---- */

/* Go's filepath.Clean. Caller frees. */
char *path_clean(const char *p);
/* dir made absolute against base (absolute already) and cleaned. Caller
 * frees. */
char *expand_path(const char *base, const char *dir);
/* Nomad's isParentPath. */
bool is_parent_path(const char *parent, const char *path);

/* ---- checks (docker_validate.c) ---- */

/* What to pass as CapAdd and CapDrop so the container gets Docker's
 * defaults within allow_caps, less cap_drop, plus cap_add; every cap_add
 * must be allowed. allow NULL: no check (structural validation only). */
int caps_delta(const struct strlist *allow, const struct strlist *add,
               const struct strlist *drop, json_t *cap_add, json_t *cap_drop,
               char *msg, size_t len);
/* "soft[:hard]" of a ulimit, as Nomad's sliceMergeUlimit reads it */
int parse_ulimit(const char *name, const char *raw, int64_t *soft,
                 int64_t *hard, char *msg, size_t len);
/* Nomad's parseSecurityOpts, without reading seccomp profiles: the
 * option's name and value, or -EINVAL. */
int split_security_opt(const char *opt, char **name, char **value);
/* Shape, then meaning; config NULL is a config without image. runtime:
 * interpolated already, so "${...}" strings are checked too. */
int validate_config(const struct agent_config *cfg, const json_t *config,
                    bool runtime, struct nc_error *err);

#endif
