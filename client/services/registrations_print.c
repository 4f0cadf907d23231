/* registrations_print.c - the registrations view printed for people
 * (`nomclient services [-explain NAME]`), from its JSON alone, as the CLI
 * gets it from the agent. */
#include "client/services/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/format.h"

/* ---- printing -------------------------------------------------------- */

/* A duration as the registries give it: Go text ("16s") or nanoseconds. */
static void jduration(const json_t *v, char *out, size_t len)
{
    if (json_is_string(v))
        snprintf(out, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        nc_format_duration(json_integer_value(v), out, len);
    else
        snprintf(out, len, "?");
}

/* Adds a formatted row (from xasprintf) to a table. */
static void add_row(struct strlist *rows, char *text)
{
    strlist_add(rows, text);
    free(text);
}

static const char *sv(const json_t *o, const char *key, const char *dflt)
{
    const char *s = registrations_jstr(o, key);
    return s ? s : dflt;
}

static void address_of(const json_t *r, char *out, size_t len)
{
    const char *addr = registrations_jstr(r, "Address");
    json_int_t port = format_jint(r, "Port");
    if (!addr)
        snprintf(out, len, "-");
    else if (port)
        snprintf(out, len, strchr(addr, ':') ? "[%s]:%lld" : "%s:%lld", addr,
                 (long long)port);
    else
        snprintf(out, len, "%s", addr);
}

static const char *registry_name(const json_t *r)
{
    const char *reg = registrations_jstr(r, "Registry");
    return nc_streq(reg, "consul")  ? "Consul"
           : nc_streq(reg, "nomad") ? "built-in catalog"
                                    : "no registry";
}

/* "passing (2/2)", "critical (1/2 passing)", "-" without checks. */
static void checks_cell(const json_t *r, char *out, size_t len)
{
    const json_t *checks = json_object_get(r, "Checks");
    size_t n = json_array_size(checks), pass = 0, i;
    json_t *c;
    json_array_foreach(checks, i, c) pass +=
        nc_streq(registrations_jstr(c, "Status"), "passing");
    if (!n)
        snprintf(out, len, "-");
    else if (pass == n)
        snprintf(out, len, "passing (%zu/%zu)", pass, n);
    else
        snprintf(out, len, "%s (%zu/%zu passing)", sv(r, "CheckStatus", "?"),
                 pass, n);
}

static void print_registries(FILE *out, const json_t *view, int64_t now)
{
    const json_t *regs = json_object_get(view, "Registries");
    const json_t *consul = json_object_get(regs, "Consul");
    const json_t *cat = json_object_get(regs, "Catalog");
    struct strlist rows = {0};
    if (!json_is_object(consul)) {
        add_row(&rows, xasprintf("Consul|not configured (no consul block)"));
    } else if (registrations_jstr(consul, "Problem")) {
        add_row(&rows,
                xasprintf("Consul|%s", registrations_jstr(consul, "Problem")));
        if (registrations_jstr(consul, "Hint"))
            add_row(&rows,
                    xasprintf("  Fix|%s", registrations_jstr(consul, "Hint")));
    } else {
        const json_t *k = json_object_get(consul, "Counters");
        char ago[48] = "never", took[32] = "";
        int64_t last = registrations_jtime(json_object_get(consul, "LastSync"));
        if (last)
            registrations_relative(last, now, ago, sizeof(ago));
        if (json_object_get(consul, "LastSyncDuration"))
            jduration(json_object_get(consul, "LastSyncDuration"), took,
                      sizeof(took));
        add_row(
            &rows,
            xasprintf(
                "Consul|%s reachable; last sync %s%s%s%s; %lld registrations, "
                "%lld deregistrations, %lld check updates, %lld errors so far",
                sv(consul, "Address", "(address unknown)"), ago,
                *took ? " (took " : "", took, *took ? ")" : "",
                (long long)format_jint(k, "Registrations"),
                (long long)format_jint(k, "Deregistrations"),
                (long long)format_jint(k, "CheckUpdates"),
                (long long)format_jint(k, "Errors")));
    }
    if (json_is_object(cat))
        add_row(&rows,
                xasprintf(
                    "Built-in catalog|%lld registration(s) served, index %lld "
                    "(%s)",
                    (long long)format_jint(cat, "Registrations"),
                    (long long)format_jint(cat, "Index"),
                    json_is_true(json_object_get(cat, "AllProviders"))
                        ? "every service: no consul block"
                        : "services with provider = \"nomad\""));
    format_kv(out, &rows);
    strlist_free(&rows);
}

/* Table order: by service name, then allocation, then ID. */
static int by_name(const void *x, const void *y)
{
    const json_t *a = *(const json_t *const *)x, *b = *(const json_t *const *)y;
    static const char *const keys[] = {"ServiceName", "AllocID", "ID"};
    for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++) {
        int c = strcmp(sv(a, keys[i], ""), sv(b, keys[i], ""));
        if (c)
            return c;
    }
    return 0;
}

