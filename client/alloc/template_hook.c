/* template_hook.c - a task's template blocks, as Nomad's template hook
 * runs them through consul-template: rendered into the task dir before
 * the task starts, for every driver (the first render holds the start
 * while a dependency is missing, with "Missing: ..." events at most every
 * 3 s), env = true files read into the task's environment, and rendered
 * again when the built-in catalog changes (templates that read
 * nomadService): a changed file, after splay, restarts or signals the
 * task, or runs its change_script.
 *
 * Renders run on the loop with a small time budget (a template is small
 * and its dependencies are local); the files are written atomically and
 * only when their content changed. A task's state is found again by
 * allocation id and task name, so a state never points at a freed task.
 *
 * Not here yet: Consul's key/service functions (no blocking queries: they
 * stay missing, with an event saying so), Vault (`secret` fails), Nomad
 * variables (no servers). */
#include "client/alloc/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/template/template.h"

#define TEMPLATE_EVENT_RATE_MS 3000 /* Nomad's DefaultMaxTemplateEventRate */
#define TEMPLATE_RENDER_NS (20 * 1000000LL) /* on the loop */
#define TEMPLATE_MAX_OUTPUT ((size_t)4 << 20)
#define TEMPLATE_MAX_FILE ((size_t)4 << 20) /* `file` and `source` */

struct one_template {
    struct tmpl *parsed;
    char *source; /* for messages: the source path or "(dynamic)" */
    char *dest;   /* host path */
    bool uses_catalog;
    bool complete; /* its last render had every dependency */
};

struct task_templates {
    struct task_templates *next;
    struct alloc_manager *m;
    char *alloc_id, *task;
    struct tmpl_funcs *funcs;
    struct one_template *tp;
    size_t n;
    bool wait_net;
    bool first_done;         /* the task was let start */
    char *missing;           /* the missing set last seen, as text */
    bool consul_noted;       /* the "Consul ..." event was given */
    uv_timer_t *event_timer; /* the next "Missing" event */
    uv_timer_t *wait_timer;  /* wait {min max}: a change to render */
    int64_t wait_since;      /* first change waiting, unix ns; 0 none */
    uv_timer_t *splay_timer; /* change_mode after splay */
    bool act_restart;
    struct strlist act_signals;
    bool *act_script; /* per template */
    /* one render's context */
    struct alloc_task *t;
    struct kvlist env;
    char *task_dir, *shared_dir;
    struct strlist missing_now;
    bool used_catalog;
    bool consul_used;
};

/* The manager's part (m->templates): the states, and the kick that
 * handles catalog changes on the next loop turn (never inside the
 * caller's own update, and once for a burst). */
struct templates_mgr {
    struct task_templates *list;
    uv_timer_t *kick;
};

static struct task_templates **head(struct alloc_manager *m)
{
    if (!m->templates)
        m->templates = xcalloc(1, sizeof(struct templates_mgr));
    return &((struct templates_mgr *)m->templates)->list;
}

static void close_timer(uv_timer_t **t)
{
    if (*t) {
        uv_close((uv_handle_t *)*t, alloc_handle_closed);
        *t = NULL;
    }
}

