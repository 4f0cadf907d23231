/* iptables.c - what the CNI plugins leave in iptables for one container,
 * found in iptables-save output, and removed with one iptables-restore
 * --noflush transaction.
 *
 * What the v1.x plugins write (name = conflist name, id = container id):
 *   nat  POSTROUTING -s IP/32 --comment "name: \"N\" id: \"ID\"" -j CNI-<h>
 *   nat  CNI-<h>: ACCEPT and MASQUERADE, same comment            (bridge)
 *   nat  CNI-HOSTPORT-DNAT --comment "dnat name: \"N\" id: \"ID\""
 *        -j CNI-DN-<h>; CNI-DN-<h>: DNAT --to-destination IP:port (portmap)
 *   filter CNI-FORWARD -d IP/32 ... ACCEPT and -s IP/32 -j ACCEPT (firewall)
 * The bridge plugin only removes its masquerade rules when it can still
 * read the address inside the namespace, and the firewall plugin only
 * removes its rules when given prevResult: a sweep after DEL catches what
 * they could not. Shared chains (CNI-FORWARD, CNI-HOSTPORT-*, the admin
 * chain) are never removed; of portmap's jumps into CNI-HOSTPORT-DNAT the
 * helper makes sure one exists per hook before portmap runs, and leftovers
 * removes extra copies. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns/netns_internal.h"

static const char *const ipt_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL=C", NULL};

static const char *find_tool(const char *name, char *buf, size_t len)
{
    static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin",
                                       "/bin"};
    for (size_t i = 0; i < NC_ARRAY_LEN(dirs); i++) {
        snprintf(buf, len, "%s/%s", dirs[i], name);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    snprintf(buf, len, "/usr/sbin/%s", name);
    return buf;
}

/* Runs an iptables tool; 0 on exit 0, else -EIO with its stderr in err. */
static int run_tool(const char *tool, const char *const *args,
                    const char *input, int timeout_ms, struct nc_buf *out,
                    struct nc_error *err)
{
    char path[64];
    const char *argv[16] = {tool};
    size_t n = 1;
    for (; args[n - 1] && n < NC_ARRAY_LEN(argv) - 1; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    struct netns_exec x = {
        .path = find_tool(tool, path, sizeof(path)),
        .argv = (char *const *)argv,
        .envp = (char *const *)ipt_env,
        .input = input,
        .input_len = input ? strlen(input) : 0,
        .timeout_ms = timeout_ms,
    };
    int r = netns_exec_run(&x);
    if (r < 0)
        return nc_error_set(err, r, "run %s: %s", x.path, strerror(-r));
    if (x.status != 0) {
        size_t len = x.err.len;
        while (len && isspace((unsigned char)x.err.data[len - 1]))
            len--;
        struct nc_buf cmd = {0};
        for (size_t i = 0; argv[i]; i++)
            nc_buf_printf(&cmd, "%s%s", i ? " " : "", argv[i]);
        r = nc_error_set(err, -EIO, "%s: %s%.*s", cmd.data,
                         x.timed_out ? "timed out; " : "", (int)len,
                         x.err.data);
        nc_buf_free(&cmd);
    } else if (out) {
        *out = x.out;
        memset(&x.out, 0, sizeof(x.out));
    }
    netns_exec_free(&x);
    return r;
}

char *netns_ipt_save(int timeout_ms, struct nc_error *err)
{
    struct nc_buf out = {0};
    static const char *const args[] = {NULL};
    if (run_tool("iptables-save", args, NULL, timeout_ms, &out, err) < 0)
        return NULL;
    return nc_buf_take(&out);
}

int netns_ipt_restore(const char *script, int timeout_ms, struct nc_error *err)
{
    static const char *const args[] = {"--noflush", "-w", "10", NULL};
    return run_tool("iptables-restore", args, script, timeout_ms, NULL, err);
}

/* ---- parsing iptables-save ----------------------------------------------- */

struct parsed_rule {
    const char *table;
    char *chain;
    char *line;           /* "-A CHAIN ..." */
    char *network, *id;   /* from a "[dnat ]name: \"N\" id: \"ID\"" comment */
    char *target;         /* -j */
    char *src, *dst, *to; /* -s, -d (without /32), DNAT --to-destination IP */
};

/* The word after `opt ` in line (quoted words unquoted), or NULL. */
static char *option_value(const char *line, const char *opt)
{
    size_t olen = strlen(opt);
    const char *p = line;
    const char *found = NULL;
    /* the last occurrence at a word boundary: "-j" also appears in "-m" args
     * never, but keep the last to be safe for -j */
    while ((p = strstr(p, opt))) {
        if ((p == line || p[-1] == ' ') && p[olen] == ' ')
            found = p + olen + 1;
        p += olen;
    }
    if (!found)
        return NULL;
    if (*found != '"')
        return xstrndup(found, strcspn(found, " "));
    struct nc_buf b = {0};
    for (const char *q = found + 1; *q && *q != '"'; q++) {
        if (*q == '\\' && q[1])
            q++;
        nc_buf_putc(&b, *q);
    }
    return nc_buf_take(&b);
}

/* name and id from `name: "N" id: "ID"` (portmap prefixes "dnat "). */
static void parse_comment(const char *c, char **network, char **id)
{
    *network = *id = NULL;
    if (nc_str_has_prefix(c, "dnat "))
        c += 5;
    if (!nc_str_has_prefix(c, "name: \""))
        return;
    const char *n = c + 7;
    const char *q = strchr(n, '"');
    if (!q || !nc_str_has_prefix(q, "\" id: \""))
        return;
    const char *i = q + 7;
    const char *e = strchr(i, '"');
    if (!e || e[1])
        return;
    *network = xstrndup(n, (size_t)(q - n));
    *id = xstrndup(i, (size_t)(e - i));
}

static char *strip_host_prefix(char *ip)
{
    if (ip) {
        char *slash = strchr(ip, '/');
        if (slash && strcmp(slash, "/32") == 0)
            *slash = '\0';
    }
    return ip;
}

static void parse_rule(struct parsed_rule *r, const char *table,
                       const char *line)
{
    memset(r, 0, sizeof(*r));
    r->table = table;
    r->line = xstrdup(line);
    const char *c = line + 3;
    r->chain = xstrndup(c, strcspn(c, " "));
    cleanup_free char *comment = option_value(line, "--comment");
    if (comment)
        parse_comment(comment, &r->network, &r->id);
    r->target = option_value(line, "-j");
    r->src = strip_host_prefix(option_value(line, "-s"));
    r->dst = strip_host_prefix(option_value(line, "-d"));
    char *to = option_value(line, "--to-destination");
    if (to) {
        to[strcspn(to, ":")] = '\0';
        r->to = to;
    }
}

static void free_rule(struct parsed_rule *r)
{
    free(r->chain);
    free(r->line);
    free(r->network);
    free(r->id);
    free(r->target);
    free(r->src);
    free(r->dst);
    free(r->to);
}

static bool shared_chain(const char *c)
{
    return strcmp(c, "CNI-FORWARD") == 0 ||
           nc_str_has_prefix(c, "CNI-HOSTPORT-") ||
           strcmp(c, NETNS_ADMIN_CHAIN) == 0 || strcmp(c, "CNI-ADMIN") == 0;
}

/* A per-container chain of the bridge (CNI-<24 hex>) or portmap
 * (CNI-DN-<21 hex>) plugin. */
static bool container_chain(const char *c)
{
    if (!c || !nc_str_has_prefix(c, "CNI-") || shared_chain(c))
        return false;
    const char *h = nc_str_has_prefix(c, "CNI-DN-") ? c + 7 : c + 4;
    if (!*h)
        return false;
    for (; *h; h++)
        if (!isxdigit((unsigned char)*h))
            return false;
    return true;
}

static void plan_add(struct netns_ipt_plan *plan, const struct parsed_rule *r,
                     const char *id, const char *ip)
{
    for (size_t i = 0; i < plan->nrules; i++)
        if (strcmp(plan->rules[i].table, r->table) == 0 &&
            strcmp(plan->rules[i].rule, r->line) == 0)
            return;
    nc_grow((void **)&plan->rules, &plan->cap, plan->nrules + 1,
            sizeof(*plan->rules));
    struct netns_ipt_rule *o = &plan->rules[plan->nrules++];
    o->table = xstrdup(r->table);
    o->chain = xstrdup(r->chain);
    o->rule = xstrdup(r->line);
    o->container_id = xstrdup(id);
    o->ip = xstrdup(ip);
}

static void mark_chain(struct netns_ipt_plan *plan, const char *table,
                       const char *chain, const char *id)
{
    cleanup_free char *key = xasprintf("%s:%s", table, chain);
    if (!strlist_contains(&plan->chains, key))
        strlist_add(&plan->chains, key);
    if (id && !kv_get(&plan->chain_ids, key))
        kv_set(&plan->chain_ids, key, id);
}

static const char *chain_id(const struct netns_ipt_plan *plan,
                            const char *table, const char *chain)
{
    cleanup_free char *key = xasprintf("%s:%s", table, chain);
    return kv_get(&plan->chain_ids, key);
}

static bool chain_marked(const struct netns_ipt_plan *plan, const char *table,
                         const char *chain)
{
    cleanup_free char *key = xasprintf("%s:%s", table, chain);
    return strlist_contains(&plan->chains, key);
}

static bool ip_wanted(const char *ip, const struct strlist *ips,
                      const char *subnet, netns_accept_ip_fn accept_ip,
                      void *arg)
{
    if (!ip)
        return false;
    if (ips && strlist_contains(ips, ip))
        return true;
    return subnet && netns_ip_in_subnet(ip, subnet) &&
           (!accept_ip || accept_ip(ip, arg));
}

/* Whether a jump into nat chain names its owner, and the owner is not an
 * accepted container of network. */
static bool owned_elsewhere(const struct parsed_rule *rules, size_t n,
                            const char *chain, const char *network,
                            netns_accept_id_fn accept_id, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        const struct parsed_rule *r = &rules[i];
        if (r->id && r->target && strcmp(r->table, "nat") == 0 &&
            strcmp(r->target, chain) == 0)
            return !nc_streq(r->network, network) ||
                   !accept_id(r->id, r->src, arg);
    }
    return false;
}

