/*
 * cfgvalue.c — the text of one config value, as written, to the value a setting is given.
 *
 * In the config file, in this order:
 *   1. Quotes. A value that starts with '"' ends at the next unescaped '"'; inside, \" is a
 *      quote and \\ a backslash, and '#' and ';' are ordinary characters. After the closing
 *      quote only blanks or a comment may follow.
 *   2. Inline comments. In an unquoted value, '#' or ';' at its start or after a blank starts a
 *      comment (so `60   # rolling window W` is 60, while `a#b` and `x;y` stay whole).
 *   3. ${VAR} is replaced by the environment variable VAR (quoted or not); an unset variable is
 *      an error (an empty one is the empty string); `$${` is a literal `${`.
 *   4. An unquoted value that then starts with '@' is the name of a file whose content is the
 *      value (a secret mounted as a file): read whole, one trailing newline (\n or \r\n)
 *      removed; it must be a regular file under 64 KiB without NUL bytes. `@@` is a literal '@'.
 * Environment variables (NEURALOPS_<SECTION>_<KEY>) take step 4 only. Messages name the setting
 * and the file or variable; none ever shows a file's content.
 */
#include "core/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Append n bytes to out[*o], keeping room for the NUL; false when it does not fit. */
static bool put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n + 1 > cap)
        return false;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
    return true;
}

/* Step 1 and 2: the value's text without quotes or comment, into out; *quoted says which. */
static nops_err unquote(const char *raw, char *out, size_t cap, bool *quoted, const char *what,
                        char *errstr, size_t errstr_size)
{
    size_t o = 0;
    out[0] = '\0';
    *quoted = raw[0] == '"';
    if (!*quoted) {
        size_t n = 0;
        for (; raw[n]; n++)
            if ((raw[n] == '#' || raw[n] == ';') && (n == 0 || raw[n - 1] == ' ' ||
                                                     raw[n - 1] == '\t'))
                break;
        while (n > 0 && (raw[n - 1] == ' ' || raw[n - 1] == '\t'))
            n--;
        if (!put(out, cap, &o, raw, n))
            goto too_long;
        return NOPS_OK;
    }
    const char *p = raw + 1;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        if (!put(out, cap, &o, p, 1))
            goto too_long;
    }
    if (*p != '"') {
        nops_errf(errstr, errstr_size, "%s: the quoted value has no closing quote", what);
        return NOPS_PARSE;
    }
    for (p++; *p == ' ' || *p == '\t'; p++)
        ;
    if (*p && *p != '#' && *p != ';') {
        nops_errf(errstr, errstr_size, "%s: text after the closing quote (put a comment after "
                  "'#' or ';', or quote the whole value)", what);
        return NOPS_PARSE;
    }
    return NOPS_OK;
too_long:
    nops_errf(errstr, errstr_size, "%s: value longer than %zu bytes", what, cap - 1);
    return NOPS_RANGE;
}

/* Step 3: ${VAR} expanded from in into out. */
static nops_err expand(const char *in, char *out, size_t cap, const char *what, char *errstr,
                       size_t errstr_size)
{
    size_t o = 0;
    out[0] = '\0';
    for (const char *p = in; *p;) {
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
            if (!put(out, cap, &o, "${", 2))
                goto too_long;
            p += 3;
            continue;
        }
        if (p[0] != '$' || p[1] != '{') {
            if (!put(out, cap, &o, p++, 1))
                goto too_long;
            continue;
        }
        const char *name = p + 2, *close = strchr(name, '}');
        size_t len = close ? (size_t)(close - name) : 0;
        bool ok = close && len > 0 && len < 256 && !(name[0] >= '0' && name[0] <= '9');
        for (size_t i = 0; ok && i < len; i++)
            ok = name[i] == '_' || (name[i] >= 'A' && name[i] <= 'Z') ||
                 (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9');
        if (!ok) {
            nops_errf(errstr, errstr_size, "%s: \"${\" must be followed by a variable name and "
                      "\"}\" (write \"$${\" for a literal \"${\")", what);
            return NOPS_PARSE;
        }
        char var[256];
        memcpy(var, name, len);
        var[len] = '\0';
        const char *v = getenv(var);
        if (!v) {
            nops_errf(errstr, errstr_size, "%s: environment variable %s is not set", what, var);
            return NOPS_NOTFOUND;
        }
        if (!put(out, cap, &o, v, strlen(v)))
            goto too_long;
        p = close + 1;
    }
    return NOPS_OK;
too_long:
    nops_errf(errstr, errstr_size, "%s: value longer than %zu bytes after ${...} expansion", what,
              cap - 1);
    return NOPS_RANGE;
}

/* Step 4: the content of file `path` into out, one trailing newline removed. */
static nops_err read_secret(const char *path, char *out, size_t cap, const char *what,
                            char *errstr, size_t errstr_size)
{
    /* non-blocking, so a FIFO or a device named by mistake cannot hang the start */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        nops_errf(errstr, errstr_size, "%s: cannot read the value's file %s: %s", what, path,
                  strerror(errno));
        if (fd >= 0)
            close(fd);
        return NOPS_IO;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size >= cap) {
        nops_errf(errstr, errstr_size, "%s: the value's file %s is %s", what, path,
                  S_ISREG(st.st_mode) ? "too large (64 KiB at most)" : "not a regular file");
        close(fd);
        return NOPS_INVAL;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            nops_errf(errstr, errstr_size, "%s: cannot read the value's file %s: %s", what,
                      path, strerror(errno));
            close(fd);
            return NOPS_IO;
        }
        if (r == 0 || (n += (size_t)r) == cap - 1)
            break;
    }
    close(fd);
    if (n == cap - 1) {
        nops_errf(errstr, errstr_size, "%s: the value's file %s is too large (64 KiB at most)",
                  what, path);
        return NOPS_INVAL;
    }
    if (memchr(out, '\0', n)) {
        nops_errf(errstr, errstr_size, "%s: the value's file %s holds a NUL byte", what, path);
        return NOPS_INVAL;
    }
    if (n > 0 && out[n - 1] == '\n')
        n -= (n > 1 && out[n - 2] == '\r') ? 2 : 1;
    out[n] = '\0';
    return NOPS_OK;
}

nops_err nops__cfg_value(const char *raw, bool from_file, char *out, size_t cap,
                         const char *what, bool *from_secret_file, char *errstr,
                         size_t errstr_size)
{
    *from_secret_file = false;
    char *a = nops_malloc(cap), *b = nops_malloc(cap);
    nops_err err = a && b ? NOPS_OK : NOPS_NOMEM;
    bool quoted = false;
    if (err != NOPS_OK)
        nops_errf(errstr, errstr_size, "%s: out of memory", what);
    const char *v = raw;
    if (err == NOPS_OK && from_file) {
        err = unquote(raw, a, cap, &quoted, what, errstr, errstr_size);
        if (err == NOPS_OK)
            err = expand(a, b, cap, what, errstr, errstr_size);
        v = b;
    }
    if (err == NOPS_OK && !quoted && v[0] == '@' && v[1] != '@') {
        *from_secret_file = true;
        err = read_secret(v + 1, out, cap, what, errstr, errstr_size);
    } else if (err == NOPS_OK) {
        const char *src = !quoted && v[0] == '@' ? v + 1 : v; /* "@@x" is "@x" */
        size_t len = strlen(src);
        if (len + 1 > cap) {
            nops_errf(errstr, errstr_size, "%s: value longer than %zu bytes", what, cap - 1);
            err = NOPS_RANGE;
        } else {
            memcpy(out, src, len + 1);
        }
    }
    nops_free(a);
    nops_free(b);
    return err;
}
