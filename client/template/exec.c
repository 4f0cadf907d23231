/* exec.c - rendering: Go's text/template/exec.go on the value model, with
 * Go's variable stack and scoping, its argument checks and conversions (a
 * small reflect: the Go type of each value and parameter), and its error
 * messages with the template's line, column and the node being run.
 *
 * Where this differs from Go 1.19, on purpose or by the model:
 *   - complex numbers (1+2i) are refused at parse;
 *   - objects have fields, no methods, and print through their format
 *     callback at any depth (Go prints a nested struct pointer's address);
 *     `call` always fails (there are no func values);
 *   - %p, and %v of a chan (loop's result), print our address, not Go's;
 *   - `slice` sees a list's capacity as its length (Go's may be larger);
 *     a zero []string / []interface{} is empty, not nil (toJSON: [] not null);
 *   - limits (output, memory, steps, time, nesting, template depth 100
 *     instead of 100000) end a render with an error instead of running on;
 *   - in funcs_consul.c: toTitle approximates x/text's word breaking; in
 *     regexp.c: \p{...} knows only L, Nd and Any.
 * Errors unwind with longjmp: everything a render allocates is in its arena
 * or its state, freed in one place. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

#define EXEC_MAX_DEPTH 3000

enum { WALK_OK, WALK_BREAK, WALK_CONTINUE };
/* parameter type "none": untyped (Go's nil reflect.Type) */
#define P_NONE 255