void netns_ipt_plan_build(struct netns_ipt_plan *plan, const char *save,
                          const char *network, netns_accept_id_fn accept_id,
                          const struct strlist *ips_in, const char *subnet,
                          netns_accept_ip_fn accept_ip, void *arg)
{
    struct parsed_rule *rules = NULL;
    size_t n = 0, cap = 0;
    static const char *const tables[] = {"filter", "nat", "mangle", "raw",
                                         "security"};
    const char *table = NULL;
    for (const char *p = save ? save : ""; *p;) {
        size_t len = strcspn(p, "\n");
        cleanup_free char *line = xstrndup(p, len);
        p += len + (p[len] == '\n');
        if (line[0] == '*') {
            table = NULL;
            for (size_t i = 0; i < NC_ARRAY_LEN(tables); i++)
                if (strcmp(line + 1, tables[i]) == 0)
                    table = tables[i];
        } else if (table && nc_str_has_prefix(line, "-A ") && line[3]) {
            nc_grow((void **)&rules, &cap, n + 1, sizeof(*rules));
            parse_rule(&rules[n++], table, line);
        }
    }
    struct strlist ips = {0};
    if (ips_in)
        strlist_copy(&ips, ips_in);
    /* 1: rules tagged with an accepted container id of our network */
    for (size_t i = 0; i < n; i++) {
        struct parsed_rule *r = &rules[i];
        if (!r->id || !nc_streq(r->network, network) ||
            !accept_id(r->id, r->src, arg))
            continue;
        plan_add(plan, r, r->id, r->src);
        if (container_chain(r->target))
            mark_chain(plan, r->table, r->target, r->id);
        if (container_chain(r->chain))
            mark_chain(plan, r->table, r->chain, r->id);
        if (r->src && strcmp(r->chain, "POSTROUTING") == 0 &&
            !strlist_contains(&ips, r->src))
            strlist_add(&ips, r->src);
    }
    /* 2: portmap DNAT chains and firewall rules naming a wanted IP; a
     * DNAT chain that a jump tags as another network's, or as another
     * container's, is not ours whatever its IP (two networks with
     * overlapping ranges can lease one IP twice) */
    for (size_t i = 0; i < n; i++) {
        struct parsed_rule *r = &rules[i];
        if (strcmp(r->table, "nat") == 0 &&
            nc_str_has_prefix(r->chain, "CNI-DN-") &&
            container_chain(r->chain) && !chain_marked(plan, r->table, r->chain) &&
            !owned_elsewhere(rules, n, r->chain, network, accept_id, arg) &&
            ip_wanted(r->to, &ips, subnet, accept_ip, arg))
            mark_chain(plan, r->table, r->chain, NULL);
        if (strcmp(r->table, "filter") == 0 &&
            strcmp(r->chain, "CNI-FORWARD") == 0) {
            const char *ip =
                ip_wanted(r->dst, &ips, subnet, accept_ip, arg)   ? r->dst
                : ip_wanted(r->src, &ips, subnet, accept_ip, arg) ? r->src
                                                                  : NULL;
            if (ip)
                plan_add(plan, r, NULL, ip);
        }
    }
    /* 3: every rule inside a marked chain, and every jump into one */
    for (size_t i = 0; i < n; i++) {
        struct parsed_rule *r = &rules[i];
        if (chain_marked(plan, r->table, r->chain) ||
            (r->target && chain_marked(plan, r->table, r->target)))
            plan_add(plan, r,
                     r->id ? r->id : chain_id(plan, r->table, r->chain),
                     r->to ? r->to : r->src);
    }
    for (size_t i = 0; i < n; i++)
        free_rule(&rules[i]);
    free(rules);
    strlist_free(&ips);
}

