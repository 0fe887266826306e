/*
 * test_audit_pg.c — the keyed audit chain in PostgreSQL audit_logs beside the file: an ordinary
 * UPDATE or DELETE is refused by the trigger; a superuser change that bypasses it
 * (session_replication_role = replica) is found by `audit verify`, also when the hashes were
 * recomputed with plain SHA-256; rows deleted from the table's end, or a file cut short behind
 * the table, make the next open refuse with what was found; a table that lacks only what a
 * crash or a file-only run left out is given it; a dropped connection is reconnected.
 * Runs under tests/with-postgres.sh (NEURALOPS_TEST_PG_DSN); skipped without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/orchestrate/audit_util.h"
#include "tests/support/pgutil.h"

#include <unistd.h>

static void sql_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static long sql_status(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long st = PQresultStatus(r);
    PQclear(r);
    return st;
}

/* Run `sql` as a superuser would to get past the trigger. */
static void as_replica(PGconn *c, const char *sql)
{
    sql_ok(c, "BEGIN");
    sql_ok(c, "SET LOCAL session_replication_role = replica");
    sql_ok(c, sql);
    sql_ok(c, "COMMIT");
}

/* Recompute prev_hash and hash of rows seq >= from with plain SHA-256 (past the trigger). */
static void pg_rechain(PGconn *c, int from)
{
    PGresult *res = PQexec(c, "SELECT seq, ts, actor, action, subject, decision, details::text, "
                              "prev_hash, hash FROM audit_logs ORDER BY seq");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    sql_ok(c, "BEGIN");
    sql_ok(c, "SET LOCAL session_replication_role = replica");
    for (int i = 0; i < PQntuples(res); i++) {
        int seq = atoi(PQgetvalue(res, i, 0));
        if (seq < from) {
            snprintf(prev, sizeof prev, "%s", PQgetvalue(res, i, 8));
            continue;
        }
        json_t *e = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "seq", seq, "ts",
                              PQgetvalue(res, i, 1), "actor", PQgetvalue(res, i, 2), "action",
                              PQgetvalue(res, i, 3), "subject", PQgetvalue(res, i, 4),
                              "decision", PQgetvalue(res, i, 5), "details",
                              json_loads(PQgetvalue(res, i, 6), 0, NULL), "prev_hash", prev);
        char h[65], s[24];
        au_sha_hash(prev, e, h);
        json_decref(e);
        snprintf(s, sizeof s, "%d", seq);
        const char *v[3] = {prev, h, s};
        PGresult *u = PQexecParams(c, "UPDATE audit_logs SET prev_hash = $1, hash = $2 WHERE "
                                      "seq = $3::bigint", 3, NULL, v, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(u), PGRES_COMMAND_OK);
        PQclear(u);
        snprintf(prev, sizeof prev, "%s", h);
    }
    sql_ok(c, "COMMIT");
    PQclear(res);
}

/* Every test's start: a fresh schema `name` (tu_pg_schema) whose tables the returned
 * connection sees too, its DSN in dsn, and the trail file data/<name>.jsonl in path. */
static PGconn *pg_trail(const char *name, char dsn[600], char path[128])
{
    PGconn *c = tu_pg_schema(name, dsn, 600);
    char sql[128];
    snprintf(sql, sizeof sql, "SET search_path TO %s", name);
    sql_ok(c, sql);
    char file[64];
    snprintf(file, sizeof file, "%.40s.jsonl", name);
    au_path(path, 128, file);
    return c;
}

static void cli_args(char *out, size_t cap, const char *path, const char *dsn)
{
    snprintf(out, cap, "%s%s --from-postgres '%s'", path ? "--input " : "", path ? path : "",
             dsn);
}

/* e (PostgreSQL): intact in the table and the file, also after a reopen. */
static void test_pg_intact(void **state)
{
    (void)state;
    char dsn[600], path[128], args[1200], out[2048], err[1024];
    PGconn *c = pg_trail("audit_intact", dsn, path);
    au_fill(path, dsn, 8);
    au_fill(path, dsn, 2);
    nops_audit_report r;
    assert_int_equal(nops_audit_verify_pg(dsn, g_key, &r, err, sizeof err), NOPS_OK);
    assert_int_equal(r.entries, 10);
    nops_audit_sources src = {.path = path, .pg_dsn = dsn, .head_dir = g_heads};
    assert_int_equal(nops_audit_verify(&src, g_key, &r, err, sizeof err), NOPS_OK);
    assert_int_equal(r.entries, 10);
    assert_int_equal(r.pg_entries, 10);
    cli_args(args, sizeof args, path, dsn);
    assert_int_equal(au_verify_cli(args, g_keyfile, out, sizeof out), 0);
    assert_non_null(strstr(out, "(10 rows in PostgreSQL), chain intact"));
    tu_pg_drop_schema(c, "audit_intact");
}

