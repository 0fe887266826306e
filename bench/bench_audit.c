/*
 * bench_audit.c — `neuralops-bench audit`: the audit trail's two paths beside their limits.
 *
 * append: entries/s of nops_audit_append (keyed hash chain, one fsync'ed line each, and the head
 * record outside the data dir replaced durably: a file fsync and a directory fsync more) beside
 * writing and fsync'ing the same number of lines of the same size with write(2) alone — the
 * disk's sync rate is the limit. With a DSN (--dsn or NEURALOPS_TEST_PG_DSN), also appends that go to
 * PostgreSQL audit_logs beside the two bare durable writes per entry (write+fsync of a line,
 * a plain INSERT of the same row into an unconstrained table).
 * verify: entries/s of nops_audit_verify_file (HMAC-SHA256 per entry) beside SHA-256 over the
 * same bytes (the hashing alone, in one pass) and beside parsing the lines with jansson alone.
 */
#include "bench/bench.h"

#include "orchestrate/orchestrate.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *details_of(size_t i)
{
    return json_pack("{s:s, s:I, s:s}", "playbook", "restart-pod", "n", (json_int_t)i, "reason",
                     "p50 latency on checkout/checkout-007 jumped to 300 ms");
}

static nops_secret *g_key; /* the chain's key, in memory (bench_audit makes and frees it) */

static nops_secret *bench_key(void)
{
    return g_key;
}

/* Remove directory `dir` and the files in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[600];
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* n appends through the audit trail (a new chain, its head record in a directory of its own);
 * entries/s. */
static double append_rate(const char *path, const char *dsn, size_t n)
{
    char err[512], heads[] = "/tmp/nops-bench-heads-XXXXXX";
    unlink(path);
    if (!mkdtemp(heads))
        return 0;
    nops_audit *a = nops_audit_open(path, dsn, bench_key(), heads, err, sizeof err);
    if (!a) {
        fprintf(stderr, "neuralops-bench audit: %s\n", err);
        remove_dir(heads);
        return 0;
    }
    double t0 = bench_seconds();
    for (size_t i = 0; i < n; i++) {
        json_t *d = details_of(i);
        if (nops_audit_append(a, "key:ops", "execute", "orch-0123456789abcdef", "executed", d,
                              NULL, err, sizeof err) != NOPS_OK) {
            fprintf(stderr, "neuralops-bench audit: %s\n", err);
            json_decref(d);
            break;
        }
        json_decref(d);
    }
    double el = bench_seconds() - t0;
    nops_audit_close(a);
    remove_dir(heads);
    return (double)n / el;
}

/* The same lines written and fsync'ed one by one with write(2): the sync-rate limit. */
static double raw_sync_rate(const char *audit_path, const char *path, size_t n)
{
    char *text = NULL;
    FILE *in = fopen(audit_path, "r");
    size_t cap = 0;
    ssize_t len = in ? getline(&text, &cap, in) : -1;
    if (in)
        fclose(in);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (len <= 0 || fd < 0) {
        free(text);
        if (fd >= 0)
            close(fd);
        return 0;
    }
    double t0 = bench_seconds();
    for (size_t i = 0; i < n; i++)
        if (write(fd, text, (size_t)len) != len || fsync(fd) != 0)
            break;
    double el = bench_seconds() - t0;
    close(fd);
    free(text);
    unlink(path);
    return (double)n / el;
}

/* The two durable writes an entry needs, bare: a write+fsync of a line of the same size and a
 * plain INSERT of the same row into a table without trigger or key; rows/s. */
static double raw_insert_rate(const char *dsn, const char *path, size_t n)
{
    static const char line[] = "{\"action\":\"execute\",\"actor\":\"key:ops\",\"decision\":"
                               "\"executed\",\"details\":{\"n\":1,\"playbook\":\"restart-pod\"},"
                               "\"hash\":\"0000000000000000000000000000000000000000000000000000000"
                               "000000000\",\"prev_hash\":\"00000000000000000000000000000000000000"
                               "00000000000000000000000000\",\"seq\":1,\"subject\":\"orch-01234"
                               "56789abcdef\",\"ts\":\"2026-11-24T00:00:00.000Z\"}\n";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK || fd < 0) {
        PQfinish(c);
        if (fd >= 0)
            close(fd);
        return 0;
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PQclear(PQexec(c, "DROP TABLE IF EXISTS bench_audit_raw; CREATE TABLE bench_audit_raw "
                      "(seq bigint, ts text, actor text, action text, subject text, decision "
                      "text, details json, prev_hash text, hash text)"));
    char seq[24];
    const char *v[9] = {seq, "2026-11-24T00:00:00.000Z", "key:ops", "execute",
                        "orch-0123456789abcdef", "executed",
                        "{\"n\":1,\"playbook\":\"restart-pod\",\"reason\":\"p50 latency\"}",
                        "0000000000000000000000000000000000000000000000000000000000000000",
                        "0000000000000000000000000000000000000000000000000000000000000000"};
    double t0 = bench_seconds();
    for (size_t i = 0; i < n; i++) {
        snprintf(seq, sizeof seq, "%zu", i + 1);
        if (write(fd, line, sizeof line - 1) != (ssize_t)(sizeof line - 1) || fsync(fd) != 0)
            break;
        PQclear(PQexecParams(c, "INSERT INTO bench_audit_raw VALUES ($1::bigint, $2, $3, $4, $5, "
                                "$6, $7::json, $8, $9)",
                             9, NULL, v, NULL, NULL, 0));
    }
    double el = bench_seconds() - t0;
    close(fd);
    unlink(path);
    PQclear(PQexec(c, "DROP TABLE bench_audit_raw"));
    PQfinish(c);
    return (double)n / el;
}

