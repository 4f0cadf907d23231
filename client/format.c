/* format.c - see format.h. */
#include "client/format.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *format_jstr(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && *s ? s : dflt;
}

json_int_t format_jint(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v)
           : json_is_real(v)  ? (json_int_t)json_real_value(v)
                              : 0;
}

void format_kv(FILE *out, const struct strlist *rows)
{
    size_t width = 0;
    for (size_t i = 0; i < rows->n; i++) {
        const char *bar = strchr(rows->items[i], '|');
        size_t k = bar ? (size_t)(bar - rows->items[i]) : strlen(rows->items[i]);
        if (k > width)
            width = k;
    }
    for (size_t i = 0; i < rows->n; i++) {
        const char *row = rows->items[i];
        const char *bar = strchr(row, '|');
        int k = bar ? (int)(bar - row) : (int)strlen(row);
        fprintf(out, "%.*s%*s = %s\n", k, row, (int)width - k, "",
                bar ? bar + 1 : "");
    }
}

void format_columns(FILE *out, const struct strlist *rows)
{
    size_t ncols = 0, *width = NULL;
    for (size_t i = 0; i < rows->n; i++) {
        size_t col = 0;
        for (const char *p = rows->items[i];; col++) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (col >= ncols) {
                width = xrealloc(width, (col + 1) * sizeof(*width));
                width[col] = 0;
                ncols = col + 1;
            }
            if (len > width[col])
                width[col] = len;
            if (!bar)
                break;
            p = bar + 1;
        }
    }
    for (size_t i = 0; i < rows->n; i++) {
        size_t col = 0;
        for (const char *p = rows->items[i];; col++) {
            const char *bar = strchr(p, '|');
            int len = bar ? (int)(bar - p) : (int)strlen(p);
            if (!bar) {
                fprintf(out, "%.*s\n", len, p);
                break;
            }
            fprintf(out, "%.*s%*s  ", len, p, (int)width[col] - len, "");
            p = bar + 1;
        }
    }
    free(width);
}

void format_bytes(uint64_t bytes, char *out, size_t outlen)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(out, outlen, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < NC_ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    /* as go-humanize: one decimal below 10, none above */
    snprintf(out, outlen, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void format_time(int64_t unix_ns, char *out, size_t outlen)
{
    time_t t = (time_t)(unix_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