/* b: the trigger refuses changes; a superuser past it who edits entries — and recomputes the
 * plain SHA-256 chain — is found by verify and by the next open. */
static void test_pg_rewritten_past_trigger(void **state)
{
    (void)state;
    char dsn[600], path[128], args[1200], out[2048], err[1024];
    PGconn *c = pg_trail("audit_rewrite", dsn, path);
    au_fill(path, dsn, 8);
    assert_int_equal(sql_status(c, "UPDATE audit_logs SET actor = 'mallory' WHERE seq = 3"),
                     PGRES_FATAL_ERROR);
    assert_int_equal(sql_status(c, "DELETE FROM audit_logs WHERE seq = 8"), PGRES_FATAL_ERROR);
    /* the approver changed, every hash after it recomputed */
    as_replica(c, "UPDATE audit_logs SET actor = 'mallory' WHERE seq = 3");
    pg_rechain(c, 3);
    nops_audit_report r;
    assert_int_equal(nops_audit_verify_pg(dsn, g_key, &r, err, sizeof err), NOPS_PARSE);
    assert_int_equal(r.first_bad, 3);
    assert_non_null(strstr(r.why, "rewritten without the engine key"));
    cli_args(args, sizeof args, NULL, dsn);
    assert_int_equal(au_verify_cli(args, g_keyfile, out, sizeof out), 4);
    assert_non_null(strstr(out, "TAMPERED at entry 3"));
    /* the table's end no longer matches the file's: the next start refuses */
    uint64_t alarms = nops_audit_integrity_failures();
    assert_null(au_open(path, dsn, err, sizeof err));
    if (!strstr(err, "differ at seq 8"))
        fail_msg("%s", err);
    assert_int_equal(nops_audit_integrity_failures(), alarms + 1);
    /* recomputed from the first entry: nothing in it is keyed */
    pg_rechain(c, 1);
    assert_int_equal(nops_audit_verify_pg(dsn, g_key, &r, err, sizeof err), NOPS_PARSE);
    assert_int_equal(r.first_bad, 1);
    /* single changes past the trigger, hashes left alone */
    const char *tamper[] = {"UPDATE audit_logs SET actor = 'mallory' WHERE seq = 3",
                            "UPDATE audit_logs SET details = '{\"step\":99}' WHERE seq = 5",
                            "DELETE FROM audit_logs WHERE seq = 2"};
    const uint64_t at[] = {3, 5, 2};
    for (int i = 0; i < 3; i++) {
        sql_ok(c, "DROP TABLE audit_logs");
        char p2[160];
        snprintf(p2, sizeof p2, "%s/pg-single%d.jsonl", g_data, i);
        au_fill(p2, dsn, 8);
        as_replica(c, tamper[i]);
        assert_int_equal(nops_audit_verify_pg(dsn, g_key, &r, err, sizeof err), NOPS_PARSE);
        assert_int_equal(r.first_bad, at[i]);
    }
    tu_pg_drop_schema(c, "audit_rewrite");
}

/* d: rows deleted from the table's end (past the trigger) are found by the cross-check at open
 * and in verify — with the head record, and without one. */
static void test_pg_rows_deleted(void **state)
{
    (void)state;
    char dsn[600], path[128], args[1200], out[2048], err[1024];
    PGconn *c = pg_trail("audit_deleted", dsn, path);
    au_fill(path, dsn, 8);
    as_replica(c, "DELETE FROM audit_logs WHERE seq >= 6");
    nops_audit_report r;
    assert_int_equal(nops_audit_verify_pg(dsn, g_key, &r, err, sizeof err), NOPS_OK); /* alone */
    assert_null(au_open(path, dsn, err, sizeof err));
    if (!strstr(err, "ends at seq 5 although it held the chain up to seq 8"))
        fail_msg("%s", err);
    nops_audit_sources src = {.path = path, .pg_dsn = dsn, .head_dir = g_heads};
    assert_int_equal(nops_audit_verify(&src, g_key, &r, err, sizeof err), NOPS_PARSE);
    assert_int_equal(r.first_bad, 6);
    cli_args(args, sizeof args, path, dsn);
    assert_int_equal(au_verify_cli(args, g_keyfile, out, sizeof out), 4);
    assert_non_null(strstr(out, "rows were deleted"));
    /* without a head record (none kept): more than the one entry a crash can leave out */
    sql_ok(c, "DROP TABLE audit_logs");
    au_path(path, sizeof path, "pg-deleted-nohead.jsonl");
    nops_audit *a = nops_audit_open(path, dsn, g_key, NULL, err, sizeof err);
    assert_non_null(a);
    for (int i = 0; i < 8; i++)
        assert_int_equal(nops_audit_append(a, "key:ops", "execute", "orch-1", "ok", NULL, NULL,
                                           err, sizeof err),
                         NOPS_OK);
    nops_audit_close(a);
    as_replica(c, "DELETE FROM audit_logs WHERE seq >= 6");
    assert_null(nops_audit_open(path, dsn, g_key, NULL, err, sizeof err));
    assert_non_null(strstr(err, "ends at seq 5, the file at seq 8"));
    /* a row from the middle */
    as_replica(c, "DELETE FROM audit_logs WHERE seq = 3");
    assert_null(nops_audit_open(path, dsn, g_key, NULL, err, sizeof err));
    assert_non_null(strstr(err, "holds 4 rows for seqs 1..5"));
    tu_pg_drop_schema(c, "audit_deleted");
}

