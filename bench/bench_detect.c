/*
 * bench_detect.c — the detector kernels against their peers.
 *
 * For S series (W = 64) registered through the real registry, each "tick" updates every series
 * once through nops_detect_update_range (the layout of a fleet scrape). The window is filled
 * before timing, and the timed ticks are a whole multiple of W so the exact recompute that runs
 * at every ring wrap is paid in full. Peers measured in the same run: the scalar variant on the
 * same data, and the memory bandwidth (a STREAM-style triad, 24 bytes per element) from which
 * the bandwidth-bound update rate = triad bytes/s ÷ bytes touched per update follows.
 */
#include "bench/bench.h"
#include "detect/detect.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define W 64

/* Bytes read + written per point update, by method (state, input value, outputs); method
 * NOPS_METHOD_N is `all` with a seasonal baseline on every series. */
static double bytes_per_update(int method)
{
    const bool season = method == NOPS_METHOD_N;
    if (season)
        method = NOPS_METHOD_ALL;
    const double out = 4 + 4 + 1 + 4 + 4; /* z, ze, flags, ratio written; x read */
    /* meta, age r/w; res read (written only when it shrinks: rarely once warm); the previous
     * value: read from the ring row before this one with a window, `last` r/w without */
    const double common = 2 * 4 + 2 * 4 + 4 + (method == NOPS_METHOD_EWMA ? 2 * 4 : 4);
    const double z = 2 * 4 + 2 * 8 + 2 * 8 + 4; /* ring, sum, sumsq r/w; shift read */
    const double e = 2 * 8 + 2 * 8;            /* em, ev r/w */
    const double c = 4 * 2 * 8 + 3 * 2 * 4 + 2 * 4; /* lm, lv, gm, gv; cp, cn, lc; lage r/w */
    const double sz = 2 * 2 * 4 + 4 + 2 * 4; /* two knots r/w; period read; season age r/w */
    return out + common + (method == NOPS_METHOD_EWMA ? 0 : z) +
           (method == NOPS_METHOD_ZSCORE ? 0 : e) + (method == NOPS_METHOD_ALL ? c : 0) +
           (season ? sz : 0);
}

/* CPU time of this thread: on the shared 2-vCPU machine the wall clock also counts the time
 * other processes held the core; rates per CPU second are printed beside the wall-clock ones. */
static double thread_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Triad a = b + s·c over arrays far larger than the caches; best of 5, bytes/s (wall clock;
 * *cpu_bw: the same per CPU second). */
static double triad_bandwidth(size_t n, double *cpu_bw)
{
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = 0.0;
        b[i] = (double)i;
        c[i] = 1.0 / (double)(i + 1);
    }
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < 5; r++) {
        const double s = 1.0 + r * 1e-3;
        double t0 = bench_seconds(), c0 = thread_seconds();
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
        double t = bench_seconds() - t0, tc = thread_seconds() - c0;
        best = t < best ? t : best;
        best_cpu = tc < best_cpu ? tc : best_cpu;
        __asm__ volatile("" ::"r"(a) : "memory");
    }
    double sink = a[n / 2];
    free(a);
    free(b);
    free(c);
    *cpu_bw = sink >= 0.0 ? 24.0 * (double)n / best_cpu : 0.0;
    return sink >= 0.0 ? 24.0 * (double)n / best : 0.0;
}

typedef struct run_cfg {
    uint32_t series;
    int method;
    nops_detect_variant variant;
    int timed_ticks; /* multiple of W */
} run_cfg;

/* Values: a few noisy arrays, rotated per tick, with the odd spike. */
static float *make_values(uint32_t s, int k)
{
    float *v = malloc((size_t)s * (size_t)k * sizeof *v);
    if (!v)
        return NULL;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < (size_t)s * (size_t)k; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        float u = (float)(x >> 40) * (1.0f / 16777216.0f); /* [0,1) */
        v[i] = 100.0f + 10.0f * (float)(i % 97) + (u - 0.5f) * 4.0f + (u > 0.9999f ? 50.0f : 0);
    }
    return v;
}