static void state_free(struct task_templates *s)
{
    for (struct task_templates **pp = head(s->m); *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    for (size_t i = 0; i < s->n; i++) {
        tmpl_free(s->tp[i].parsed);
        free(s->tp[i].source);
        free(s->tp[i].dest);
    }
    free(s->tp);
    tmpl_funcs_free(s->funcs);
    free(s->alloc_id);
    free(s->task);
    free(s->missing);
    free(s->act_script);
    strlist_free(&s->act_signals);
    close_timer(&s->event_timer);
    close_timer(&s->wait_timer);
    close_timer(&s->splay_timer);
    free(s);
}

void alloc_templates_forget(struct alloc_manager *m)
{
    struct templates_mgr *tm = m->templates;
    if (!tm)
        return;
    while (tm->list)
        state_free(tm->list);
    close_timer(&tm->kick);
    free(tm);
    m->templates = NULL;
}

static struct task_templates *state_find(struct alloc_manager *m,
                                         const struct alloc_task *t)
{
    for (struct task_templates *s = *head(m); s; s = s->next)
        if (nc_streq(s->alloc_id, t->alloc->id) && nc_streq(s->task, t->name))
            return s;
    return NULL;
}

/* The state's task, or NULL (then the state is freed) when its allocation
 * is gone. */
static struct alloc_task *state_task(struct task_templates *s)
{
    struct alloc *a = alloc_manager_find(s->m, s->alloc_id, NULL);
    if (a && nc_streq(a->id, s->alloc_id))
        for (size_t i = 0; i < a->ntasks; i++)
            if (nc_streq(a->tasks[i].name, s->task))
                return &a->tasks[i];
    state_free(s);
    return NULL;
}

/* ---- the functions that read outside the template ---- */

static int dep_fn(struct tmpl_call *c, const char *kind,
                  const struct tmpl_value *a, size_t n, struct tmpl_value *out)
{
    const char *args[4] = {0};
    char *tmp[4] = {0};
    for (size_t i = 0; i < n && i < 4; i++) {
        if (a[i].kind == TMPL_STRING) {
            tmp[i] = xstrndup(a[i].s, a[i].len);
            args[i] = tmp[i];
        } else {
            args[i] = "";
        }
    }
    int rc = tmpl_call_dep(c, kind, args, n, out);
    for (size_t i = 0; i < 4; i++)
        free(tmp[i]);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return 0;
    /* absent or missing: the zero value consul-template renders */
    struct tmpl_arena *ar = tmpl_call_arena(c);
    if (!strcmp(kind, "keyOrDefault") && n == 2)
        *out = a[1];
    else if (!strcmp(kind, "key") || !strcmp(kind, "file"))
        *out = tmpl_string(ar, "", 0);
    else if (!strcmp(kind, "keyExists"))
        *out = tmpl_bool(false);
    else
        *out = tmpl_list(ar, 0, TMPL_ELEM_ANY);
    return 0;
}

#define DEP_FN(name, kind)                                                     \
    static int name(struct tmpl_call *c, const struct tmpl_value *a, size_t n, \
                    struct tmpl_value *out)                                    \
    {                                                                          \
        return dep_fn(c, kind, a, n, out);                                     \
    }
DEP_FN(fn_file, "file")
DEP_FN(fn_nomad_service, "nomadService")
DEP_FN(fn_nomad_services, "nomadServices")
DEP_FN(fn_service, "service")
DEP_FN(fn_services, "services")
DEP_FN(fn_key, "key")
DEP_FN(fn_key_or_default, "keyOrDefault")
DEP_FN(fn_key_exists, "keyExists")
DEP_FN(fn_ls, "ls")
DEP_FN(fn_tree, "tree")
DEP_FN(fn_secret, "secret")
DEP_FN(fn_secrets, "secrets")
DEP_FN(fn_nomad_var, "nomadVar")
DEP_FN(fn_nomad_var_list, "nomadVarList")
DEP_FN(fn_nomad_var_exists, "nomadVarExists")

static const struct tmpl_func task_funcs[] = {
    {"file", fn_file, 1, false, {TMPL_P_STRING}, 0},
    {"nomadService", fn_nomad_service, 1, true, {TMPL_P_ANY}, 0},
    {"nomadServices", fn_nomad_services, 0, true, {TMPL_P_STRING}, 0},
    {"service", fn_service, 1, true, {TMPL_P_STRING}, 0},
    {"services", fn_services, 0, true, {TMPL_P_STRING}, 0},
    {"key", fn_key, 1, false, {TMPL_P_STRING}, 0},
    {"keyOrDefault",
     fn_key_or_default,
     2,
     false,
     {TMPL_P_STRING, TMPL_P_STRING},
     0},
    {"keyExists", fn_key_exists, 1, false, {TMPL_P_STRING}, 0},
    {"ls", fn_ls, 1, false, {TMPL_P_STRING}, 0},
    {"tree", fn_tree, 1, false, {TMPL_P_STRING}, 0},
    {"secret", fn_secret, 1, true, {TMPL_P_STRING}, 0},
    {"secrets", fn_secrets, 1, false, {TMPL_P_STRING}, 0},
    {"nomadVar", fn_nomad_var, 1, false, {TMPL_P_STRING}, 0},
    {"nomadVarList", fn_nomad_var_list, 0, true, {TMPL_P_STRING}, 0},
    {"nomadVarExists", fn_nomad_var_exists, 1, false, {TMPL_P_STRING}, 0},
};

/* A ServiceRegistration of the catalog as the map a template reads
 * (Nomad's api.ServiceRegistration field names). */
static struct tmpl_value service_value(struct tmpl_arena *ar, json_t *r)
{
    static const char *const fields[][2] = {
        {"ID", "ID"},
        {"Name", "ServiceName"},
        {"Namespace", "Namespace"},
        {"NodeID", "NodeID"},
        {"Datacenter", "Datacenter"},
        {"JobID", "JobID"},
        {"AllocID", "AllocID"},
        {"Address", "Address"},
    };
    struct tmpl_value m = tmpl_map_new(ar, 10, TMPL_ELEM_ANY);
    for (size_t i = 0; i < NC_ARRAY_LEN(fields); i++) {
        const char *v = json_string_value(json_object_get(r, fields[i][1]));
        tmpl_map_put(ar, &m, fields[i][0], strlen(fields[i][0]),
                     tmpl_cstring(ar, v ? v : ""));
    }
    tmpl_map_put(ar, &m, "Port", 4,
                 tmpl_int(json_integer_value(json_object_get(r, "Port"))));
    json_t *tags = json_object_get(r, "Tags");
    struct tmpl_value tl = tmpl_list(
        ar, json_is_array(tags) ? json_array_size(tags) : 0, TMPL_ELEM_STRING);
    struct tmpl_value *items = tmpl_list_items(&tl);
    for (size_t i = 0; i < tl.len; i++) {
        const char *s = json_string_value(json_array_get(tags, i));
        items[i] = tmpl_cstring(ar, s ? s : "");
    }
    tmpl_map_put(ar, &m, "Tags", 4, tl);
    tmpl_map_seal(&m);
    return m;
}

static int lookup_catalog(struct task_templates *s, const struct tmpl_dep *d,
                          struct tmpl_arena *ar, struct tmpl_value *out,
                          char *why, size_t whylen)
{
    const struct alloc_manager_config *c = &s->m->c;
    s->used_catalog = true;
    bool list = !strcmp(d->kind, "nomadServices");
    const char *name = NULL;
    if (!list) {
        if (d->nargs != 1 && d->nargs != 3) {
            snprintf(why, whylen, "nomadService: expected 1 or 3 arguments");
            return -EINVAL;
        }
        name = d->args[d->nargs - 1]; /* [tag.]name[@region] */
    }
    json_t *j = c->catalog_lookup ? c->catalog_lookup(c->arg, name) : NULL;
    if (!list) {
        char *nm = xstrdup(name), *tag = NULL;
        char *at = strchr(nm, '@');
        if (at)
            *at = '\0';
        char *dot = strrchr(nm, '.');
        if (dot) {
            *dot = '\0';
            tag = nm;
            if (c->catalog_lookup) {
                json_decref(j);
                j = c->catalog_lookup(c->arg, dot + 1);
            }
        } else if (at && c->catalog_lookup) {
            json_decref(j);
            j = c->catalog_lookup(c->arg, nm);
        }
        size_t n = 0, k = 0;
        json_t *r;
        size_t i;
        json_array_foreach(j, i, r) n++;
        struct tmpl_value l = tmpl_list(ar, n, TMPL_ELEM_ANY);
        struct tmpl_value *items = tmpl_list_items(&l);
        json_array_foreach(j, i, r)
        {
            if (tag) {
                bool has = false;
                json_t *tg;
                size_t ti;
                json_array_foreach(json_object_get(r, "Tags"), ti, tg) has |=
                    nc_streq(json_string_value(tg), tag);
                if (!has)
                    continue;
            }
            items[k++] = service_value(ar, r);
        }
        l.len = k;
        free(nm);
        *out = l;
    } else {
        json_t *ns, *svc;
        size_t i, k, n = 0;
        json_array_foreach(j, i, ns) if (nc_streq(
                                             json_string_value(json_object_get(
                                                 ns, "Namespace")),
                                             "default")) n +=
            json_array_size(json_object_get(ns, "Services"));
        struct tmpl_value l = tmpl_list(ar, n, TMPL_ELEM_ANY);
        struct tmpl_value *items = tmpl_list_items(&l);
        size_t at = 0;
        json_array_foreach(j, i, ns)
        {
            if (!nc_streq(json_string_value(json_object_get(ns, "Namespace")),
                          "default"))
                continue;
            json_array_foreach(json_object_get(ns, "Services"), k, svc)
            {
                if (at >= n)
                    break;
                json_t *fake = json_pack("{s:O?, s:O?}", "ServiceName",
                                         json_object_get(svc, "ServiceName"),
                                         "Tags", json_object_get(svc, "Tags"));
                struct tmpl_value m = service_value(ar, fake);
                json_decref(fake);
                /* Nomad's ServiceRegistrationListStub: Name and Tags */
                struct tmpl_value mm = tmpl_map_new(ar, 2, TMPL_ELEM_ANY);
                tmpl_map_put(ar, &mm, "Name", 4, *tmpl_map_get(&m, "Name", 4));
                tmpl_map_put(ar, &mm, "Tags", 4, *tmpl_map_get(&m, "Tags", 4));
                tmpl_map_seal(&mm);
                items[at++] = mm;
            }
        }
        l.len = at;
        *out = l;
    }
    json_decref(j);
    return 0;
}

static int lookup_file(struct task_templates *s, const struct tmpl_dep *d,
                       struct tmpl_arena *ar, struct tmpl_value *out, char *why,
                       size_t whylen)
{
    char *path = NULL;
    if (template_path(d->args[0], &s->env, s->m->c.node, s->task_dir,
                      s->shared_dir, false, &path) < 0) {
        snprintf(why, whylen, "file: path %s escapes the task directory",
                 d->args[0]);
        return -EPERM;
    }
    char real[PATH_MAX];
    if (realpath(path, real) == NULL) {
        free(path);
        return TMPL_MISSING; /* consul-template waits for the file */
    }
    free(path);
    char tdir[PATH_MAX], sdir[PATH_MAX];
    bool in = (realpath(s->task_dir, tdir) &&
               (!strncmp(real, tdir, strlen(tdir)) &&
                (real[strlen(tdir)] == '/' || !real[strlen(tdir)]))) ||
              (realpath(s->shared_dir, sdir) &&
               (!strncmp(real, sdir, strlen(sdir)) &&
                (real[strlen(sdir)] == '/' || !real[strlen(sdir)])));
    if (!in) {
        snprintf(why, whylen, "file: path %s escapes the task directory",
                 d->args[0]);
        return -EPERM;
    }
    size_t len = 0;
    char *data = nc_read_file(real, &len, TEMPLATE_MAX_FILE);
    if (!data) {
        if (errno == ENOENT)
            return TMPL_MISSING;
        snprintf(why, whylen, "file: %s: %s", d->args[0], strerror(errno));
        return -errno;
    }
    *out = tmpl_string(ar, data, len);
    free(data);
    return 0;
}

static void add_missing(struct task_templates *s, const char *fmt,
                        const char *arg)
{
    char *t = xasprintf(fmt, arg);
    if (!strlist_contains(&s->missing_now, t))
        strlist_add(&s->missing_now, t);
    free(t);
}

static int lookup(void *ctx, const struct tmpl_dep *d, struct tmpl_arena *ar,
                  struct tmpl_value *out, char *why, size_t whylen)
{
    struct task_templates *s = ctx;
    const char *arg0 = d->nargs ? d->args[0] : "";
    if (!strcmp(d->kind, "env") || !strcmp(d->kind, "envOrDefault")) {
        const char *v = kv_get(&s->env, arg0);
        if (!v)
            return !strcmp(d->kind, "env") ? (*out = tmpl_string(ar, "", 0), 0)
                                           : TMPL_ABSENT;
        *out = tmpl_cstring(ar, v);
        return 0;
    }
    if (!strcmp(d->kind, "nomadService") || !strcmp(d->kind, "nomadServices"))
        return lookup_catalog(s, d, ar, out, why, whylen);
    if (!strcmp(d->kind, "file")) {
        int r = lookup_file(s, d, ar, out, why, whylen);
        if (r == TMPL_MISSING)
            add_missing(s, "file(%s)", arg0);
        return r;
    }
    if (!strcmp(d->kind, "secret") || !strcmp(d->kind, "secrets")) {
        snprintf(why, whylen, "Vault is not configured on this node");
        return -ENOTSUP;
    }
    if (!strncmp(d->kind, "nomadVar", 8)) {
        snprintf(why, whylen,
                 "%s: Nomad variables are read from the servers, and this "
                 "node has none",
                 d->kind);
        return -ENOTSUP;
    }
    /* Consul: no blocking queries from templates yet */
    s->consul_used = true;
    if (!strcmp(d->kind, "key") || !strcmp(d->kind, "keyOrDefault"))
        add_missing(s, "kv.block(%s)", arg0);
    else if (!strcmp(d->kind, "keyExists"))
        add_missing(s, "kv.exists(%s)", arg0);
    else if (!strcmp(d->kind, "ls") || !strcmp(d->kind, "tree"))
        add_missing(s, "kv.list(%s)", arg0);
    else if (!strcmp(d->kind, "service"))
        add_missing(s, "health.service(%s)", arg0);
    else
        add_missing(s, "catalog.services%s", "");
    return TMPL_MISSING;
}

/* ---- rendering and writing ---- */

/* Writes content at path (atomically, perms, uid/gid) unless it is there
 * already. 1 written, 0 unchanged, or -errno with why. */
static int write_dest(struct task_templates *s, const struct template_spec *sp,
                      const char *path, const char *data, size_t len, char *why,
                      size_t whylen)
{
    size_t old_len = 0;
    char *old = nc_read_file(path, &old_len, TEMPLATE_MAX_OUTPUT + 1);
    bool same = old && old_len == len && memcmp(old, data, len) == 0;
    free(old);
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int r = nc_mkdir_p(dir, 0755);
    char real[PATH_MAX], tdir[PATH_MAX], sdir[PATH_MAX];
    if (r == 0 && realpath(dir, real)) {
        /* a symlink on the way must not lead out of the sandbox */
        size_t tn = realpath(s->task_dir, tdir) ? strlen(tdir) : 0;
        size_t sn = realpath(s->shared_dir, sdir) ? strlen(sdir) : 0;
        bool in =
            (tn && !strncmp(real, tdir, tn) &&
             (real[tn] == '/' || !real[tn])) ||
            (sn && !strncmp(real, sdir, sn) && (real[sn] == '/' || !real[sn]));
        if (!in)
            r = -EPERM;
    }
    free(dir);
    if (r < 0) {
        snprintf(why, whylen, "failed writing %s: %s", path,
                 r == -EPERM ? "template destination path escapes alloc "
                               "directory"
                             : strerror(-r));
        return r;
    }
    if (same)
        return 0;
    long mode = 0644;
    if (sp->perms && *sp->perms) {
        char *end;
        mode = strtol(sp->perms, &end, 8);
        if (*end || mode < 0 || mode > 07777) {
            snprintf(why, whylen, "invalid perms %s", sp->perms);
            return -EINVAL;
        }
    }
    r = nc_write_file_replace(path, data, len, (int)mode);
    if (r == 0 && chmod(path, (mode_t)mode) < 0)
        r = -errno;
    if (r == 0 && (sp->uid >= 0 || sp->gid >= 0) &&
        chown(path, sp->uid >= 0 ? (uid_t)sp->uid : (uid_t)-1,
              sp->gid >= 0 ? (gid_t)sp->gid : (gid_t)-1) < 0)
        r = -errno;
    if (r < 0) {
        snprintf(why, whylen, "failed writing %s: %s", path, strerror(-r));
        return r;
    }
    return 1;
}

/* The task failed as Nomad's template manager kills it (SetFailsTask). */
static void template_kill(struct alloc_task *t, const char *msg)
{
    if (alloc_task_active(t)) {
        alloc_task_event(t, "Killing", "%s", msg);
        t->kill_fails = true;
        alloc_task_stop(t);
        alloc_save(t->alloc);
        return;
    }
    alloc_task_fail(t, "Killing", msg);
}

static void set_render_ctx(struct task_templates *s, struct alloc_task *t)
{
    struct alloc *a = t->alloc;
    const struct task *spec = alloc_task_spec(t);
    const struct driver *d = driver_of(spec);
    char *alloc_dir = alloc_dir_path(s->m, a);
    s->t = t;
    s->task_dir = alloc_task_dir_path(s->m, a, t->name);
    s->shared_dir = xasprintf("%s/alloc", alloc_dir);
    /* `env` sees what the task sees */
    alloc_task_env(a, spec, s->m->c.node, s->shared_dir, s->task_dir,
                   d && !d->no_fs_isolation, &s->env);
    free(alloc_dir);
    strlist_free(&s->missing_now);
    s->used_catalog = s->consul_used = false;
}

static void clear_render_ctx(struct task_templates *s)
{
    kv_free(&s->env);
    free(s->task_dir);
    free(s->shared_dir);
    s->task_dir = s->shared_dir = NULL;
    s->t = NULL;
}

/* Renders the templates (only those that read the catalog when
 * only_catalog). Returns 0 all complete, TMPL_MISSING, or -1 after the
 * task was failed. changed[i]: template i's file was written. */
static int render_all(struct task_templates *s, struct alloc_task *t,
                      bool only_catalog, bool *changed)
{
    const struct task *spec = alloc_task_spec(t);
    set_render_ctx(s, t);
    struct tmpl_env env = {.lookup = lookup, .ctx = s};
    int result = 0;
    for (size_t i = 0; i < s->n && i < spec->ntemplates; i++) {
        struct one_template *o = &s->tp[i];
        if (only_catalog && !o->uses_catalog)
            continue;
        struct nc_buf out = {0};
        struct nc_error err = {0};
        s->used_catalog = false;
        int r = tmpl_render(o->parsed, NULL, &env, &out, &err);
        o->uses_catalog |= s->used_catalog;
        if (r < 0) {
            char *msg = xasprintf("Template failed: %s: execute: %s", o->source,
                                  err.msg);
            nc_buf_free(&out);
            clear_render_ctx(s);
            template_kill(t, msg);
            free(msg);
            return -1;
        }
        o->complete = r != TMPL_MISSING;
        if (!o->complete) {
            result = TMPL_MISSING;
            nc_buf_free(&out);
            continue;
        }
        char why[512];
        int w = write_dest(s, &spec->templates[i], o->dest,
                           out.data ? out.data : "", out.len, why, sizeof(why));
        nc_buf_free(&out);
        if (w < 0) {
            char *msg = xasprintf("Template failed: %s", why);
            clear_render_ctx(s);
            template_kill(t, msg);
            free(msg);
            return -1;
        }
        if (changed)
            changed[i] = w == 1;
    }
    if (s->consul_used && !s->consul_noted) {
        s->consul_noted = true;
        alloc_task_event(t, "Template",
                         "Consul is not queried by this node's templates: "
                         "key, service and the other Consul functions stay "
                         "missing");
    }
    clear_render_ctx(s);
    if (result == TMPL_MISSING)
        return result;
    /* env = true: every complete env file into the task's environment */
    struct kvlist tenv = {0};
    for (size_t i = 0; i < s->n && i < spec->ntemplates; i++) {
        if (!spec->templates[i].envvars)
            continue;
        size_t len = 0;
        char *data = nc_read_file(s->tp[i].dest, &len, TEMPLATE_MAX_OUTPUT);
        char why[512] = "";
        int r = data ? template_env_parse(data, len, &tenv, why, sizeof(why))
                     : (snprintf(why, sizeof(why), "%s: %s", s->tp[i].dest,
                                 strerror(errno)),
                        -EIO);
        free(data);
        if (r < 0) {
            kv_free(&tenv);
            char *msg = xasprintf(
                "Template failed to read environment variables: %s", why);
            template_kill(t, msg);
            free(msg);
            return -1;
        }
    }
    kv_free(&t->template_env);
    t->template_env = tenv;
    return 0;
}

/* ---- "Missing: ..." at most every 3 s ---- */

static void on_event_timer(uv_timer_t *h)
{
    struct task_templates *s = h->data;
    struct alloc_task *t = state_task(s);
    if (!t || !t->templates_blocked || !nc_streq(t->state, "pending") ||
        t->alloc->stopping || !s->missing || !*s->missing)
        return;
    alloc_task_event(t, "Template", "Missing: %s", s->missing);
    alloc_save(t->alloc);
}

static void note_missing(struct task_templates *s)
{
    char *text = template_missing_text(&s->missing_now);
    if (s->missing && !strcmp(text, s->missing)) {
        free(text);
        return;
    }
    free(s->missing);
    s->missing = text;
    if (!*text)
        return;
    if (!s->event_timer) {
        s->event_timer = xcalloc(1, sizeof(*s->event_timer));
        uv_timer_init(s->m->c.loop, s->event_timer);
        s->event_timer->data = s;
    }
    if (!uv_is_active((uv_handle_t *)s->event_timer))
        uv_timer_start(s->event_timer, on_event_timer, TEMPLATE_EVENT_RATE_MS,
                       0);
}

/* ---- the first render ---- */

static struct task_templates *state_new(struct alloc_task *t,
                                        const struct task *spec)
{
    struct alloc_manager *m = t->alloc->mgr;
    struct task_templates *s = xcalloc(1, sizeof(*s));
    s->m = m;
    s->alloc_id = xstrdup(t->alloc->id);
    s->task = xstrdup(t->name);
    s->funcs = tmpl_funcs_new();
    tmpl_funcs_add_consul(s->funcs);
    tmpl_funcs_add(s->funcs, task_funcs, NC_ARRAY_LEN(task_funcs));
    s->tp = xcalloc(spec->ntemplates + 1, sizeof(*s->tp));
    s->act_script = xcalloc(spec->ntemplates + 1, sizeof(bool));
    s->next = *head(m);
    *head(m) = s;
    return s;
}

/* Parses a template block's text with its delimiters and missing-key
 * rule, on the task's functions, within the render limits. */
static struct tmpl *spec_parse(const struct task_templates *s,
                               const struct template_spec *sp,
                               const char *text, size_t len,
                               struct nc_error *err)
{
    struct tmpl_options opt = {
        .left_delim = sp->left_delim,
        .right_delim = sp->right_delim,
        .funcs = s->funcs,
        .missing_key = sp->err_missing_key ? TMPL_MISSINGKEY_ERROR
                                           : TMPL_MISSINGKEY_ZERO,
        .limits = {.max_time_ns = TEMPLATE_RENDER_NS,
                   .max_output = TEMPLATE_MAX_OUTPUT},
    };
    return tmpl_parse("", text, len, &opt, err);
}

/* Resolves and parses the templates; false after the task was failed
 * (Nomad's prestart hook error: "Task hook failed"). */
static bool state_prepare(struct task_templates *s, struct alloc_task *t,
                          const struct task *spec)
{
    set_render_ctx(s, t);
    char *msg = NULL;
    bool hook_error = true;
    for (size_t i = 0; i < spec->ntemplates && !msg; i++) {
        const struct template_spec *sp = &spec->templates[i];
        struct one_template *o = &s->tp[s->n];
        char *src = NULL;
        if (sp->source_path && *sp->source_path &&
            template_path(sp->source_path, &s->env, s->m->c.node, s->task_dir,
                          s->shared_dir, false, &src) < 0) {
            msg = xstrdup("template: template source path escapes alloc "
                          "directory");
            break;
        }
        if (template_path(sp->dest_path, &s->env, s->m->c.node, s->task_dir,
                          s->shared_dir, true, &o->dest) < 0) {
            free(src);
            msg = xstrdup("template: template destination path escapes "
                          "alloc directory");
            break;
        }
        char *text = NULL;
        size_t len = 0;
        if (src) {
            text = nc_read_file(src, &len, TEMPLATE_MAX_FILE);
            if (!text) {
                msg = xasprintf("template: failed to read template: open %s: "
                                "%s",
                                src, strerror(errno));
                free(src);
                free(o->dest);
                o->dest = NULL;
                break;
            }
            o->source = src;
        } else {
            text = xstrdup(sp->embedded_tmpl ? sp->embedded_tmpl : "");
            len = strlen(text);
            o->source = xstrdup("(dynamic)");
        }
        struct nc_error err = {0};
        o->parsed = spec_parse(s, sp, text, len, &err);
        free(text);
        s->n++;
        if (!o->parsed) {
            msg =
                xasprintf("Template failed: %s: parse: %s", o->source, err.msg);
            hook_error = false;
        }
    }
    clear_render_ctx(s);
    if (!msg)
        return true;
    if (hook_error) {
        /* a prestart hook's error: the restart policy decides */
        alloc_task_event(t, "Task hook failed", "%s", msg);
        LOG_WARN("alloc", "%s task %s: %s", t->alloc->id, t->name, msg);
        alloc_task_apply_restart_policy(t, true);
        alloc_save(t->alloc);
    } else {
        alloc_task_fail(t, "Killing", msg);
    }
    free(msg);
    state_free(s);
    return false;
}

bool alloc_task_render_templates(struct alloc_task *t, bool wait_net)
{
    const struct task *spec = alloc_task_spec(t);
    if (!spec || !spec->ntemplates || !t->alloc->mgr)
        return false;
    struct task_templates *s = state_find(t->alloc->mgr, t);
    if (s && s->n != spec->ntemplates) { /* a new job version */
        state_free(s);
        s = NULL;
    }
    if (!s) {
        s = state_new(t, spec);
        if (!state_prepare(s, t, spec))
            return true;
    }
    s->wait_net = wait_net;
    /* a restart renders again, as Nomad's hook does on each start */
    int r = render_all(s, t, false, NULL);
    if (r < 0)
        return true;
    if (r == TMPL_MISSING) {
        if (!t->templates_blocked)
            LOG_INFO("alloc", "%s task %s: templates wait for dependencies",
                     t->alloc->id, t->name);
        t->templates_blocked = true;
        note_missing(s);
        return true;
    }
    t->templates_blocked = false;
    s->first_done = true;
    free(s->missing);
    s->missing = NULL;
    return false;
}

/* ---- changes after the start ---- */

static void on_script_done(void *arg, int exit_code, int signal, bool timed_out,
                           const char *output, size_t output_len,
                           const char *error);

struct script_run {
    struct task_templates *s; /* found again by ids */
    char *alloc_id, *task;
    char *command;
    char *args; /* for messages: Go's %v of the []string */
    bool fail_on_error;
    struct alloc_manager *m;
};

static void run_script(struct task_templates *s, struct alloc_task *t,
                       const struct template_spec *sp)
{
    const struct driver *d = driver_of(alloc_task_spec(t));
    struct nc_buf args = {0};
    nc_buf_puts(&args, "[");
    for (size_t i = 0; i < sp->script_args.n; i++)
        nc_buf_printf(&args, "%s%s", i ? " " : "", sp->script_args.items[i]);
    nc_buf_puts(&args, "]");
    if (!d || !d->exec) {
        alloc_task_event(t, "Task hook failed",
                         "Template failed to run script %s with arguments %s "
                         "because task driver doesn't support the exec "
                         "operation",
                         sp->script_command, args.data);
        nc_buf_free(&args);
        if (sp->script_fail_on_error)
            template_kill(t, "Template script failed, task is being killed");
        return;
    }
    char **argv = xcalloc(sp->script_args.n + 2, sizeof(*argv));
    argv[0] = sp->script_command;
    for (size_t i = 0; i < sp->script_args.n; i++)
        argv[i + 1] = sp->script_args.items[i];
    struct script_run *run = xcalloc(1, sizeof(*run));
    run->m = s->m;
    run->alloc_id = xstrdup(s->alloc_id);
    run->task = xstrdup(s->task);
    run->command = xstrdup(sp->script_command);
    run->args = nc_buf_take(&args);
    run->fail_on_error = sp->script_fail_on_error;
    struct driver_exec *x = NULL;
    struct nc_error err = {0};
    int r = d->exec(s->m->drv, t, argv, sp->script_timeout, on_script_done, run,
                    &x, &err);
    free(argv);
    if (r < 0)
        on_script_done(run, -1, 0, false, "", 0, err.msg);
}

static void on_script_done(void *arg, int exit_code, int signal, bool timed_out,
                           const char *output, size_t output_len,
                           const char *error)
{
    (void)signal;
    (void)output;
    (void)output_len;
    struct script_run *run = arg;
    struct alloc *a = alloc_manager_find(run->m, run->alloc_id, NULL);
    struct alloc_task *t = NULL;
    for (size_t i = 0; a && i < a->ntasks; i++)
        if (nc_streq(a->tasks[i].name, run->task))
            t = &a->tasks[i];
    if (t) {
        bool failed = true;
        if (error || timed_out)
            alloc_task_event(t, "Task hook failed",
                             "Template failed to run script %s with arguments "
                             "%s on change: %s Exit code: %d",
                             run->command, run->args,
                             timed_out ? "timed out" : error, exit_code);
        else if (exit_code != 0)
            alloc_task_event(t, "Task hook failed",
                             "Template ran script %s with arguments %s on "
                             "change but it exited with code code: %d",
                             run->command, run->args, exit_code);
        else {
            failed = false;
            alloc_task_event(t, "Task hook message",
                             "Template successfully ran script %s with "
                             "arguments: %s. Exit code: %d",
                             run->command, run->args, exit_code);
        }
        if (failed && run->fail_on_error)
            template_kill(t, "Template script failed, task is being killed");
        else
            alloc_save(t->alloc);
    }
    free(run->alloc_id);
    free(run->task);
    free(run->command);
    free(run->args);
    free(run);
}

static void on_splay(uv_timer_t *h)
{
    struct task_templates *s = h->data;
    struct alloc_task *t = state_task(s);
    if (!t)
        return;
    bool restart = s->act_restart;
    s->act_restart = false;
    if (!nc_streq(t->state, "running") || !alloc_task_active(t) ||
        t->alloc->stopping) {
        strlist_free(&s->act_signals);
        memset(s->act_script, 0, s->n * sizeof(bool));
        return;
    }
    const struct task *spec = alloc_task_spec(t);
    if (restart) {
        alloc_task_event(t, "Restart Signaled",
                         "Template with change_mode restart re-rendered");
        LOG_INFO("alloc", "%s task %s: template re-rendered: restarting",
                 t->alloc->id, t->name);
        t->user_restart = true; /* outside the restart policy, as Nomad */
        alloc_task_stop(t);
    } else {
        const struct driver *d = driver_of(spec);
        for (size_t i = 0; i < s->act_signals.n; i++) {
            const char *name = s->act_signals.items[i];
            int num = driver_signal_number(name);
            struct nc_error e = {0};
            alloc_task_event(t, "Signaling", "Template re-rendered");
            int r = num < 0 ? nc_error_set(&e, -EINVAL, "invalid signal")
                    : d     ? d->signal(t, num, &e)
                            : nc_error_set(&e, -ENOTSUP, "no driver");
            if (r < 0) {
                char *msg = xasprintf("Template failed to send signals [%s]: "
                                      "%s",
                                      name, e.msg);
                template_kill(t, msg);
                free(msg);
                break;
            }
        }
        for (size_t i = 0; i < s->n && spec && i < spec->ntemplates; i++)
            if (s->act_script[i] && spec->templates[i].script_command)
                run_script(s, t, &spec->templates[i]);
    }
    strlist_free(&s->act_signals);
    memset(s->act_script, 0, s->n * sizeof(bool));
    alloc_save(t->alloc);
}

static void rerender(struct task_templates *s)
{
    struct alloc_task *t = state_task(s);
    if (!t)
        return;
    s->wait_since = 0;
    const struct task *spec = alloc_task_spec(t);
    struct alloc *a = t->alloc;
    if (!spec || spec->ntemplates != s->n || a->stopping ||
        nc_streq(t->state, "dead"))
        return;
    if (!s->first_done) {
        if (!t->templates_blocked)
            return; /* its start will render */
        bool wait_net = alloc_bridged(a) && !nc_streq(a->net_phase, "ready");
        t->templates_blocked = false; /* spawn renders again */
        alloc_task_spawn(t, wait_net);
        return;
    }
    bool *changed = xcalloc(s->n + 1, sizeof(bool));
    int r = render_all(s, t, true, changed);
    if (r < 0 || !nc_streq(t->state, "running")) {
        free(changed);
        return;
    }
    int64_t splay = 0;
    bool act = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!changed[i])
            continue;
        const struct template_spec *sp = &spec->templates[i];
        const char *mode = sp->change_mode ? sp->change_mode : "restart";
        if (!strcmp(mode, "noop"))
            continue;
        if (!strcmp(mode, "signal")) {
            const char *sig = sp->change_signal && *sp->change_signal
                                  ? sp->change_signal
                                  : "SIGHUP";
            if (!strlist_contains(&s->act_signals, sig))
                strlist_add(&s->act_signals, sig);
        } else if (!strcmp(mode, "script")) {
            s->act_script[i] = true;
        } else {
            s->act_restart = true;
        }
        act = true;
        if (sp->splay > splay)
            splay = sp->splay;
    }
    free(changed);
    if (!act)
        return;
    if (!s->splay_timer) {
        s->splay_timer = xcalloc(1, sizeof(*s->splay_timer));
        uv_timer_init(s->m->c.loop, s->splay_timer);
        s->splay_timer->data = s;
    }
    if (uv_is_active((uv_handle_t *)s->splay_timer))
        return; /* the change waiting takes this one along */
    uint64_t ms = 0;
    if (splay > 0) {
        uint64_t r64 = ((uint64_t)rand() << 31) ^ (uint64_t)rand();
        ms = (r64 % (uint64_t)splay) / 1000000;
    }
    uv_timer_start(s->splay_timer, on_splay, ms, 0);
}

