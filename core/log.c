/*
 * log.c — levelled logging as text or JSON lines.
 *
 * One entry is one line, whatever it says: a message may come from anywhere (a JWT subject, a
 * PostgreSQL error spanning lines, a librdkafka report), so the logger itself escapes every free
 * field before it builds the line, in both formats. Text: newline, CR and tab as \n \r \t, the
 * other C0 controls and DEL as \xNN, and the Unicode line breaks U+0085, U+2028 and U+2029 as
 * \uNNNN (a viewer may break a line on them). JSON: \" \\ \n, \u00NN for the other controls,
 * \u2028 and \u2029, and U+FFFD for bytes that are not UTF-8, so the line stays valid JSON.
 * A line is formatted into a stack buffer and handed to the sink in one call, so lines from
 * different threads never interleave.
 */
#include "core/core.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static atomic_int g_level = NOPS_LOG_INFO;
static atomic_int g_format = NOPS_LOG_TEXT;
static pthread_mutex_t g_sink_lock = PTHREAD_MUTEX_INITIALIZER;
static nops_log_sink_fn *g_sink;
static void *g_sink_ud;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void nops_log_configure(nops_log_level level, nops_log_format format)
{
    atomic_store(&g_level, (int)level);
    atomic_store(&g_format, (int)format);
}

void nops_log_set_sink(nops_log_sink_fn *fn, void *userdata)
{
    pthread_mutex_lock(&g_sink_lock);
    g_sink = fn;
    g_sink_ud = userdata;
    pthread_mutex_unlock(&g_sink_lock);
}

nops_log_level nops_log_get_level(void)
{
    return (nops_log_level)atomic_load(&g_level);
}

nops_err nops_log_level_parse(const char *s, nops_log_level *out)
{
    for (int i = 0; i <= NOPS_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (nops_log_level)i;
            return NOPS_OK;
        }
    }
    return NOPS_INVAL;
}

/* The valid UTF-8 sequence at p[0..n) (its length), or 0 when p[0] does not start one. */
static size_t utf8_at(const unsigned char *p, size_t n)
{
    size_t l = nops_utf8_valid_prefix((const char *)p, n < 4 ? n : 4);
    if (l == 0)
        return 0;
    size_t want = p[0] < 0x80 ? 1 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
    return l >= want ? want : 0;
}

/*
 * Escape src into dst (cap bytes, NUL-terminated) for `format`; stops early, on a whole escape,
 * when dst is full. Returns the bytes written.
 */
