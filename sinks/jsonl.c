/*
 * jsonl.c — the default sink: one JSON object per line in DIR/signals.jsonl and
 * DIR/incidents.jsonl.
 *
 * Lines are appended to an in-memory buffer per file; a flush writes the buffer with write(2)
 * and fsync(2)s the file, and only then forgets it. If the disk refuses (full, I/O error) the
 * bytes stay buffered and the next flush tries again; a short write keeps the unwritten tail.
 * The buffer is bounded: past `max_buffer` bytes a write is refused with NOPS_FULL, which the
 * set counts and logs as a drop.
 */
#include "sinks/sinks.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct jsonl_file {
    int fd;         /* O_APPEND file */
    nops_buf pend;  /* bytes not yet written */
    char path[600]; /* for messages */
} jsonl_file;

typedef struct jsonl_sink {
    jsonl_file f[2];   /* signals, incidents */
    size_t max_buffer; /* bound per file */
} jsonl_sink;

static nops_err jsonl_write(void *self, int kind, const char *json, size_t len)
{
    jsonl_sink *s = self;
    jsonl_file *f = &s->f[kind == NOPS_SINK_INCIDENT];
    if (f->pend.len + len + 1 > s->max_buffer)
        return NOPS_FULL;
    if (nops_buf_reserve(&f->pend, len + 1) != NOPS_OK)
        return NOPS_NOMEM;
    memcpy(f->pend.b + f->pend.len, json, len);
    f->pend.b[f->pend.len + len] = '\n';
    f->pend.len += len + 1;
    return NOPS_OK;
}

static nops_err flush_file(jsonl_file *f, char *errstr, size_t errstr_size)
{
    size_t off = 0;
    while (off < f->pend.len) {
        ssize_t w = write(f->fd, f->pend.b + off, f->pend.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            memmove(f->pend.b, f->pend.b + off, f->pend.len - off);
            f->pend.len -= off;
            nops_errf(errstr, errstr_size, "cannot write %s: %s%s", f->path,
                      w == 0 ? "no progress" : strerror(errno),
                      w < 0 && errno == EFBIG ? " (the file size limit, ulimit -f, is reached; "
                                                "records stay buffered and are retried)"
                                              : "");
            return NOPS_IO;
        }
        off += (size_t)w;
    }
    f->pend.len = 0;
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
    nops_err e = flush_file(&s->f[0], errstr, errstr_size);
    nops_err e2 = e != NOPS_OK ? flush_file(&s->f[1], second, sizeof second) /* keep the first */
                               : flush_file(&s->f[1], errstr, errstr_size);
    return e != NOPS_OK ? e : e2;
}

static void jsonl_destroy(void *self)
{
    jsonl_sink *s = self;
    for (int i = 0; i < 2; i++) {
        if (s->f[i].fd >= 0)
            close(s->f[i].fd);
        nops_free(s->f[i].pend.b);
    }
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

static const nops_sink_ops jsonl_ops = {"jsonl", jsonl_write, jsonl_flush, jsonl_destroy};

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