static void on_wait(uv_timer_t *h)
{
    rerender(h->data);
}

/* wait {min max}: a change renders after min without another change, and
 * no later than max after the first. */
static void change_seen(struct task_templates *s, struct alloc_task *t)
{
    const struct task *spec = alloc_task_spec(t);
    int64_t min = 0, max = 0;
    for (size_t i = 0; spec && i < s->n && i < spec->ntemplates; i++)
        if (s->tp[i].uses_catalog) {
            if (spec->templates[i].wait_min > min)
                min = spec->templates[i].wait_min;
            if (spec->templates[i].wait_max > max)
                max = spec->templates[i].wait_max;
        }
    if (min <= 0 || !s->first_done) {
        rerender(s);
        return;
    }
    int64_t now = nc_now_unix_ns();
    if (!s->wait_since)
        s->wait_since = now;
    int64_t due = now + min;
    if (max > 0 && due > s->wait_since + max)
        due = s->wait_since + max;
    if (!s->wait_timer) {
        s->wait_timer = xcalloc(1, sizeof(*s->wait_timer));
        uv_timer_init(s->m->c.loop, s->wait_timer);
        s->wait_timer->data = s;
    }
    uv_timer_start(s->wait_timer, on_wait,
                   due > now ? (uint64_t)((due - now) / 1000000) : 0, 0);
}

