/* lex.c - the template lexer: Go's text/template/parse/lex.go state
 * machine, pulled one item at a time instead of through a channel, so the
 * items, their positions, their lines and the error texts are Go's. */
#include <stdio.h>
#include <string.h>

#include "client/template/internal.h"

#define EOF_RUNE ((uint32_t)-1)

enum {
    S_DONE,
    S_TEXT,
    S_LEFT_DELIM,
    S_COMMENT,
    S_RIGHT_DELIM,
    S_INSIDE_ACTION,
    S_SPACE,
    S_IDENTIFIER,
    S_FIELD,
    S_VARIABLE,
    S_CHAR,
    S_NUMBER,
    S_QUOTE,
    S_RAW_QUOTE,
};

static bool is_space(uint32_t r)
{
    return r == ' ' || r == '\t' || r == '\r' || r == '\n';
}

static bool is_alnum(uint32_t r)
{
    return r == '_' ||
           (r != EOF_RUNE && (tp_uni_is_letter(r) || tp_uni_is_digit(r)));
}

static bool has_prefix(const char *s, size_t n, struct tstr p)
{
    return n >= p.n && memcmp(s, p.s, p.n) == 0;
}

static bool has_left_trim(const char *s, size_t n)
{
    return n >= 2 && s[0] == '-' && is_space((unsigned char)s[1]);
}

static bool has_right_trim(const char *s, size_t n)
{
    return n >= 2 && is_space((unsigned char)s[0]) && s[1] == '-';
}

void tp_lex_init(struct lexer *l, const char *input, size_t len,
                 struct tstr left, struct tstr right, bool break_ok,
                 bool continue_ok)
{
    memset(l, 0, sizeof *l);
    l->input = input;
    l->len = len;
    l->left = left.n ? left : TSTR("{{");
    l->right = right.n ? right : TSTR("}}");
    l->break_ok = break_ok;
    l->continue_ok = continue_ok;
    l->line = l->start_line = 1;
    l->state = S_TEXT;
}

static uint32_t next(struct lexer *l)
{
    if (l->pos >= l->len) {
        l->at_eof = true;
        return EOF_RUNE;
    }
    size_t w = 1;
    uint32_t r = (unsigned char)l->input[l->pos];
    if (r >= 0x80)
        r = tp_utf8_decode(l->input + l->pos, l->len - l->pos, &w);
    l->pos += w;
    if (r == '\n')
        l->line++;
    return r;
}

static void backup(struct lexer *l)
{
    if (!l->at_eof && l->pos > 0) {
        size_t w;
        uint32_t r = tp_utf8_decode_last(l->input, l->pos, &w);
        l->pos -= w;
        if (r == '\n')
            l->line--;
    }
}

static uint32_t peek(struct lexer *l)
{
    uint32_t r = next(l);
    backup(l);
    return r;
}

static void emit(struct lexer *l, int type)
{
    struct item *it = &l->queue[(l->qhead + l->qlen++) % 4];
    it->type = type;
    it->pos = l->start;
    it->val = l->input + l->start;
    it->len = l->pos - l->start;
    it->line = l->start_line;
    l->start = l->pos;
    l->start_line = l->line;
}

static int count_newlines(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += s[i] == '\n';
    return c;
}

static void ignore(struct lexer *l)
{
    l->line += count_newlines(l->input + l->start, l->pos - l->start);
    l->start = l->pos;
    l->start_line = l->line;
}

static bool accept(struct lexer *l, const char *valid)
{
    uint32_t r = next(l);
    if (r != EOF_RUNE && r != 0 && r < 0x80 && strchr(valid, (int)r))
        return true;
    backup(l);
    return false;
}

static void accept_run(struct lexer *l, const char *valid)
{
    for (;;) {
        uint32_t r = next(l);
        if (!(r != EOF_RUNE && r != 0 && r < 0x80 && strchr(valid, (int)r)))
            break;
    }
    backup(l);
}

static int errorf(struct lexer *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int errorf(struct lexer *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errbuf, sizeof l->errbuf, fmt, ap);
    va_end(ap);
    struct item *it = &l->queue[(l->qhead + l->qlen++) % 4];
    it->type = ITEM_ERROR;
    it->pos = l->start;
    it->val = l->errbuf;
    it->len = strlen(l->errbuf);
    it->line = l->start_line;
    return S_DONE;
}

