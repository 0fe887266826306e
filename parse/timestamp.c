/*
 * timestamp.c — strict timestamp parsing (ISO-8601 variants and epoch numbers).
 *
 * Calendar arithmetic uses the days-from-civil formula (proleptic Gregorian), so no libc
 * time-zone state is touched and the parser is re-entrant.
 */
#include "parse/parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Read exactly n digits at *p. */
static bool digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || (unsigned)((*p)[0] - '0') > 9)
            return false;
        v = v * 10 + ((*p)[0] - '0');
        (*p)++;
    }
    *out = v;
    return true;
}

static nops_err parse_iso(const char *s, const char *end, int64_t *ns, const char **reason)
{
    const char *p = s;
    int Y, M, D, h = 0, mi = 0, sec = 0;
    *reason = "timestamp is not ISO-8601 (YYYY-MM-DDTHH:MM:SS)";
    if (!digits(&p, end, 4, &Y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &M) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &D))
        return NOPS_PARSE;
    if (Y < 1678 || Y > 2261) {
        *reason = "timestamp year is outside 1678..2261 (the int64 nanosecond range)";
        return NOPS_PARSE;
    }
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || (unsigned)D > mdays[M - 1] + (M == 2 && leap(Y))) {
        *reason = "timestamp has an impossible date";
        return NOPS_PARSE;
    }
    int64_t frac_ns = 0, offset_s = 0;
    if (p < end) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return NOPS_PARSE;
        p++;
        if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi))
            return NOPS_PARSE;
        if (p < end && *p == ':') {
            p++;
            if (!digits(&p, end, 2, &sec))
                return NOPS_PARSE;
        }
        if (h > 23 || mi > 59 || sec > 60) {
            *reason = "timestamp has an impossible time of day";
            return NOPS_PARSE;
        }
        if (p < end && (*p == '.' || *p == ',')) {
            p++;
            int nd = 0;
            int64_t scale = 100000000;
            while (p < end && (unsigned)(*p - '0') <= 9) {
                frac_ns += (*p - '0') * scale;
                scale /= 10;
                p++;
                nd++;
            }
            if (nd == 0)
                return NOPS_PARSE;
        }
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!digits(&p, end, 2, &oh))
                return NOPS_PARSE;
            if (p < end && *p == ':')
                p++;
            if (p < end && !digits(&p, end, 2, &om))
                return NOPS_PARSE;
            if (oh > 23 || om > 59) {
                *reason = "timestamp has an impossible UTC offset";
                return NOPS_PARSE;
            }
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (p != end)
        return NOPS_PARSE;
    int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 +
                   sec - offset_s;
    *ns = secs * 1000000000 + frac_ns;
    return NOPS_OK;
}

static nops_err parse_epoch(const char *s, const char *end, int64_t *ns, const char **reason)
{
    const char *p = s;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    const char *digits_start = p;
    uint64_t v = 0;
    while (p < end && (unsigned)(*p - '0') <= 9) {
        if (v > (UINT64_MAX - 9) / 10) {
            *reason = "epoch timestamp is too large";
            return NOPS_PARSE;
        }
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == digits_start) {
        *reason = "timestamp is neither ISO-8601 nor an epoch number";
        return NOPS_PARSE;
    }
    if (p < end && *p == '.') { /* decimal seconds */
        p++;
        int64_t frac = 0, scale = 100000000;
        const char *fs = p;
        while (p < end && (unsigned)(*p - '0') <= 9) {
            frac += (*p++ - '0') * scale;
            scale /= 10;
        }
        if (p == fs || p != end || v > 9000000000ull) {
            *reason = "timestamp is neither ISO-8601 nor an epoch number";
            return NOPS_PARSE;
        }
        int64_t t = (int64_t)v * 1000000000 + frac;
        *ns = neg ? -t : t;
        return NOPS_OK;
    }
    if (p != end) {
        *reason = "timestamp is neither ISO-8601 nor an epoch number";
        return NOPS_PARSE;
    }
    uint64_t t;
    if (v < 100000000000ull)
        t = v * 1000000000ull;
    else if (v < 100000000000000ull)
        t = v * 1000000ull;
    else if (v < 100000000000000000ull)
        t = v * 1000ull;
    else
        t = v;
    if (t > (uint64_t)INT64_MAX) {
        *reason = "epoch timestamp is too large";
        return NOPS_PARSE;
    }
    *ns = neg ? -(int64_t)t : (int64_t)t;
    return NOPS_OK;
}

nops_err nops_ingest_parse_timestamp(const char *s, size_t len, int64_t *ns, const char **reason)
{
    const char *r = "empty timestamp";
    if (!reason)
        reason = &r;
    if (!s || len == 0) {
        *reason = r;
        return NOPS_PARSE;
    }
    const char *end = s + len;
    /* ISO starts with 4 digits and a dash; anything else is tried as an epoch number */
    if (len >= 10 && s[4] == '-' && (unsigned)(s[0] - '0') <= 9)
        return parse_iso(s, end, ns, reason);
    return parse_epoch(s, end, ns, reason);
}

nops_reject nops_ingest_check_time(int64_t ts_ns, int64_t now_ns, int64_t max_past_s,
                                   int64_t max_future_s, const char **detail)
{
    /* the distance in unsigned arithmetic: exact for any two int64 times, never overflowing */
    const uint64_t d = ts_ns > now_ns ? (uint64_t)ts_ns - (uint64_t)now_ns
                                      : (uint64_t)now_ns - (uint64_t)ts_ns;
    if (max_future_s > 0 && ts_ns > now_ns && d > (uint64_t)max_future_s * 1000000000ull) {
        if (detail)
            *detail = "timestamp is further ahead of the wall clock than pipeline.max_future_s";
        return NOPS_REJECT_TIMESTAMP;
    }
    if (max_past_s > 0 && ts_ns < now_ns && d > (uint64_t)max_past_s * 1000000000ull) {
        if (detail)
            *detail = "timestamp is further behind the wall clock than pipeline.max_past_s";
        return NOPS_REJECT_TIMESTAMP;
    }
    return NOPS_REJECT_NONE;
}
