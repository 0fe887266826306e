/*
 * jsonl.c — the default sink: one JSON object per line in DIR/signals.jsonl and
 * DIR/incidents.jsonl.
 *
 * Lines are appended to an in-memory buffer per file; a flush takes that buffer's bytes (under
 * the sink's mutex, so writes go on into the emptied buffer meanwhile: flush_concurrent),
 * writes them with write(2) and fsync(2)s the file, and only then forgets them. If the disk
 * refuses (full, I/O error) the bytes stay taken and the next flush tries them again, first; a
 * short write keeps the unwritten tail. The bytes of a file, buffered and taken, are bounded:
 * past `max_buffer` a write is refused with NOPS_FULL, which the set counts and logs as a drop.
 */
#include "sinks/sinks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct jsonl_file {
    int fd;         /* O_APPEND file */
    nops_buf pend;  /* bytes written to the sink since the last flush took them (mu) */
    nops_buf io;    /* bytes a flush took, not yet durable (the flushing thread's) */
    size_t io_len;  /* io.len as of the last time the flush held mu (mu) */
    char path[600]; /* for messages */
} jsonl_file;

typedef struct jsonl_sink {
    pthread_mutex_t mu; /* guards pend and io_len: writes and a flush meet here only */
    jsonl_file f[2];    /* signals, incidents */
    size_t max_buffer;  /* bound per file */
} jsonl_sink;

static nops_err jsonl_write(void *self, int kind, const char *json, size_t len)
{
    jsonl_sink *s = self;
    jsonl_file *f = &s->f[kind == NOPS_SINK_INCIDENT];
    nops_err e = NOPS_OK;
    pthread_mutex_lock(&s->mu);
    if (f->pend.len + f->io_len + len + 1 > s->max_buffer)
        e = NOPS_FULL;
    else if (nops_buf_reserve(&f->pend, len + 1) != NOPS_OK)
        e = NOPS_NOMEM;
    if (e == NOPS_OK) {
        memcpy(f->pend.b + f->pend.len, json, len);
        f->pend.b[f->pend.len + len] = '\n';
        f->pend.len += len + 1;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

/* Take the file's buffered bytes behind those a failed flush left in io (swapped when io is
 * empty, the common case: no copy). */
static nops_err take_pending(jsonl_sink *s, jsonl_file *f)
{
    nops_err e = NOPS_OK;
    pthread_mutex_lock(&s->mu);
    if (f->io.len == 0) {
        nops_buf t = f->io;
        f->io = f->pend;
        f->pend = t;
        f->pend.len = 0;
    } else if (f->pend.len && (e = nops_buf_reserve(&f->io, f->pend.len)) == NOPS_OK) {
        memcpy(f->io.b + f->io.len, f->pend.b, f->pend.len);
        f->io.len += f->pend.len;
        f->pend.len = 0;
    }
    f->io_len = f->io.len;
    pthread_mutex_unlock(&s->mu);
    return e;
}

static nops_err flush_file(jsonl_sink *s, jsonl_file *f, char *errstr, size_t errstr_size)
{
    if (take_pending(s, f) != NOPS_OK) {
        nops_errf(errstr, errstr_size, "out of memory flushing %s", f->path);
        return NOPS_NOMEM;
    }
    size_t off = 0;
    while (off < f->io.len) {
        ssize_t w = write(f->fd, f->io.b + off, f->io.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            memmove(f->io.b, f->io.b + off, f->io.len - off);
            f->io.len -= off;
            pthread_mutex_lock(&s->mu);
            f->io_len = f->io.len;
            pthread_mutex_unlock(&s->mu);
            nops_errf(errstr, errstr_size, "cannot write %s: %s%s", f->path,
                      w == 0 ? "no progress" : strerror(errno),
                      w < 0 && errno == EFBIG ? " (the file size limit, ulimit -f, is reached; "
                                                "records stay buffered and are retried)"
                                              : "");
            return NOPS_IO;
        }
        off += (size_t)w;
    }
    f->io.len = 0;
    pthread_mutex_lock(&s->mu);
    f->io_len = 0;
    pthread_mutex_unlock(&s->mu);
    if (off && fsync(f->fd) != 0) {
        nops_errf(errstr, errstr_size, "cannot fsync %s: %s", f->path, strerror(errno));
        return NOPS_IO;
    }
    return NOPS_OK;
}

static nops_err jsonl_flush(void *self, char *errstr, size_t errstr_size)
{
    jsonl_sink *s = self;
    char second[sizeof s->f[1].path + 200];
    nops_err e = flush_file(s, &s->f[0], errstr, errstr_size);
    nops_err e2 = e != NOPS_OK ? flush_file(s, &s->f[1], second, sizeof second) /* keep the 1st */
                               : flush_file(s, &s->f[1], errstr, errstr_size);
    return e != NOPS_OK ? e : e2;
}

static void jsonl_destroy(void *self)
{
    jsonl_sink *s = self;
    for (int i = 0; i < 2; i++) {
        if (s->f[i].fd >= 0)
            close(s->f[i].fd);
        nops_free(s->f[i].pend.b);
        nops_free(s->f[i].io.b);
    }
    pthread_mutex_destroy(&s->mu);
    nops_free(s);
}

/*
 * A crash in the middle of a write can leave a partial last line. Its record was not committed
 * (offsets move only after a complete flush), so it will be written again; close the torn line
 * so that the replayed record and everything after it start on a line of their own.
 */
static void end_torn_line(int fd)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char last = '\n';
    if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n') {
        ssize_t w = write(fd, "\n", 1);
        (void)w;
    }
}

static const nops_sink_ops jsonl_ops = {"jsonl", jsonl_write, jsonl_flush, jsonl_destroy, true};

nops_err nops_sinks_add_jsonl(nops_sinks *set, const char *dir, size_t max_buffer, char *errstr,
                              size_t errstr_size)
{
    if (nops_dir_make(dir) != 0) { /* 0750 whatever the umask */
        nops_errf(errstr, errstr_size, "cannot create data directory %s: %s", dir,
                  strerror(errno));
        return NOPS_IO;
    }
    jsonl_sink *s = nops_calloc(1, sizeof *s);
    if (!s) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NOPS_NOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->max_buffer = max_buffer ? max_buffer : (64u << 20);
    static const char *names[2] = {"signals.jsonl", "incidents.jsonl"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(s->f[i].path, sizeof s->f[i].path, "%.*s", (int)sizeof s->f[i].path - 1, path);
        s->f[i].fd = nops_file_open(path, O_RDWR | O_CREAT | O_APPEND); /* 0640, cloexec */
        if (s->f[i].fd >= 0)
            end_torn_line(s->f[i].fd);
        if (s->f[i].fd < 0) {
            nops_errf(errstr, errstr_size, "cannot open %s: %s", path, strerror(errno));
            s->f[1].fd = i == 0 ? -1 : s->f[1].fd;
            jsonl_destroy(s);
            return NOPS_IO;
        }
    }
    nops_err e = nops_sinks_add(set, &jsonl_ops, s);
    if (e != NOPS_OK) {
        nops_errf(errstr, errstr_size, "too many sinks");
        jsonl_destroy(s);
    }
    return e;
}
