/* internal.h - what the files of client/template/ share: the lexer's items,
 * the parse tree, the executor's state, Go's fmt and strconv, UTF-8 and the
 * Unicode tables. No other folder includes this; its functions, shared by
 * the folder's files, are named tp_ so they clash with nothing outside. */
#ifndef NOMCLIENT_TEMPLATE_INTERNAL_H
#define NOMCLIENT_TEMPLATE_INTERNAL_H

#include <setjmp.h>
#include <stdarg.h>

#include "client/template/template.h"

/* A string slice: into the template's text or an arena. */
struct tstr {
    const char *s;
    size_t n;
};
#define TSTR(lit) ((struct tstr){lit, sizeof(lit) - 1})
bool tp_tstr_eq(struct tstr a, const char *s, size_t n);

/* ---- arena ------------------------------------------------------------- */

char *tp_arena_strdup(struct tmpl_arena *a, const char *s, size_t n);
/* Grows *arr (elements of `size`) to hold need, in the arena. */
void tp_arena_grow(struct tmpl_arena *a, void **arr, size_t *cap, size_t need,
                   size_t size);
/* Copies b's bytes into the arena and resets b (its buffer kept). */
struct tmpl_value tp_arena_take_buf(struct tmpl_arena *a, struct nc_buf *b);

/* ---- UTF-8 and Unicode (Go's unicode package tables) ----------------- */

#define RUNE_ERROR 0xFFFDu
#define RUNE_MAX 0x10FFFFu
/* Decodes one rune as Go's utf8.DecodeRuneInString: RUNE_ERROR width 1 on
 * invalid input; n > 0. */
uint32_t tp_utf8_decode(const char *s, size_t n, size_t *width);
/* Decodes the last rune before s+n (utf8.DecodeLastRuneInString). */
uint32_t tp_utf8_decode_last(const char *s, size_t n, size_t *width);
size_t tp_utf8_encode(char out[4], uint32_t r); /* invalid runes as U+FFFD */
size_t tp_utf8_count(const char *s, size_t n);  /* utf8.RuneCountInString */
bool tp_utf8_valid(const char *s, size_t n);
bool tp_uni_is_print(uint32_t r);
bool tp_uni_is_letter(uint32_t r);
bool tp_uni_is_digit(uint32_t r);
bool tp_uni_is_space(uint32_t r);
uint32_t tp_uni_to_upper(uint32_t r);
uint32_t tp_uni_to_lower(uint32_t r);
uint32_t tp_uni_to_title(uint32_t r);
uint32_t tp_uni_simple_fold(uint32_t r);

/* ---- strconv ------------------------------------------------------------- */

/* strconv.Quote (quote '"'), QuoteRune ('\''), the ASCII-only forms. */
void tp_go_quote(struct nc_buf *b, const char *s, size_t n, bool ascii_only);
void tp_go_quote_rune(struct nc_buf *b, uint32_t r, bool ascii_only);
bool tp_go_can_backquote(const char *s, size_t n);
/* strconv.Unquote of a "..." `...` or '...' literal into out: 0 or -EINVAL. */
int tp_go_unquote(const char *s, size_t n, struct nc_buf *out);
/* strconv.UnquoteChar: one (possibly escaped) character of s; returns the
 * bytes consumed or 0 on a syntax error. */
size_t tp_go_unquote_char(const char *s, size_t n, char quote, uint32_t *r,
                          bool *multibyte);
/* strconv.ParseInt/ParseUint (base 0 or 2..36, 64 bits): 0, -EINVAL
 * (syntax) or -ERANGE. */
int tp_go_parse_int(const char *s, size_t n, int base, int64_t *out);
int tp_go_parse_uint(const char *s, size_t n, int base, uint64_t *out);
/* strconv.ParseFloat(s, 64): 0, -EINVAL or -ERANGE (out is +-Inf or 0). */
int tp_go_parse_float(const char *s, size_t n, double *out);
/* strconv.AppendFloat(f, fmt, prec, 64) for fmt in b e E f g G x X. */
void tp_go_format_float(struct nc_buf *b, double f, char fmt, int prec);
/* strconv.ParseBool. */
int tp_go_parse_bool(const char *s, size_t n, bool *out);

/* ---- fmt -------------------------------------------------------------------
 */