void registrations_print(FILE *out, const json_t *view)
{
    int64_t now = registrations_jtime(json_object_get(view, "Time"));
    const json_t *regs = json_object_get(view, "Registrations");
    const json_t *stale = json_object_get(view, "Stale");
    const json_t *sum = json_object_get(view, "Summary");
    print_registries(out, view, now);
    fprintf(out, "\n");
    if (!json_array_size(regs) && !json_array_size(stale)) {
        fprintf(out, "No services to register: no running allocation of "
                     "this node has a service block\n");
        return;
    }
    fprintf(out,
            "%lld registration(s): %lld in sync, %lld with a problem, "
            "%lld with failing checks, %lld stale\n",
            (long long)format_jint(sum, "Registrations"),
            (long long)format_jint(sum, "InSync"),
            (long long)format_jint(sum, "Problems"),
            (long long)format_jint(sum, "Unhealthy"),
            (long long)format_jint(sum, "Stale"));
    size_t i;
    json_t *r;
    if (format_jint(sum, "Problems") || format_jint(sum, "Unhealthy") ||
        format_jint(sum, "Stale")) {
        fprintf(out, "\nProblems\n");
        json_array_foreach(regs, i, r)
        {
            const char *p = registrations_jstr(r, "Problem");
            const char *cp = registrations_jstr(r, "CheckProblem");
            if (p || cp)
                fprintf(out, "  %s (allocation %.8s): %s\n",
                        sv(r, "ServiceName", "?"), sv(r, "AllocID", "?"),
                        p ? p : cp);
            if (p && registrations_jstr(r, "Hint"))
                fprintf(out, "      %s\n", registrations_jstr(r, "Hint"));
            if (p && cp)
                fprintf(out, "      and %s\n", cp);
        }
        json_array_foreach(stale, i, r)
            fprintf(out, "  %s\n", sv(r, "Problem", "?"));
    }
    fprintf(out, "\n");
    struct strlist rows = {0};
    add_row(&rows,
            xasprintf(
                "Service|Address|Provider|Registry|State|Checks|Alloc ID|Task|"
                "ID"));
    size_t n = json_array_size(regs);
    const json_t **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
    json_array_foreach(regs, i, r) sorted[i] = r;
    qsort(sorted, n, sizeof(*sorted), by_name);
    for (i = 0; i < n && (r = (json_t *)sorted[i]); i++) {
        char addr[96], checks[64];
        address_of(r, addr, sizeof(addr));
        checks_cell(r, checks, sizeof(checks));
        add_row(&rows,
                xasprintf("%s|%s|%s|%s|%s|%s|%.8s|%s|%s",
                          sv(r, "ServiceName", "?"), addr,
                          sv(r, "Provider", "?"),
                          nc_streq(registrations_jstr(r, "Registry"), "consul")
                              ? "Consul"
                              : "built-in",
                          sv(r, "State", "?"), checks, sv(r, "AllocID", "?"),
                          sv(r, "Task", "(group)"), sv(r, "ID", "?")));
    }
    free(sorted);
    format_columns(out, &rows);
    strlist_free(&rows);
    if (json_array_size(stale)) {
        fprintf(out, "\nStale in Consul (this node's prefix, wanted by no "
                     "allocation here)\n");
        add_row(&rows, xasprintf("ID|Service|Address|Reason"));
        json_array_foreach(stale, i, r)
        {
            char addr[96];
            address_of(r, addr, sizeof(addr));
            char *reason =
                registrations_one_line(registrations_jstr(r, "Reason"), 80);
            add_row(&rows, xasprintf("%s|%s|%s|%s", sv(r, "ID", "?"),
                                     sv(r, "Name", "?"), addr,
                                     *reason ? reason : "-"));
            free(reason);
        }
        format_columns(out, &rows);
        strlist_free(&rows);
    }
}

