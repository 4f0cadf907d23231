/* parse.c - the template parser: Go's text/template/parse/parse.go (three
 * tokens of look-ahead, variables checked while parsing, functions looked
 * up in the registry) building the tree of node.go, with Go's messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

struct shared {
    struct tmpl *t;
    struct lexer *lex;
    jmp_buf *jump;
    struct nc_error *err;
    bool break_ok, continue_ok;
};

/* One parse.Tree being parsed: the top one, or a define/block. */
struct parser {
    struct shared *sh;
    struct tree *tree;
    struct item token[3];
    int peek_count;
    struct tstr *vars;
    size_t nvars, capvars;
    int action_line;
    int range_depth;
    unsigned nesting, else_ifs;
};

static void pfail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void pfail(struct parser *p, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct tmpl *t = p->sh->t;
    nc_error_set(p->sh->err, -EINVAL, "template: %.*s:%d: %s", (int)t->name.n,
                 t->name.s, p->token[0].line, msg);
    longjmp(*p->sh->jump, 1);
}

static struct item next(struct parser *p)
{
    if (p->peek_count > 0)
        p->peek_count--;
    else
        p->token[0] = tp_lex_next_item(p->sh->lex);
    return p->token[p->peek_count];
}

static void backup(struct parser *p)
{
    p->peek_count++;
}

static void backup2(struct parser *p, struct item t1)
{
    p->token[1] = t1;
    p->peek_count = 2;
}

static void backup3(struct parser *p, struct item t2, struct item t1)
{
    p->token[1] = t1;
    p->token[2] = t2;
    p->peek_count = 3;
}

static struct item peek(struct parser *p)
{
    if (p->peek_count > 0)
        return p->token[p->peek_count - 1];
    p->peek_count = 1;
    p->token[0] = tp_lex_next_item(p->sh->lex);
    return p->token[0];
}

static struct item next_non_space(struct parser *p)
{
    struct item t;
    do
        t = next(p);
    while (t.type == ITEM_SPACE);
    return t;
}

static struct item peek_non_space(struct parser *p)
{
    struct item t = next_non_space(p);
    backup(p);
    return t;
}

/* item.String(): how Go names a token in "unexpected ..." messages. */
static void item_string(struct nc_buf *b, const struct item *it)
{
    if (it->type == ITEM_EOF) {
        nc_buf_puts(b, "EOF");
    } else if (it->type == ITEM_ERROR) {
        nc_buf_append(b, it->val, it->len);
    } else if (it->type > ITEM_KEYWORD) {
        nc_buf_printf(b, "<%.*s>", (int)it->len, it->val);
    } else if (tp_utf8_count(it->val, it->len) > 10) {
        /* %.10q: the first ten runes, quoted */
        size_t n = 0;
        for (int k = 0; k < 10; k++) {
            size_t w = 1;
            if ((unsigned char)it->val[n] >= 0x80)
                tp_utf8_decode(it->val + n, it->len - n, &w);
            n += w;
        }
        tp_go_quote(b, it->val, n, false);
        nc_buf_puts(b, "...");
    } else {
        tp_go_quote(b, it->val, it->len, false);
    }
}

static void unexpected(struct parser *p, const struct item *it,
                       const char *context) __attribute__((noreturn));
static void unexpected(struct parser *p, const struct item *it,
                       const char *context)
{
    struct nc_buf b = {0};
    if (it->type == ITEM_ERROR) {
        item_string(&b, it);
        if (p->action_line != 0 && p->action_line != it->line) {
            bool action = it->len >= 7 &&
                          memcmp(it->val + it->len - 7, " action", 7) == 0;
            nc_buf_printf(&b, "%s started at %.*s:%d",
                          action ? "" : " in action", (int)p->sh->t->name.n,
                          p->sh->t->name.s, p->action_line);
        }
    } else {
        nc_buf_puts(&b, "unexpected ");
        item_string(&b, it);
        nc_buf_printf(&b, " in %s", context);
    }
    char msg[900];
    snprintf(msg, sizeof msg, "%s", b.data ? b.data : "");
    nc_buf_free(&b);
    pfail(p, "%s", msg);
}

static struct item expect(struct parser *p, int type, const char *context)
{
    struct item t = next_non_space(p);
    if (t.type != type)
        unexpected(p, &t, context);
    return t;
}

static struct item expect_one_of(struct parser *p, int t1, int t2,
                                 const char *context)
{
    struct item t = next_non_space(p);
    if (t.type != t1 && t.type != t2)
        unexpected(p, &t, context);
    return t;
}