/* Go's fmt on template values. Arguments are interface{} values (TMPL_NIL
 * or TMPL_INVALID is Go's nil interface). `limit` bounds what one call may
 * append; past it the call stops and returns -1. */
int tp_gofmt_sprint(struct nc_buf *out, const struct tmpl_value *args, size_t n,
                    size_t limit);
int tp_gofmt_sprintln(struct nc_buf *out, const struct tmpl_value *args,
                      size_t n, size_t limit);
int tp_gofmt_sprintf(struct nc_buf *out, const char *format, size_t flen,
                     const struct tmpl_value *args, size_t n, size_t limit);
/* fmt's %v of one value (a reflect.Value: no value is <invalid reflect.Value>).
 */
int tp_gofmt_value(struct nc_buf *out, const struct tmpl_value *v, int verb,
                   size_t limit);

/* ---- JSON (encoding/json's output and messages) ---------------------- */

/* json.Marshal (indent NULL) or json.MarshalIndent(v, "", indent); 0, or -1
 * with why set (Go's message, without the "toJSON: " prefix). */
int tp_json_encode(struct nc_buf *out, struct tmpl_arena *a,
                   const struct tmpl_value *v, const char *indent, size_t limit,
                   char *why, size_t whylen);

/* ---- regexp (Go's RE2 syntax, linear-time matching) ------------------- */

struct regex;
/* Compiles; NULL with why set to Go's "error parsing regexp: ..." text. */
struct regex *tp_regex_compile(const char *pattern, size_t n, char *why,
                               size_t whylen);
void tp_regex_free(struct regex *re);
/* Instructions of the program: matching costs about this per input byte. */
size_t tp_regex_size(const struct regex *re);
bool tp_regex_match(const struct regex *re, const char *s, size_t n);
/* regexp.ReplaceAllString(s, repl) with $1 / ${name} expansion. Returns 0
 * or -1 when the result would pass `limit` bytes. */
int tp_regex_replace_all(const struct regex *re, const char *s, size_t n,
                         const char *repl, size_t rn, struct nc_buf *out,
                         size_t limit);

/* ---- time (Go's Time.Format in UTC) --------------------------------- */

void tp_go_time_format(struct nc_buf *out, int64_t unix_ns, const char *layout,
                       size_t n);

/* ---- hashes ------------------------------------------------------------- */

void tp_md5_hex(const void *data, size_t len, char out[33]);

/* ---- lexer (text/template/parse/lex.go) ------------------------------- */

enum item_type {
    ITEM_ERROR,
    ITEM_BOOL,
    ITEM_CHAR,
    ITEM_CHAR_CONSTANT,
    ITEM_COMMENT,
    ITEM_COMPLEX,
    ITEM_ASSIGN,
    ITEM_DECLARE,
    ITEM_EOF,
    ITEM_FIELD,
    ITEM_IDENTIFIER,
    ITEM_LEFT_DELIM,
    ITEM_LEFT_PAREN,
    ITEM_NUMBER,
    ITEM_PIPE,
    ITEM_RAW_STRING,
    ITEM_RIGHT_DELIM,
    ITEM_RIGHT_PAREN,
    ITEM_SPACE,
    ITEM_STRING,
    ITEM_TEXT,
    ITEM_VARIABLE,
    ITEM_KEYWORD, /* only a divider */
    ITEM_BLOCK,
    ITEM_BREAK,
    ITEM_CONTINUE,
    ITEM_DOT,
    ITEM_DEFINE,
    ITEM_ELSE,
    ITEM_END,
    ITEM_IF,
    ITEM_NIL,
    ITEM_RANGE,
    ITEM_TEMPLATE,
    ITEM_WITH,
};

struct item {
    int type;
    size_t pos;
    const char *val; /* into the text, or the error message (lexer-owned) */
    size_t len;
    int line;
};

struct lexer {
    const char *input;
    size_t len;
    struct tstr left, right;
    bool break_ok, continue_ok;
    size_t pos, start;
    bool at_eof;
    int paren_depth;
    int line, start_line;
    int state; /* the next state function; 0 when done */
    struct item queue[4];
    int qhead, qlen;
    char errbuf[256];
};

void tp_lex_init(struct lexer *l, const char *input, size_t len,
                 struct tstr left, struct tstr right, bool break_ok,
                 bool continue_ok);
struct item tp_lex_next_item(struct lexer *l);