/* %#U of a rune: "U+0041 'A'" */
static const char *rune_u(char out[32], uint32_t r)
{
    char enc[5] = {0};
    if (r <= RUNE_MAX && tp_uni_is_print(r)) {
        enc[tp_utf8_encode(enc, r)] = 0;
        snprintf(out, 32, "U+%04X '%s'", r, enc);
    } else if (r == EOF_RUNE) {
        snprintf(out, 32, "U+FFFFFFFFFFFFFFFF");
    } else {
        snprintf(out, 32, "U+%04X", r);
    }
    return out;
}

static size_t right_trim_length(const char *s, size_t n)
{
    size_t k = n;
    while (k > 0 && is_space((unsigned char)s[k - 1]))
        k--;
    return n - k;
}

static size_t left_trim_length(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && is_space((unsigned char)s[k]))
        k++;
    return k;
}

static const char *find(const char *hay, size_t n, struct tstr needle)
{
    if (needle.n == 0 || n < needle.n)
        return NULL;
    return memmem(hay, n, needle.s, needle.n);
}

static int lex_text(struct lexer *l)
{
    const char *rest = l->input + l->pos;
    const char *x = find(rest, l->len - l->pos, l->left);
    if (x) {
        size_t ldn = l->left.n;
        l->pos += (size_t)(x - rest);
        size_t trim = 0;
        if (has_left_trim(l->input + l->pos + ldn, l->len - l->pos - ldn))
            trim = right_trim_length(l->input + l->start, l->pos - l->start);
        l->pos -= trim;
        if (l->pos > l->start) {
            l->line += count_newlines(l->input + l->start, l->pos - l->start);
            emit(l, ITEM_TEXT);
        }
        l->pos += trim;
        ignore(l);
        return S_LEFT_DELIM;
    }
    l->pos = l->len;
    if (l->pos > l->start) {
        l->line += count_newlines(l->input + l->start, l->pos - l->start);
        emit(l, ITEM_TEXT);
    }
    emit(l, ITEM_EOF);
    return S_DONE;
}

/* Whether we are at the right delimiter, perhaps after a trim marker. */
static bool at_right_delim(struct lexer *l, bool *trim)
{
    const char *s = l->input + l->pos;
    size_t n = l->len - l->pos;
    *trim = false;
    if (has_right_trim(s, n) && has_prefix(s + 2, n - 2, l->right)) {
        *trim = true;
        return true;
    }
    return has_prefix(s, n, l->right);
}

static int lex_left_delim(struct lexer *l)
{
    l->pos += l->left.n;
    bool trim = has_left_trim(l->input + l->pos, l->len - l->pos);
    size_t after = trim ? 2 : 0;
    if (has_prefix(l->input + l->pos + after, l->len - l->pos - after,
                   TSTR("/*"))) {
        l->pos += after;
        ignore(l);
        return S_COMMENT;
    }
    emit(l, ITEM_LEFT_DELIM);
    l->pos += after;
    ignore(l);
    l->paren_depth = 0;
    return S_INSIDE_ACTION;
}

static int lex_comment(struct lexer *l)
{
    l->pos += 2;
    const char *rest = l->input + l->pos;
    const char *end = find(rest, l->len - l->pos, TSTR("*/"));
    if (!end)
        return errorf(l, "unclosed comment");
    l->pos += (size_t)(end - rest) + 2;
    bool trim;
    if (!at_right_delim(l, &trim))
        return errorf(l, "comment ends before closing delimiter");
    if (trim)
        l->pos += 2;
    l->pos += l->right.n;
    if (trim)
        l->pos += left_trim_length(l->input + l->pos, l->len - l->pos);
    ignore(l);
    return S_TEXT;
}

static int lex_right_delim(struct lexer *l)
{
    bool trim = has_right_trim(l->input + l->pos, l->len - l->pos);
    if (trim) {
        l->pos += 2;
        ignore(l);
    }
    l->pos += l->right.n;
    emit(l, ITEM_RIGHT_DELIM);
    if (trim) {
        l->pos += left_trim_length(l->input + l->pos, l->len - l->pos);
        ignore(l);
    }
    return S_TEXT;
}