/* Updates per second for one configuration; 0 on failure. Also reports the memory figure. */
static double run_one(const run_cfg *rc, const float *vals, int nvals, nops_detect_mem *mem,
                      double *cpu_rate)
{
    nops_detect_params p;
    nops_detect_params_default(&p);
    p.window = W;
    p.method = rc->method == NOPS_METHOD_N ? NOPS_METHOD_ALL : rc->method;
    p.season_points = rc->method == NOPS_METHOD_N ? 1440 : 0; /* a day at 1 min */
    p.variant = rc->variant;
    char err[256];
    nops_detector *det = nops_detect_new(&p, rc->series, err, sizeof err);
    if (!det) {
        fprintf(stderr, "bench detect: %s\n", err);
        return 0.0;
    }
    double rate = 0.0;
    float *z = malloc((size_t)rc->series * sizeof *z), *ze = malloc((size_t)rc->series * sizeof *ze);
    float *ra = malloc((size_t)rc->series * sizeof *ra);
    uint8_t *fl = malloc(rc->series);
    if (!z || !ze || !fl || !ra)
        goto out;
    for (uint32_t i = 0; i < rc->series; i++) {
        uint32_t slot;
        char key[48];
        int kl = snprintf(key, sizeof key, "bench_metric{host=\"h%u\"}", i);
        if (nops_detect_slot(det, nops_detect_key_id(key, (size_t)kl), key, (size_t)kl, 0,
                             &slot) != NOPS_OK || slot != i) {
            fprintf(stderr, "bench detect: registry failed at series %u\n", i);
            goto out;
        }
    }
    nops_detect_out out = {z, ze, fl, ra};
    uint64_t fired = 0;
    for (int t = 0; t < W; t++) /* fill the window */
        nops_detect_update_range(det, 0, rc->series, vals + (size_t)(t % nvals) * rc->series,
                                 &out);
    double t0 = bench_seconds(), c0 = thread_seconds();
    for (int t = 0; t < rc->timed_ticks; t++) {
        nops_detect_update_range(det, 0, rc->series, vals + (size_t)(t % nvals) * rc->series,
                                 &out);
        fired += fl[t % rc->series] & NOPS_DETECT_FIRED;
    }
    double el = bench_seconds() - t0, elc = thread_seconds() - c0;
    rate = (double)rc->series * rc->timed_ticks / el;
    *cpu_rate = (double)rc->series * rc->timed_ticks / elc;
    if (mem)
        nops_detect_memory(det, mem);
    __asm__ volatile("" ::"r"(fired));
out:
    free(z);
    free(ze);
    free(ra);
    free(fl);
    nops_detect_destroy(det);
    return rate;
}

/* "all_detectors" is the default set (rolling z, robust EWMA, CUSUM, one pass): the figure of
 * issue 14's target, ≥ 0.2 G updates/s on one core at S = 100k; "all_with_season" the same
 * with a seasonal baseline (1,440 points) on every series */
static const char *method_fig[] = {"rolling_z", "ewma", "both_one_pass", "all_detectors",
                                   "all_with_season"};

/* The figures of one measured run: the rate beside the scalar kernel's (*scalar_rate, set by
 * the scalar run) and the bandwidth bound, per CPU second too; bytes per series once. */
static void emit_run(const run_cfg *rc, double rate, double cpu_rate, const nops_detect_mem *mem,
                     double bw, double bw_cpu, double *scalar_rate)
{
    const double bpu = bytes_per_update(rc->method);
    const double bound = bw / bpu;
    char extra[256];
    snprintf(extra, sizeof extra,
             "\"variant\":\"%s\",\"series\":%u,\"window\":%d,\"bytes_per_update\":%.0f",
             nops_detect_variant_name(rc->variant), rc->series, W, bpu);
    char fig[64];
    snprintf(fig, sizeof fig, "%s_updates_per_s", method_fig[rc->method]);
    if (rc->variant == NOPS_VARIANT_SCALAR) {
        *scalar_rate = rate;
        bench_emit("detect", fig, rate, "updates/s", "bandwidth_bound", bound, extra);
    } else {
        bench_emit("detect", fig, rate, "updates/s", "scalar", *scalar_rate, extra);
        char fig2[80];
        snprintf(fig2, sizeof fig2, "%s_vs_bandwidth", method_fig[rc->method]);
        bench_emit("detect", fig2, rate, "updates/s", "bandwidth_bound", bound, extra);
        /* the same per CPU second of the kernel and of the triad */
        snprintf(fig2, sizeof fig2, "%s_cpu_time_vs_bandwidth", method_fig[rc->method]);
        bench_emit("detect", fig2, cpu_rate, "updates/s", "bandwidth_bound",
                   bw_cpu / bpu, extra);
    }
    if (rc->method == NOPS_METHOD_ALL && rc->variant == NOPS_VARIANT_SCALAR) {
        const double per = (double)(mem->state_bytes + mem->registry_bytes) / mem->active;
        const double with_keys =
            (double)(mem->state_bytes + mem->registry_bytes + mem->key_bytes) /
            mem->active;
        snprintf(extra, sizeof extra,
                 "\"series\":%u,\"window\":%d,\"capacity\":%u,\"state\":%.0f,"
                 "\"registry\":%.0f,\"keys\":%.0f",
                 rc->series, W, mem->capacity, (double)mem->state_bytes / mem->active,
                 (double)mem->registry_bytes / mem->active,
                 (double)mem->key_bytes / mem->active);
        bench_emit("detect", "bytes_per_series", per, "bytes", "target", 1024.0,
                   extra);
        bench_emit("detect", "bytes_per_series_with_keys", with_keys, "bytes",
                   "target", 1024.0, extra);
    }
}