static void print_json_indented(FILE *out, const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    for (char *line = s, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        fprintf(out, "    %.*s\n", nl ? (int)(nl - line) : (int)strlen(line),
                line);
        if (!nl)
            break;
    }
    free(s);
}

static void print_time_row(struct strlist *rows, const char *key,
                           const json_t *v, int64_t now)
{
    int64_t t = registrations_jtime(v);
    if (!t)
        return;
    char when[40], rel[48];
    format_time(t, when, sizeof(when));
    registrations_relative(t, now, rel, sizeof(rel));
    add_row(rows, xasprintf("  %s|%s (%s)", key, when, rel));
}

static void print_source(FILE *out, const json_t *r)
{
    const json_t *src = json_object_get(r, "Source");
    const json_t *svc = json_object_get(src, "Service");
    struct strlist rows = {0};
    fprintf(out, "From the job file\n");
    add_row(&rows, xasprintf("  Job|%s (namespace %s)", sv(r, "JobID", "?"),
                             sv(r, "Namespace", "default")));
    add_row(&rows, xasprintf("  Group|%s", sv(r, "Group", "?")));
    add_row(&rows, xasprintf("  Task|%s", registrations_jstr(r, "Task")
                                              ? registrations_jstr(r, "Task")
                                              : "none: a group service"));
    add_row(&rows, xasprintf("  Allocation|%s (%s, %s)", sv(r, "AllocID", "?"),
                             sv(src, "AllocName", "?"),
                             sv(r, "AllocStatus", "status unknown")));
    if (json_is_object(svc)) {
        char *tags = NULL;
        struct nc_buf b = {0};
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(svc, "Tags"), i, t)
            nc_buf_printf(&b, "%s\"%s\"", i ? ", " : "", json_string_value(t));
        tags = nc_buf_take(&b);
        add_row(
            &rows,
            xasprintf(
                "  service block|name = \"%s\", port = \"%s\", address_mode = "
                "\"%s\"%s%s%s, provider = \"%s\"%s%s%s",
                sv(svc, "Name", ""), sv(svc, "Port", ""),
                sv(svc, "AddressMode", "auto"),
                registrations_jstr(svc, "Address") ? ", address = \"" : "",
                sv(svc, "Address", ""),
                registrations_jstr(svc, "Address") ? "\"" : "",
                sv(svc, "Provider", "consul"), *tags ? ", tags = [" : "", tags,
                *tags ? "]" : ""));
        free(tags);
    }
    add_row(&rows,
            xasprintf("  Interpolated|name \"%s\"%s", sv(r, "ServiceName", "?"),
                      json_array_size(json_object_get(r, "Tags")) ? ", tags:"
                                                                  : ""));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(r, "Tags"), i, t)
    {
        char *last = rows.items[rows.n - 1];
        rows.items[rows.n - 1] =
            xasprintf("%s%s \"%s\"", last, i ? "," : "", json_string_value(t));
        free(last);
    }
    format_kv(out, &rows);
    strlist_free(&rows);
}

static void print_address(FILE *out, const json_t *r)
{
    const json_t *src = json_object_get(r, "Source");
    struct strlist rows = {0};
    fprintf(out, "\nAddress and port\n");
    add_row(&rows, xasprintf("  Address mode|%s", sv(r, "AddressMode", "?")));
    add_row(&rows, xasprintf("  Address|%s", sv(r, "Address", "(none)")));
    add_row(&rows, xasprintf("  Port|%lld", (long long)format_jint(r, "Port")));
    add_row(&rows, xasprintf("  How|%s", sv(r, "AddressWhy", "?")));
    add_row(&rows, xasprintf("  Network|%s%s%s", sv(src, "NetworkMode", "?"),
                             registrations_jstr(src, "AllocAddress")
                                 ? ", allocation address "
                                 : "",
                             sv(src, "AllocAddress", "")));
    struct nc_buf ports = {0};
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(src, "Ports"), i, p)
    {
        nc_buf_printf(&ports, "%s\"%s\" host %lld", i ? ", " : "",
                      sv(p, "Label", "?"), (long long)format_jint(p, "Value"));
        if (format_jint(p, "To") &&
            format_jint(p, "To") != format_jint(p, "Value"))
            nc_buf_printf(&ports, " -> %lld inside",
                          (long long)format_jint(p, "To"));
    }
    add_row(&rows, xasprintf("  Allocation ports|%s",
                             ports.data ? ports.data : "none"));
    nc_buf_free(&ports);
    format_kv(out, &rows);
    strlist_free(&rows);
}

