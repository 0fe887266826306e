/*
 * policy.c — the policy gate of orchestrate.h: rules parsed once into expression trees by a
 * small recursive-descent parser, evaluated against a JSON context, highest priority first.
 *
 * Grammar:  expr := and ("or" and)*      and := unary ("and" unary)*
 *           unary := "not" unary | "(" expr ")" | cmp
 *           cmp := path op value | path "in" "[" value ("," value)* "]"
 *           op := == != < <= > >= ~        value := "string" | number | true | false | null
 *           path := name ("." name)*       (root: playbook, incident, actor, time)
 */
#include "orchestrate/orchestrate.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

typedef enum { N_OR, N_AND, N_NOT, N_CMP, N_IN } node_kind;
typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_GLOB } cmp_op;

typedef struct node {
    node_kind kind;
    struct node *a, *b; /* children (OR/AND: both, NOT: a) */
    char path[128];     /* CMP/IN */
    cmp_op op;
    json_t *value;      /* CMP: a scalar; IN: an array */
} node;

typedef struct rule {
    char name[64];
    int64_t priority;
    nops_policy_action action;
    nops_escalation escalation;
    node *when;
    char reason[256];   /* the rule's "reason", or "rule NAME matched: WHEN" */
} rule;

struct nops_policy {
    rule *rules;
    size_t n;
};

static const char *action_names[] = {"allow", "deny", "require_approval", "escalate", "log"};
static const char *esc_names[] = {"none", "info", "warning", "critical", "emergency"};

const char *nops_policy_action_name(nops_policy_action a)
{
    return (unsigned)a < 5 ? action_names[a] : "unknown";
}

const char *nops_escalation_name(nops_escalation e)
{
    return (unsigned)e < 5 ? esc_names[e] : "unknown";
}

static void node_free(node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    json_decref(n->value);
    nops_free(n);
}

/* ---- parsing ------------------------------------------------------------------------------ */

typedef struct parser {
    const char *s, *p;
    char err[160];
} parser;

static void ws(parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static bool fail(parser *ps, const char *what)
{
    if (!ps->err[0])
        snprintf(ps->err, sizeof ps->err, "%s at column %d", what, (int)(ps->p - ps->s) + 1);
    return false;
}

/* A keyword (followed by a non-identifier character). */
static bool kw(parser *ps, const char *k)
{
    ws(ps);
    size_t n = strlen(k);
    if (strncmp(ps->p, k, n) != 0 || isalnum((unsigned char)ps->p[n]) || ps->p[n] == '_')
        return false;
    ps->p += n;
    return true;
}

static json_t *value(parser *ps)
{
    ws(ps);
    if (*ps->p == '"') {
        const char *e = strchr(ps->p + 1, '"');
        if (!e) {
            fail(ps, "unterminated string");
            return NULL;
        }
        json_t *v = json_stringn(ps->p + 1, (size_t)(e - ps->p - 1));
        ps->p = e + 1;
        return v;
    }
    if (kw(ps, "true"))
        return json_true();
    if (kw(ps, "false"))
        return json_false();
    if (kw(ps, "null"))
        return json_null();
    char *end;
    double d = strtod(ps->p, &end);
    if (end == ps->p) {
        fail(ps, "a value (\"string\", number, true, false, null) expected");
        return NULL;
    }
    ps->p = end;
    return json_real(d);
}

static bool path(parser *ps, char *out, size_t cap)
{
    ws(ps);
    const char *st = ps->p;
    while (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '.' || *ps->p == '-')
        ps->p++;
    size_t n = (size_t)(ps->p - st);
    if (n == 0 || n >= cap)
        return fail(ps, "a field path such as playbook.id expected");
    memcpy(out, st, n);
    out[n] = '\0';
    static const char *roots[] = {"playbook.", "incident.", "actor.", "time."};
    for (size_t i = 0; i < 4; i++)
        if (strncmp(out, roots[i], strlen(roots[i])) == 0)
            return true;
    ps->p = st;
    return fail(ps, "unknown field (paths start with playbook., incident., actor. or time.)");
}

static node *expr(parser *ps);

static node *cmp(parser *ps)
{
    node *n = nops_calloc(1, sizeof *n);
    if (!n || !path(ps, n->path, sizeof n->path)) {
        node_free(n);
        return NULL;
    }
    ws(ps);
    static const struct { const char *t; cmp_op op; } ops[] = {
        {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
        {"<", OP_LT},  {">", OP_GT},  {"~", OP_GLOB}};
    n->kind = N_CMP;
    bool found = false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0] && !found; i++)
        if (strncmp(ps->p, ops[i].t, strlen(ops[i].t)) == 0) {
            n->op = ops[i].op;
            ps->p += strlen(ops[i].t);
            found = true;
        }
    if (!found && kw(ps, "in")) {
        n->kind = N_IN;
        n->value = json_array();
        ws(ps);
        if (*ps->p++ != '[')
            return node_free(n), fail(ps, "[ expected after in"), NULL;
        do {
            json_t *v = value(ps);
            if (!v)
                return node_free(n), NULL;
            json_array_append_new(n->value, v);
            ws(ps);
        } while (*ps->p == ',' && ps->p++);
        if (*ps->p++ != ']')
            return node_free(n), fail(ps, "] expected"), NULL;
        return n;
    }
    if (!found)
        return node_free(n), fail(ps, "an operator (== != < <= > >= ~ in) expected"), NULL;
    if (!(n->value = value(ps)))
        return node_free(n), NULL;
    return n;
}

