/* format.h - terminal output in the layout Nomad's CLI uses: aligned
 * "Key = Value" blocks, space-padded columns, IEC sizes, RFC 3339 times. */
#ifndef NOMCLIENT_FORMAT_H
#define NOMCLIENT_FORMAT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "client/util.h"

/* Fields of the API's JSON, for display: a string that is there and not
 * empty, else dflt; a number (an integer, or a real truncated), else 0. */
const char *format_jstr(const json_t *o, const char *key, const char *dflt);
json_int_t format_jint(const json_t *o, const char *key);

/* Rows are "Key|Value" strings; prints "Key<pad> = Value" lines. */
void format_kv(FILE *out, const struct strlist *rows);
/* Rows are "a|b|c" strings, the first being the header; prints columns
 * padded to their widest cell, separated by two spaces. */
void format_columns(FILE *out, const struct strlist *rows);
/* 16106127360 -> "15 GiB", 1288490188 -> "1.2 GiB", 512 -> "512 B". */
void format_bytes(uint64_t bytes, char *out, size_t outlen);
/* unix ns -> "2026-11-24T19:00:00Z" */
void format_time(int64_t unix_ns, char *out, size_t outlen);

#endif