static void print_registry(FILE *out, const json_t *r, const json_t *loop,
                           int64_t now)
{
    bool consul = nc_streq(registrations_jstr(r, "Registry"), "consul");
    struct strlist rows = {0};
    fprintf(out, "\nRegistry: %s\n", registry_name(r));
    add_row(&rows, xasprintf("  State|%s", sv(r, "State", "?")));
    print_time_row(&rows, "Since", json_object_get(r, "Since"), now);
    const json_t *ans = json_object_get(r, "LastAnswer");
    if (json_is_object(ans)) {
        char when[40] = "?";
        int64_t t = registrations_jtime(json_object_get(ans, "Time"));
        if (t)
            format_time(t, when, sizeof(when));
        const char *text = registrations_jstr(ans, "Body")
                               ? registrations_jstr(ans, "Body")
                               : registrations_jstr(ans, "Error");
        char *msg = registrations_one_line(text, 200);
        json_int_t status = format_jint(ans, "Status");
        if (status)
            add_row(&rows, xasprintf("  Last answer|%s %s %s: %lld %s", when,
                                     sv(ans, "Method", ""), sv(ans, "Path", ""),
                                     (long long)status, msg));
        else
            add_row(&rows,
                    xasprintf("  Last answer|%s %s %s: no answer: %s", when,
                              sv(ans, "Method", ""), sv(ans, "Path", ""), msg));
        free(msg);
    } else if (consul && registrations_jstr(loop, "LastError")) {
        char when[40] = "?";
        int64_t t = registrations_jtime(json_object_get(loop, "LastErrorTime"));
        if (t)
            format_time(t, when, sizeof(when));
        add_row(
            &rows,
            xasprintf(
                "  Last answer|none of its own; the sync's last error (%s): "
                "%s",
                when, registrations_jstr(loop, "LastError")));
    } else if (consul) {
        add_row(&rows, xasprintf("  Last answer|none yet"));
    }
    print_time_row(&rows, "Next retry", json_object_get(r, "NextRetry"), now);
    if (format_jint(r, "Attempts"))
        add_row(&rows, xasprintf("  Attempts|%lld",
                                 (long long)format_jint(r, "Attempts")));
    format_kv(out, &rows);
    strlist_free(&rows);
    size_t i;
    json_t *d;
    if (json_array_size(json_object_get(r, "Differences")))
        fprintf(out, "  Differences (registry vs this node):\n");
    json_array_foreach(json_object_get(r, "Differences"), i, d)
        fprintf(out, "    %s\n", json_string_value(d));
    if (json_object_get(r, "Payload")) {
        bool sent = json_is_true(json_object_get(r, "PayloadSent"));
        bool invalid = nc_streq(registrations_jstr(r, "State"), "invalid");
        if (consul && sent)
            fprintf(out, "\nPayload sent (PUT /v1/agent/service/register)\n");
        else if (consul)
            fprintf(out, "\nPayload %s\n",
                    invalid ? "it would have (not sent: invalid)"
                            : "to send (not sent yet)");
        else if (sent)
            fprintf(out,
                    "\nServed at /v1/service/%s (Nomad's "
                    "ServiceRegistration)\n",
                    sv(r, "ServiceName", "?"));
        else
            fprintf(out, "\nServiceRegistration it would have (not served)\n");
        print_json_indented(out, json_object_get(r, "Payload"));
    }
}

/* "2026-12-01T09:44:00.593Z": a probe's time, to the millisecond. */
static void millis(int64_t t, char *out, size_t len)
{
    char full[40];
    nc_format_time(t, full, sizeof(full));
    char *dot = strchr(full, '.');
    if (t && dot && strlen(dot) >= 4)
        snprintf(out, len, "%.*sZ", (int)(dot + 4 - full), full);
    else
        snprintf(out, len, "%s", t ? full : "?");
}