static void efail_code(struct exec *ex, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void fail_msg(struct exec *ex, int code, const char *msg)
    __attribute__((noreturn));
static void fail_msg(struct exec *ex, int code, const char *msg)
{
    const struct tmpl *t = ex->t;
    struct nc_buf b = {0};
    if (!ex->node) {
        nc_buf_printf(&b, "template: %.*s: %s", (int)ex->tree->name.n,
                      ex->tree->name.s, msg);
    } else {
        size_t pos = ex->node->pos;
        int line = 1;
        size_t last_nl = (size_t)-1;
        for (size_t i = 0; i < pos && i < t->len; i++) {
            if (t->text[i] == '\n') {
                line++;
                last_nl = i;
            }
        }
        size_t col = last_nl == (size_t)-1 ? pos : pos - (last_nl + 1);
        nc_buf_printf(&b, "template: %.*s:%d:%zu: executing ", (int)t->name.n,
                      t->name.s, line, col);
        tp_go_quote(&b, ex->tree->name.s, ex->tree->name.n, false);
        nc_buf_puts(&b, " at <");
        tp_node_string(&b, ex->node);
        nc_buf_printf(&b, ">: %s", msg);
    }
    nc_error_set(ex->err, code, "%s", b.data);
    nc_buf_free(&b);
    ex->code = code;
    longjmp(ex->jump, 1);
}

static void efail(struct exec *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void efail(struct exec *ex, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail_msg(ex, -EINVAL, msg);
}

static void efail_code(struct exec *ex, int code, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail_msg(ex, code, msg);
}

/* %q of a string, into a scratch buffer the caller frees. */
static char *quote(const char *s, size_t n)
{
    struct nc_buf b = {0};
    tp_go_quote(&b, s, n, false);
    return nc_buf_take(&b);
}

/* A node's String(), as a C string in the arena. */
static const char *nstr(struct exec *ex, const struct node *n)
{
    struct nc_buf b = {0};
    tp_node_string(&b, n);
    char *s = tp_arena_strdup(ex->arena, b.data, b.len);
    nc_buf_free(&b);
    return s;
}

static const char *value_string(struct exec *ex, const struct tmpl_value *v)
{
    struct nc_buf b = {0};
    tp_gofmt_value(&b, v, 'v', 1 << 16);
    char *s = tp_arena_strdup(ex->arena, b.data, b.len);
    nc_buf_free(&b);
    return s;
}

static void at(struct exec *ex, const struct node *n)
{
    ex->node = n;
}

static void check_budget(struct exec *ex)
{
    if (tmpl_arena_used(ex->arena) > ex->lim.max_memory)
        efail_code(ex, -E2BIG, "the render uses more than %zu bytes of memory",
                   ex->lim.max_memory);
}

static void step(struct exec *ex)
{
    if (++ex->steps > ex->lim.max_steps)
        efail_code(ex, -E2BIG, "the render takes more than %llu steps",
                   (unsigned long long)ex->lim.max_steps);
    if ((ex->steps & 1023) == 0) {
        if (nc_now_mono_ns() - ex->start_ns > ex->lim.max_time_ns)
            efail_code(ex, -ETIMEDOUT, "the render takes longer than %llu ms",
                       (unsigned long long)(ex->lim.max_time_ns / 1000000));
        check_budget(ex);
    }
}

static void write_out(struct exec *ex, const char *s, size_t n)
{
    if (ex->out->len - ex->out_start + n > ex->lim.max_output)
        efail_code(ex, -E2BIG, "the output is larger than %zu bytes",
                   ex->lim.max_output);
    nc_buf_append(ex->out, s, n);
}

static void deeper(struct exec *ex)
{
    if (++ex->walk_depth > EXEC_MAX_DEPTH)
        efail_code(ex, -E2BIG, "exceeded maximum nesting depth (%d)",
                   EXEC_MAX_DEPTH);
}

/* ---- variables
 * ---------------------------------------------------------------- */

static void push_var(struct exec *ex, struct tstr name, struct tmpl_value v)
{
    if (ex->nvars == ex->capvars) {
        if (ex->nvars > 100000)
            efail_code(ex, -E2BIG, "too many variables");
        nc_grow((void **)&ex->vars, &ex->capvars, ex->nvars + 1,
                sizeof *ex->vars);
    }
    ex->vars[ex->nvars++] = (struct var){name, v};
}

static size_t mark(struct exec *ex)
{
    return ex->nvars;
}

static void pop(struct exec *ex, size_t m)
{
    ex->nvars = m;
}

static struct var *find_var(struct exec *ex, struct tstr name)
{
    for (size_t i = ex->nvars; i > ex->var_base; i--)
        if (tp_tstr_eq(ex->vars[i - 1].name, name.s, name.n))
            return &ex->vars[i - 1];
    efail(ex, "undefined variable: %.*s", (int)name.n, name.s);
}

/* ---- Go types of parameters -------------------------------------------------
 */

static const char *param_name(int p)
{
    switch (p) {
    case TMPL_P_VALUE:
        return "reflect.Value";
    case TMPL_P_ANY:
        return "interface {}";
    case TMPL_P_STRING:
        return "string";
    case TMPL_P_INT:
        return "int";
    case TMPL_P_STRINGS:
        return "[]string";
    case TMPL_P_LIST:
        return "[]interface {}";
    }
    return "<nil>";
}

static bool can_be_nil(int p)
{
    return p == TMPL_P_VALUE || p == TMPL_P_ANY || p == TMPL_P_STRINGS ||
           p == TMPL_P_LIST;
}

static struct tmpl_value zero_of(int p)
{
    switch (p) {
    case TMPL_P_ANY:
        return tmpl_nil();
    case TMPL_P_STRINGS:
        return (struct tmpl_value){.kind = TMPL_LIST, .sub = TMPL_ELEM_STRING};
    case TMPL_P_LIST:
        return (struct tmpl_value){.kind = TMPL_LIST, .sub = TMPL_ELEM_ANY};
    }
    return tmpl_invalid();
}

static bool assignable(const struct tmpl_value *v, int p)
{
    switch (p) {
    case TMPL_P_ANY:
    case TMPL_P_VALUE:
        return true;
    case TMPL_P_STRING:
        return v->kind == TMPL_STRING;
    case TMPL_P_INT:
        return v->kind == TMPL_INT && v->sub == TMPL_INT_INT;
    case TMPL_P_STRINGS:
        return v->kind == TMPL_LIST && v->sub == TMPL_ELEM_STRING;
    case TMPL_P_LIST:
        return v->kind == TMPL_LIST && v->sub == TMPL_ELEM_ANY;
    }
    return false;
}

static struct tmpl_value validate_type(struct exec *ex, struct tmpl_value v,
                                       int p)
{
    if (v.kind == TMPL_INVALID) {
        if (p == P_NONE)
            return v;
        if (can_be_nil(p))
            return zero_of(p);
        efail(ex, "invalid value; expected %s", param_name(p));
    }
    if (p == P_NONE || p == TMPL_P_VALUE)
        return v;
    if (!assignable(&v, p))
        efail(ex, "wrong type for value; expected %s; got %s", param_name(p),
              tmpl_type_name(&v));
    if (p == TMPL_P_ANY && v.kind == TMPL_NIL)
        return tmpl_nil();
    return v;
}

/* ---- evaluation
 * -------------------------------------------------------------- */

static struct tmpl_value eval_pipeline(struct exec *ex, struct tmpl_value dot,
                                       const struct node *pipe);
static struct tmpl_value eval_arg(struct exec *ex, struct tmpl_value dot, int p,
                                  const struct node *n);

static void not_a_function(struct exec *ex, const struct node_list *args,
                           const struct tmpl_value *final)
{
    if ((args && args->n > 1) || final)
        efail(ex, "can't give argument to non-function %s",
              nstr(ex, args->items[0]));
}

static bool is_hex_int(struct tstr s)
{
    return s.n > 2 && s.s[0] == '0' && (s.s[1] == 'x' || s.s[1] == 'X') &&
           !memchr(s.s, 'p', s.n) && !memchr(s.s, 'P', s.n);
}

static struct tmpl_value ideal_constant(struct exec *ex, const struct node *n)
{
    at(ex, n);
    const struct number *num = &n->number.num;
    struct tstr text = n->number.text;
    bool floaty = false;
    for (size_t i = 0; i < text.n; i++)
        if (strchr(".eEpP", text.s[i]))
            floaty = true;
    if (num->is_float && !is_hex_int(text) && !(text.n && text.s[0] == '\'') &&
        floaty)
        return tmpl_float(num->f);
    if (num->is_int)
        return tmpl_int(num->i);
    if (num->is_uint)
        efail(ex, "%.*s overflows int", (int)text.n, text.s);
    return tmpl_invalid();
}

static struct tmpl_value eval_field(struct exec *ex, struct tmpl_value dot,
                                    struct tstr name, const struct node *node,
                                    size_t nargs,
                                    const struct tmpl_value *final,
                                    struct tmpl_value receiver)
{
    (void)dot;
    (void)node;
    if (receiver.kind == TMPL_INVALID) {
        if (ex->t->missing_key == TMPL_MISSINGKEY_ERROR) {
            char *q = quote(name.s, name.n);
            char msg[600];
            snprintf(msg, sizeof msg, "nil data; no entry for key %s", q);
            free(q);
            efail(ex, "%s", msg);
        }
        return tmpl_invalid();
    }
    /* Go names the static type: what came out of a map[string]interface{}
     * or []interface{} is an interface {} */
    const char *typ =
        receiver.iface ? "interface {}" : tmpl_type_name(&receiver);
    if (receiver.kind == TMPL_NIL)
        efail(ex, "nil pointer evaluating %s.%.*s", typ, (int)name.n, name.s);
    bool has_args = nargs > 1 || final;
    if (receiver.kind == TMPL_MAP) {
        if (has_args)
            efail(ex, "%.*s is not a method but has arguments", (int)name.n,
                  name.s);
        const struct tmpl_value *v = tmpl_map_get(&receiver, name.s, name.n);
        if (v) {
            struct tmpl_value r = *v;
            r.iface = receiver.sub == TMPL_ELEM_ANY;
            return r;
        }
        switch (ex->t->missing_key) {
        case TMPL_MISSINGKEY_DEFAULT:
            return tmpl_invalid();
        case TMPL_MISSINGKEY_ZERO:
            return receiver.sub == TMPL_ELEM_STRING ? tmpl_string_ref("", 0)
                                                    : tmpl_nil();
        case TMPL_MISSINGKEY_ERROR: {
            char *q = quote(name.s, name.n);
            char msg[600];
            snprintf(msg, sizeof msg, "map has no entry for key %s", q);
            free(q);
            efail(ex, "%s", msg);
        }
        }
    }
    if (receiver.kind == TMPL_OBJECT && receiver.obj->type->field) {
        struct tmpl_value out = tmpl_invalid();
        if (receiver.obj->type->field(receiver.obj->data, name.s, name.n,
                                      ex->arena, &out) == 0) {
            if (has_args)
                efail(ex,
                      "%.*s has arguments but cannot be invoked as function",
                      (int)name.n, name.s);
            return out;
        }
    }
    efail(ex, "can't evaluate field %.*s in type %s", (int)name.n, name.s, typ);
}

static struct tmpl_value
eval_field_chain(struct exec *ex, struct tmpl_value dot,
                 struct tmpl_value receiver, const struct node *node,
                 const struct tstr *ident, size_t n, size_t nargs,
                 const struct tmpl_value *final)
{
    for (size_t i = 0; i + 1 < n; i++)
        receiver = eval_field(ex, dot, ident[i], node, 0, NULL, receiver);
    return eval_field(ex, dot, ident[n - 1], node, nargs, final, receiver);
}

static struct tmpl_value eval_field_node(struct exec *ex, struct tmpl_value dot,
                                         const struct node *field, size_t nargs,
                                         const struct tmpl_value *final)
{
    at(ex, field);
    return eval_field_chain(ex, dot, dot, field, field->field.idents,
                            field->field.n, nargs, final);
}

static struct tmpl_value eval_chain_node(struct exec *ex, struct tmpl_value dot,
                                         const struct node *chain, size_t nargs,
                                         const struct tmpl_value *final)
{
    at(ex, chain);
    if (chain->chain.n == 0)
        efail(ex, "internal error: no fields in evalChainNode");
    if (chain->chain.node->type == N_NIL)
        efail(ex, "indirection through explicit nil in %s", nstr(ex, chain));
    struct tmpl_value pipe = eval_arg(ex, dot, P_NONE, chain->chain.node);
    return eval_field_chain(ex, dot, pipe, chain, chain->chain.fields,
                            chain->chain.n, nargs, final);
}

static struct tmpl_value
eval_variable_node(struct exec *ex, struct tmpl_value dot, const struct node *v,
                   const struct node_list *args, const struct tmpl_value *final)
{
    at(ex, v);
    struct tmpl_value value = find_var(ex, v->field.idents[0])->value;
    if (v->field.n == 1) {
        not_a_function(ex, args, final);
        return value;
    }
    return eval_field_chain(ex, dot, value, v, v->field.idents + 1,
                            v->field.n - 1, args ? args->n : 0, final);
}

static struct tmpl_value eval_call(struct exec *ex, struct tmpl_value dot,
                                   const struct tmpl_func *fn,
                                   const struct node *node, struct tstr name,
                                   const struct node_list *cmd_args,
                                   const struct tmpl_value *final);

static struct tmpl_value eval_function(struct exec *ex, struct tmpl_value dot,
                                       const struct node *ident,
                                       const struct node *cmd,
                                       const struct node_list *args,
                                       const struct tmpl_value *final)
{
    at(ex, ident);
    const struct tmpl_func *fn = ident->ident.fn;
    if (!fn) {
        char *q = quote(ident->ident.name.s, ident->ident.name.n);
        char msg[300];
        snprintf(msg, sizeof msg, "%s is not a defined function", q);
        free(q);
        efail(ex, "%s", msg);
    }
    return eval_call(ex, dot, fn, cmd, ident->ident.name, args, final);
}

static struct tmpl_value eval_empty_interface(struct exec *ex,
                                              struct tmpl_value dot,
                                              const struct node *n)
{
    at(ex, n);
    switch (n->type) {
    case N_BOOL:
        return tmpl_bool(n->boolean);
    case N_DOT:
        return dot;
    case N_FIELD:
        return eval_field_node(ex, dot, n, 0, NULL);
    case N_IDENTIFIER:
        return eval_function(ex, dot, n, n, NULL, NULL);
    case N_NIL:
        efail(ex, "evalEmptyInterface: nil (can't happen)");
    case N_NUMBER:
        return ideal_constant(ex, n);
    case N_STRING:
        return tmpl_string_ref(n->string.value.s, n->string.value.n);
    case N_VARIABLE:
        return eval_variable_node(ex, dot, n, NULL, NULL);
    case N_PIPE:
        return eval_pipeline(ex, dot, n);
    }
    efail(ex, "can't handle assignment of %s to empty interface argument",
          nstr(ex, n));
}

static struct tmpl_value eval_arg(struct exec *ex, struct tmpl_value dot, int p,
                                  const struct node *n)
{
    at(ex, n);
    switch (n->type) {
    case N_DOT:
        return validate_type(ex, dot, p);
    case N_NIL:
        if (can_be_nil(p))
            return zero_of(p);
        efail(ex, "cannot assign nil to %s", param_name(p));
    case N_FIELD:
        return validate_type(ex, eval_field_node(ex, dot, n, 1, NULL), p);
    case N_VARIABLE:
        return validate_type(ex, eval_variable_node(ex, dot, n, NULL, NULL), p);
    case N_PIPE:
        return validate_type(ex, eval_pipeline(ex, dot, n), p);
    case N_IDENTIFIER:
        return validate_type(ex, eval_function(ex, dot, n, n, NULL, NULL), p);
    case N_CHAIN:
        return validate_type(ex, eval_chain_node(ex, dot, n, 0, NULL), p);
    }
    switch (p) {
    case TMPL_P_INT:
        if (n->type == N_NUMBER && n->number.num.is_int)
            return tmpl_int(n->number.num.i);
        efail(ex, "expected integer; found %s", nstr(ex, n));
    case TMPL_P_ANY:
    case TMPL_P_VALUE:
        return eval_empty_interface(ex, dot, n);
    case TMPL_P_STRING:
        if (n->type == N_STRING)
            return tmpl_string_ref(n->string.value.s, n->string.value.n);
        efail(ex, "expected string; found %s", nstr(ex, n));
    }
    efail(ex, "can't handle %s for arg of type %s", nstr(ex, n), param_name(p));
}

static struct tmpl_value eval_call(struct exec *ex, struct tmpl_value dot,
                                   const struct tmpl_func *fn,
                                   const struct node *node, struct tstr name,
                                   const struct node_list *cmd_args,
                                   const struct tmpl_value *final)
{
    step(ex);
    struct node *const *args = NULL;
    size_t n = 0;
    if (cmd_args) {
        args = cmd_args->items + 1;
        n = cmd_args->n - 1;
    }
    size_t num_in = n + (final ? 1 : 0);
    size_t num_fixed = n;
    if (fn->variadic) {
        num_fixed = (size_t)fn->nparams - 1;
        if (num_in < num_fixed)
            efail(ex, "wrong number of args for %.*s: want at least %d got %zu",
                  (int)name.n, name.s, fn->nparams - 1, n);
    } else if (num_in != fn->nparams) {
        efail(ex, "wrong number of args for %.*s: want %d got %zu", (int)name.n,
              name.s, fn->nparams, num_in);
    }
    if (fn->builtin == B_AND || fn->builtin == B_OR) {
        bool want = fn->builtin == B_OR;
        struct tmpl_value v = tmpl_invalid();
        for (size_t i = 0; i < n; i++) {
            v = eval_arg(ex, dot, TMPL_P_VALUE, args[i]);
            if (tp_value_truth(&v) == want)
                return v;
        }
        if (final)
            v = validate_type(ex, *final, TMPL_P_VALUE);
        return v;
    }
    struct tmpl_value small[8];
    struct tmpl_value *argv =
        num_in <= 8 ? small
                    : tmpl_arena_alloc(ex->arena, num_in * sizeof *argv);
    size_t i = 0;
    for (; i < num_fixed && i < n; i++)
        argv[i] = eval_arg(ex, dot, fn->params[i], args[i]);
    if (fn->variadic) {
        int elem = fn->params[fn->nparams - 1];
        for (; i < n; i++)
            argv[i] = eval_arg(ex, dot, elem, args[i]);
    }
    if (final) {
        int t = fn->params[fn->nparams - 1];
        if (fn->variadic && num_in - 1 < num_fixed)
            t = fn->params[num_in - 1];
        argv[i] = validate_type(ex, *final, t);
    }
    struct tmpl_call call = {.ex = ex, .fn = fn};
    struct tmpl_value out = tmpl_invalid();
    int rc = fn->fn(&call, argv, num_in, &out);
    if (rc != 0 || call.failed) {
        at(ex, node);
        efail(ex, "error calling %.*s: %s", (int)name.n, name.s, call.msg);
    }
    check_budget(ex);
    return out;
}

static struct tmpl_value eval_command(struct exec *ex, struct tmpl_value dot,
                                      const struct node *cmd,
                                      const struct tmpl_value *final)
{
    const struct node *first = cmd->args.items[0];
    switch (first->type) {
    case N_FIELD:
        return eval_field_node(ex, dot, first, cmd->args.n, final);
    case N_CHAIN:
        return eval_chain_node(ex, dot, first, cmd->args.n, final);
    case N_IDENTIFIER:
        return eval_function(ex, dot, first, cmd, &cmd->args, final);
    case N_PIPE:
        not_a_function(ex, &cmd->args, final);
        return eval_pipeline(ex, dot, first);
    case N_VARIABLE:
        return eval_variable_node(ex, dot, first, &cmd->args, final);
    }
    at(ex, first);
    not_a_function(ex, &cmd->args, final);
    switch (first->type) {
    case N_BOOL:
        return tmpl_bool(first->boolean);
    case N_DOT:
        return dot;
    case N_NIL:
        efail(ex, "nil is not a command");
    case N_NUMBER:
        return ideal_constant(ex, first);
    case N_STRING:
        return tmpl_string_ref(first->string.value.s, first->string.value.n);
    }
    efail(ex, "can't evaluate command %s", nstr(ex, first));
}

static struct tmpl_value eval_pipeline(struct exec *ex, struct tmpl_value dot,
                                       const struct node *pipe)
{
    if (!pipe)
        return tmpl_invalid();
    deeper(ex);
    at(ex, pipe);
    struct tmpl_value value = tmpl_invalid();
    bool have = false;
    for (size_t i = 0; i < pipe->pipeline.cmds.n; i++) {
        value = eval_command(ex, dot, pipe->pipeline.cmds.items[i],
                             have ? &value : NULL);
        have = true;
        /* Go digs into an interface{}: its value, or nothing for nil */
        value.iface = 0;
        if (value.kind == TMPL_NIL)
            value = tmpl_invalid();
    }
    for (size_t i = 0; i < pipe->pipeline.decl.n; i++) {
        struct tstr name = pipe->pipeline.decl.items[i]->field.idents[0];
        if (pipe->pipeline.is_assign)
            find_var(ex, name)->value = value;
        else
            push_var(ex, name, value);
    }
    ex->walk_depth--;
    return value;
}

/* ---- walking
 * --------------------------------------------------------------------- */

static int walk(struct exec *ex, struct tmpl_value dot, const struct node *n);

static void print_value(struct exec *ex, const struct node *n,
                        struct tmpl_value v)
{
    at(ex, n);
    if (v.kind == TMPL_INVALID) {
        write_out(ex, "<no value>", 10);
        return;
    }
    if (v.kind == TMPL_STREAM)
        efail(ex, "can't print %s of type %s", nstr(ex, n), tmpl_type_name(&v));
    struct nc_buf *b = &ex->scratch;
    b->len = 0;
    size_t room = ex->lim.max_output - (ex->out->len - ex->out_start);
    if (tp_gofmt_value(b, &v, 'v', room) < 0)
        efail_code(ex, -E2BIG, "the output is larger than %zu bytes",
                   ex->lim.max_output);
    write_out(ex, b->data, b->len);
}

static int walk_if_with(struct exec *ex, int type, struct tmpl_value dot,
                        const struct node *n)
{
    size_t m = mark(ex);
    struct tmpl_value val = eval_pipeline(ex, dot, n->branch.pipe);
    int rc = WALK_OK;
    if (tp_value_truth(&val)) {
        rc = walk(ex, type == N_WITH ? val : dot, n->branch.list);
    } else if (n->branch.else_list) {
        rc = walk(ex, dot, n->branch.else_list);
    }
    pop(ex, m);
    return rc;
}

/* One iteration; true when a {{break}} ends the range. */
static bool one_iteration(struct exec *ex, const struct node *r, size_t m,
                          struct tmpl_value index, struct tmpl_value elem,
                          bool iface)
{
    step(ex);
    elem.iface = iface;
    if (r->branch.pipe->pipeline.decl.n > 0)
        ex->vars[ex->nvars - 1].value = elem;
    if (r->branch.pipe->pipeline.decl.n > 1)
        ex->vars[ex->nvars - 2].value = index;
    int rc = walk(ex, elem, r->branch.list);
    pop(ex, m);
    return rc == WALK_BREAK;
}

static void walk_range(struct exec *ex, struct tmpl_value dot,
                       const struct node *r)
{
    at(ex, r);
    size_t m0 = mark(ex);
    struct tmpl_value val = eval_pipeline(ex, dot, r->branch.pipe);
    size_t m = mark(ex);
    bool ran = false;
    switch (val.kind) {
    case TMPL_LIST:
        for (size_t i = 0; i < val.len; i++) {
            ran = true;
            if (one_iteration(ex, r, m, tmpl_int((int64_t)i), val.items[i],
                              val.sub == TMPL_ELEM_ANY))
                break;
        }
        break;
    case TMPL_MAP:
        for (size_t i = 0; i < val.len; i++) {
            ran = true;
            const struct tmpl_map_entry *e = &val.entries[i];
            if (one_iteration(ex, r, m, tmpl_string_ref(e->key, e->klen),
                              e->value, val.sub == TMPL_ELEM_ANY))
                break;
        }
        break;
    case TMPL_STREAM:
        for (size_t i = 0; i < val.len; i++) {
            ran = true;
            if (one_iteration(ex, r, m, tmpl_int((int64_t)i),
                              tmpl_int64(val.i + (int64_t)i), false))
                break;
        }
        break;
    case TMPL_INVALID:
        break;
    default:
        efail(ex, "range can't iterate over %s", value_string(ex, &val));
    }
    if (!ran && r->branch.else_list)
        walk(ex, dot, r->branch.else_list);
    pop(ex, m0);
}

static void walk_template(struct exec *ex, struct tmpl_value dot,
                          const struct node *n)
{
    at(ex, n);
    const struct tree *tree =
        tmpl_lookup(ex->t, n->tmpl.name.s, n->tmpl.name.n);
    if (!tree) {
        char *q = quote(n->tmpl.name.s, n->tmpl.name.n);
        char msg[300];
        snprintf(msg, sizeof msg, "template %s not defined", q);
        free(q);
        efail(ex, "%s", msg);
    }
    if (ex->depth == ex->lim.max_depth)
        efail(ex, "exceeded maximum template depth (%u)", ex->lim.max_depth);
    dot = eval_pipeline(ex, dot, n->tmpl.pipe);
    const struct tree *saved_tree = ex->tree;
    size_t saved_base = ex->var_base;
    ex->var_base = ex->nvars;
    push_var(ex, TSTR("$"), dot);
    ex->depth++;
    ex->tree = tree;
    walk(ex, dot, tree->root);
    ex->tree = saved_tree;
    ex->depth--;
    ex->nvars = ex->var_base;
    ex->var_base = saved_base;
}

static int walk(struct exec *ex, struct tmpl_value dot, const struct node *n)
{
    step(ex);
    deeper(ex);
    at(ex, n);
    int rc = WALK_OK;
    switch (n->type) {
    case N_ACTION: {
        struct tmpl_value val = eval_pipeline(ex, dot, n->pipe);
        if (n->pipe->pipeline.decl.n == 0)
            print_value(ex, n, val);
        break;
    }
    case N_BREAK:
        rc = WALK_BREAK;
        break;
    case N_CONTINUE:
        rc = WALK_CONTINUE;
        break;
    case N_COMMENT:
        break;
    case N_IF:
    case N_WITH:
        rc = walk_if_with(ex, n->type, dot, n);
        break;
    case N_LIST:
        for (size_t i = 0; i < n->list.n && rc == WALK_OK; i++)
            rc = walk(ex, dot, n->list.items[i]);
        break;
    case N_RANGE:
        walk_range(ex, dot, n);
        break;
    case N_TEMPLATE:
        walk_template(ex, dot, n);
        break;
    case N_TEXT:
        write_out(ex, n->text.s, n->text.n);
        break;
    default:
        efail(ex, "unknown node: %s", nstr(ex, n));
    }
    ex->walk_depth--;
    return rc;
}

int tmpl_render(const struct tmpl *t, const struct tmpl_value *dot,
                const struct tmpl_env *env, struct nc_buf *out,
                struct nc_error *err)
{
    struct exec *ex = xcalloc(1, sizeof *ex);
    ex->t = t;
    ex->out = out;
    ex->out_start = out->len;
    ex->env = env;
    ex->lim = t->limits;
    ex->err = err;
    ex->arena = tmpl_arena_new(4096);
    ex->start_ns = nc_now_mono_ns();
    ex->tree = tmpl_lookup(t, t->name.s, t->name.n);
    if (!out->data)
        nc_buf_append(out, "", 0);
    int rc;
    if (setjmp(ex->jump)) {
        rc = ex->code ? ex->code : -EINVAL;
    } else {
        struct tmpl_value d = dot ? *dot : tmpl_invalid();
        if (!ex->tree || !ex->tree->root) {
            char *q = quote(t->name.s, t->name.n);
            char msg[300];
            snprintf(msg, sizeof msg, "%s is an incomplete or empty template",
                     q);
            free(q);
            ex->tree = &(struct tree){.name = t->name};
            efail(ex, "%s", msg);
        }
        push_var(ex, TSTR("$"), d);
        walk(ex, d, ex->tree->root);
        rc = ex->missing ? TMPL_MISSING : 0;
    }
    free(ex->vars);
    nc_buf_free(&ex->scratch);
    tmpl_arena_free(ex->arena);
    free(ex);
    return rc;
}

/* ---- what functions get
 * ------------------------------------------------------- */

struct tmpl_arena *tmpl_call_arena(struct tmpl_call *c)
{
    return c->ex->arena;
}

int tmpl_call_fail(struct tmpl_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    c->failed = true;
    return -1;
}

int tmpl_call_dep(struct tmpl_call *c, const char *kind,
                  const char *const *args, size_t nargs, struct tmpl_value *out)
{
    *out = tmpl_invalid();
    const struct tmpl_env *env = c->ex->env;
    if (!env || !env->lookup)
        return TMPL_ABSENT;
    struct tmpl_dep dep = {.kind = kind, .args = args, .nargs = nargs};
    char why[512] = "";
    int rc = env->lookup(env->ctx, &dep, c->ex->arena, out, why, sizeof why);
    if (rc == TMPL_MISSING) {
        c->ex->missing++;
        *out = tmpl_invalid();
        return TMPL_MISSING;
    }
    if (rc == TMPL_ABSENT) {
        *out = tmpl_invalid();
        return TMPL_ABSENT;
    }
    if (rc < 0) {
        *out = tmpl_invalid();
        return tmpl_call_fail(c, "%s", why[0] ? why : strerror(-rc));
    }
    return 0;
}

int64_t tmpl_call_now(struct tmpl_call *c)
{
    const struct tmpl_env *env = c->ex->env;
    if (env && env->now_unix_ns)
        return env->now_unix_ns;
    return nc_now_unix_ns();
}

size_t tp_call_room(struct tmpl_call *c)
{
    size_t used = tmpl_arena_used(c->ex->arena);
    return used >= c->ex->lim.max_memory ? 0 : c->ex->lim.max_memory - used;
}

int tmpl_call_reserve(struct tmpl_call *c, size_t bytes)
{
    if (bytes > tp_call_room(c))
        return tmpl_call_fail(c,
                              "the result would pass the render's memory "
                              "limit of %zu bytes",
                              c->ex->lim.max_memory);
    return 0;
}

char *tp_call_cstr(struct tmpl_call *c, const struct tmpl_value *v)
{
    return tp_arena_strdup(c->ex->arena, v->s, v->len);
}