/* c (PostgreSQL): the file cut short behind the table is refused even without a head record. */
static void test_pg_file_truncated(void **state)
{
    (void)state;
    char dsn[600], path[128], err[1024];
    PGconn *c = pg_trail("audit_trunc", dsn, path);
    nops_audit *a = nops_audit_open(path, dsn, g_key, NULL, err, sizeof err);
    assert_non_null(a);
    for (int i = 0; i < 8; i++)
        assert_int_equal(nops_audit_append(a, "key:ops", "execute", "orch-1", "ok", NULL, NULL,
                                           err, sizeof err),
                         NOPS_OK);
    nops_audit_close(a);
    au_keep_lines(path, 5);
    assert_null(nops_audit_open(path, dsn, g_key, NULL, err, sizeof err));
    assert_non_null(strstr(err, "the file ends at seq 5 but PostgreSQL audit_logs at seq 8"));
    tu_pg_drop_schema(c, "audit_trunc");
}

/* What may be repaired is: the one entry a crash left out of the table, and a table new to the
 * chain (empty, or the last start ran without PostgreSQL). */
static void test_pg_catches_up(void **state)
{
    (void)state;
    char dsn[600], path[128], head[300], saved[320], err[1024];
    PGconn *c = pg_trail("audit_catchup", dsn, path);
    au_fill(path, dsn, 4);
    au_head_file(path, head, sizeof head);
    snprintf(saved, sizeof saved, "%s.saved", head);
    au_copy(head, saved);
    au_fill(path, dsn, 1);
    /* the state a crash between the file and the table leaves: file 5, table 4, head 4 */
    as_replica(c, "DELETE FROM audit_logs WHERE seq = 5");
    au_copy(saved, head);
    au_fill(path, dsn, 1);
    nops_audit_report r;
    nops_audit_sources src = {.path = path, .pg_dsn = dsn, .head_dir = g_heads};
    assert_int_equal(nops_audit_verify(&src, g_key, &r, err, sizeof err), NOPS_OK);
    assert_int_equal(r.pg_entries, 6);
    /* a trail kept on files only, then with a (new) table */
    sql_ok(c, "DROP TABLE audit_logs");
    char later[128];
    au_path(later, sizeof later, "pg-later.jsonl");
    au_fill(later, NULL, 5);
    au_fill(later, dsn, 2);
    src.path = later;
    assert_int_equal(nops_audit_verify(&src, g_key, &r, err, sizeof err), NOPS_OK);
    assert_int_equal(r.pg_entries, 7);
    /* the first file against this table: another chain */
    src.path = path;
    assert_int_equal(nops_audit_verify(&src, g_key, &r, err, sizeof err), NOPS_PARSE);
    tu_pg_drop_schema(c, "audit_catchup");
}

/* The database drops the trail's connection (a restart, a failover): the next append
 * reconnects and the chain in the database stays whole. */
static void test_pg_reconnects(void **state)
{
    (void)state;
    char dsn[600], path[128], err[1024];
    PGconn *c = pg_trail("audit_reconnect", dsn, path);
    nops_audit *a = au_open(path, dsn, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(nops_audit_append(a, "key:ops", "suggest", "orch-1", "ok", NULL, NULL, err,
                                       sizeof err),
                     NOPS_OK);
    PGresult *r = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND datname = current_database()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(r, 0, 0)) >= 1);
    PQclear(r);
    assert_int_equal(nops_audit_append(a, "key:admin", "approve", "orch-1", "approved", NULL,
                                       NULL, err, sizeof err),
                     NOPS_OK);
    nops_audit_close(a);
    nops_audit_report rep;
    assert_int_equal(nops_audit_verify_pg(dsn, g_key, &rep, err, sizeof err), NOPS_OK);
    assert_int_equal(rep.entries, 2);
    tu_pg_drop_schema(c, "audit_reconnect");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_intact),
        cmocka_unit_test(test_pg_rewritten_past_trigger),
        cmocka_unit_test(test_pg_rows_deleted),
        cmocka_unit_test(test_pg_file_truncated),
        cmocka_unit_test(test_pg_catches_up),
        cmocka_unit_test(test_pg_reconnects),
    };
    return cmocka_run_group_tests(tests, au_setup, au_teardown);
}
