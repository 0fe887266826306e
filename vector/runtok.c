/*
 * runtok.c — a workflow run from its JSON text without a tree (nops_vector_prepare_text): the
 * vectorize path's reader.
 *
 * Why not jansson, against the house rule: this is vectorize's hot path, and building a tree
 * per row (an allocation per value, a copy of every string, a hash table per object) alone ran
 * at 34 k rows/s here against a target of 100 k runs/s. The text goes through the JSON metric
 * tokenizer of parse/ instead: pass 1 (nops_json_object_ok) vouches that jansson would accept
 * it and that it holds no duplicate key; pass 2 walks only the fields the checks, the redactor
 * and the embedder need, decoding each string once into the caller's scratch, where its
 * redacted text is also written ("redact in place": no string is allocated). Everything else
 * (started_at, unknown fields, nested values) is skipped unread.
 *
 * Equality with the tree path is by construction: the same checks (nops__run_check), the same
 * redactor on the same decoded text of every field nops_redact_json redacts (the text fields,
 * every label value, signal hints and labels), and the same feature accumulator fed in the
 * order nops_embed_json feeds it (metrics, signals, labels, summary, root-cause hint): float
 * sums in the same order, so the vectors are equal bit for bit. executed_by is not hashed
 * here: the tree path replaces it in a tree that is then dropped — it reaches neither the
 * vector nor the metadata. Text the tokenizer does not vouch for (malformed rows, duplicate
 * keys, escaped keys, strings past 4 KiB, nesting past 64) returns NOPS_UNSUPPORTED and the
 * caller takes the tree path, which decides as before.
 */
#include "vector/run_int.h"

#include "parse/parse.h"

#include <string.h>

typedef struct arena {
    char *b;
    size_t used, cap;
    bool full; /* a write did not fit (cannot happen within NOPS_RUN_SCRATCH) */
} arena;

/* A label value the redactor left unchanged, remembered for the rest of the row: a signal
 * repeats the run's host, service and region, and redacting the same bytes again gives the
 * same text and finds nothing again. Keyed by the raw bytes between the quotes (equal raw
 * bytes decode to equal text). Values in which something was found are not remembered, so a
 * hit never has counts to add. */
typedef struct seen_value {
    const char *raw;  /* the value's raw text in the document */
    size_t rawn;      /* its length */
    const char *text; /* its decoded (and unchanged) text in the arena */
} seen_value;

#define SEEN_MAX 16

typedef struct rt {
    const nops_redactor *r;
    nops_redact_stats *st;
    const char *end;
    arena a;
    seen_value seen[SEEN_MAX]; /* label values of this row that hold nothing to redact */
    int n_seen;
} rt;

/* Room for n bytes in the arena, or NULL (full). */
static char *take(arena *a, size_t n)
{
    if (a->full || n > a->cap - a->used) {
        a->full = true;
        return NULL;
    }
    char *p = a->b + a->used;
    a->used += n;
    return p;
}

/* The string at v decoded (NUL-terminated) into the arena; NULL when v is not a string. */
static const char *str(rt *t, const char *v)
{
    if (!v || *v != '"')
        return NULL;
    char *o = take(&t->a, nops_json_string_raw(v, t->end) + 1);
    if (!o)
        return NULL;
    size_t n = nops_json_string(v, t->end, o);
    t->a.used -= nops_json_string_raw(v, t->end) - n; /* give back what decoding saved */
    return o;
}

/* The string at v decoded and redacted (NUL-terminated, in the arena); NULL when not a string. */
static const char *red(rt *t, const char *v)
{
    if (!v || *v != '"')
        return NULL;
    const size_t used = t->a.used;
    const char *s = str(t, v);
    if (!s)
        return NULL;
    const size_t len = strlen(s), cap = NOPS_REDACT_CAP(len);
    char *o = take(&t->a, cap);
    if (!o)
        return NULL;
    const size_t n = nops_redact(t->r, s, len, o, cap, t->st);
    /* the decoded text is not needed any more: move the redacted text down over it */
    memmove((char *)s, o, n + 1);
    t->a.used = used + n + 1;
    return s;
}

/* A label value redacted, through the row's memory of clean values. *keep: the arena must
 * keep what the call added (a value now remembered). */
static const char *red_label(rt *t, const char *v, bool *keep)
{
    *keep = false;
    if (!v || *v != '"')
        return NULL;
    const size_t rawn = nops_json_string_raw(v, t->end);
    for (int i = 0; i < t->n_seen; i++)
        if (t->seen[i].rawn == rawn && memcmp(t->seen[i].raw, v + 1, rawn) == 0)
            return t->seen[i].text;
    nops_redact_stats st = {{0}}, *outer = t->st;
    t->st = &st;
    const char *s = red(t, v);
    t->st = outer;
    bool found = false;
    for (int k = 0; k < NOPS_REDACT_N; k++) {
        found = found || st.found[k];
        if (outer)
            outer->found[k] += st.found[k];
    }
    if (s && !found && t->n_seen < SEEN_MAX) {
        t->seen[t->n_seen++] = (seen_value){v + 1, rawn, s};
        *keep = true;
    }
    return s;
}

/* The members of the labels object at v: every string value redacted (and counted), each pair
 * embedded at `scale`. Returns the number of members (0 when v is not an object). */