char *netns_ipt_plan_script(const struct netns_ipt_plan *plan)
{
    if (plan->nrules == 0 && plan->chains.n == 0)
        return NULL;
    struct nc_buf b = {0};
    static const char *const tables[] = {"filter", "nat", "mangle", "raw",
                                         "security"};
    for (size_t t = 0; t < NC_ARRAY_LEN(tables); t++) {
        struct nc_buf body = {0};
        /* deletes of rules outside the doomed chains (jumps first) */
        for (size_t i = 0; i < plan->nrules; i++) {
            const struct netns_ipt_rule *r = &plan->rules[i];
            if (strcmp(r->table, tables[t]) != 0 ||
                chain_marked(plan, r->table, r->chain))
                continue;
            nc_buf_printf(&body, "-D%s\n", r->rule + 2);
        }
        size_t tl = strlen(tables[t]);
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < plan->chains.n; i++) {
                const char *k = plan->chains.items[i];
                if (strncmp(k, tables[t], tl) == 0 && k[tl] == ':')
                    nc_buf_printf(&body, "%s %s\n", pass ? "-X" : "-F",
                                  k + tl + 1);
            }
        if (body.len)
            nc_buf_printf(&b, "*%s\n%sCOMMIT\n", tables[t], body.data);
        nc_buf_free(&body);
    }
    return nc_buf_take(&b);
}

