/* docker_image_ref.c - image references as Docker's
 * distribution/reference grammar reads them, and the registry a
 * repository comes from; see docker_config.h. */
#include "client/drivers/docker_config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- image references (Docker's distribution/reference grammar) ---- */

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* alnum+ (separator alnum+)*, a separator being ".", "_", "__" or "-"+ */
static bool path_component_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t j = i;
        if (s[j] == '.') {
            j++;
        } else if (s[j] == '_') {
            j++;
            if (j < n && s[j] == '_')
                j++;
        } else if (s[j] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j == n || !lower_alnum(s[j]))
            return false;
        i = j;
    }
    return true;
}

/* host components ([a-zA-Z0-9] or with inner '-') joined by '.', and an
 * optional ":port" */
static bool domain_ok(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (colon) {
        size_t pn = n - hn - 1;
        if (pn == 0)
            return false;
        for (size_t i = hn + 1; i < n; i++)
            if (!isdigit((unsigned char)s[i]))
                return false;
    }
    size_t start = 0;
    for (size_t i = 0; i <= hn; i++) {
        if (i < hn && s[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0 || !isalnum((unsigned char)s[start]) ||
            !isalnum((unsigned char)s[i - 1]))
            return false;
        for (size_t k = start; k < i; k++)
            if (!isalnum((unsigned char)s[k]) && s[k] != '-')
                return false;
        start = i + 1;
    }
    return true;
}

static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static bool tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !word_char(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!word_char(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* algo ":" hex, algo components [A-Za-z][A-Za-z0-9]* joined by [+._-] */
static bool digest_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return false;
    bool start = true;
    for (const char *p = s; p < colon; p++) {
        if (start) {
            if (!isalpha((unsigned char)*p))
                return false;
            start = false;
        } else if (strchr("+._-", *p)) {
            start = true;
        } else if (!isalnum((unsigned char)*p)) {
            return false;
        }
    }
    if (start)
        return false;
    size_t hex = strlen(colon + 1);
    for (const char *p = colon + 1; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    if (hex < 32)
        return false;
    if ((size_t)(colon - s) == 6 && strncmp(s, "sha256", 6) == 0 && hex != 64)
        return false;
    return true;
}

/* Where the domain ends in name (0: none), by Docker's splitDockerDomain. */
static size_t domain_len(const char *name)
{
    const char *slash = strchr(name, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - name);
    bool dot_colon = memchr(name, '.', n) || memchr(name, ':', n);
    bool upper = false;
    for (size_t i = 0; i < n; i++)
        upper |= isupper((unsigned char)name[i]) != 0;
    if (dot_colon || upper || (n == 9 && strncmp(name, "localhost", 9) == 0))
        return n;
    return 0;
}

int docker_parse_image(const char *ref, char **repo, char **tag, char **digest,
                       struct nc_error *err)
{
    if (repo)
        *repo = NULL;
    if (tag)
        *tag = NULL;
    if (digest)
        *digest = NULL;
    const char *orig = ref ? ref : "";
    const char *s = nc_str_has_prefix(orig, "https://") ? orig + 8 : orig;
    const char *at = strchr(s, '@');
    size_t name_end = at ? (size_t)(at - s) : strlen(s);
    const char *why = NULL;
    /* the tag is after the last ':' that follows the last '/' */
    const char *tag_start = NULL;
    for (size_t i = name_end; i-- > 0;) {
        if (s[i] == '/')
            break;
        if (s[i] == ':') {
            tag_start = s + i + 1;
            break;
        }
    }
    size_t nlen = tag_start ? (size_t)(tag_start - 1 - s) : name_end;
    char *name = xstrndup(s, nlen);
    bool ok =
        nlen > 0 && (!at || (!strchr(at + 1, '@') && digest_ok(at + 1))) &&
        (!tag_start || tag_ok(tag_start, (size_t)(s + name_end - tag_start)));
    size_t dl = ok ? domain_len(name) : 0;
    if (ok && dl && !domain_ok(name, dl))
        ok = false;
    if (ok) {
        /* the path: components after the domain */
        const char *p = name + (dl ? dl + 1 : 0);
        bool lower_ok = true, any_upper = false;
        for (const char *c = p;; c++) {
            const char *e = strchr(c, '/');
            size_t len = e ? (size_t)(e - c) : strlen(c);
            char *low = xstrndup(c, len);
            for (char *q = low; *q; q++) {
                any_upper |= isupper((unsigned char)*q) != 0;
                *q = (char)tolower((unsigned char)*q);
            }
            if (!path_component_ok(c, len))
                ok = false;
            if (!path_component_ok(low, len))
                lower_ok = false;
            free(low);
            if (!e)
                break;
            c = e;
        }
        if (!ok && lower_ok && any_upper)
            why = "repository name must be lowercase";
        if (ok && nlen > 255) {
            ok = false;
            why = "repository name must not be more than 255 characters";
        }
    }
    if (!ok) {
        free(name);
        if (why)
            return nc_error_set(err, -EINVAL,
                                "invalid reference format: \"%s\" (%s)", orig,
                                why);
        return nc_error_set(err, -EINVAL, "invalid reference format: \"%s\"",
                            orig);
    }
    if (tag)
        *tag = tag_start
                   ? xstrndup(tag_start, (size_t)(s + name_end - tag_start))
               : at ? NULL
                    : xstrdup("latest");
    if (digest)
        *digest = at ? xstrdup(at + 1) : NULL;
    if (repo)
        *repo = name;
    else
        free(name);
    return 0;
}

char *docker_image_with_tag(const char *ref)
{
    const char *s = ref ? ref : "";
    if (nc_str_has_prefix(s, "https://"))
        s += 8;
    char *repo = NULL, *tag = NULL, *digest = NULL;
    if (docker_parse_image(s, &repo, &tag, &digest, NULL) < 0)
        return xstrdup(s);
    char *out = digest                          ? xstrdup(s)
                : strchr(s + strlen(repo), ':') ? xstrdup(s)
                                                : xasprintf("%s:latest", s);
    free(repo);
    free(tag);
    free(digest);
    return out;
}

char *docker_registry_of(const char *repo)
{
    const char *s = repo ? repo : "";
    if (nc_str_has_prefix(s, "https://"))
        s += 8;
    size_t n = domain_len(s);
    if (!n || (n == 9 && strncmp(s, "docker.io", 9) == 0) ||
        (n == 15 && strncmp(s, "index.docker.io", 15) == 0) ||
        (n == 20 && strncmp(s, "registry-1.docker.io", 20) == 0))
        return xstrdup(HUB_REGISTRY);
    return xstrndup(s, n);
}