/* ---- parse tree (text/template/parse/node.go) ------------------------- */

enum node_type {
    N_TEXT,
    N_ACTION,
    N_BOOL,
    N_CHAIN,
    N_COMMAND,
    N_DOT,
    N_ELSE, /* parse only */
    N_END,  /* parse only */
    N_FIELD,
    N_IDENTIFIER,
    N_IF,
    N_LIST,
    N_NIL,
    N_NUMBER,
    N_PIPE,
    N_RANGE,
    N_STRING,
    N_TEMPLATE,
    N_VARIABLE,
    N_WITH,
    N_COMMENT,
    N_BREAK,
    N_CONTINUE,
};

struct node;

struct node_list {
    struct node **items;
    size_t n, cap;
};

struct number {
    bool is_int, is_uint, is_float, is_complex;
    int64_t i;
    uint64_t u;
    double f;
};

struct node {
    uint8_t type;
    size_t pos;
    int line;
    union {
        struct tstr text;      /* N_TEXT */
        struct node *pipe;     /* N_ACTION */
        bool boolean;          /* N_BOOL */
        struct node_list list; /* N_LIST */
        struct {               /* N_IF, N_RANGE, N_WITH */
            struct node *pipe, *list, *else_list;
        } branch;
        struct { /* N_TEMPLATE */
            struct tstr name;
            struct node *pipe;
        } tmpl;
        struct { /* N_PIPE */
            bool is_assign;
            struct node_list decl; /* N_VARIABLE nodes */
            struct node_list cmds; /* N_COMMAND nodes */
        } pipeline;
        struct node_list args; /* N_COMMAND */
        struct {               /* N_IDENTIFIER */
            struct tstr name;
            const struct tmpl_func *fn;
        } ident;
        struct { /* N_NUMBER */
            struct tstr text;
            struct number num;
        } number;
        struct { /* N_STRING */
            struct tstr quoted, value;
        } string;
        struct { /* N_FIELD (no dots), N_VARIABLE ($x first) */
            struct tstr *idents;
            size_t n;
        } field;
        struct { /* N_CHAIN */
            struct node *node;
            struct tstr *fields;
            size_t n, cap;
        } chain;
    };
};

struct tree {
    struct tstr name;
    struct node *root; /* N_LIST */
    struct tree *next;
};

struct tmpl {
    struct tmpl_arena *arena;
    char *text; /* owned copy */
    size_t len;
    struct tstr name;
    struct tree *trees; /* the top one and every {{define}} */
    const struct tmpl_funcs *funcs;
    enum tmpl_missing_key missing_key;
    struct tmpl_limits limits;
};

const struct tree *tmpl_lookup(const struct tmpl *t, const char *name,
                               size_t n);
/* Go's Node.String() of a node, appended. */
void tp_node_string(struct nc_buf *b, const struct node *n);
bool tp_tree_is_empty(const struct node *n);

/* The builtin functions (funcs_builtin.c). */
enum builtin_id {
    B_NONE,
    B_AND,
    B_OR,
    B_OTHER,
};
const struct tmpl_func *tp_builtin_find(const char *name, size_t n);

/* ---- exec -----------------------------------------------------------------
 */

struct var {
    struct tstr name;
    struct tmpl_value value;
};

struct exec {
    const struct tmpl *t;
    const struct tree *tree; /* the template being executed */
    struct nc_buf *out;
    size_t out_start;
    const struct node *node; /* for errors: where we are */
    struct var *vars;
    size_t nvars, capvars, var_base;
    unsigned depth, walk_depth;
    struct tmpl_arena *arena;
    const struct tmpl_env *env;
    struct tmpl_limits lim;
    uint64_t steps;
    uint64_t start_ns;
    int missing;
    struct nc_error *err;
    int code;
    jmp_buf jump;
    struct nc_buf scratch;
};

struct tmpl_call {
    struct exec *ex;
    const struct tmpl_func *fn;
    char msg[768];
    bool failed;
};

/* Common helpers for functions. */
bool tp_value_truth(const struct tmpl_value *v);
/* A string argument's bytes as a NUL-terminated copy in the arena. */
char *tp_call_cstr(struct tmpl_call *c, const struct tmpl_value *v);
/* Output room left before the memory budget. */
size_t tp_call_room(struct tmpl_call *c);

#endif