static size_t labels(rt *t, nops__feats *f, const char *v, float scale)
{
    if (!v || *v != '{')
        return 0;
    const char *it = v + 1;
    nops_json_member m;
    size_t n = 0;
    while (nops_json_next_member(&it, t->end, &m)) {
        n++;
        const size_t used = t->a.used;
        bool keep;
        const char *val = red_label(t, m.v, &keep);
        const size_t kept = t->a.used;
        char *k = take(&t->a, m.kn + 1);
        if (k) {
            memcpy(k, m.k, m.kn);
            k[m.kn] = '\0';
            nops__feats_label(f, k, val, scale);
        }
        /* the pair is hashed: its text is not needed any more, but a remembered value is */
        t->a.used = keep ? kept : used;
    }
    return n;
}

/* One element of the signals array (an object, else ignored as the tree path does). */
static void signal(rt *t, nops__feats *f, const char *v)
{
    if (*v != '{')
        return;
    const char *metric = NULL, *lab = NULL, *method = NULL, *hint = NULL, *score = NULL;
    const char *it = v + 1;
    nops_json_member m;
    while (nops_json_next_member(&it, t->end, &m)) {
#define KEY(s) (m.kn == sizeof(s) - 1 && memcmp(m.k, s, sizeof(s) - 1) == 0)
        if (KEY("metric"))
            metric = m.v;
        else if (KEY("labels"))
            lab = m.v;
        else if (KEY("method"))
            method = m.v;
        else if (KEY("hint"))
            hint = m.v;
        else if (KEY("score"))
            score = m.v;
    }
    nops__feats_signal(f, str(t, metric));
    labels(t, f, lab, f->per_signal);
    const bool num = score && (*score == '-' || (*score >= '0' && *score <= '9'));
    nops__feats_signal_end(f, str(t, method), red(t, hint),
                           num ? nops_json_number(score, t->end) : 0);
}

/* The top-level fields a run is read from. */
typedef struct fields {
    const char *id, *pb, *status, *fin;                 /* checks and metadata */
    const char *incident_summary, *summary, *notes, *rch; /* free text */
    const char *labels, *metrics, *signals;             /* structure */
} fields;

static void top_fields(rt *t, const char *body, fields *fd)
{
    memset(fd, 0, sizeof *fd);
    const char *it = body + 1;
    nops_json_member m;
    while (nops_json_next_member(&it, t->end, &m)) {
        if (KEY("id"))
            fd->id = m.v;
        else if (KEY("playbook_id"))
            fd->pb = m.v;
        else if (KEY("status"))
            fd->status = m.v;
        else if (KEY("finished_at"))
            fd->fin = m.v;
        else if (KEY("incident_summary"))
            fd->incident_summary = m.v;
        else if (KEY("summary"))
            fd->summary = m.v;
        else if (KEY("notes"))
            fd->notes = m.v;
        else if (KEY("root_cause_hint"))
            fd->rch = m.v;
        else if (KEY("labels"))
            fd->labels = m.v;
        else if (KEY("metrics"))
            fd->metrics = m.v;
        else if (KEY("signals"))
            fd->signals = m.v;
#undef KEY
    }
}

/* Redact and embed a run whose fields are known (after the checks). */
static nops_err embed(rt *t, const fields *fd, float vec[NOPS_EMBED_DIM])
{
    const char *is = red(t, fd->incident_summary), *su = red(t, fd->summary);
    (void)red(t, fd->notes); /* redacted (and counted) like the tree path; never embedded */
    const char *rch = red(t, fd->rch), *v;
    size_t n_sig = 0;
    const char *it;
    if (fd->signals && *fd->signals == '[')
        for (it = fd->signals + 1; nops_json_next_element(&it, t->end, &v);)
            n_sig++;
    nops__feats f;
    nops__feats_begin(&f, vec, n_sig);
    if (fd->metrics && *fd->metrics == '[')
        for (it = fd->metrics + 1; nops_json_next_element(&it, t->end, &v);) {
            const size_t used = t->a.used;
            const char *s = str(t, v);
            nops__feats_metric(&f, s);
            if (s && f.metrics > 0 && f.metrics <= 64 && f.seen_metrics[f.metrics - 1] == s)
                continue; /* kept: the accumulator remembers it */
            t->a.used = used;
        }
    if (n_sig)
        for (it = fd->signals + 1; nops_json_next_element(&it, t->end, &v);)
            signal(t, &f, v);
    const size_t n_labels = labels(t, &f, fd->labels, 1.0f);
    const char *summary = is ? is : su;
    nops__feats_words(&f, summary);
    nops__feats_words(&f, rch);
    return nops__feats_end(&f, n_labels != 0, summary);
}

nops_err nops_vector_prepare_text(const nops_redactor *r, const char *text, size_t len,
                                  char *scratch, size_t scratch_size,
                                  float vec[NOPS_EMBED_DIM], nops_run_meta *meta,
                                  nops_redact_stats *st, char *why, size_t why_size)
{
    const char *body;
    if (!nops_json_object_ok(text, len, &body)) {
        nops_errf(why, why_size, "not read without a tree: take the jansson path");
        return NOPS_UNSUPPORTED;
    }
    rt t = {.r = r, .st = st, .end = text + len, .a = {scratch, 0, scratch_size, false}};
    fields fd;
    top_fields(&t, body, &fd);
    const char *id = str(&t, fd.id), *pb = str(&t, fd.pb), *status = str(&t, fd.status);
    nops_err e = nops__run_check(r, id, pb, status, str(&t, fd.fin), meta, why, why_size);
    if (e == NOPS_OK && (e = embed(&t, &fd, vec)) != NOPS_OK)
        nops_errf(why, why_size, "nothing to embed (no metrics, labels, signals or summary)");
    if (t.a.full) {
        nops_errf(why, why_size, "the scratch is too small: take the jansson path");
        return NOPS_UNSUPPORTED;
    }
    if (e == NOPS_OK)
        nops__run_finish(r, id, pb, status, meta, st);
    return e;
}
