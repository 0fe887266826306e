/*
 * test_kafka.c — kafka/: the one builder of client configurations (kafka.extra pass-through and
 * its errors) and the one mock cluster (topics created as asked, errors named).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kafka/kafka.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *conf_get(const rd_kafka_conf_t *c, const char *name)
{
    static char v[512];
    size_t vl = sizeof v;
    return rd_kafka_conf_get(c, name, v, &vl) == RD_KAFKA_CONF_OK ? v : NULL;
}

static void test_conf_extra(void **state)
{
    (void)state;
    char err[256];
    nops_kafka_params kp;
    memset(&kp, 0, sizeof kp);
    snprintf(kp.brokers, sizeof kp.brokers, "127.0.0.1:1");
    snprintf(kp.extra, sizeof kp.extra, "client.id=probe,linger.ms=7");
    const nops_kafka_prop props[] = {{"enable.auto.commit", "false"}};
    rd_kafka_conf_t *c = nops_kafka_conf_new(&kp, NULL, "pipeline", props, 1, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(conf_get(c, "client.id"), "probe"); /* the user's wins over the role's */
    assert_string_equal(conf_get(c, "bootstrap.servers"), "127.0.0.1:1");
    assert_string_equal(conf_get(c, "linger.ms"), "7");
    rd_kafka_conf_destroy(c);
    /* brokers given beside kp win over kp's; the role names the client by default */
    kp.extra[0] = '\0';
    c = nops_kafka_conf_new(&kp, "127.0.0.1:2", "sink", NULL, 0, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(conf_get(c, "bootstrap.servers"), "127.0.0.1:2");
    assert_string_equal(conf_get(c, "client.id"), "neuralops-sink");
    rd_kafka_conf_destroy(c);
    snprintf(kp.extra, sizeof kp.extra, "linger.ms");
    assert_null(nops_kafka_conf_new(&kp, NULL, "x", NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "entry 1 is not k=v"));
    snprintf(kp.extra, sizeof kp.extra, "no.such.property=1");
    assert_null(nops_kafka_conf_new(&kp, NULL, "x", NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "no.such.property"));
    /* a comma inside a password in the comma form: refused without quoting any of it */
    snprintf(kp.extra, sizeof kp.extra, "sasl.password=p@ss,word");
    assert_null(nops_kafka_conf_new(&kp, NULL, "x", NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "entry 2 is not k=v"));
    assert_non_null(strstr(err, "[kafka.librdkafka]"));
    assert_null(strstr(err, "word"));
    assert_null(strstr(err, "p@ss"));
}

/* The config file, --set and the environment reach [kafka.librdkafka]; values keep commas and
 * '='; what librdkafka refuses is named with its line; secrets are masked by `config show`. */
/* [kafka.librdkafka] values take the syntax of every other value: a comment after a blank, a
 * quoted value keeping it, ${VAR}, and @file (a SASL password from a mounted secret). */
static void test_librdkafka_value_syntax(void **state)
{
    (void)state;
    char err[512], path[] = "/tmp/nops-kafka-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cr#t,pw\n", 10), 10);
    close(fd);
    setenv("NOPS_TEST_SASL_USER", "svc-ops", 1);
    static nops_kafka_params kp;
    nops_cfg *cfg = nops_cfg_new();
    assert_int_equal(nops_kafka_cfg_add(cfg, &kp, err, sizeof err), NOPS_OK);
    char ini[512];
    snprintf(ini, sizeof ini,
             "[kafka.librdkafka]\n"
             "sasl.password = @%s\n"
             "sasl.username = ${NOPS_TEST_SASL_USER}   # from the environment\n"
             "ssl.ca.location = \"/etc/ssl/ca #1.pem\"\n",
             path);
    assert_int_equal(nops_cfg_load_buffer(cfg, ini, strlen(ini), "t.ini", err, sizeof err),
                     NOPS_OK);
    assert_string_equal(nops_cfg_map_get(&kp.librdkafka, "sasl.password"), "s3cr#t,pw");
    assert_string_equal(nops_cfg_map_get(&kp.librdkafka, "sasl.username"), "svc-ops");
    assert_string_equal(nops_cfg_map_get(&kp.librdkafka, "ssl.ca.location"), "/etc/ssl/ca #1.pem");
    nops_cfg_destroy(cfg);
    unlink(path);
    unsetenv("NOPS_TEST_SASL_USER");
}