static node *unary(parser *ps)
{
    if (kw(ps, "not")) {
        node *n = nops_calloc(1, sizeof *n);
        if (!n || !(n->a = unary(ps)))
            return node_free(n), NULL;
        n->kind = N_NOT;
        return n;
    }
    ws(ps);
    if (*ps->p == '(') {
        ps->p++;
        node *n = expr(ps);
        ws(ps);
        if (n && *ps->p++ != ')')
            return node_free(n), fail(ps, ") expected"), NULL;
        return n;
    }
    return cmp(ps);
}

static node *binary(parser *ps, bool is_or)
{
    node *left = is_or ? binary(ps, false) : unary(ps);
    while (left && kw(ps, is_or ? "or" : "and")) {
        node *n = nops_calloc(1, sizeof *n);
        if (!n || !(n->b = is_or ? binary(ps, false) : unary(ps))) {
            node_free(n);
            node_free(left);
            return NULL;
        }
        n->kind = is_or ? N_OR : N_AND;
        n->a = left;
        left = n;
    }
    return left;
}

static node *expr(parser *ps)
{
    return binary(ps, true);
}

/* ---- evaluation ------------------------------------------------------------------------- */

static json_t *lookup(const json_t *ctx, const char *p)
{
    char part[128];
    json_t *cur = (json_t *)ctx;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        snprintf(part, sizeof part, "%.*s", (int)(n < sizeof part ? n : sizeof part - 1), p);
        cur = json_object_get(cur, part);
        p += n + (p[n] == '.');
    }
    return cur;
}

static int compare(const json_t *a, const json_t *b, bool *ok)
{
    *ok = true;
    if (json_is_number(a) && json_is_number(b)) {
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_string(a) && json_is_string(b))
        return strcmp(json_string_value(a), json_string_value(b));
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) - json_is_true(b);
    *ok = json_is_null(a) && json_is_null(b);
    return *ok ? 0 : 1;
}

/* v equals one of list's values, or (v a list) one of v's elements does. */
static bool in_list(json_t *v, json_t *list)
{
    size_t i, k;
    json_t *x, *e;
    bool ok;
    json_array_foreach(list, i, x) {
        if (v && compare(v, x, &ok) == 0 && ok)
            return true;
    }
    json_array_foreach(v, k, e) {
        json_array_foreach(list, i, x) {
            if (compare(e, x, &ok) == 0 && ok)
                return true;
        }
    }
    return false;
}

static bool eval(const node *n, const json_t *ctx)
{
    switch (n->kind) {
    case N_OR: return eval(n->a, ctx) || eval(n->b, ctx);
    case N_AND: return eval(n->a, ctx) && eval(n->b, ctx);
    case N_NOT: return !eval(n->a, ctx);
    case N_IN: return in_list(lookup(ctx, n->path), n->value);
    case N_CMP: {
        json_t *v = lookup(ctx, n->path);
        json_t *null = json_null();
        bool ok;
        if (n->op == OP_GLOB)
            return json_is_string(v) && json_is_string(n->value) &&
                   fnmatch(json_string_value(n->value), json_string_value(v), 0) == 0;
        int c = compare(v ? v : null, n->value, &ok);
        switch (n->op) {
        case OP_EQ: return ok && c == 0;
        case OP_NE: return !ok || c != 0;
        case OP_LT: return ok && c < 0;
        case OP_LE: return ok && c <= 0;
        case OP_GT: return ok && c > 0;
        case OP_GE: return ok && c >= 0;
        default: return false;
        }
    }
    }
    return false;
}

/* ---- rules ---------------------------------------------------------------------------------- */

