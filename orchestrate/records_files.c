/*
 * records_files.c — the file record store: one JSON file per orchestration, DIR/<id>.json,
 * replaced durably (written aside, fsync'ed, renamed, directory fsync'ed: nops_file_replace),
 * so a crash leaves the old record or the new one, never a torn one.
 *
 * An index in memory — id, state, creation time and, for a damaged file, why — is built once
 * at open (the only time every file is read) and kept up to date by every save and read, so
 * listing a page, filtering by state and counting the open records read no file but the ones
 * returned. It assumes this process is the only writer of the directory (several instances
 * share PostgreSQL, not a directory): a file changed behind its back is read as it is when it is
 * loaded, and the index follows it then. A file that is not a record (not JSON, torn, another
 * id inside) stays in the index as "damaged" with the reason: listed, reported at start, never
 * acted on, never removed.
 *
 * Callers (records.c) hold the store's lock around every call.
 */
#include "orchestrate/orch_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RECORD (16u << 20) /* a record holds 32 steps' output twice: far below this */

typedef struct ix_entry {
    char id[44];      /* a valid id (<= 40 characters) */
    char state[24];   /* as stored; "damaged" when the file is not a record */
    char created[40]; /* created_at, or the file's mtime for a damaged one: the listing order */
    char *why;        /* why it is damaged (owned), NULL otherwise */
} ix_entry;

struct nops_rfiles {
    char dir[512];
    ix_entry *ix;   /* unordered */
    size_t n, cap;
    uint64_t reads; /* record files read (tests check that listings read only what they return) */
};

static ix_entry *ix_find(nops_rfiles *f, const char *id)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->ix[i].id, id) == 0)
            return &f->ix[i];
    return NULL;
}

/* Record what is known of `id` now (why non-NULL: damaged). */
static void ix_put(nops_rfiles *f, const char *id, const char *state, const char *created,
                   const char *why)
{
    ix_entry *e = ix_find(f, id);
    if (!e) {
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 256;
            ix_entry *grown = nops_realloc(f->ix, cap * sizeof *grown);
            if (!grown)
                return; /* listed again once memory allows: the file is still there */
            f->ix = grown;
            f->cap = cap;
        }
        e = &f->ix[f->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", id);
    }
    snprintf(e->state, sizeof e->state, "%s", state);
    if (created && *created)
        snprintf(e->created, sizeof e->created, "%s", created);
    nops_free(e->why);
    e->why = why ? nops_strdup(why) : NULL;
}

static void ix_drop(nops_rfiles *f, const char *id)
{
    ix_entry *e = ix_find(f, id);
    if (e) {
        nops_free(e->why);
        *e = f->ix[--f->n];
    }
}

/* A damaged placeholder for `id` (reason logged, rate-limited), indexed as damaged. */
static json_t *damaged(nops_rfiles *f, const char *id, const char *why, int64_t mtime_ns)
{
    char ts[40] = "";
    if (mtime_ns)
        nops_format_ts(mtime_ns, ts, sizeof ts);
    ix_entry *e = ix_find(f, id);
    if (!e || !e->why || strcmp(e->why, why) != 0) /* said once, not at every read */
        nops__record_warn_damaged(id, why);
    ix_put(f, id, "damaged", ts, why);
    e = ix_find(f, id);
    return nops__record_damaged(id, why, e ? e->created : ts);
}