static void test_librdkafka_section(void **state)
{
    (void)state;
    char err[512];
    static nops_kafka_params kp;
    nops_cfg *cfg = nops_cfg_new();
    assert_int_equal(nops_kafka_cfg_add(cfg, &kp, err, sizeof err), NOPS_OK);
    const char *ini = "[kafka]\n"
                      "brokers = 127.0.0.1:9\n"
                      "extra = linger.ms=3,client.id=from-extra\n"
                      "[kafka.librdkafka]\n"
                      "security.protocol = sasl_plaintext\n"
                      "sasl.mechanisms = PLAIN\n"
                      "sasl.username = CN=svc,OU=ops\n"
                      "sasl.password = p@ss,word=1\n"
                      "client.id = from-section\n";
    assert_int_equal(nops_cfg_load_buffer(cfg, ini, strlen(ini), "t.ini", err, sizeof err),
                     NOPS_OK);
    setenv("NEURALOPS_KAFKA_LIBRDKAFKA_SOCKET_KEEPALIVE_ENABLE", "true", 1);
    setenv("NEURALOPS_KAFKA_LIBRDKAFKA_LOG__LEVEL", "4", 1);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_OK);
    assert_int_equal(nops_cfg_warn_unknown_env(cfg), 0); /* they are settings, not typos */
    unsetenv("NEURALOPS_KAFKA_LIBRDKAFKA_SOCKET_KEEPALIVE_ENABLE");
    unsetenv("NEURALOPS_KAFKA_LIBRDKAFKA_LOG__LEVEL");
    assert_int_equal(nops_cfg_set(cfg, "kafka.librdkafka.sasl.username", "CN=svc,OU=ops,O=x",
                                  "--set", err, sizeof err),
                     NOPS_OK);
    assert_string_equal(nops_cfg_map_get(&kp.librdkafka, "sasl.password"), "p@ss,word=1");
    assert_string_equal(nops_cfg_map_get(&kp.librdkafka, "socket.keepalive.enable"), "true");
    assert_string_equal(nops_cfg_map_get(&kp.librdkafka, "log_level"), "4");

    const nops_kafka_prop props[] = {{"client.id", "role-wins"}};
    rd_kafka_conf_t *c = nops_kafka_conf_new(&kp, NULL, "pipeline", NULL, 0, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(conf_get(c, "sasl.password"), "p@ss,word=1");
    assert_string_equal(conf_get(c, "sasl.username"), "CN=svc,OU=ops,O=x");
    assert_string_equal(conf_get(c, "client.id"), "from-section"); /* section over extra */
    assert_string_equal(conf_get(c, "linger.ms"), "3");              /* extra still applied */
    assert_string_equal(conf_get(c, "security.protocol"), "sasl_plaintext");
    rd_kafka_conf_destroy(c);
    c = nops_kafka_conf_new(&kp, NULL, "pipeline", props, 1, err, sizeof err);
    assert_string_equal(conf_get(c, "client.id"), "role-wins"); /* the role's last */
    rd_kafka_conf_destroy(c);

    /* config show: the password masked, the rest as given */
    char *dump = NULL;
    size_t dlen = 0;
    FILE *f = open_memstream(&dump, &dlen);
    nops_cfg_print_values(cfg, f);
    fclose(f);
    assert_non_null(strstr(dump, "[kafka.librdkafka]\n"));
    assert_non_null(strstr(dump, "sasl.password = ********\n"));
    assert_non_null(strstr(dump, "sasl.username = CN=svc,OU=ops,O=x\n"));
    assert_null(strstr(dump, "p@ss"));
    free(dump);
    f = open_memstream(&dump, &dlen);
    nops_cfg_print_markdown(cfg, f);
    fclose(f);
    assert_non_null(strstr(dump, "## [kafka.librdkafka]"));
    assert_non_null(strstr(dump, "NEURALOPS_KAFKA_LIBRDKAFKA_"));
    free(dump);

    /* errors: unknown property (file and line), a refused value of a secret (masked) */
    const char *bad = "[kafka.librdkafka]\n\nsasl.pasword = x\n";
    assert_int_equal(nops_cfg_load_buffer(cfg, bad, strlen(bad), "b.ini", err, sizeof err),
                     NOPS_NOTFOUND);
    assert_non_null(strstr(err, "b.ini:3"));
    assert_non_null(strstr(err, "sasl.pasword"));
    assert_int_not_equal(nops_cfg_set(cfg, "kafka.librdkafka.bad key", "1", "--set", err,
                                      sizeof err),
                         NOPS_OK);
    assert_int_not_equal(nops_cfg_set(cfg, "kafka.librdkafka.linger.ms", "-5", "--set", err,
                                      sizeof err),
                         NOPS_OK);
    assert_non_null(strstr(err, "--set"));
    nops_cfg_destroy(cfg);
}