/* Peers of verify over the file's bytes: SHA-256 alone, and jansson parsing alone (lines/s). */
static void verify_peers(const char *path, size_t n, double *sha_rate, double *parse_rate)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned char md[32];
    unsigned int mdn;
    double t0 = bench_seconds();
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    while (f && (len = getline(&line, &cap, f)) > 0) { /* one digest per line, as verify does */
        EVP_DigestInit_ex(c, EVP_sha256(), NULL);
        EVP_DigestUpdate(c, line, (size_t)len);
        EVP_DigestFinal_ex(c, md, &mdn);
    }
    EVP_MD_CTX_free(c);
    *sha_rate = (double)n / (bench_seconds() - t0);
    if (f)
        rewind(f);
    t0 = bench_seconds();
    while (f && getline(&line, &cap, f) > 0)
        json_decref(json_loads(line, 0, NULL));
    *parse_rate = (double)n / (bench_seconds() - t0);
    free(line);
    if (f)
        fclose(f);
}

int bench_audit(const bench_opts *o)
{
    const size_t n_sync = o->quick ? 200 : 5000;
    const size_t n_verify = o->quick ? 2000 : 200000; /* written on /dev/shm */
    char dir[] = "/tmp/nops-bench-audit-XXXXXX", path[200], raw[200];
    if (!mkdtemp(dir) || !(g_key = nops_secret_from_bytes("neuralops-bench", 15)))
        return 1;
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    snprintf(raw, sizeof raw, "%s/raw.jsonl", dir);

    double app = append_rate(path, NULL, n_sync);
    double sync = raw_sync_rate(path, raw, n_sync);
    char extra[160];
    snprintf(extra, sizeof extra, "\"entries\":%zu", n_sync);
    bench_emit("audit", "append_file", app, "entries/s", "write+fsync same lines", sync, extra);

    const char *dsn = o->dsn ? o->dsn : getenv("NEURALOPS_TEST_PG_DSN");
    if (dsn && *dsn) {
        PGconn *c = PQconnectdb(dsn);
        PQclear(PQexec(c, "SET client_min_messages = warning; DROP TABLE IF EXISTS audit_logs"));
        PQfinish(c);
        double pg = append_rate(path, dsn, n_sync);
        double ins = raw_insert_rate(dsn, raw, n_sync);
        bench_emit("audit", "append_file_and_postgres", pg, "entries/s",
                   "write+fsync and plain INSERT per entry", ins, extra);
        c = PQconnectdb(dsn);
        PQclear(PQexec(c, "SET client_min_messages = warning; DROP TABLE IF EXISTS audit_logs"));
        PQfinish(c);
    }

    /* a long chain for verify: one fsync per entry makes it slow to write on a disk, so it is
     * written on /dev/shm (tmpfs, where fsync returns at once) when there is one */
    char err[512];
    unlink(path);
    char shm[] = "/dev/shm/nops-bench-audit-XXXXXX";
    bool on_shm = mkdtemp(shm) != NULL;
    if (on_shm)
        snprintf(path, sizeof path, "%s/audit.jsonl", shm);
    nops_audit *a = nops_audit_open(path, NULL, bench_key(), NULL, err, sizeof err);
    if (!a) {
        fprintf(stderr, "neuralops-bench audit: %s\n", err);
        nops_secret_destroy(g_key);
        return 1;
    }
    fprintf(stderr, "audit: writing a chain of %zu entries for verify...\n", n_verify);
    for (size_t i = 0; i < n_verify; i++) {
        json_t *d = details_of(i);
        nops_audit_append(a, "key:ops", "execute", "orch-0123456789abcdef", "executed", d, NULL,
                          err, sizeof err);
        json_decref(d);
    }
    nops_audit_close(a);
    nops_audit_report r;
    double t0 = bench_seconds();
    nops_err e = nops_audit_verify_file(path, bench_key(), &r);
    double ver = (double)r.entries / (bench_seconds() - t0);
    if (e != NOPS_OK || r.entries != n_verify)
        fprintf(stderr, "neuralops-bench audit: verify found %s\n", r.why);
    double sha, parse;
    verify_peers(path, n_verify, &sha, &parse);
    snprintf(extra, sizeof extra, "\"entries\":%zu,\"jansson_parse_lines_per_s\":%.0f", n_verify,
             parse);
    bench_emit("audit", "verify_file", ver, "entries/s", "SHA-256 of each line alone", sha,
               extra);
    unlink(path);
    if (on_shm)
        rmdir(shm);
    rmdir(dir);
    nops_secret_destroy(g_key);
    g_key = NULL;
    return 0;
}