/* ---- nodes
 * ------------------------------------------------------------------- */

static struct node *new_node(struct parser *p, int type, size_t pos)
{
    struct node *n = tmpl_arena_alloc(p->sh->t->arena, sizeof *n);
    n->type = (uint8_t)type;
    n->pos = pos;
    return n;
}

static void list_append(struct parser *p, struct node_list *l, struct node *n)
{
    tp_arena_grow(p->sh->t->arena, (void **)&l->items, &l->cap, l->n + 1,
                  sizeof *l->items);
    l->items[l->n++] = n;
}

static struct tstr tdup(struct parser *p, const char *s, size_t n)
{
    return (struct tstr){tp_arena_strdup(p->sh->t->arena, s, n), n};
}

/* Splits "a.b.c" into idents (Go's strings.Split on "."). */
static void split_idents(struct parser *p, struct node *n, const char *s,
                         size_t len)
{
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
        count += s[i] == '.';
    n->field.idents =
        tmpl_arena_alloc(p->sh->t->arena, count * sizeof(struct tstr));
    n->field.n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            n->field.idents[n->field.n++] = (struct tstr){s + start, i - start};
            start = i + 1;
        }
    }
}

static struct node *new_variable(struct parser *p, size_t pos, const char *s,
                                 size_t len)
{
    struct node *n = new_node(p, N_VARIABLE, pos);
    split_idents(p, n, s, len);
    return n;
}

static struct node *new_field(struct parser *p, size_t pos, const char *s,
                              size_t len)
{
    struct node *n = new_node(p, N_FIELD, pos);
    split_idents(p, n, s + 1, len - 1); /* drop the leading period */
    return n;
}

static void push_var(struct parser *p, struct tstr name)
{
    tp_arena_grow(p->sh->t->arena, (void **)&p->vars, &p->capvars, p->nvars + 1,
                  sizeof *p->vars);
    p->vars[p->nvars++] = name;
}

static bool has_function(struct parser *p, const char *name, size_t n,
                         const struct tmpl_func **fn)
{
    const struct tmpl_func *f = NULL;
    if (p->sh->t->funcs)
        f = tmpl_funcs_find(p->sh->t->funcs, name, n);
    if (!f)
        f = tp_builtin_find(name, n);
    if (fn)
        *fn = f;
    return f != NULL;
}

static void nest_in(struct parser *p)
{
    if (++p->nesting > p->sh->t->limits.max_nesting)
        pfail(p, "nesting too deep: more than %u levels",
              p->sh->t->limits.max_nesting);
}

/* ---- numbers ---------------------------------------------------------------
 */

static bool contains_any(const char *s, size_t n, const char *chars)
{
    for (size_t i = 0; i < n; i++)
        if (strchr(chars, s[i]))
            return true;
    return false;
}

static void quoted(struct nc_buf *b, const char *s, size_t n)
{
    tp_go_quote(b, s, n, false);
}

static struct node *new_number(struct parser *p, const struct item *it)
{
    struct node *node = new_node(p, N_NUMBER, it->pos);
    const char *text = it->val;
    size_t len = it->len;
    node->number.text = tdup(p, text, len);
    struct number *n = &node->number.num;
    struct nc_buf q = {0};
    if (it->type == ITEM_CHAR_CONSTANT) {
        uint32_t r;
        bool mb;
        size_t used = tp_go_unquote_char(text + 1, len - 1, text[0], &r, &mb);
        if (used == 0)
            pfail(p, "invalid syntax");
        if (len - 1 - used != 1 || text[len - 1] != '\'')
            pfail(p, "malformed character constant: %.*s", (int)len, text);
        n->i = r;
        n->u = r;
        n->f = r;
        n->is_int = n->is_uint = n->is_float = true;
        return node;
    }
    if (it->type == ITEM_COMPLEX)
        pfail(p, "complex number %.*s is not supported", (int)len, text);
    if (len > 0 && text[len - 1] == 'i') {
        double f;
        if (tp_go_parse_float(text, len - 1, &f) == 0)
            pfail(p, "complex number %.*s is not supported", (int)len, text);
    }
    uint64_t u;
    if (tp_go_parse_uint(text, len, 0, &u) == 0) {
        n->is_uint = true;
        n->u = u;
    }
    int64_t i;
    if (tp_go_parse_int(text, len, 0, &i) == 0) {
        n->is_int = true;
        n->i = i;
        if (i == 0) {
            n->is_uint = true;
            n->u = u;
        }
    }
    if (n->is_int) {
        n->is_float = true;
        n->f = (double)n->i;
    } else if (n->is_uint) {
        n->is_float = true;
        n->f = (double)n->u;
    } else {
        double f;
        if (tp_go_parse_float(text, len, &f) == 0) {
            if (!contains_any(text, len, ".eEpP")) {
                quoted(&q, text, len);
                char msg[300];
                snprintf(msg, sizeof msg, "integer overflow: %s", q.data);
                nc_buf_free(&q);
                pfail(p, "%s", msg);
            }
            n->is_float = true;
            n->f = f;
            if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 &&
                (double)(int64_t)f == f) {
                n->is_int = true;
                n->i = (int64_t)f;
            }
            if (f > -1.0 && f < 18446744073709551616.0 &&
                (double)(uint64_t)f == f) {
                n->is_uint = true;
                n->u = (uint64_t)f;
            }
        }
    }
    if (!n->is_int && !n->is_uint && !n->is_float) {
        quoted(&q, text, len);
        char msg[300];
        snprintf(msg, sizeof msg, "illegal number syntax: %s", q.data);
        nc_buf_free(&q);
        pfail(p, "%s", msg);
    }
    return node;
}