static void test_secret_names_and_mask(void **state)
{
    (void)state;
    assert_true(nops_kafka_is_secret("sasl.password"));
    assert_true(nops_kafka_is_secret("ssl.keystore.password"));
    assert_true(nops_kafka_is_secret("sasl.oauthbearer.client.secret"));
    assert_true(nops_kafka_is_secret("sasl.oauthbearer.config"));
    assert_true(nops_kafka_is_secret("ssl.key.pem"));
    assert_true(nops_kafka_is_secret("SSL.KEY.PASSWORD"));
    assert_false(nops_kafka_is_secret("sasl.username"));
    assert_false(nops_kafka_is_secret("ssl.ca.location"));
    char out[256];
    assert_string_equal(nops_kafka_mask("  sasl.password = p@ss,word", out, sizeof out),
                        "  sasl.password = ***");
    assert_string_equal(nops_kafka_mask("set \"ssl.key.password\": hunter2 now", out, sizeof out),
                        "set \"ssl.key.password\": ***");
    assert_string_equal(nops_kafka_mask("a=1,sasl.oauthbearer.config=scope=x b", out, sizeof out),
                        "a=1,sasl.oauthbearer.config= ***");
    assert_string_equal(nops_kafka_mask("sasl.username = CN=svc,OU=ops", out, sizeof out),
                        "sasl.username = CN=svc,OU=ops");
    assert_string_equal(nops_kafka_mask("broker 1: down", out, sizeof out), "broker 1: down");
    char tiny[4];
    assert_string_equal(nops_kafka_mask("abcdef", tiny, sizeof tiny), "abc");
}

/*
 * librdkafka's own lines go through the engine's logger: with log.format=json every line on
 * stderr is one JSON object (no raw librdkafka line), the client named, secrets never shown.
 * debug=conf makes librdkafka dump the client's configuration as it starts.
 */
static void test_log_lines_json(void **state)
{
    (void)state;
    char path[] = "/tmp/nops-kafka-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);

    static nops_kafka_params kp;
    memset(&kp, 0, sizeof kp);
    snprintf(kp.brokers, sizeof kp.brokers, "127.0.0.1:1"); /* nobody there: errors logged */
    nops_cfg_map_set(&kp.librdkafka, "debug", "conf");
    nops_cfg_map_set(&kp.librdkafka, "sasl.kerberos.kinit.cmd", "kinit -k -t /k,tab p=1");
    nops_cfg_map_set(&kp.librdkafka, "sasl.password", "p@ss,word");
    char err[256] = "";
    rd_kafka_conf_t *c = nops_kafka_conf_new(&kp, NULL, "probe", NULL, 0, err, sizeof err);
    rd_kafka_t *rk = c ? rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err) : NULL;
    if (rk)
        rd_kafka_destroy(rk);
    else if (c)
        rd_kafka_conf_destroy(c);

    fflush(stderr);
    dup2(saved, STDERR_FILENO); /* before any assertion, so a failure is seen */
    close(saved);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
    if (!rk)
        fail_msg("no client: %s", err);
    FILE *f = fdopen(fd, "r");
    rewind(f);
    char line[8192];
    size_t lines = 0, dumps = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            fail_msg("not a JSON log line: %s", line);
        const char *msg = json_string_value(json_object_get(o, "msg"));
        assert_non_null(msg);
        assert_null(strstr(msg, "p@ss"));
        if (strcmp(json_string_value(json_object_get(o, "module")), "kafka") == 0 &&
            strstr(msg, "neuralops-probe#producer-") == msg &&
            strstr(msg, "sasl.kerberos.kinit.cmd = kinit -k -t /k,tab p=1"))
            dumps++;
        json_decref(o);
    }
    fclose(f);
    unlink(path);
    assert_true(lines > 0);
    assert_int_equal(dumps, 1);
}