static int by_priority(const void *a, const void *b)
{
    int64_t x = ((const rule *)a)->priority, y = ((const rule *)b)->priority;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int lookup_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static bool parse_rule(json_t *o, size_t i, rule *r, char *errstr, size_t errstr_size)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *when = json_string_value(json_object_get(o, "when"));
    json_t *prio = json_object_get(o, "priority");
    int act = lookup_name(json_string_value(json_object_get(o, "action")), action_names, 5);
    json_t *esc_v = json_object_get(o, "escalation"), *reason = json_object_get(o, "reason");
    int esc = esc_v ? lookup_name(json_string_value(esc_v), esc_names, 5) : 0;
    const char *what = !name || !*name || strlen(name) >= sizeof r->name ? "a name (1-63 chars)"
                       : !json_is_integer(prio)                        ? "an integer priority"
                       : act < 0 ? "an action (allow|deny|require_approval|escalate|log)"
                       : esc < 0 ? "an escalation (info|warning|critical|emergency)"
                       : act == NOPS_POLICY_ESCALATE && esc == 0 ? "an escalation level"
                       : !when                                   ? "a when condition"
                       : reason && (!json_is_string(reason) ||
                                    json_string_length(reason) >= sizeof r->reason)
                           ? "a reason of at most 255 bytes (a string) when it has one"
                           : NULL;
    if (what) {
        nops_errf(errstr, errstr_size, "policy rule %zu%s%s%s needs %s", i + 1,
                  name ? " (" : "", name ? name : "", name ? ")" : "", what);
        return false;
    }
    parser ps = {when, when, ""};
    r->when = expr(&ps);
    ws(&ps);
    if (r->when && *ps.p)
        fail(&ps, "unexpected text");
    if (!r->when || ps.err[0]) {
        nops_errf(errstr, errstr_size, "policy rule %s: when: %s", name,
                  ps.err[0] ? ps.err : "out of memory");
        node_free(r->when);
        r->when = NULL;
        return false;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    r->priority = (int64_t)json_integer_value(prio);
    r->action = (nops_policy_action)act;
    r->escalation = (nops_escalation)esc;
    if (reason)
        snprintf(r->reason, sizeof r->reason, "%s", json_string_value(reason));
    else
        snprintf(r->reason, sizeof r->reason, "rule %s matched: %s", name, when);
    return true;
}

nops_policy *nops_policy_parse(const char *text, char *errstr, size_t errstr_size)
{
    json_error_t je;
    json_t *arr = json_loads(text, 0, &je);
    if (!json_is_array(arr)) {
        nops_errf(errstr, errstr_size, "policy: %s", arr ? "rules must be a JSON array" : je.text);
        json_decref(arr);
        return NULL;
    }
    nops_policy *p = nops_calloc(1, sizeof *p);
    p->rules = nops_calloc(json_array_size(arr) + 1, sizeof *p->rules);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        if (!parse_rule(o, i, &p->rules[p->n], errstr, errstr_size)) {
            json_decref(arr);
            nops_policy_destroy(p);
            return NULL;
        }
        for (size_t k = 0; k < p->n; k++)
            if (strcmp(p->rules[k].name, p->rules[p->n].name) == 0) {
                nops_errf(errstr, errstr_size, "policy: two rules are named %s",
                          p->rules[k].name);
                p->n++;
                json_decref(arr);
                nops_policy_destroy(p);
                return NULL;
            }
        p->n++;
    }
    json_decref(arr);
    qsort(p->rules, p->n, sizeof *p->rules, by_priority); /* equal priorities: file order */
    return p;
}

nops_policy *nops_policy_load(const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = nops_file_fopen(path, "r");
    if (!f) {
        nops_errf(errstr, errstr_size, "policy: cannot read %s", path);
        return NULL;
    }
    char *text = nops_malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text)
        return NULL;
    text[n] = '\0';
    nops_policy *p = nops_policy_parse(text, errstr, errstr_size);
    nops_free(text);
    return p;
}

void nops_policy_destroy(nops_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        node_free(p->rules[i].when);
    nops_free(p->rules);
    nops_free(p);
}

size_t nops_policy_count(const nops_policy *p)
{
    return p->n;
}

void nops_policy_decide(const nops_policy *p, const json_t *ctx, nops_policy_decision *d)
{
    memset(d, 0, sizeof *d);
    d->action = NOPS_POLICY_REQUIRE_APPROVAL; /* the default: manual */
    snprintf(d->reason, sizeof d->reason, "no rule matched: manual approval");
    size_t at = 0;
    for (size_t i = 0; p && i < p->n; i++) {
        const rule *r = &p->rules[i];
        if (!eval(r->when, ctx))
            continue;
        if (r->action == NOPS_POLICY_LOG) {
            at += (size_t)snprintf(d->logged + at, sizeof d->logged - at, "%s%s", at ? "," : "",
                                   r->name);
            if (at >= sizeof d->logged)
                at = sizeof d->logged - 1;
            continue;
        }
        d->action = r->action;
        d->escalation = r->escalation;
        snprintf(d->rule, sizeof d->rule, "%s", r->name);
        snprintf(d->reason, sizeof d->reason, "%s", r->reason);
        break;
    }
    const char *mode = json_string_value(lookup(ctx, "playbook.mode"));
    json_t *roles = lookup(ctx, "playbook.allowed_roles"), *x;
    bool admin = false;
    size_t i;
    json_array_foreach(roles, i, x) {
        if (json_is_string(x) && strcmp(json_string_value(x), "org-admin") == 0)
            admin = true;
    }
    d->auto_execute = d->action == NOPS_POLICY_ALLOW && mode && strcmp(mode, "auto") == 0 && admin;
}
