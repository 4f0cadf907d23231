/* config_internal.h - what client/config*.c share; not a public API. */
#ifndef NOMCLIENT_CONFIG_INTERNAL_H
#define NOMCLIENT_CONFIG_INTERNAL_H

#include <stdbool.h>

/* Parses a whole decimal integer, with nothing around it. */
bool config_parse_long(const char *s, long long *out);

#endif
