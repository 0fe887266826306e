/*
 * audit_util.h — what test_audit.c and test_audit_pg.c share (header-only, tests only; include
 * after cmocka.h): a scratch directory with data/ (the audit files), keys/engine.key (the engine
 * key, a real key file) and keys/audit-heads (its head records), filling a trail, running
 * `neuralops audit verify`, and rewriting a chain the way an attacker without the key would:
 * recomputing every hash with plain SHA-256 (the unkeyed formula of earlier versions).
 */
#ifndef NOPS_TESTS_AUDIT_UTIL_H
#define NOPS_TESTS_AUDIT_UTIL_H

#include "orchestrate/orchestrate.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char g_dir[] = "/tmp/nops-audit-XXXXXX";
static char g_data[64], g_keyfile[96], g_heads[128], g_other_key[96];
static nops_secret *g_key;

static inline int au_setup(void **state)
{
    (void)state;
    if (!mkdtemp(g_dir))
        return -1;
    char err[256], keys[64];
    snprintf(g_data, sizeof g_data, "%s/data", g_dir);
    snprintf(keys, sizeof keys, "%s/keys", g_dir);
    snprintf(g_keyfile, sizeof g_keyfile, "%s/engine.key", keys);
    snprintf(g_other_key, sizeof g_other_key, "%s/other/engine.key", g_dir);
    nops_audit_head_dir_for(g_keyfile, g_heads, sizeof g_heads);
    if (mkdir(g_data, 0750) != 0 || mkdir(keys, 0700) != 0)
        return -1;
    nops_secret *other = nops_secret_load(g_other_key, true, err, sizeof err);
    nops_secret_destroy(other);
    g_key = nops_secret_load(g_keyfile, true, err, sizeof err);
    return g_key && other ? 0 : -1;
}

static inline int au_teardown(void **state)
{
    (void)state;
    nops_secret_destroy(g_key);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* data/<name> into out. */
static inline void au_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_data, name);
}

/* The trail in `path` as the engine opens it (head records kept); NULL + err when refused. */
static inline nops_audit *au_open(const char *path, const char *dsn, char *err, size_t cap)
{
    return nops_audit_open(path, dsn, g_key, g_heads, err, cap);
}

/* n more entries in the trail at `path` (opened, appended to, closed). */
static inline void au_fill(const char *path, const char *dsn, int n)
{
    char err[1024];
    nops_audit *a = au_open(path, dsn, err, sizeof err);
    if (!a)
        fail_msg("open: %s", err);
    for (int i = 0; i < n; i++) {
        json_t *d = json_pack("{s:i, s:s, s:f}", "step", i, "note", "ünïcode ok", "x", 0.1 * i);
        char subject[32];
        snprintf(subject, sizeof subject, "orch-%d", i / 3);
        uint64_t seq = 0;
        assert_int_equal(nops_audit_append(a, i % 2 ? "key:ops" : "jwt:alice",
                                           i % 3 == 0 ? "suggest" : "approve", subject,
                                           i % 4 ? "allow" : "require_approval", d, &seq, err,
                                           sizeof err),
                         NOPS_OK);
        json_decref(d);
    }
    nops_audit_close(a);
}

/* `neuralops audit verify ARGS --key KEY`: its exit status; its stdout+stderr into out. */
static inline int au_verify_cli(const char *args, const char *key, char *out, size_t cap)
{
    char cmd[2048], log[128];
    snprintf(log, sizeof log, "%s/cli.out", g_dir);
    snprintf(cmd, sizeof cmd, "%s audit verify %s %s%s > %s 2>&1", NEURALOPS_BIN, args,
             key ? "--key " : "", key ? key : "", log);
    int rc = system(cmd);
    if (out) {
        FILE *f = fopen(log, "r");
        size_t n = f ? fread(out, 1, cap - 1, f) : 0;
        out[n] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The unkeyed hash of earlier versions (and of an attacker without the key): hex SHA-256 of
 * prev_hash ‖ canonical JSON without "hash". */
static inline void au_sha_hash(const char *prev, json_t *e, char out[65])
{
    json_t *copy = json_copy(e);
    json_object_del(copy, "hash");
    char *canon = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref(copy);
    unsigned char md[32];
    unsigned int n = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, prev, strlen(prev));
    EVP_DigestUpdate(c, canon, strlen(canon));
    EVP_DigestFinal_ex(c, md, &n);
    EVP_MD_CTX_free(c);
    free(canon);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*
 * Rewrite the JSONL chain in `path`: entry `edit` (0: none) gets actor `actor`, and entries
 * from..to (to 0: to the end) get prev_hash and hash recomputed with plain SHA-256, so that the
 * old, unkeyed verification would call it intact.
 */
static inline void au_rechain_file(const char *path, int edit, const char *actor, int from,
                                   int to)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.rechain", path);
    FILE *in = fopen(path, "r"), *o = fopen(tmp, "w");
    assert_non_null(in);
    char *line = NULL, prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    size_t cap = 0;
    for (int k = 1; getline(&line, &cap, in) > 0; k++) {
        json_t *e = json_loads(line, 0, NULL);
        assert_non_null(e);
        if (k == edit)
            json_object_set_new(e, "actor", json_string(actor));
        if (k >= from && (to == 0 || k <= to)) {
            char h[65];
            json_object_set_new(e, "prev_hash", json_string(prev));
            au_sha_hash(prev, e, h);
            json_object_set_new(e, "hash", json_string(h));
        }
        snprintf(prev, sizeof prev, "%s", json_string_value(json_object_get(e, "hash")));
        char *s = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        fprintf(o, "%s\n", s);
        free(s);
        json_decref(e);
    }
    free(line);
    fclose(in);
    fclose(o);
    assert_int_equal(rename(tmp, path), 0);
}

/* Keep only the first n lines of `path` (truncate(1) of the tail). */
static inline void au_keep_lines(const char *path, int n)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "sed -i '%d,$d' %s", n + 1, path);
    assert_int_equal(system(cmd), 0);
}

/* The head record of the audit file at `path` (as docs/security-audit.md names it:
 * audit-<first 32 hex digits of SHA-256(real path of its directory + "/" + name)>.head). */
static inline void au_head_file(const char *path, char *out, size_t cap)
{
    char dir[300], real[300], id[400];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_non_null(realpath(dir, real));
    snprintf(id, sizeof id, "%s/%s", real, strrchr(path, '/') + 1);
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(id, strlen(id), md, &n, EVP_sha256(), NULL);
    int at = snprintf(out, cap, "%s/audit-", g_heads);
    for (int i = 0; i < 16; i++)
        at += snprintf(out + at, cap - (size_t)at, "%02x", md[i]);
    snprintf(out + at, cap - (size_t)at, ".head");
}

/* cp src dst */
static inline void au_copy(const char *src, const char *dst)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp %s %s", src, dst);
    assert_int_equal(system(cmd), 0);
}

#endif