/* Running tasks with templates the agent has no state for (re-attached
 * after an agent restart): their templates are taken in as rendered, each
 * watched as if it read the catalog (the next render tells). */
static void adopt_running(struct alloc_manager *m)
{
    for (size_t i = 0; i < m->nallocs; i++) {
        struct alloc *a = m->allocs[i];
        for (size_t k = 0; !a->stopping && k < a->ntasks; k++) {
            struct alloc_task *t = &a->tasks[k];
            const struct task *spec = alloc_task_spec(t);
            if (!spec || !spec->ntemplates || !nc_streq(t->state, "running") ||
                state_find(m, t))
                continue;
            struct task_templates *s = state_new(t, spec);
            set_render_ctx(s, t);
            bool ok = true;
            for (size_t j = 0; j < spec->ntemplates && ok; j++) {
                const struct template_spec *sp = &spec->templates[j];
                struct one_template *o = &s->tp[j];
                char *src = NULL;
                char *text = NULL;
                size_t len = 0;
                ok = template_path(sp->dest_path, &s->env, m->c.node,
                                   s->task_dir, s->shared_dir, true,
                                   &o->dest) == 0;
                if (ok && sp->source_path && *sp->source_path) {
                    ok = template_path(sp->source_path, &s->env, m->c.node,
                                       s->task_dir, s->shared_dir, false,
                                       &src) == 0 &&
                         (text = nc_read_file(src, &len, TEMPLATE_MAX_FILE));
                    o->source = src ? src : xstrdup("(dynamic)");
                } else if (ok) {
                    text = xstrdup(sp->embedded_tmpl ? sp->embedded_tmpl : "");
                    len = strlen(text);
                    o->source = xstrdup("(dynamic)");
                }
                struct nc_error err = {0};
                if (ok)
                    ok = (o->parsed = spec_parse(s, sp, text, len, &err));
                free(text);
                o->uses_catalog = true;
                s->n++;
            }
            clear_render_ctx(s);
            if (!ok) {
                state_free(s);
                continue;
            }
            s->first_done = true;
        }
    }
}