static int lex_inside_action(struct lexer *l)
{
    bool trim;
    if (at_right_delim(l, &trim)) {
        if (l->paren_depth == 0)
            return S_RIGHT_DELIM;
        return errorf(l, "unclosed left paren");
    }
    uint32_t r = next(l);
    char u[32];
    if (r == EOF_RUNE)
        return errorf(l, "unclosed action");
    if (is_space(r)) {
        backup(l);
        return S_SPACE;
    }
    switch (r) {
    case '=':
        emit(l, ITEM_ASSIGN);
        return S_INSIDE_ACTION;
    case ':':
        if (next(l) != '=')
            return errorf(l, "expected :=");
        emit(l, ITEM_DECLARE);
        return S_INSIDE_ACTION;
    case '|':
        emit(l, ITEM_PIPE);
        return S_INSIDE_ACTION;
    case '"':
        return S_QUOTE;
    case '`':
        return S_RAW_QUOTE;
    case '$':
        return S_VARIABLE;
    case '\'':
        return S_CHAR;
    case '.':
        if (l->pos < l->len) {
            char c = l->input[l->pos];
            if (c < '0' || c > '9')
                return S_FIELD;
        }
        backup(l);
        return S_NUMBER;
    case '(':
        emit(l, ITEM_LEFT_PAREN);
        l->paren_depth++;
        return S_INSIDE_ACTION;
    case ')':
        emit(l, ITEM_RIGHT_PAREN);
        l->paren_depth--;
        if (l->paren_depth < 0)
            return errorf(l, "unexpected right paren %s", rune_u(u, r));
        return S_INSIDE_ACTION;
    }
    if (r == '+' || r == '-' || (r >= '0' && r <= '9')) {
        backup(l);
        return S_NUMBER;
    }
    if (is_alnum(r)) {
        backup(l);
        return S_IDENTIFIER;
    }
    if (r < 0x80 && tp_uni_is_print(r)) {
        emit(l, ITEM_CHAR);
        return S_INSIDE_ACTION;
    }
    return errorf(l, "unrecognized character in action: %s", rune_u(u, r));
}

static int lex_space(struct lexer *l)
{
    int spaces = 0;
    for (;;) {
        uint32_t r = peek(l);
        if (!is_space(r))
            break;
        next(l);
        spaces++;
    }
    const char *s = l->input + l->pos - 1;
    size_t n = l->len - l->pos + 1;
    if (has_right_trim(s, n) && has_prefix(s + 2, n - 2, l->right)) {
        backup(l);
        if (spaces == 1)
            return S_RIGHT_DELIM;
    }
    emit(l, ITEM_SPACE);
    return S_INSIDE_ACTION;
}

static bool at_terminator(struct lexer *l)
{
    uint32_t r = peek(l);
    if (is_space(r))
        return true;
    switch (r) {
    case EOF_RUNE:
    case '.':
    case ',':
    case '|':
    case ':':
    case ')':
    case '(':
        return true;
    }
    return has_prefix(l->input + l->pos, l->len - l->pos, l->right);
}

static const struct {
    const char *word;
    int type;
} keywords[] = {
    {".", ITEM_DOT},
    {"block", ITEM_BLOCK},
    {"break", ITEM_BREAK},
    {"continue", ITEM_CONTINUE},
    {"define", ITEM_DEFINE},
    {"else", ITEM_ELSE},
    {"end", ITEM_END},
    {"if", ITEM_IF},
    {"range", ITEM_RANGE},
    {"nil", ITEM_NIL},
    {"template", ITEM_TEMPLATE},
    {"with", ITEM_WITH},
};

static int lex_identifier(struct lexer *l)
{
    for (;;) {
        uint32_t r = next(l);
        if (is_alnum(r))
            continue;
        backup(l);
        const char *word = l->input + l->start;
        size_t n = l->pos - l->start;
        char u[32];
        if (!at_terminator(l))
            return errorf(l, "bad character %s", rune_u(u, r));
        for (size_t i = 0; i < NC_ARRAY_LEN(keywords); i++) {
            if (strlen(keywords[i].word) == n &&
                memcmp(keywords[i].word, word, n) == 0) {
                int t = keywords[i].type;
                if ((t == ITEM_BREAK && !l->break_ok) ||
                    (t == ITEM_CONTINUE && !l->continue_ok))
                    emit(l, ITEM_IDENTIFIER);
                else
                    emit(l, t);
                return S_INSIDE_ACTION;
            }
        }
        if (word[0] == '.')
            emit(l, ITEM_FIELD);
        else if ((n == 4 && memcmp(word, "true", 4) == 0) ||
                 (n == 5 && memcmp(word, "false", 5) == 0))
            emit(l, ITEM_BOOL);
        else
            emit(l, ITEM_IDENTIFIER);
        return S_INSIDE_ACTION;
    }
}

static int lex_field_or_variable(struct lexer *l, int type)
{
    if (at_terminator(l)) {
        emit(l, type == ITEM_VARIABLE ? ITEM_VARIABLE : ITEM_DOT);
        return S_INSIDE_ACTION;
    }
    uint32_t r;
    for (;;) {
        r = next(l);
        if (!is_alnum(r)) {
            backup(l);
            break;
        }
    }
    char u[32];
    if (!at_terminator(l))
        return errorf(l, "bad character %s", rune_u(u, r));
    emit(l, type);
    return S_INSIDE_ACTION;
}