/* Read all of fd (at most MAX_RECORD bytes): nops_malloc'ed, NUL-terminated; NULL + errno. */
static char *read_fd(int fd, size_t size, size_t *len)
{
    char *b = nops_malloc(size + 1);
    size_t n = 0;
    while (b && n <= size) {
        ssize_t r = read(fd, b + n, size + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            nops_free(b);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (b) {
        b[n > size ? size : n] = '\0';
        *len = n > size ? size : n;
    }
    return b;
}

/* DIR/<id>.json as it is now: the record, a damaged placeholder, or NULL when there is no such file.
 * The index follows what was read. */
static json_t *file_read(nops_rfiles *f, const char *id)
{
    char path[700], why[300];
    snprintf(path, sizeof path, "%s/%s.json", f->dir, id);
    int fd = nops_file_open(path, O_RDONLY);
    if (fd < 0 && errno == ENOENT) {
        ix_drop(f, id);
        return NULL;
    }
    f->reads++;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, sizeof why, "cannot read it: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return damaged(f, id, why, 0);
    }
    const int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    size_t len = 0;
    char *text = st.st_size <= (off_t)MAX_RECORD ? read_fd(fd, (size_t)st.st_size + 4096, &len)
                                                 : NULL;
    int err = errno;
    close(fd);
    if (!text) {
        if (st.st_size > (off_t)MAX_RECORD)
            snprintf(why, sizeof why, "larger than %u bytes", MAX_RECORD);
        else
            snprintf(why, sizeof why, "cannot read it: %s", strerror(err));
        return damaged(f, id, why, mtime);
    }
    json_error_t je;
    json_t *rec = json_loadb(text, len, 0, &je);
    nops_free(text);
    const char *bad = rec ? nops__record_damage(rec, id) : NULL;
    if (!rec || bad) {
        if (!rec)
            snprintf(why, sizeof why, "not JSON (torn or edited?): %.200s at line %d", je.text,
                     je.line);
        else
            snprintf(why, sizeof why, "%s", bad);
        json_decref(rec);
        return damaged(f, id, why, mtime);
    }
    ix_put(f, id, json_string_value(json_object_get(rec, "state")),
           json_string_value(json_object_get(rec, "created_at")), NULL);
    return rec;
}

nops_rfiles *nops__rfiles_open(const char *dir, char *errstr, size_t errstr_size)
{
    nops_rfiles *f = nops_calloc(1, sizeof *f);
    if (!f) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(f->dir, sizeof f->dir, "%s", dir ? dir : "");
    DIR *d = nops_dir_make(f->dir) == 0 ? opendir(f->dir) : NULL;
    if (!d) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot open %s: %s", f->dir,
                  strerror(errno));
        nops_free(f);
        return NULL;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        char id[48];
        if (len < 6 || len > 45 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue; /* not a record (nor a temporary file of nops_file_replace) */
        snprintf(id, sizeof id, "%.*s", (int)(len - 5), de->d_name);
        if (nops__record_id_valid(id))
            json_decref(file_read(f, id));
    }
    closedir(d);
    return f;
}

void nops__rfiles_close(nops_rfiles *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        nops_free(f->ix[i].why);
    nops_free(f->ix);
    nops_free(f);
}

json_t *nops__rfiles_load(nops_rfiles *f, const char *id)
{
    return file_read(f, id);
}

/* Write the record to a temporary file (fsync'ed) and link(2) it to DIR/<id>.json, which fails
 * when that file exists — also when another process made it meanwhile: NOPS_EXISTS. */
static nops_err create_only(nops_rfiles *f, json_t *rec, const char *id, const char *state,
                            char *errstr, size_t errstr_size)
{
    char path[700], tmp[760];
    snprintf(path, sizeof path, "%s/%s.json", f->dir, id);
    snprintf(tmp, sizeof tmp, "%s.new.%ld", path, (long)getpid());
    char *text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
    int fd = text ? nops_file_open(tmp, O_WRONLY | O_CREAT | O_TRUNC) : -1;
    size_t len = text ? strlen(text) : 0, at = 0;
    while (fd >= 0 && at < len) {
        ssize_t w = write(fd, text + at, len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        at += (size_t)w;
    }
    const bool written = fd >= 0 && at == len && fsync(fd) == 0;
    int err = text ? errno : ENOMEM;
    if (fd >= 0)
        close(fd);
    free(text);
    nops_err e = NOPS_OK;
    if (!written) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot write %s: %s", tmp,
                  strerror(err));
        e = NOPS_IO;
    } else if (link(tmp, path) != 0) {
        err = errno;
        nops_errf(errstr, errstr_size, err == EEXIST ? "orchestration %s exists already"
                  : "orchestrations: cannot create %s: %s", err == EEXIST ? id : path,
                  strerror(err));
        e = err == EEXIST ? NOPS_EXISTS : NOPS_IO;
    } else if (nops_fsync_dir_of(path) != 0) {
        NOPS_WARN("orchestrate", "cannot fsync the directory of %s: %s", path, strerror(errno));
    }
    unlink(tmp);
    if (e == NOPS_OK)
        ix_put(f, id, state ? state : "", json_string_value(json_object_get(rec, "created_at")),
               NULL);
    return e;
}