/* ---- the grammar ------------------------------------------------------------
 */

static struct node *pipeline(struct parser *p, const char *context, int end);
static struct node *item_list(struct parser *p, struct node **next_node);
static struct node *if_control(struct parser *p);
static void parse_definition(struct parser *p);

static struct node *use_var(struct parser *p, size_t pos, const char *s,
                            size_t len)
{
    struct node *v = new_variable(p, pos, s, len);
    struct tstr first = v->field.idents[0];
    for (size_t i = 0; i < p->nvars; i++)
        if (tp_tstr_eq(p->vars[i], first.s, first.n))
            return v;
    struct nc_buf q = {0};
    quoted(&q, first.s, first.n);
    char msg[300];
    snprintf(msg, sizeof msg, "undefined variable %s", q.data);
    nc_buf_free(&q);
    pfail(p, "%s", msg);
}

static struct tstr unquote_string(struct parser *p, const struct item *it)
{
    struct nc_buf b = {0};
    if (tp_go_unquote(it->val, it->len, &b) < 0) {
        nc_buf_free(&b);
        pfail(p, "invalid syntax");
    }
    struct tstr s = tdup(p, b.data, b.len);
    nc_buf_free(&b);
    return s;
}

static struct node *term(struct parser *p)
{
    struct item it = next_non_space(p);
    switch (it.type) {
    case ITEM_IDENTIFIER: {
        const struct tmpl_func *fn;
        if (!has_function(p, it.val, it.len, &fn)) {
            struct nc_buf q = {0};
            quoted(&q, it.val, it.len);
            char msg[300];
            snprintf(msg, sizeof msg, "function %s not defined", q.data);
            nc_buf_free(&q);
            pfail(p, "%s", msg);
        }
        struct node *n = new_node(p, N_IDENTIFIER, it.pos);
        n->ident.name = tdup(p, it.val, it.len);
        n->ident.fn = fn;
        return n;
    }
    case ITEM_DOT:
        return new_node(p, N_DOT, it.pos);
    case ITEM_NIL:
        return new_node(p, N_NIL, it.pos);
    case ITEM_VARIABLE:
        return use_var(p, it.pos, it.val, it.len);
    case ITEM_FIELD:
        return new_field(p, it.pos, it.val, it.len);
    case ITEM_BOOL: {
        struct node *n = new_node(p, N_BOOL, it.pos);
        n->boolean = it.len == 4;
        return n;
    }
    case ITEM_CHAR_CONSTANT:
    case ITEM_COMPLEX:
    case ITEM_NUMBER:
        return new_number(p, &it);
    case ITEM_LEFT_PAREN: {
        nest_in(p);
        struct node *n =
            pipeline(p, "parenthesized pipeline", ITEM_RIGHT_PAREN);
        p->nesting--;
        return n;
    }
    case ITEM_STRING:
    case ITEM_RAW_STRING: {
        struct node *n = new_node(p, N_STRING, it.pos);
        n->string.value = unquote_string(p, &it);
        n->string.quoted = tdup(p, it.val, it.len);
        return n;
    }
    }
    backup(p);
    return NULL;
}

