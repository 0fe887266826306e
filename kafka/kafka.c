/*
 * kafka.c — the [kafka] table and the one builder of librdkafka client configurations
 * (kafka.h). Keeping them here is what lets every module that talks to Kafka get the same
 * bootstrap servers, passthrough properties and logging without reaching into another module.
 */
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <string.h>

#define K(f) offsetof(nops_kafka_params, f)
static const nops_cfg_entry kafka_entries[] = {
    {"brokers", NOPS_CFG_STRING, K(brokers), 0, 512, "localhost:9092", NULL, "brokers", 0,
     "Kafka bootstrap servers, host:port[,host:port...]."},
    {"topic", NOPS_CFG_STRING, K(topic), 0, 256, "neuralops.metrics", NULL, "topic", 0,
     "Topic the metrics are read from."},
    {"group", NOPS_CFG_STRING, K(group), 0, 128, "neuralops", NULL, "group", 0,
     "Consumer group; instances in one group share the partitions."},
    {"dlq_topic", NOPS_CFG_STRING, K(dlq_topic), 0, 256, "neuralops.metrics.dlq", NULL, NULL, 0,
     "Messages with rejected points are copied here, the reason in a header."},
    {"session_timeout_ms", NOPS_CFG_INT, K(session_timeout_ms), 1000, 3600000, "10000", NULL,
     NULL, 0, "Group session timeout; a dead instance's partitions move after this long."},
    {"extra", NOPS_CFG_STRING, K(extra), 0, 1024, "", NULL, NULL, NOPS_CFG_SECRET,
     "More librdkafka properties as k=v,k=v (e.g. security settings)."},
    {"timestamp_precision", NOPS_CFG_ENUM, K(timestamp_precision), 0, 0, "ns", "ns|us|ms|s",
     NULL, 0,
     "Unit of the integer timestamps of line protocol read from the metrics topic (Influx's "
     "precision: Telegraf's Kafka output writes ns unless its precision says otherwise); JSON "
     "timestamps keep their own rules."},
};
#undef K
const nops_cfg_section nops_kafka_cfg_section = {
    "kafka", "The Kafka cluster metrics are consumed from.", kafka_entries,
    sizeof kafka_entries / sizeof kafka_entries[0], NULL,
};

/* kafka.extra — "k=v,k=v" — onto conf; false with the reason naming the bad entry or property. */
static bool conf_extra(rd_kafka_conf_t *conf, const char *extra, char *errstr, size_t errstr_size)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", extra ? extra : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            nops_errf(errstr, errstr_size, "kafka.extra: \"%s\" is not k=v", kv);
            return false;
        }
        *eq = '\0';
        char why[256];
        if (rd_kafka_conf_set(conf, kv, eq + 1, why, sizeof why) != RD_KAFKA_CONF_OK) {
            nops_errf(errstr, errstr_size, "kafka.extra: %s", why);
            return false;
        }
    }
    return true;
}

struct rd_kafka_conf_s *nops_kafka_conf_new(const char *brokers, const char *extra,
                                            const nops_kafka_prop *props, size_t n,
                                            char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char why[512];
    rd_kafka_conf_set_log_cb(c, nops_log_kafka); /* its lines through ours, one line each */
    if (brokers && *brokers &&
        rd_kafka_conf_set(c, "bootstrap.servers", brokers, why, sizeof why) != RD_KAFKA_CONF_OK)
        goto bad;
    if (!conf_extra(c, extra, errstr, errstr_size)) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_conf_set(c, props[i][0], props[i][1], why, sizeof why) != RD_KAFKA_CONF_OK)
            goto bad;
    return c;
bad:
    nops_errf(errstr, errstr_size, "%s", why);
    rd_kafka_conf_destroy(c);
    return NULL;
}

rd_kafka_t *nops_kafka_mock_new(int brokers, const nops_kafka_topic *topics, size_t n,
                                const nops_kafka_prop *props, size_t n_props,
                                nops_kafka_log_fn log, char *boot, size_t cap, char *errstr,
                                size_t errstr_size)
{
    char nb[16];
    snprintf(nb, sizeof nb, "%d", brokers);
    rd_kafka_conf_t *c = nops_kafka_conf_new(NULL, NULL, props, n_props, errstr, errstr_size);
    if (c && rd_kafka_conf_set(c, "test.mock.num.brokers", nb, errstr, errstr_size) !=
                 RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    if (c && log)
        rd_kafka_conf_set_log_cb(c, log);
    rd_kafka_t *rk = c ? rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, errstr_size) : NULL;
    if (!rk) {
        if (c)
            rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(rk);
    for (size_t i = 0; mc && i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[i].name,
                                                           topics[i].partitions, 1);
        if (e) {
            nops_errf(errstr, errstr_size, "mock cluster: cannot create topic %s: %s",
                      topics[i].name, rd_kafka_err2str(e));
            rd_kafka_destroy(rk);
            return NULL;
        }
    }
    if (!mc) {
        nops_errf(errstr, errstr_size, "the mock cluster did not start");
        rd_kafka_destroy(rk);
        return NULL;
    }
    snprintf(boot, cap, "%s", rd_kafka_mock_cluster_bootstraps(mc));
    return rk;
}
