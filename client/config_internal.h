/* config_internal.h - what client/config*.c share; not a public API.
 *
 * config.c loads files and calls config_decode_file (config_decode.c),
 * directly for HCL and through config_load_json (config_json.c) for JSON;
 * the decoder walks the tables of config_schema.c. The field kinds (F_*)
 * and the row macros (ATTR, BLOCK, ...) are the tables' vocabulary and are
 * kept short, as every row of a table spells them. */
#ifndef NOMCLIENT_CONFIG_INTERNAL_H
#define NOMCLIENT_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "client/config.h"
#include "client/hcl/hcl.h"

/* consul.file_set bits: set by a file, so the CONSUL_* environment keeps
 * off them */
enum {
    CONFIG_SET_CONSUL_ADDRESS = 1u << 0,
    CONFIG_SET_CONSUL_TOKEN = 1u << 1,
    CONFIG_SET_CONSUL_SSL = 1u << 2,
    CONFIG_SET_CONSUL_VERIFY_SSL = 1u << 3,
    CONFIG_SET_CONSUL_CA_FILE = 1u << 4,
    CONFIG_SET_CONSUL_CERT_FILE = 1u << 5,
    CONFIG_SET_CONSUL_KEY_FILE = 1u << 6,
};

/* What a schema field holds, and so how its value is checked. */
enum config_field_kind {
    F_STRING,
    F_INT,
    F_BOOL,
    F_NUMBER,
    F_DURATION, /* "10s", or a whole number of nanoseconds */
    F_STRLIST,
    F_LOG_LEVEL,
    F_CORES,          /* a count, or a cpuset "0-1,3" counted */
    F_CONSUL_ADDRESS, /* an "https://" prefix turns ssl on */
    F_SERVER_ENABLED, /* true is refused */
    /* block-like kinds from here on */
    F_STRMAP,  /* meta { k = "v" } or meta = { k = "v" } */
    F_BLOCK,   /* one nested body, merged when repeated */
    F_LABELED, /* host_volume "name" { ... }: a handler per label */
    F_OPAQUE,  /* accepted as a whole and ignored */
};

#define NOFF ((size_t)-1) /* accepted, checked, not stored */

/* Where a body comes from: an HCL block body or an object value (the
 * attribute form `client = { ... }` and JSON). */
struct config_src {
    const struct hcl_body *body;
    const struct hcl_value *obj;
};

/* The state of decoding one file (config_decode.c). */
struct config_decoder;

/* Decodes one labeled block, host_volume "name" { ... }. */
typedef int (*config_label_fn)(struct config_decoder *c, const char *label,
                               struct hcl_pos pos, const struct config_src *s);

struct config_schema;

/* One block or attribute a body accepts. */
struct config_field {
    const char *name;
    enum config_field_kind kind;
    size_t off;      /* into the base struct being decoded, or NOFF */
    unsigned setbit; /* consul.file_set bit recorded when set */
    const struct config_schema *sub;
    config_label_fn labeled;
    /* F_STRLIST: each item checked, F_STRING: the value (a driver's key,
     * e.g. capabilities, exec's default_pid_mode) */
    int (*check)(const char *item, char *msg, size_t msglen);
};

/* The fields of one body. */
struct config_schema {
    const struct config_field *fields;
    size_t n;
    bool open; /* names not listed are accepted and ignored */
    void (*enter)(struct agent_config *cfg);
};

/* Rows of a field table: a stored attribute, one accepted and checked but
 * not stored, a string map, a nested block, a labeled block with its
 * handler, a block accepted whole and ignored. */
/* clang-format off */
#define ATTR(n, k, off) {n, k, off, 0, NULL, NULL, NULL}
#define IGNORED(n, k) {n, k, NOFF, 0, NULL, NULL, NULL}
#define STRMAP(n, off) {n, F_STRMAP, off, 0, NULL, NULL, NULL}
#define BLOCK(n, sub) {n, F_BLOCK, NOFF, 0, sub, NULL, NULL}
#define LABELED(n, fn) {n, F_LABELED, NOFF, 0, NULL, fn, NULL}
#define OPAQUE(n) {n, F_OPAQUE, NOFF, 0, NULL, NULL, NULL}
/* clang-format on */

/* The top level of an agent file (config_schema.c). */
extern const struct config_schema config_top_schema;
/* The body of host_volume "name" { ... }, onto a host_volume_config. */
extern const struct config_schema config_host_volume_schema;
/* A plugin no driver of this node declares keys for. */
extern const struct config_schema config_plugin_other_schema;

/* client { host_volume "name" { ... } }: a later file redefines it whole. */
int config_decode_host_volume(struct config_decoder *c, const char *label,
                              struct hcl_pos pos, const struct config_src *s);

/* plugin "name" { ... }: config checked against the keys its driver
 * declares. */
int config_decode_plugin(struct config_decoder *c, const char *label,
                         struct hcl_pos pos, const struct config_src *s);

/* Decodes one file's body or top-level object onto cfg; errors name
 * filename. */
int config_decode_file(struct agent_config *cfg, const char *filename,
                       const struct config_src *src, struct nc_error *err);

/* Decodes JSON text (a top-level object) onto cfg. */
int config_load_json(struct agent_config *cfg, const char *filename,
                     const char *src, size_t len, struct nc_error *err);

/* Replaces *dst, which is owned, with a copy of s. */
void config_set_str(char **dst, const char *s);

/* Sets consul.address, a "https://" prefix turning ssl on when set_ssl. */
void config_consul_set_address(struct agent_config *cfg, const char *addr,
                               bool set_ssl);

/* Parses a whole decimal integer, with nothing around it. */
bool config_parse_long(const char *s, long long *out);

#endif
