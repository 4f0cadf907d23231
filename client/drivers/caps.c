/* caps.c - see client/drivers/internal.h. Sets are bit masks over libcap's numbering. */
#include "client/drivers/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

const char *const caps_nomad_defaults[] = {
    "CAP_AUDIT_WRITE", "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER",
    "CAP_FSETID",      "CAP_KILL",    "CAP_MKNOD",        "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",     "CAP_SETGID",  "CAP_SETPCAP",      "CAP_SETUID",
    "CAP_SYS_CHROOT",  NULL,
};

/* Every capability this kernel knows (libcap asks it). */
static uint64_t all_caps(void)
{
    int last = (int)cap_max_bits() - 1;
    if (last < 0 || last > 63)
        last = CAP_LAST_CAP;
    return last >= 63 ? ~(uint64_t)0 : ((uint64_t)1 << (last + 1)) - 1;
}

int caps_parse(const char *name, uint64_t *mask)
{
    if (!name)
        return -EINVAL;
    if (strcasecmp(name, "all") == 0) {
        *mask |= all_caps();
        return 0;
    }
    const char *bare = strncasecmp(name, "cap_", 4) == 0 ? name + 4 : name;
    char lower[64] = "cap_";
    size_t n = strlen(bare);
    if (n == 0 || n + 5 > sizeof(lower))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)bare[i];
        if (!isalnum(c) && c != '_')
            return -EINVAL;
        lower[4 + i] = (char)tolower(c);
    }
    lower[4 + n] = '\0';
    cap_value_t v;
    if (cap_from_name(lower, &v) < 0 || v < 0 || v > 63)
        return -EINVAL;
    *mask |= (uint64_t)1 << v;
    return 0;
}

static int parse_list(const struct strlist *l, const char *what, uint64_t *mask,
                      char *msg, size_t msglen)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (caps_parse(l->items[i], mask) < 0) {
            snprintf(msg, msglen, "%s: unknown capability \"%s\"", what,
                     l->items[i]);
            return -EINVAL;
        }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of mask's bits, in name order: upper "CAP_X" or lower "x". */
static void names(uint64_t mask, bool upper, struct strlist *out)
{
    char *list[64];
    size_t n = 0;
    for (int v = 0; v < 64; v++) {
        if (!(mask & ((uint64_t)1 << v)))
            continue;
        char *name = cap_to_name((cap_value_t)v); /* "cap_chown", or "63" */
        char *s = upper ? xstrdup(name) : xstrdup(strncmp(name, "cap_", 4) == 0
                                                      ? name + 4
                                                      : name);
        cap_free(name);
        for (char *p = s; upper && *p; p++)
            *p = (char)toupper((unsigned char)*p);
        list[n++] = s;
    }
    qsort(list, n, sizeof(*list), by_name);
    for (size_t i = 0; i < n; i++) {
        strlist_add(out, list[i]);
        free(list[i]);
    }
}

int caps_calculate(const struct strlist *allow, const struct strlist *add,
                   const struct strlist *drop, struct strlist *out, char *msg,
                   size_t msglen)
{
    uint64_t basis = 0, allowed = 0, adds = 0, drops = 0;
    for (const char *const *c = caps_nomad_defaults; *c; c++)
        caps_parse(*c, &basis);
    if (!allow)
        allowed = basis;
    int r;
    if ((r = parse_list(allow, "allow_caps", &allowed, msg, msglen)) < 0 ||
        (r = parse_list(add, "cap_add", &adds, msg, msglen)) < 0 ||
        (r = parse_list(drop, "cap_drop", &drops, msg, msglen)) < 0)
        return r;
    uint64_t missing = adds & ~allowed;
    if (missing) {
        struct strlist l = {0};
        names(missing, false, &l);
        struct nc_buf b = {0};
        for (size_t i = 0; i < l.n; i++)
            nc_buf_printf(&b, "%s%s", i ? ", " : "", l.items[i]);
        snprintf(msg, msglen,
                 "driver does not allow the following capabilities: %s",
                 b.data);
        nc_buf_free(&b);
        strlist_free(&l);
        return -EPERM;
    }
    names(((basis & allowed) & ~drops) | adds, true, out);
    return 0;
}

int caps_check_name(const char *name, char *msg, size_t msglen)
{
    uint64_t mask;
    if (caps_parse(name, &mask) == 0)
        return 0;
    snprintf(msg, msglen,
             "unknown capability \"%s\" (names as in capabilities(7), with "
             "or without CAP_, or \"all\")",
             name);
    return -EINVAL;
}