static struct node *operand(struct parser *p)
{
    struct node *node = term(p);
    if (!node)
        return NULL;
    if (peek(p).type == ITEM_FIELD) {
        struct node *chain = new_node(p, N_CHAIN, peek(p).pos);
        chain->chain.node = node;
        while (peek(p).type == ITEM_FIELD) {
            struct item f = next(p);
            tp_arena_grow(p->sh->t->arena, (void **)&chain->chain.fields,
                          &chain->chain.cap, chain->chain.n + 1,
                          sizeof(struct tstr));
            chain->chain.fields[chain->chain.n++] =
                tdup(p, f.val + 1, f.len - 1);
        }
        switch (node->type) {
        case N_FIELD:
        case N_VARIABLE: {
            struct nc_buf b = {0};
            tp_node_string(&b, chain);
            size_t pos = chain->pos;
            struct tstr s = tdup(p, b.data, b.len);
            nc_buf_free(&b);
            return node->type == N_FIELD ? new_field(p, pos, s.s, s.n)
                                         : new_variable(p, pos, s.s, s.n);
        }
        case N_BOOL:
        case N_STRING:
        case N_NUMBER:
        case N_NIL:
        case N_DOT: {
            struct nc_buf b = {0}, q = {0};
            tp_node_string(&b, node);
            quoted(&q, b.data, b.len);
            char msg[400];
            snprintf(msg, sizeof msg, "unexpected . after term %s", q.data);
            nc_buf_free(&b);
            nc_buf_free(&q);
            pfail(p, "%s", msg);
        }
        default:
            return chain;
        }
    }
    return node;
}

static struct node *command(struct parser *p)
{
    struct node *cmd = new_node(p, N_COMMAND, peek_non_space(p).pos);
    for (;;) {
        peek_non_space(p);
        struct node *op = operand(p);
        if (op)
            list_append(p, &cmd->args, op);
        struct item t = next(p);
        if (t.type == ITEM_SPACE)
            continue;
        if (t.type == ITEM_RIGHT_DELIM || t.type == ITEM_RIGHT_PAREN)
            backup(p);
        else if (t.type != ITEM_PIPE)
            unexpected(p, &t, "operand");
        break;
    }
    if (cmd->args.n == 0)
        pfail(p, "empty command");
    return cmd;
}

static void check_pipeline(struct parser *p, struct node *pipe,
                           const char *context)
{
    if (pipe->pipeline.cmds.n == 0)
        pfail(p, "missing value for %s", context);
    for (size_t i = 1; i < pipe->pipeline.cmds.n; i++) {
        switch (pipe->pipeline.cmds.items[i]->args.items[0]->type) {
        case N_BOOL:
        case N_DOT:
        case N_NIL:
        case N_NUMBER:
        case N_STRING:
            pfail(p, "non executable command in pipeline stage %zu", i + 1);
        }
    }
}

static struct node *pipeline(struct parser *p, const char *context, int end)
{
    struct item tok = peek_non_space(p);
    struct node *pipe = new_node(p, N_PIPE, tok.pos);
    pipe->line = tok.line;
    bool is_range = strcmp(context, "range") == 0;
decls:;
    struct item v = peek_non_space(p);
    if (v.type == ITEM_VARIABLE) {
        next(p);
        struct item after = peek(p);
        struct item nx = peek_non_space(p);
        if (nx.type == ITEM_ASSIGN || nx.type == ITEM_DECLARE) {
            pipe->pipeline.is_assign = nx.type == ITEM_ASSIGN;
            next_non_space(p);
            list_append(p, &pipe->pipeline.decl,
                        new_variable(p, v.pos, v.val, v.len));
            push_var(p, tdup(p, v.val, v.len));
        } else if (nx.type == ITEM_CHAR && nx.len == 1 && nx.val[0] == ',') {
            next_non_space(p);
            list_append(p, &pipe->pipeline.decl,
                        new_variable(p, v.pos, v.val, v.len));
            push_var(p, tdup(p, v.val, v.len));
            if (is_range && pipe->pipeline.decl.n < 2) {
                int t = peek_non_space(p).type;
                if (t == ITEM_VARIABLE || t == ITEM_RIGHT_DELIM ||
                    t == ITEM_RIGHT_PAREN)
                    goto decls;
                pfail(p, "range can only initialize variables");
            }
            pfail(p, "too many declarations in %s", context);
        } else if (after.type == ITEM_SPACE) {
            backup3(p, v, after);
        } else {
            backup2(p, v);
        }
    }
    for (;;) {
        struct item t = next_non_space(p);
        if (t.type == end) {
            check_pipeline(p, pipe, context);
            return pipe;
        }
        switch (t.type) {
        case ITEM_BOOL:
        case ITEM_CHAR_CONSTANT:
        case ITEM_COMPLEX:
        case ITEM_DOT:
        case ITEM_FIELD:
        case ITEM_IDENTIFIER:
        case ITEM_NUMBER:
        case ITEM_NIL:
        case ITEM_RAW_STRING:
        case ITEM_STRING:
        case ITEM_VARIABLE:
        case ITEM_LEFT_PAREN:
            backup(p);
            list_append(p, &pipe->pipeline.cmds, command(p));
            break;
        default:
            unexpected(p, &t, context);
        }
    }
}