static void print_checks(FILE *out, const json_t *r)
{
    const json_t *checks = json_object_get(r, "Checks");
    if (!json_array_size(checks)) {
        fprintf(out, "\nChecks: none\n");
        return;
    }
    fprintf(out, "\nChecks\n");
    struct strlist rows = {0};
    add_row(&rows, xasprintf("  Name|Type|Status|Target|Output"));
    size_t i, k;
    json_t *c, *h;
    json_array_foreach(checks, i, c)
    {
        char *o = registrations_one_line(registrations_jstr(c, "Output"), 70);
        char seen[48] = "";
        if (registrations_jstr(c, "RegistryStatus"))
            snprintf(seen, sizeof(seen), ", %s in Consul",
                     registrations_jstr(c, "RegistryStatus"));
        add_row(&rows, xasprintf("  %s|%s|%s%s%s|%s|%s", sv(c, "Name", "?"),
                                 sv(c, "Type", "?"), sv(c, "Status", "?"), seen,
                                 json_is_true(json_object_get(c, "Readiness"))
                                     ? " (readiness)"
                                     : "",
                                 sv(c, "Target", "?"),
                                 *o ? o
                                 : format_jint(json_object_get(c, "Counters"),
                                               "Probes")
                                     ? "(no output)"
                                     : "(no probe yet)"));
        free(o);
    }
    format_columns(out, &rows);
    strlist_free(&rows);
    json_array_foreach(checks, i, c)
    {
        const json_t *k_ = json_object_get(c, "Counters");
        fprintf(out, "\n  Recent results of \"%s\" (newest first)",
                sv(c, "Name", "?"));
        if (json_is_object(k_))
            fprintf(out,
                    ": %lld probes, %lld passing, %lld warning, %lld "
                    "critical, %lld timeouts",
                    (long long)format_jint(k_, "Probes"),
                    (long long)format_jint(k_, "Passing"),
                    (long long)format_jint(k_, "Warning"),
                    (long long)format_jint(k_, "Critical"),
                    (long long)format_jint(k_, "Timeouts"));
        fprintf(out, "\n");
        const json_t *hist = json_object_get(c, "History");
        if (!json_array_size(hist)) {
            fprintf(out, "    none yet\n");
            continue;
        }
        add_row(&rows, xasprintf("    Time|Status|Code|Latency"));
        json_array_foreach(hist, k, h)
        {
            char lat[32], when[40];
            nc_format_duration(format_jint(h, "Latency"), lat, sizeof(lat));
            millis(registrations_jtime(json_object_get(h, "Timestamp")), when,
                   sizeof(when));
            add_row(&rows,
                    xasprintf("    %s|%s%s|%lld|%s", when, sv(h, "Status", "?"),
                              json_is_true(json_object_get(h, "TimedOut"))
                                  ? " (timed out)"
                                  : "",
                              (long long)format_jint(h, "Code"), lat));
        }
        format_columns(out, &rows);
        strlist_free(&rows);
    }
}

void registrations_print_explain(FILE *out, const json_t *view)
{
    int64_t now = registrations_jtime(json_object_get(view, "Time"));
    print_registries(out, view, now);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(view, "Registrations"), i, r)
    {
        fprintf(out, "\n== Service \"%s\": %s\n", sv(r, "ServiceName", "?"),
                sv(r, "ID", "?"));
        if (registrations_jstr(r, "Problem")) {
            fprintf(out, "Problem: %s\n", registrations_jstr(r, "Problem"));
            if (registrations_jstr(r, "Hint"))
                fprintf(out, "  Fix: %s\n", registrations_jstr(r, "Hint"));
        } else {
            fprintf(out, "OK: registered with the %s and in sync\n",
                    registry_name(r));
        }
        if (registrations_jstr(r, "CheckProblem"))
            fprintf(out, "Health: %s\n", registrations_jstr(r, "CheckProblem"));
        else if (json_array_size(json_object_get(r, "Checks")))
            fprintf(out, "Health: every check passing\n");
        fprintf(out, "\n");
        print_source(out, r);
        print_address(out, r);
        print_registry(
            out, r,
            json_object_get(json_object_get(view, "Registries"), "Consul"),
            now);
        print_checks(out, r);
    }
    json_array_foreach(json_object_get(view, "Stale"), i, r)
    {
        fprintf(out, "\n== Stale in Consul: %s\nProblem: %s\n",
                sv(r, "ID", "?"), sv(r, "Problem", "?"));
    }
}