/* The rebalance callback of test_first_assignment: records any assignment, and takes it. */
static void first_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        *(bool *)opaque = true;
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    }
}

/* A cooperative-sticky consumer that has not joined is safe to close; once it has a member id
 * and no assignment yet it is not (librdkafka < 2.3.0 aborts in its destroy), and the wait
 * polls until its first assignment makes it safe. */
static void test_first_assignment(void **state)
{
    (void)state;
    char err[256], boot[256];
    const nops_kafka_topic topics[] = {{"fa", 2}};
    rd_kafka_t *host = nops_kafka_mock_new(1, topics, 1, NULL, 0, NULL, boot, sizeof boot, err,
                                           sizeof err);
    assert_non_null(host);
    static nops_kafka_params kp;
    memset(&kp, 0, sizeof kp);
    const nops_kafka_prop props[] = {{"group.id", "fa-group"},
                                     {"partition.assignment.strategy", "cooperative-sticky"}};
    rd_kafka_conf_t *c = nops_kafka_conf_new(&kp, boot, "test", props, 2, err, sizeof err);
    assert_non_null(c);
    bool assigned = false;
    rd_kafka_conf_set_opaque(c, &assigned);
    rd_kafka_conf_set_rebalance_cb(c, first_rebalance);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    assert_false(nops_kafka_close_unsafe(rk, false)); /* not in any group yet */
    assert_false(nops_kafka_close_unsafe(rk, true));
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, "fa", RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, sub), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(sub);
    /* joined, and no assignment seen by the caller: unsafe on a librdkafka that aborts */
    char *member = NULL;
    for (int i = 0; i < 600 && !(member && member[0]); i++) {
        if (member)
            rd_kafka_mem_free(rk, member);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m)
            rd_kafka_message_destroy(m);
        member = rd_kafka_memberid(rk);
    }
    assert_non_null(member);
    assert_true(member[0] != '\0');
    rd_kafka_mem_free(rk, member);
    assert_int_equal(nops_kafka_close_unsafe(rk, false), rd_kafka_version() < 0x02030000);
    assert_false(nops_kafka_close_unsafe(rk, true));
    /* the wait ends with the first assignment (or at once where librdkafka is fixed) */
    assert_true(nops_kafka_await_first_assignment(rk, &assigned, 60000, "test consumer"));
    assert_true(assigned || rd_kafka_version() >= 0x02030000);
    assert_false(nops_kafka_close_unsafe(rk, assigned));
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    rd_kafka_destroy(host);
}

static void test_mock_cluster(void **state)
{
    (void)state;
    char err[256], boot[256];
    const nops_kafka_topic topics[] = {{"a", 3}, {"b", 1}};
    const nops_kafka_prop props[] = {{"log_level", "3"}};
    rd_kafka_t *rk = nops_kafka_mock_new(2, topics, 2, props, 1, NULL, boot, sizeof boot, err,
                                         sizeof err);
    assert_non_null(rk);
    assert_non_null(strchr(boot, ':'));
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(md->broker_cnt, 2);
    int found = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, "a") == 0) {
            assert_int_equal(md->topics[i].partition_cnt, 3);
            found++;
        } else if (strcmp(md->topics[i].topic, "b") == 0) {
            assert_int_equal(md->topics[i].partition_cnt, 1);
            found++;
        }
    }
    assert_int_equal(found, 2);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    /* a property librdkafka refuses is named, and nothing is left running */
    const nops_kafka_prop bad[] = {{"linger.ms", "-5"}};
    assert_null(nops_kafka_mock_new(1, topics, 1, bad, 1, NULL, boot, sizeof boot, err,
                                    sizeof err));
    assert_non_null(strstr(err, "outside allowed range")); /* linger.ms is an alias */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_extra),
        cmocka_unit_test(test_librdkafka_section),
        cmocka_unit_test(test_librdkafka_value_syntax),
        cmocka_unit_test(test_first_assignment),
        cmocka_unit_test(test_secret_names_and_mask),
        cmocka_unit_test(test_log_lines_json),
        cmocka_unit_test(test_mock_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