void netns_ipt_plan_free(struct netns_ipt_plan *plan)
{
    for (size_t i = 0; i < plan->nrules; i++) {
        free(plan->rules[i].table);
        free(plan->rules[i].chain);
        free(plan->rules[i].rule);
        free(plan->rules[i].container_id);
        free(plan->rules[i].ip);
    }
    free(plan->rules);
    strlist_free(&plan->chains);
    kv_free(&plan->chain_ids);
    memset(plan, 0, sizeof(*plan));
}

static bool same_id(const char *id, const char *ip, void *arg)
{
    (void)ip;
    return strcmp(id, (const char *)arg) == 0;
}

int netns_ipt_sweep(const char *network, const char *container_id,
                    const struct strlist *ips, int timeout_ms, size_t *removed,
                    struct nc_error *err)
{
    *removed = 0;
    int r = 0;
    /* a rule can vanish between save and restore (another DEL): then the
     * transaction fails as a whole and is planned again */
    for (int attempt = 0; attempt < 3; attempt++) {
        cleanup_free char *save = netns_ipt_save(timeout_ms, err);
        if (!save)
            return err ? err->code : -EIO;
        struct netns_ipt_plan plan = {0};
        netns_ipt_plan_build(&plan, save, network, same_id, ips, NULL, NULL,
                             (void *)container_id);
        cleanup_free char *script = netns_ipt_plan_script(&plan);
        size_t n = plan.nrules + plan.chains.n;
        netns_ipt_plan_free(&plan);
        if (!script)
            return 0;
        r = netns_ipt_restore(script, timeout_ms, err);
        if (r == 0) {
            *removed = n;
            return 0;
        }
    }
    return r;
}

