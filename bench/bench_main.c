/*
 * bench_main.c — `neuralops-bench <suite>`: every figure is printed as one JSON line beside
 * the peer or physical limit measured in the same run.
 */
#include "bench/bench.h"
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void bench_emit(const char *suite, const char *figure, double value, const char *unit,
                const char *peer, double peer_value, const char *extra_json)
{
    printf("{\"suite\":\"%s\",\"figure\":\"%s\",\"value\":%.6g,\"unit\":\"%s\",\"peer\":\"%s\","
           "\"peer_value\":%.6g,\"ratio\":%.4f%s%s}\n",
           suite, figure, value, unit, peer, peer_value, peer_value > 0 ? value / peer_value : 0.0,
           extra_json && *extra_json ? "," : "", extra_json ? extra_json : "");
    fflush(stdout);
}

double bench_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: neuralops-bench <suite> [options]\n\n"
            "Suites:\n"
            "  detect   detector kernels: updates/s per variant and method at S=100k and 16M\n"
            "           series (W=64, one thread), beside the scalar kernel and the memory\n"
            "           bandwidth limit (a triad); bytes per series\n"
            "  ingest   parsers (MB/s beside a memchr scan), end-to-end points/s over a\n"
            "           pre-filled mock-cluster topic beside a bare consumer, and\n"
            "           ingest-to-signal latency p50/p99 at half that rate, the producer\n"
            "           in a process of its own (`neuralops-bench ingest-produce`, which the\n"
            "           suite runs itself) and, for comparison, in the bench's process\n"
            "  vectorize  runs/s of redact+embed from JSONL beside read+parse, and from\n"
            "           PostgreSQL beside the raw COPY row rate (--dsn or NEURALOPS_TEST_PG_DSN)\n"
            "  recommend  quality first: top-1 (all, trap kinds, unseen words) and the unseen-\n"
            "           kind confidence ratio at 350 and 20 runs a kind beside an exact kNN;\n"
            "           then at 100k and 1M runs: recommend path and POST /recommend p50/p99\n"
            "           beside the raw FAISS search and exact search, recall@10\n"
            "  http     wrk against POST /analyze and GET /signals beside a bare\n"
            "           libmicrohttpd handler in the same process\n"
            "  audit    audit-trail appends (fsync'ed; and to PostgreSQL with a DSN) beside\n"
            "           raw write+fsync and plain INSERTs; verify beside SHA-256 alone\n"
            "  quality  signal precision at the defaults (docs/quality.md): the NAB early-\n"
            "           detection score on a labelled corpus, recall, false signals per 100k\n"
            "           points and incident grouping on a 100-host fleet, beside a rolling\n"
            "           z-score (4 sigma, 60 points) and a windowed Gaussian (1,000 points)\n"
            "  loop     incidents/s through the pipeline with the incident hook attaching\n"
            "           recommendations (nops_recommend_incident, a 100k-run index) beside the\n"
            "           same pipeline and data without the hook; the hook's time per incident\n\n"
            "Options:\n"
            "  --quick          small sizes (a smoke run, seconds)\n"
            "  --variant NAME   detect: only scalar|avx2|avx512; ingest: only parse (the\n"
            "                   parsers), identity (parse and parse + series identity), e2e\n"
            "                   (without the latency runs) or latency (the 100-line end-to-end\n"
            "                   rate, then the latency runs at half of it)\n"
            "  --method NAME    detect: only rolling_z|ewma|both_one_pass|all_detectors|\n"
            "                   all_with_season\n"
            "  --no-scalar      detect: skip the scalar peer (S = 16M runs it for minutes)\n"
            "  --series N       only this series (or runs; loop: index runs) count\n"
            "  --dsn DSN        PostgreSQL for the vectorize and audit suites\n"
            "  --seed N         generator seed of the quality suite (default 14; recommend's\n"
            "                   quality lines: 18)\n"
            "  --set S.K=V      quality: run the engine with this [detect] or [correlate]\n"
            "                   setting instead of its default (repeatable); recommend: a\n"
            "                   [recommend] setting, the quality lines only\n"
            "  --events         quality: list every fleet event and what became of it\n"
            "  -h, --help       this help\n\n"
            "Output: one JSON object per line: suite, figure, value, unit, peer, peer_value,\n"
            "ratio, plus context fields. Progress goes to stderr.\n");
}

int main(int argc, char **argv)
{
    (void)nops_alloc_tune_process(); /* as the engine's main does */
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "ingest-produce") == 0) /* the ingest suite's producer process */
        return bench_ingest_produce(argc - 2, argv + 2);
    bench_opts o = {0};
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            o.quick = true;
        } else if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
            o.variant = argv[++i];
        } else if (strcmp(argv[i], "--method") == 0 && i + 1 < argc) {
            o.method = argv[++i];
        } else if (strcmp(argv[i], "--no-scalar") == 0) {
            o.no_scalar = true;
        } else if (strcmp(argv[i], "--series") == 0 && i + 1 < argc) {
            char *end;
            o.series = strtoull(argv[++i], &end, 10);
            if (*end || o.series == 0 || o.series > (1ull << 28)) {
                fprintf(stderr, "neuralops-bench: --series expects 1..268435456\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            char *end;
            o.seed = strtoull(argv[++i], &end, 10);
            if (*end || o.seed == 0) {
                fprintf(stderr, "neuralops-bench: --seed expects a positive integer\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--events") == 0) {
            o.events = true;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            if (o.n_sets == (int)(sizeof o.sets / sizeof o.sets[0])) {
                fprintf(stderr, "neuralops-bench: at most 16 --set options\n");
                return 2;
            }
            o.sets[o.n_sets++] = argv[++i];
        } else if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc) {
            o.dsn = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "neuralops-bench: unknown option %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (strcmp(argv[1], "detect") == 0)
        return bench_detect(&o);
    if (strcmp(argv[1], "ingest") == 0)
        return bench_ingest(&o);
    if (strcmp(argv[1], "vectorize") == 0)
        return bench_vectorize(&o);
    if (strcmp(argv[1], "recommend") == 0)
        return bench_recommend(&o);
    if (strcmp(argv[1], "audit") == 0)
        return bench_audit(&o);
    if (strcmp(argv[1], "http") == 0)
        return bench_http(&o);
    if (strcmp(argv[1], "quality") == 0)
        return bench_quality(&o);
    if (strcmp(argv[1], "loop") == 0)
        return bench_loop(&o);
    fprintf(stderr, "neuralops-bench: unknown suite \"%s\" (see --help)\n", argv[1]);
    return 2;
}