static struct node *parse_control(struct parser *p, bool allow_else_if,
                                  const char *context, int type)
{
    size_t mark = p->nvars;
    nest_in(p);
    struct node *pipe = pipeline(p, context, ITEM_RIGHT_DELIM);
    bool is_range = type == N_RANGE;
    if (is_range)
        p->range_depth++;
    struct node *next_node;
    struct node *list = item_list(p, &next_node);
    if (is_range)
        p->range_depth--;
    struct node *else_list = NULL;
    if (next_node->type == N_ELSE) {
        if (allow_else_if && peek(p).type == ITEM_IF) {
            next(p);
            /* an else-if chain nests too, but is allowed to be long */
            p->nesting--;
            if (++p->else_ifs > 10 * p->sh->t->limits.max_nesting)
                pfail(p, "nesting too deep: more than %u else-if branches",
                      10 * p->sh->t->limits.max_nesting);
            else_list = new_node(p, N_LIST, next_node->pos);
            list_append(p, &else_list->list, if_control(p));
            p->nesting++;
        } else {
            else_list = item_list(p, &next_node);
            if (next_node->type != N_END) {
                struct nc_buf b = {0};
                tp_node_string(&b, next_node);
                char msg[300];
                snprintf(msg, sizeof msg, "expected end; found %s", b.data);
                nc_buf_free(&b);
                pfail(p, "%s", msg);
            }
        }
    }
    p->nesting--;
    p->nvars = mark;
    struct node *n = new_node(p, type, pipe->pos);
    n->line = pipe->line;
    n->branch.pipe = pipe;
    n->branch.list = list;
    n->branch.else_list = else_list;
    return n;
}

static struct node *if_control(struct parser *p)
{
    return parse_control(p, true, "if", N_IF);
}

static struct tstr template_name(struct parser *p, const struct item *it,
                                 const char *context)
{
    if (it->type != ITEM_STRING && it->type != ITEM_RAW_STRING)
        unexpected(p, it, context);
    return unquote_string(p, it);
}

static void tree_add(struct parser *p);

static void parser_init(struct parser *p, struct shared *sh, struct tstr name)
{
    memset(p, 0, sizeof *p);
    p->sh = sh;
    p->tree = tmpl_arena_alloc(sh->t->arena, sizeof *p->tree);
    p->tree->name = name;
    push_var(p, TSTR("$"));
}

static struct node *block_control(struct parser *p)
{
    const char *context = "block clause";
    struct item tok = next_non_space(p);
    struct tstr name = template_name(p, &tok, context);
    struct node *pipe = pipeline(p, context, ITEM_RIGHT_DELIM);

    struct parser block;
    parser_init(&block, p->sh, name);
    block.nesting = p->nesting;
    struct node *end;
    block.tree->root = item_list(&block, &end);
    if (end->type != N_END) {
        struct nc_buf b = {0};
        tp_node_string(&b, end);
        char msg[300];
        snprintf(msg, sizeof msg, "unexpected %s in %s", b.data, context);
        nc_buf_free(&b);
        pfail(p, "%s", msg);
    }
    tree_add(&block);

    struct node *n = new_node(p, N_TEMPLATE, tok.pos);
    n->line = tok.line;
    n->tmpl.name = name;
    n->tmpl.pipe = pipe;
    return n;
}

static struct node *template_control(struct parser *p)
{
    const char *context = "template clause";
    struct item tok = next_non_space(p);
    struct tstr name = template_name(p, &tok, context);
    struct node *pipe = NULL;
    if (next_non_space(p).type != ITEM_RIGHT_DELIM) {
        backup(p);
        pipe = pipeline(p, context, ITEM_RIGHT_DELIM);
    }
    struct node *n = new_node(p, N_TEMPLATE, tok.pos);
    n->line = tok.line;
    n->tmpl.name = name;
    n->tmpl.pipe = pipe;
    return n;
}