/* ---- portmap's entry into CNI-HOSTPORT-DNAT ------------------------------
 * portmap (plugins/meta/portmap, v1.x: genToplevelDnatChain, chain.setup)
 * creates its summary chain in nat (`-N CNI-HOSTPORT-DNAT`, after listing
 * the chains) and, in PREROUTING and then OUTPUT, runs `-C` and, when that
 * fails, `-A` of "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT". The
 * check and the append are two commands, so the portmaps of parallel
 * set-ups on a host without the jumps all append them. The helper puts
 * them in place first, under a lock; portmap's -C then finds them. */

const char *const netns_hostport_hooks[NETNS_HOSTPORT_HOOKS] = {"PREROUTING",
                                                                "OUTPUT"};

#define HOSTPORT_MATCH "-m addrtype --dst-type LOCAL -j " NETNS_HOSTPORT_CHAIN

char *netns_hostport_rule(size_t hook)
{
    return xasprintf("-A %s " HOSTPORT_MATCH, netns_hostport_hooks[hook]);
}

void netns_hostport_count(const char *save, struct netns_hostport_count *c)
{
    memset(c, 0, sizeof(*c));
    char *rules[NETNS_HOSTPORT_HOOKS];
    for (size_t h = 0; h < NETNS_HOSTPORT_HOOKS; h++)
        rules[h] = netns_hostport_rule(h);
    bool nat = false;
    for (const char *p = save ? save : ""; *p;) {
        size_t len = strcspn(p, "\n");
        const char *line = p;
        p += len + (p[len] == '\n');
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        if (len && line[0] == '*') {
            nat = len == 4 && strncmp(line, "*nat", 4) == 0;
        } else if (nat && len > 1 && line[0] == ':') {
            size_t n = strlen(NETNS_HOSTPORT_CHAIN);
            if (len > n + 1 &&
                strncmp(line + 1, NETNS_HOSTPORT_CHAIN, n) == 0 &&
                line[n + 1] == ' ')
                c->chain = true;
        } else if (nat && nc_str_has_prefix(line, "-A ")) {
            for (size_t h = 0; h < NETNS_HOSTPORT_HOOKS; h++)
                if (strlen(rules[h]) == len &&
                    strncmp(line, rules[h], len) == 0)
                    c->jumps[h]++;
        }
    }
    for (size_t h = 0; h < NETNS_HOSTPORT_HOOKS; h++)
        free(rules[h]);
}

char *netns_hostport_script(const struct netns_hostport_count *c, bool add,
                            bool remove)
{
    struct nc_buf body = {0};
    for (size_t h = 0; h < NETNS_HOSTPORT_HOOKS; h++) {
        const char *hook = netns_hostport_hooks[h];
        if (add && c->jumps[h] == 0)
            nc_buf_printf(&body, "-A %s " HOSTPORT_MATCH "\n", hook);
        /* -D removes the first copy: the one left is the last appended */
        for (unsigned i = 1; remove && i < c->jumps[h]; i++)
            nc_buf_printf(&body, "-D %s " HOSTPORT_MATCH "\n", hook);
    }
    if (!body.len)
        return NULL;
    char *script = xasprintf("*nat\n%sCOMMIT\n", body.data);
    nc_buf_free(&body);
    return script;
}

/* Whether this process has seen the jumps in place: after that, portmap
 * finds them (nothing of ours removes them). */
static pthread_mutex_t hostport_mu = PTHREAD_MUTEX_INITIALIZER;
static bool hostport_done;