static size_t log_escape(char *dst, size_t cap, const char *src, nops_log_format format)
{
    const bool json = format == NOPS_LOG_JSON;
    const unsigned char *p = (const unsigned char *)src;
    size_t n = strlen(src), o = 0;
    for (size_t i = 0; i < n && o + 8 < cap;) {
        unsigned char c = p[i];
        char e[8] = "";
        size_t take = 1;
        if (c == '\n' || (!json && (c == '\r' || c == '\t')))
            snprintf(e, sizeof e, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        else if (json && (c == '"' || c == '\\'))
            snprintf(e, sizeof e, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            snprintf(e, sizeof e, json ? "\\u%04x" : "\\x%02x", c);
        else if (c >= 0x80) {
            take = utf8_at(p + i, n - i);
            unsigned cp = take == 2 ? ((c & 0x1Fu) << 6 | (p[i + 1] & 0x3Fu))
                          : take == 3 ? ((c & 0x0Fu) << 12 | (p[i + 1] & 0x3Fu) << 6 |
                                         (p[i + 2] & 0x3Fu))
                                      : 0;
            if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
                snprintf(e, sizeof e, "\\u%04x", cp);
            else if (take == 0 && json) { /* not UTF-8: JSON must stay valid */
                snprintf(e, sizeof e, "\xEF\xBF\xBD");
                take = 1;
            } else if (take == 0)
                take = 1; /* text: the byte as it is (it breaks no line) */
        }
        if (e[0]) {
            size_t el = strlen(e);
            memcpy(dst + o, e, el);
            o += el;
        } else {
            memcpy(dst + o, p + i, take);
            o += take;
        }
        i += take;
    }
    dst[o] = '\0';
    return o;
}

/* The fields after the message, in `format`, into out[cap] (NUL-terminated). */
static void log_fields(char *out, size_t cap, const nops_log_field *f, size_t n,
                       nops_log_format format)
{
    const bool json = format == NOPS_LOG_JSON;
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < 16 && o + 1 < cap; i++) {
        char key[64], val[1100];
        log_escape(key, sizeof key, f[i].key ? f[i].key : "field", format);
        switch (f[i].type) {
        case NOPS_LOGF_STR: {
            char esc[1024];
            const char *s = f[i].str ? f[i].str : "-";
            log_escape(esc, sizeof esc, s, format);
            bool quote = json || strpbrk(esc, " =\"") != NULL || esc[0] == '\0';
            if (!json && quote) { /* text: quoted, its own quotes and backslashes escaped */
                char q[1024];
                size_t k = 0;
                for (const char *p = esc; *p && k + 3 < sizeof q; p++) {
                    if (*p == '"') /* the escaped text has no other quote to protect */
                        q[k++] = '\\';
                    q[k++] = *p;
                }
                q[k] = '\0';
                snprintf(val, sizeof val, "\"%s\"", q);
            } else
                snprintf(val, sizeof val, quote ? "\"%s\"" : "%s", esc);
            break;
        }
        case NOPS_LOGF_INT:
            snprintf(val, sizeof val, "%lld", (long long)f[i].i);
            break;
        case NOPS_LOGF_NUM:
            snprintf(val, sizeof val, "%.3f", isfinite(f[i].num) ? f[i].num : 0.0);
            break;
        case NOPS_LOGF_BOOL:
        default:
            snprintf(val, sizeof val, "%s", f[i].i ? "true" : "false");
            break;
        }
        int w = snprintf(out + o, cap - o, json ? ",\"%s\":%s" : " %s=%s", key, val);
        if (w < 0 || (size_t)w >= cap - o) { /* does not fit whole: leave it out */
            out[o] = '\0';
            break;
        }
        o += (size_t)w;
    }
}

static void log_entry(nops_log_level level, const char *module, const nops_log_field *fields,
                      size_t n_fields, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load(&g_level) || level >= NOPS_LOG_OFF)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    const nops_log_format format = (nops_log_format)atomic_load(&g_format);
    char esc[4096], mod[96], extra[2048], line[4096 + 2048 + 256];
    log_escape(esc, sizeof esc, msg, format);
    log_escape(mod, sizeof mod, module ? module : "-", format);
    log_fields(extra, sizeof extra, fields, n_fields, format);
    if (format == NOPS_LOG_JSON)
        snprintf(line, sizeof line,
                 "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"%s}", when,
                 level_names[level], mod, esc, extra);
    else
        snprintf(line, sizeof line, "%s %-5s %s: %s%s", when, level_names[level], mod, esc,
                 extra);

    pthread_mutex_lock(&g_sink_lock);
    if (g_sink)
        g_sink(g_sink_ud, level, line);
    else
        fprintf(stderr, "%s\n", line);
    pthread_mutex_unlock(&g_sink_lock);
}

void nops_vlog(nops_log_level level, const char *module, const char *fmt, va_list ap)
{
    log_entry(level, module, NULL, 0, fmt, ap);
}

void nops_log_fields(nops_log_level level, const char *module, const nops_log_field *fields,
                     size_t n_fields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_entry(level, module, fields, n_fields, fmt, ap);
    va_end(ap);
}

void nops_log(nops_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nops_vlog(level, module, fmt, ap);
    va_end(ap);
}

bool nops_ratelimit_due(nops_ratelimit *rl, int64_t now_ns, uint64_t *missed)
{
    if (rl->last_ns && now_ns - rl->last_ns < NOPS_RATELIMIT_NS) {
        rl->suppressed++;
        return false;
    }
    *missed = rl->suppressed;
    rl->suppressed = 0;
    rl->last_ns = now_ns ? now_ns : 1; /* 0 means never */
    return true;
}

void nops_log_kafka(const struct rd_kafka_s *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    nops_log(level <= 3 ? NOPS_LOG_ERROR : level <= 5 ? NOPS_LOG_WARN
             : level == 6            ? NOPS_LOG_INFO
                                     : NOPS_LOG_DEBUG,
             "kafka", "%s: %s", fac ? fac : "-", buf ? buf : "");
}