static struct node *action(struct parser *p)
{
    struct item tok = next_non_space(p);
    switch (tok.type) {
    case ITEM_BLOCK:
        return block_control(p);
    case ITEM_BREAK:
    case ITEM_CONTINUE: {
        bool brk = tok.type == ITEM_BREAK;
        struct item t = next_non_space(p);
        if (t.type != ITEM_RIGHT_DELIM)
            unexpected(p, &t, brk ? "{{break}}" : "{{continue}}");
        if (p->range_depth == 0)
            pfail(p, "%s outside {{range}}",
                  brk ? "{{break}}" : "{{continue}}");
        struct node *n = new_node(p, brk ? N_BREAK : N_CONTINUE, tok.pos);
        n->line = tok.line;
        return n;
    }
    case ITEM_ELSE: {
        struct item pk = peek_non_space(p);
        if (pk.type == ITEM_IF)
            return new_node(p, N_ELSE, pk.pos);
        struct item t = expect(p, ITEM_RIGHT_DELIM, "else");
        return new_node(p, N_ELSE, t.pos);
    }
    case ITEM_END:
        return new_node(p, N_END, expect(p, ITEM_RIGHT_DELIM, "end").pos);
    case ITEM_IF:
        return if_control(p);
    case ITEM_RANGE:
        return parse_control(p, false, "range", N_RANGE);
    case ITEM_TEMPLATE:
        return template_control(p);
    case ITEM_WITH:
        return parse_control(p, false, "with", N_WITH);
    }
    backup(p);
    struct item t = peek(p);
    struct node *n = new_node(p, N_ACTION, t.pos);
    n->line = t.line;
    n->pipe = pipeline(p, "command", ITEM_RIGHT_DELIM);
    return n;
}

static struct node *text_or_action(struct parser *p)
{
    struct item tok = next_non_space(p);
    switch (tok.type) {
    case ITEM_TEXT: {
        struct node *n = new_node(p, N_TEXT, tok.pos);
        n->text = (struct tstr){tok.val, tok.len}; /* into the kept text */
        return n;
    }
    case ITEM_LEFT_DELIM: {
        p->action_line = tok.line;
        struct node *n = action(p);
        p->action_line = 0;
        return n;
    }
    }
    unexpected(p, &tok, "input");
}

static struct node *item_list(struct parser *p, struct node **next_node)
{
    struct node *list = new_node(p, N_LIST, peek_non_space(p).pos);
    while (peek_non_space(p).type != ITEM_EOF) {
        struct node *n = text_or_action(p);
        if (n->type == N_END || n->type == N_ELSE) {
            *next_node = n;
            return list;
        }
        list_append(p, &list->list, n);
    }
    pfail(p, "unexpected EOF");
}

static void tree_add(struct parser *p)
{
    struct tmpl *t = p->sh->t;
    struct tree **slot = &t->trees;
    for (; *slot; slot = &(*slot)->next) {
        if (tp_tstr_eq((*slot)->name, p->tree->name.s, p->tree->name.n)) {
            if (tp_tree_is_empty((*slot)->root)) {
                p->tree->next = (*slot)->next;
                *slot = p->tree;
                return;
            }
            if (!tp_tree_is_empty(p->tree->root)) {
                struct nc_buf q = {0};
                quoted(&q, p->tree->name.s, p->tree->name.n);
                char msg[300];
                snprintf(msg, sizeof msg,
                         "template: multiple definition of template %s",
                         q.data);
                nc_buf_free(&q);
                pfail(p, "%s", msg);
            }
            return;
        }
    }
    *slot = p->tree;
}

static void parse_definition(struct parser *p)
{
    const char *context = "define clause";
    struct item name = expect_one_of(p, ITEM_STRING, ITEM_RAW_STRING, context);
    p->tree->name = unquote_string(p, &name);
    expect(p, ITEM_RIGHT_DELIM, context);
    struct node *end;
    p->tree->root = item_list(p, &end);
    if (end->type != N_END) {
        struct nc_buf b = {0};
        tp_node_string(&b, end);
        char msg[300];
        snprintf(msg, sizeof msg, "unexpected %s in %s", b.data, context);
        nc_buf_free(&b);
        pfail(p, "%s", msg);
    }
    tree_add(p);
}