static int lex_variable(struct lexer *l)
{
    if (at_terminator(l)) {
        emit(l, ITEM_VARIABLE);
        return S_INSIDE_ACTION;
    }
    return lex_field_or_variable(l, ITEM_VARIABLE);
}

static int lex_quoted(struct lexer *l, char quote, int type, const char *what)
{
    for (;;) {
        uint32_t r = next(l);
        if (r == '\\') {
            r = next(l);
            if (r != EOF_RUNE && r != '\n')
                continue;
            return errorf(l, "unterminated %s", what);
        }
        if (r == EOF_RUNE || r == '\n')
            return errorf(l, "unterminated %s", what);
        if (r == (uint32_t)quote)
            break;
    }
    emit(l, type);
    return S_INSIDE_ACTION;
}

static bool scan_number(struct lexer *l)
{
    accept(l, "+-");
    const char *digits = "0123456789_";
    if (accept(l, "0")) {
        if (accept(l, "xX"))
            digits = "0123456789abcdefABCDEF_";
        else if (accept(l, "oO"))
            digits = "01234567_";
        else if (accept(l, "bB"))
            digits = "01_";
    }
    accept_run(l, digits);
    if (accept(l, "."))
        accept_run(l, digits);
    size_t nd = strlen(digits);
    if (nd == 10 + 1 && accept(l, "eE")) {
        accept(l, "+-");
        accept_run(l, "0123456789_");
    }
    if (nd == 16 + 6 + 1 && accept(l, "pP")) {
        accept(l, "+-");
        accept_run(l, "0123456789_");
    }
    accept(l, "i");
    if (is_alnum(peek(l))) {
        next(l);
        return false;
    }
    return true;
}

static int bad_number(struct lexer *l)
{
    struct nc_buf q = {0};
    tp_go_quote(&q, l->input + l->start, l->pos - l->start, false);
    int s = errorf(l, "bad number syntax: %.200s", q.data);
    nc_buf_free(&q);
    return s;
}

static int lex_number(struct lexer *l)
{
    if (!scan_number(l))
        return bad_number(l);
    uint32_t sign = peek(l);
    if (sign == '+' || sign == '-') {
        if (!scan_number(l) || l->input[l->pos - 1] != 'i')
            return bad_number(l);
        emit(l, ITEM_COMPLEX);
    } else {
        emit(l, ITEM_NUMBER);
    }
    return S_INSIDE_ACTION;
}

struct item tp_lex_next_item(struct lexer *l)
{
    while (l->qlen == 0) {
        switch (l->state) {
        case S_DONE: {
            struct item none = {.type = ITEM_ERROR, .val = "", .len = 0};
            return none;
        }
        case S_TEXT:
            l->state = lex_text(l);
            break;
        case S_LEFT_DELIM:
            l->state = lex_left_delim(l);
            break;
        case S_COMMENT:
            l->state = lex_comment(l);
            break;
        case S_RIGHT_DELIM:
            l->state = lex_right_delim(l);
            break;
        case S_INSIDE_ACTION:
            l->state = lex_inside_action(l);
            break;
        case S_SPACE:
            l->state = lex_space(l);
            break;
        case S_IDENTIFIER:
            l->state = lex_identifier(l);
            break;
        case S_FIELD:
            l->state = lex_field_or_variable(l, ITEM_FIELD);
            break;
        case S_VARIABLE:
            l->state = lex_variable(l);
            break;
        case S_CHAR:
            l->state =
                lex_quoted(l, '\'', ITEM_CHAR_CONSTANT, "character constant");
            break;
        case S_NUMBER:
            l->state = lex_number(l);
            break;
        case S_QUOTE:
            l->state = lex_quoted(l, '"', ITEM_STRING, "quoted string");
            break;
        case S_RAW_QUOTE: {
            for (;;) {
                uint32_t r = next(l);
                if (r == EOF_RUNE) {
                    l->state = errorf(l, "unterminated raw quoted string");
                    break;
                }
                if (r == '`') {
                    emit(l, ITEM_RAW_STRING);
                    l->state = S_INSIDE_ACTION;
                    break;
                }
            }
            break;
        }
        }
    }
    struct item it = l->queue[l->qhead];
    l->qhead = (l->qhead + 1) % 4;
    l->qlen--;
    return it;
}