const char *nops__rfiles_dir(const nops_rfiles *f)
{
    return f->dir;
}

nops_err nops__rfiles_save(nops_rfiles *f, json_t *rec, const char *id, const char *expect,
                           char *errstr, size_t errstr_size)
{
    const char *state = json_string_value(json_object_get(rec, "state"));
    if (expect && !*expect)
        return create_only(f, rec, id, state, errstr, errstr_size);
    if (expect) {
        json_t *cur = file_read(f, id);
        const char *now = cur ? json_string_value(json_object_get(cur, "state")) : "gone";
        bool same = now && strcmp(now, expect) == 0;
        if (!same)
            nops_errf(errstr, errstr_size, "orchestration %s changed meanwhile (now %s)", id,
                      now ? now : "?");
        json_decref(cur);
        if (!same)
            return NOPS_INVAL;
    }
    char path[700];
    snprintf(path, sizeof path, "%s/%s.json", f->dir, id);
    char *text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text || nops_file_replace(path, text, strlen(text)) != 0) {
        nops_errf(errstr, errstr_size, "orchestrations: cannot write %s: %s", path,
                  text ? strerror(errno) : "out of memory");
        free(text);
        return NOPS_IO;
    }
    free(text);
    ix_put(f, id, state ? state : "", json_string_value(json_object_get(rec, "created_at")),
           NULL);
    return NOPS_OK;
}

static int newest_first(const void *a, const void *b)
{
    const ix_entry *x = *(const ix_entry *const *)a, *y = *(const ix_entry *const *)b;
    int c = strcmp(y->created, x->created);
    return c ? c : strcmp(y->id, x->id);
}

json_t *nops__rfiles_list(nops_rfiles *f, const char *state, size_t limit)
{
    json_t *out = json_array();
    ix_entry **pick = f->n ? nops_malloc(f->n * sizeof *pick) : NULL;
    if (!out || (f->n && !pick)) {
        json_decref(out);
        nops_free(pick);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        if (!state || strcmp(f->ix[i].state, state) == 0)
            pick[n++] = &f->ix[i];
    if (n)
        qsort(pick, n, sizeof *pick, newest_first);
    /* copy the ids first: reading a file updates the index, which may move its entries */
    char (*ids)[44] = n ? nops_malloc((n < limit ? n : limit) * sizeof *ids) : NULL;
    size_t k = 0;
    for (; ids && k < n && k < limit; k++)
        memcpy(ids[k], pick[k]->id, sizeof ids[k]);
    nops_free(pick);
    for (size_t i = 0; i < k; i++) {
        json_t *rec = file_read(f, ids[i]);
        const char *st = json_string_value(json_object_get(rec, "state"));
        if (rec && (!state || (st && strcmp(st, state) == 0)))
            json_array_append(out, rec);
        json_decref(rec);
    }
    nops_free(ids);
    return out;
}

long long nops__rfiles_count_open(nops_rfiles *f)
{
    long long n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += nops__record_state_open(f->ix[i].state);
    return n;
}

uint64_t nops__rfiles_reads(nops_rfiles *f)
{
    return f->reads;
}