int bench_detect(const bench_opts *o)
{
    uint32_t sizes[2] = {100000, 16u << 20};
    int nsizes = 2;
    if (o->quick) {
        sizes[0] = 20000;
        nsizes = 1;
    }
    if (o->series) {
        sizes[0] = (uint32_t)o->series;
        nsizes = 1;
    }
    if (o->method) {
        int known = 0;
        for (int m = 0; m <= NOPS_METHOD_N; m++)
            known |= strcmp(o->method, method_fig[m]) == 0;
        if (!known) {
            fprintf(stderr, "bench detect: unknown --method %s\n", o->method);
            return 2;
        }
    }
    fprintf(stderr, "bench detect: measuring memory bandwidth (triad)...\n");
    double bw_cpu = 0.0;
    const double bw = triad_bandwidth(o->quick ? (1u << 22) : (64u << 20), &bw_cpu);
    bench_emit("detect", "memory_bandwidth_triad", bw / 1e9, "GB/s", "none", 0.0,
               "\"bytes_per_element\":24");
    bench_emit("detect", "memory_bandwidth_triad_cpu_time", bw_cpu / 1e9, "GB/s", "none", 0.0,
               "\"bytes_per_element\":24");

    nops_detect_variant variants[3] = {NOPS_VARIANT_SCALAR, NOPS_VARIANT_AVX2,
                                       NOPS_VARIANT_AVX512};
    for (int si = 0; si < nsizes; si++) {
        const uint32_t S = sizes[si];
        const int nvals = 4;
        float *vals = make_values(S, nvals);
        if (!vals) {
            fprintf(stderr, "bench detect: out of memory for %u series\n", S);
            return 1;
        }
        /* enough timed ticks for ~0.3 s at 1 G/s, in whole windows */
        int ticks = (int)((3e8 / S + W - 1) / W) * W;
        if (ticks < W)
            ticks = W;
        if (o->quick)
            ticks = W;
        for (int method = 0; method <= NOPS_METHOD_N; method++) {
            if (o->method && strcmp(o->method, method_fig[method]) != 0)
                continue;
            double scalar_rate = 0.0;
            for (int vi = 0; vi < 3; vi++) {
                nops_detect_variant v = variants[vi];
                if (!nops_detect_variant_supported(v)) {
                    fprintf(stderr, "bench detect: %s not supported on this CPU, skipped\n",
                            nops_detect_variant_name(v));
                    continue;
                }
                if (o->no_scalar && v == NOPS_VARIANT_SCALAR)
                    continue;
                if (o->variant && v != NOPS_VARIANT_SCALAR &&
                    strcmp(o->variant, nops_detect_variant_name(v)) != 0)
                    continue;
                fprintf(stderr, "bench detect: S=%u %s %s...\n", S, method_fig[method],
                        nops_detect_variant_name(v));
                run_cfg rc = {S, method, v, ticks};
                nops_detect_mem mem;
                double cpu_rate = 0.0;
                double rate = run_one(&rc, vals, nvals, &mem, &cpu_rate);
                if (rate <= 0.0) {
                    free(vals);
                    return 1;
                }
                emit_run(&rc, rate, cpu_rate, &mem, bw, bw_cpu, &scalar_rate);
            }
        }
        free(vals);
    }
    return 0;
}
