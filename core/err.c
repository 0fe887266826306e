/*
 * err.c — error names and sentences from the NOPS_ERRORS X-macro, plus clocks.
 */
#include "core/core.h"

#include <stdio.h>
#include <time.h>

const char *nops_strerror(nops_err err)
{
    switch (err) {
#define NOPS__ERR_TEXT(name, code, text)                                                       \
    case NOPS_##name:                                                                          \
        return text;
        NOPS_ERRORS(NOPS__ERR_TEXT)
#undef NOPS__ERR_TEXT
    }
    return "unknown error";
}

const char *nops_err_name(nops_err err)
{
    switch (err) {
#define NOPS__ERR_NAME(name, code, text)                                                       \
    case NOPS_##name:                                                                          \
        return "NOPS_" #name;
        NOPS_ERRORS(NOPS__ERR_NAME)
#undef NOPS__ERR_NAME
    }
    return "NOPS_UNKNOWN";
}

void nops_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (!errstr || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

uint64_t nops_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t nops_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + (int64_t)ts.tv_nsec;
}

void nops_format_ts(int64_t ns, char *buf, size_t cap)
{
    int64_t sec = ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
    int64_t ms = (ns - sec * 1000000000) / 1000000;
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)ms);
}
