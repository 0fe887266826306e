/*
 * log.c — levelled logging as text or JSON lines.
 *
 * A line is formatted into a stack buffer and handed to the sink in one call, so lines from
 * different threads never interleave. JSON lines are built with jansson's string escaping rules
 * in mind but by hand: the message is the only free text and is escaped here byte by byte.
 */
#include "core/core.h"

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

static size_t json_escape(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && o + 7 < cap; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (c < 0x20) {
            o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return o;
}

void nops_vlog(nops_log_level level, const char *module, const char *fmt, va_list ap)
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

    char line[2048 + 256];
    if (atomic_load(&g_format) == NOPS_LOG_JSON) {
        char esc[2048];
        json_escape(esc, sizeof esc, msg);
        snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}",
                 when, level_names[level], module, esc);
    } else {
        snprintf(line, sizeof line, "%s %-5s %s: %s", when, level_names[level], module, msg);
    }

    pthread_mutex_lock(&g_sink_lock);
    if (g_sink)
        g_sink(g_sink_ud, level, line);
    else
        fprintf(stderr, "%s\n", line);
    pthread_mutex_unlock(&g_sink_lock);
}

void nops_log(nops_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nops_vlog(level, module, fmt, ap);
    va_end(ap);
}
