/* hcl/hcl.h - parser for the HCL2 native syntax used by Nomad job and agent
 * files. It produces a syntax tree that keeps positions, so the decoders on
 * top (client/job/, client/config.c) can report "file:line:col: ..." for any field.
 *
 * Interpolations ("${attr.cpu.arch}") are kept verbatim inside strings: they
 * are resolved at run time, not here. Bare expressions that are not literals
 * (references like var.x, function calls, operators) are kept as
 * HCL_EXPR with their source text. */
#ifndef NOMCLIENT_HCL_H
#define NOMCLIENT_HCL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/util.h"

struct hcl_pos {
    int line; /* 1-based */
    int col;  /* 1-based, in bytes */
};

enum hcl_kind {
    HCL_NULL,
    HCL_BOOL,
    HCL_NUMBER,
    HCL_STRING, /* quoted string or heredoc, escapes decoded */
    HCL_LIST,   /* [a, b] or tuple */
    HCL_OBJECT, /* { k = v, "k2": v2 } */
    HCL_EXPR,   /* anything else: source text kept in `str` */
};

struct hcl_value {
    enum hcl_kind kind;
    struct hcl_pos pos;
    bool boolean;       /* HCL_BOOL */
    double number;      /* HCL_NUMBER */
    bool is_integer;    /* HCL_NUMBER: written without fraction/exponent and
                           fits int64 */
    int64_t integer;    /* HCL_NUMBER when is_integer */
    char *str;          /* HCL_STRING (decoded), HCL_EXPR (source text),
                           HCL_NUMBER (source text) */
    size_t n;           /* HCL_LIST / HCL_OBJECT element count */
    struct hcl_value **items; /* list elements or object values */
    char **keys;              /* HCL_OBJECT keys, parallel to items */
    struct hcl_pos *key_pos;  /* HCL_OBJECT key positions */
};

struct hcl_body;

enum hcl_item_type { HCL_ATTRIBUTE, HCL_BLOCK };

/* One entry of a body: `name = value` or `name "label" ... { body }`. */
struct hcl_item {
    enum hcl_item_type type;
    char *name;              /* attribute name or block type */
    struct hcl_pos pos;      /* position of the name */
    char **labels;           /* block labels, decoded */
    size_t nlabels;
    struct hcl_value *value; /* attribute only */
    struct hcl_body *body;   /* block only */
};

struct hcl_body {
    struct hcl_item *items; /* in source order */
    size_t n;
    struct hcl_pos pos; /* position of the opening brace (1:1 for a file) */
};

struct hcl_file {
    char *filename;
    struct hcl_body *body;
};

/* Parses `src` (len bytes, need not be NUL-terminated). On success *out owns
 * a new tree (free with hcl_file_free). On error returns -EINVAL and fills
 * err with "filename:line:col: what is wrong". Bounded recursion depth, so
 * hostile input cannot overflow the stack. */
int hcl_parse(const char *filename, const char *src, size_t len,
              struct hcl_file **out, struct nc_error *err);
/* Reads and parses a file. */
int hcl_parse_file(const char *path, struct hcl_file **out,
                   struct nc_error *err);
void hcl_file_free(struct hcl_file *f);
void hcl_value_free(struct hcl_value *v);

/* Helpers for decoders. */
const char *hcl_kind_name(enum hcl_kind k); /* "string", "number", ... */
/* The decoders' error: sets err to "file:line:col: path[ > leaf]: message"
 * ("file: ..." when pos.line is 0, a value from JSON, which keeps no
 * positions; path NULL or "" for none) and returns -EINVAL. */
int hcl_vfail(struct nc_error *err, const char *filename, struct hcl_pos pos,
              const char *path, const char *leaf, const char *fmt,
              va_list ap) __attribute__((format(printf, 6, 0)));
/* Converts a value to a jansson-free plain dump, for debugging and tests:
 * caller frees. Strings are JSON-quoted, objects/lists JSON-like. */
char *hcl_value_to_string(const struct hcl_value *v);

/* Longest text hcl_number_text produces; longer numbers are refused. */
#define HCL_NUMBER_TEXT_MAX 4096
/* A number as hcl/v2 turns it into a string (cty: big.Float Text('f', -1)):
 * plain decimal, no exponent, no redundant zeros ("1e3" -> "1000", "1.50"
 * -> "1.5", "-0" -> "0"). Caller frees; NULL when not a number or the
 * text would exceed HCL_NUMBER_TEXT_MAX. Exact up to 150 significant
 * digits, beyond which cty would round to its 512-bit precision. */
char *hcl_number_text(const struct hcl_value *v);

#endif