static void parse_top(struct parser *p)
{
    p->tree->root = new_node(p, N_LIST, peek(p).pos);
    while (peek(p).type != ITEM_EOF) {
        if (peek(p).type == ITEM_LEFT_DELIM) {
            struct item delim = next(p);
            if (next_non_space(p).type == ITEM_DEFINE) {
                struct parser def;
                parser_init(&def, p->sh, TSTR("definition"));
                parse_definition(&def);
                continue;
            }
            backup2(p, delim);
        }
        struct node *n = text_or_action(p);
        if (n->type == N_END || n->type == N_ELSE) {
            struct nc_buf b = {0};
            tp_node_string(&b, n);
            char msg[300];
            snprintf(msg, sizeof msg, "unexpected %s", b.data);
            nc_buf_free(&b);
            pfail(p, "%s", msg);
        }
        list_append(p, &p->tree->root->list, n);
    }
}

/* ---- IsEmptyTree and Node.String ---------------------------------------- */

static bool is_go_space(const char *s, size_t n, size_t *w)
{
    uint32_t r = tp_utf8_decode(s, n, w);
    return tp_uni_is_space(r);
}

bool tp_tree_is_empty(const struct node *n)
{
    if (!n)
        return true;
    switch (n->type) {
    case N_COMMENT:
        return true;
    case N_LIST:
        for (size_t i = 0; i < n->list.n; i++)
            if (!tp_tree_is_empty(n->list.items[i]))
                return false;
        return true;
    case N_TEXT:
        for (size_t i = 0; i < n->text.n;) {
            size_t w;
            if (!is_go_space(n->text.s + i, n->text.n - i, &w))
                return false;
            i += w;
        }
        return true;
    default:
        return false;
    }
}

static void idents_string(struct nc_buf *b, const struct tstr *id, size_t n,
                          bool leading_dot)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 || leading_dot)
            nc_buf_putc(b, '.');
        nc_buf_append(b, id[i].s, id[i].n);
    }
}

void tp_node_string(struct nc_buf *b, const struct node *n)
{
    if (!b->data)
        nc_buf_append(b, "", 0);
    switch (n->type) {
    case N_TEXT:
        nc_buf_append(b, n->text.s, n->text.n);
        break;
    case N_ACTION:
        nc_buf_puts(b, "{{");
        tp_node_string(b, n->pipe);
        nc_buf_puts(b, "}}");
        break;
    case N_BOOL:
        nc_buf_puts(b, n->boolean ? "true" : "false");
        break;
    case N_CHAIN:
        if (n->chain.node->type == N_PIPE) {
            nc_buf_putc(b, '(');
            tp_node_string(b, n->chain.node);
            nc_buf_putc(b, ')');
        } else {
            tp_node_string(b, n->chain.node);
        }
        idents_string(b, n->chain.fields, n->chain.n, true);
        break;
    case N_COMMAND:
        for (size_t i = 0; i < n->args.n; i++) {
            if (i > 0)
                nc_buf_putc(b, ' ');
            const struct node *a = n->args.items[i];
            if (a->type == N_PIPE) {
                nc_buf_putc(b, '(');
                tp_node_string(b, a);
                nc_buf_putc(b, ')');
            } else {
                tp_node_string(b, a);
            }
        }
        break;
    case N_DOT:
        nc_buf_putc(b, '.');
        break;
    case N_ELSE:
        nc_buf_puts(b, "{{else}}");
        break;
    case N_END:
        nc_buf_puts(b, "{{end}}");
        break;
    case N_FIELD:
        idents_string(b, n->field.idents, n->field.n, true);
        break;
    case N_IDENTIFIER:
        nc_buf_append(b, n->ident.name.s, n->ident.name.n);
        break;
    case N_IF:
    case N_RANGE:
    case N_WITH:
        nc_buf_puts(b, n->type == N_IF      ? "{{if "
                       : n->type == N_RANGE ? "{{range "
                                            : "{{with ");
        tp_node_string(b, n->branch.pipe);
        nc_buf_puts(b, "}}");
        tp_node_string(b, n->branch.list);
        if (n->branch.else_list) {
            nc_buf_puts(b, "{{else}}");
            tp_node_string(b, n->branch.else_list);
        }
        nc_buf_puts(b, "{{end}}");
        break;
    case N_LIST:
        for (size_t i = 0; i < n->list.n; i++)
            tp_node_string(b, n->list.items[i]);
        break;
    case N_NIL:
        nc_buf_puts(b, "nil");
        break;
    case N_NUMBER:
        nc_buf_append(b, n->number.text.s, n->number.text.n);
        break;
    case N_PIPE:
        for (size_t i = 0; i < n->pipeline.decl.n; i++) {
            if (i > 0)
                nc_buf_puts(b, ", ");
            tp_node_string(b, n->pipeline.decl.items[i]);
        }
        if (n->pipeline.decl.n > 0)
            nc_buf_puts(b, " := ");
        for (size_t i = 0; i < n->pipeline.cmds.n; i++) {
            if (i > 0)
                nc_buf_puts(b, " | ");
            tp_node_string(b, n->pipeline.cmds.items[i]);
        }
        break;
    case N_STRING:
        nc_buf_append(b, n->string.quoted.s, n->string.quoted.n);
        break;
    case N_TEMPLATE:
        nc_buf_puts(b, "{{template ");
        tp_go_quote(b, n->tmpl.name.s, n->tmpl.name.n, false);
        if (n->tmpl.pipe) {
            nc_buf_putc(b, ' ');
            tp_node_string(b, n->tmpl.pipe);
        }
        nc_buf_puts(b, "}}");
        break;
    case N_VARIABLE:
        idents_string(b, n->field.idents, n->field.n, false);
        break;
    case N_BREAK:
        nc_buf_puts(b, "{{break}}");
        break;
    case N_CONTINUE:
        nc_buf_puts(b, "{{continue}}");
        break;
    }
}