static void on_kick(uv_timer_t *h)
{
    struct alloc_manager *m = h->data;
    adopt_running(m);
    /* rerender may free states or add none: walk a copy of the list */
    size_t n = 0;
    for (struct task_templates *s = *head(m); s; s = s->next)
        n++;
    if (!n)
        return;
    char **ids = xcalloc(n, sizeof(*ids)), **tasks = xcalloc(n, sizeof(*tasks));
    size_t k = 0;
    for (struct task_templates *s = *head(m); s; s = s->next) {
        bool any = false;
        for (size_t i = 0; i < s->n; i++)
            any |= s->tp[i].uses_catalog;
        if (!any)
            continue;
        ids[k] = xstrdup(s->alloc_id);
        tasks[k++] = xstrdup(s->task);
    }
    for (size_t i = 0; i < k; i++) {
        for (struct task_templates *s = *head(m); s; s = s->next)
            if (nc_streq(s->alloc_id, ids[i]) && nc_streq(s->task, tasks[i])) {
                struct alloc_task *t = state_task(s);
                if (t)
                    change_seen(s, t);
                break;
            }
        free(ids[i]);
        free(tasks[i]);
    }
    free(ids);
    free(tasks);
}

void alloc_manager_services_changed(struct alloc_manager *m)
{
    (void)head(m);
    struct templates_mgr *tm = m->templates;
    if (m->closing)
        return;
    if (!tm->kick) {
        tm->kick = xcalloc(1, sizeof(*tm->kick));
        uv_timer_init(m->c.loop, tm->kick);
        tm->kick->data = m;
    }
    if (!uv_is_active((uv_handle_t *)tm->kick))
        uv_timer_start(tm->kick, on_kick, 0, 0);
}