/* Creates what is missing of the chain and its jumps; 0 or -errno. */
static int hostport_ensure(const char *lock_path, int timeout_ms,
                           struct nc_error *err)
{
    /* Helpers of several agents' allocations may all find them missing:
     * one at a time, each looks under the lock before adding. */
    cleanup_close int lock =
        lock_path ? open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (lock >= 0)
        while (flock(lock, LOCK_EX) < 0 && errno == EINTR)
            ;
    struct nc_buf out = {0};
    static const char *const save_args[] = {"-t", "nat", NULL};
    int r = run_tool("iptables-save", save_args, NULL, timeout_ms, &out, err);
    if (r < 0)
        return r;
    struct netns_hostport_count c;
    netns_hostport_count(out.data, &c);
    nc_buf_free(&out);
    if (!c.chain) {
        static const char *const create[] = {
            "-w", "10", "-t", "nat", "-N", NETNS_HOSTPORT_CHAIN, NULL};
        /* fails when someone made it meanwhile, and then it is there */
        run_tool("iptables", create, NULL, timeout_ms, NULL, NULL);
    }
    cleanup_free char *script = netns_hostport_script(&c, true, false);
    return script ? netns_ipt_restore(script, timeout_ms, err) : 0;
}

static void hostport_run(struct netns_hostport *c)
{
    pthread_mutex_lock(&hostport_mu);
    if (!hostport_done) {
        c->result = hostport_ensure(c->lock_path, c->timeout_ms, &c->err);
        hostport_done = c->result == 0;
        c->ran = true;
    }
    pthread_mutex_unlock(&hostport_mu);
}

static void *hostport_thread(void *arg)
{
    hostport_run(arg);
    return NULL;
}

void netns_hostport_start(struct netns_hostport *c, const char *state_dir,
                          int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_lock(&hostport_mu);
    bool done = hostport_done;
    pthread_mutex_unlock(&hostport_mu);
    if (done)
        return;
    c->lock_path = xasprintf("%s/" NETNS_HOSTPORT_LOCK_FILE, state_dir);
    c->timeout_ms = timeout_ms;
    c->started = true;
    c->threaded = pthread_create(&c->thread, NULL, hostport_thread, c) == 0;
}

int netns_hostport_finish(struct netns_hostport *c, bool *ran,
                          struct nc_error *err)
{
    if (ran)
        *ran = false;
    if (!c->started)
        return 0;
    if (c->threaded)
        pthread_join(c->thread, NULL);
    else
        hostport_run(c);
    c->started = c->threaded = false;
    free(c->lock_path);
    c->lock_path = NULL;
    if (ran)
        *ran = c->ran;
    if (c->result < 0 && err)
        nc_error_set(err, c->result, "%s", c->err.msg);
    return c->result;
}

int netns_hostport_dedupe(int timeout_ms, size_t *removed, struct nc_error *err)
{
    *removed = 0;
    int r = 0;
    /* a copy can go between save and restore (another cleaner): then the
     * transaction fails as a whole and is planned again */
    for (int attempt = 0; attempt < 3; attempt++) {
        struct nc_buf out = {0};
        static const char *const save_args[] = {"-t", "nat", NULL};
        r = run_tool("iptables-save", save_args, NULL, timeout_ms, &out, err);
        if (r < 0)
            return r;
        struct netns_hostport_count c;
        netns_hostport_count(out.data, &c);
        nc_buf_free(&out);
        cleanup_free char *script = netns_hostport_script(&c, false, true);
        if (!script)
            return 0;
        r = netns_ipt_restore(script, timeout_ms, err);
        if (r == 0) {
            for (size_t h = 0; h < NETNS_HOSTPORT_HOOKS; h++)
                *removed += c.jumps[h] > 1 ? c.jumps[h] - 1 : 0;
            return 0;
        }
    }
    return r;
}

/* Nomad's forwarding rule as iptables arguments, or -EINVAL. */
static int admin_args(const json_t *admin_rule, const char *op,
                      const char *argv[12], struct nc_error *err)
{
    const char *chain = json_string_value(json_object_get(admin_rule, "Chain"));
    const char *bridge =
        json_string_value(json_object_get(admin_rule, "Bridge"));
    const char *subnet =
        json_string_value(json_object_get(admin_rule, "Subnet"));
    uint32_t a;
    int prefix;
    if (!chain || !netns_name_valid(chain) || !bridge ||
        !netns_name_valid(bridge) || netns_parse_cidr(subnet, &a, &prefix) < 0)
        return nc_error_set(err, -EINVAL,
                            "request: \"AdminRule\" needs a Chain, a Bridge "
                            "and an IPv4 Subnet");
    const char *v[] = {"iptables", "-w", "10",   op,   chain,    "-o",
                       bridge,     "-d", subnet, "-j", "ACCEPT", NULL};
    memcpy(argv, v, sizeof(v));
    return 0;
}