/* ---- the entry points
 * --------------------------------------------------------- */

const struct tree *tmpl_lookup(const struct tmpl *t, const char *name, size_t n)
{
    for (const struct tree *tr = t->trees; tr; tr = tr->next)
        if (tp_tstr_eq(tr->name, name, n))
            return tr;
    return NULL;
}

static void default_limits(struct tmpl_limits *l)
{
    if (!l->max_output)
        l->max_output = 16u << 20;
    if (!l->max_memory)
        l->max_memory = 64u << 20;
    if (!l->max_steps)
        l->max_steps = 10000000;
    if (!l->max_time_ns)
        l->max_time_ns = 250000000ull;
    if (!l->max_nesting)
        l->max_nesting = 100;
    if (!l->max_depth)
        l->max_depth = 100;
    if (!l->max_text)
        l->max_text = 4u << 20;
}

struct tmpl *tmpl_parse(const char *name, const char *text, size_t len,
                        const struct tmpl_options *o, struct nc_error *err)
{
    struct tmpl_options none = {0};
    if (!o)
        o = &none;
    struct tmpl_limits lim = o->limits;
    default_limits(&lim);
    if (len > lim.max_text) {
        nc_error_set(err, -E2BIG,
                     "template: %s: text of %zu bytes is over the limit of %zu",
                     name, len, lim.max_text);
        return NULL;
    }
    size_t nlen = strlen(name);
    struct tmpl *t = xcalloc(1, sizeof *t);
    t->arena = tmpl_arena_new(1024);
    t->text = xmalloc(len + 1);
    memcpy(t->text, text, len);
    t->text[len] = 0;
    t->len = len;
    t->name = (struct tstr){tp_arena_strdup(t->arena, name, nlen), nlen};
    t->funcs = o->funcs;
    t->missing_key = o->missing_key;
    t->limits = lim;

    struct tstr left = {o->left_delim ? o->left_delim : "",
                        o->left_delim ? strlen(o->left_delim) : 0};
    struct tstr right = {o->right_delim ? o->right_delim : "",
                         o->right_delim ? strlen(o->right_delim) : 0};
    if (left.n)
        left = (struct tstr){tp_arena_strdup(t->arena, left.s, left.n), left.n};
    if (right.n)
        right =
            (struct tstr){tp_arena_strdup(t->arena, right.s, right.n), right.n};

    struct lexer *lex = xmalloc(sizeof *lex);
    jmp_buf jump;
    struct shared sh = {.t = t, .lex = lex, .jump = &jump, .err = err};
    struct parser top;
    parser_init(&top, &sh, t->name);
    sh.break_ok = !has_function(&top, "break", 5, NULL);
    sh.continue_ok = !has_function(&top, "continue", 8, NULL);
    tp_lex_init(lex, t->text, len, left, right, sh.break_ok, sh.continue_ok);
    if (setjmp(jump)) {
        free(lex);
        tmpl_free(t);
        return NULL;
    }
    parse_top(&top);
    tree_add(&top);
    free(lex);
    return t;
}

void tmpl_free(struct tmpl *t)
{
    if (!t)
        return;
    tmpl_arena_free(t->arena);
    free(t->text);
    free(t);
}

size_t tmpl_size(const struct tmpl *t)
{
    return sizeof *t + t->len + 1 + tmpl_arena_used(t->arena);
}
