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

#include <librdkafka/rdkafka.h>
#include <string.h>

static void test_conf_extra(void **state)
{
    (void)state;
    char err[256];
    const nops_kafka_prop props[] = {{"enable.auto.commit", "false"}};
    rd_kafka_conf_t *c = nops_kafka_conf_new("127.0.0.1:1", "client.id=probe,linger.ms=7", props,
                                             1, err, sizeof err);
    assert_non_null(c);
    char v[64];
    size_t vl = sizeof v;
    assert_int_equal(rd_kafka_conf_get(c, "client.id", v, &vl), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "probe");
    vl = sizeof v;
    assert_int_equal(rd_kafka_conf_get(c, "bootstrap.servers", v, &vl), RD_KAFKA_CONF_OK);
    assert_string_equal(v, "127.0.0.1:1");
    rd_kafka_conf_destroy(c);
    assert_null(nops_kafka_conf_new(NULL, "linger.ms", NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "\"linger.ms\" is not k=v"));
    assert_null(nops_kafka_conf_new(NULL, "no.such.property=1", NULL, 0, err, sizeof err));
    assert_non_null(strstr(err, "no.such.property"));
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
        cmocka_unit_test(test_mock_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