static void *admin_check(void *arg)
{
    struct netns_ipt_admin *c = arg;
    c->run = netns_exec_run(&c->x);
    return NULL;
}

int netns_ipt_admin_start(struct netns_ipt_admin *c, const json_t *admin_rule,
                          int timeout_ms, struct nc_error *err)
{
    memset(c, 0, sizeof(*c));
    int r = admin_args(admin_rule, "-C", c->argv, err);
    if (r < 0)
        return r;
    c->x.path = find_tool("iptables", c->path, sizeof(c->path));
    c->x.argv = (char *const *)c->argv;
    c->x.envp = (char *const *)ipt_env;
    c->x.timeout_ms = timeout_ms;
    c->started = true;
    if (pthread_create(&c->thread, NULL, admin_check, c) == 0) {
        c->threaded = true;
        return 0;
    }
    r = netns_exec_start(&c->x);
    if (r < 0) {
        c->started = false;
        return nc_error_set(err, r, "run %s: %s", c->x.path, strerror(-r));
    }
    return 0;
}

int netns_ipt_admin_finish(struct netns_ipt_admin *c, const json_t *admin_rule,
                           bool add, const char *lock_path, int timeout_ms,
                           struct nc_error *err)
{
    if (!c->started)
        return 0;
    if (c->threaded)
        pthread_join(c->thread, NULL);
    else
        netns_exec_wait(&c->x);
    c->started = c->threaded = false;
    bool present = c->run == 0 && c->x.status == 0;
    netns_exec_free(&c->x);
    if (present || !add)
        return 0;
    const char *argv[12] = {0};
    int r = admin_args(admin_rule, "-C", argv, err);
    if (r < 0)
        return r;
    /* Helpers of several allocations may all have found the rule missing:
     * one at a time, each looks again under the lock before adding, so the
     * rule is added once. */
    cleanup_close int lock = lock_path ? open(lock_path, O_RDWR | O_CREAT |
                                                             O_CLOEXEC, 0600)
                                       : -1;
    if (lock >= 0)
        while (flock(lock, LOCK_EX) < 0 && errno == EINTR)
            ;
    if (run_tool("iptables", argv + 1, NULL, timeout_ms, NULL, NULL) == 0)
        return 0;
    const char *create[] = {"-w", "10", "-N", argv[4], NULL};
    run_tool("iptables", create, NULL, timeout_ms, NULL, NULL); /* may exist */
    admin_args(admin_rule, "-A", argv, err);
    r = run_tool("iptables", argv + 1, NULL, timeout_ms, NULL, err);
    if (r < 0)
        nc_error_prefix(err, "add the %s forwarding rule for bridge %s",
                        argv[4], argv[6]);
    return r;
}

int netns_ipt_admin_present(const json_t *admin_rule, bool remove,
                            int timeout_ms, struct nc_error *err)
{
    const char *argv[12] = {0};
    int r = admin_args(admin_rule, "-C", argv, err);
    if (r < 0)
        return r;
    if (run_tool("iptables", argv + 1, NULL, timeout_ms, NULL, NULL) != 0)
        return 0;
    if (!remove)
        return 1;
    admin_args(admin_rule, "-D", argv, err);
    for (int i = 0; i < 64; i++) /* every copy */
        if (run_tool("iptables", argv + 1, NULL, timeout_ms, NULL,
                     i ? NULL : err) != 0)
            return i ? 1 : -EIO;
    return 1;
}

int netns_bridge_delete(const char *bridge, int timeout_ms,
                        struct nc_error *err)
{
    const char *args[] = {"link", "del", bridge, NULL};
    return run_tool("ip", args, NULL, timeout_ms, NULL, err);
}
