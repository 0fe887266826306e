/*
 * kafka.c — the [kafka] table and the one builder of librdkafka client configurations
 * (kafka.h). Keeping them here is what lets every module that talks to Kafka get the same
 * bootstrap servers, passthrough properties and logging without reaching into another module.
 */
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <ctype.h>
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
     "Deprecated: librdkafka properties as k=v,k=v (a value cannot hold a comma). Use the "
     "[kafka.librdkafka] section, which wins over it; still applied to every client."},
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

bool nops_kafka_is_secret(const char *name)
{
    char low[256];
    size_t i = 0;
    for (; name[i] && i + 1 < sizeof low; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    low[i] = '\0';
    return strstr(low, "password") || strstr(low, "secret") ||
           strcmp(low, "sasl.oauthbearer.config") == 0 || strncmp(low, "ssl.key.", 8) == 0;
}

/* A property librdkafka accepts (checked on a scratch configuration), so a mistake is named
 * with its file and line when the configuration is read, not when a client starts. */
static nops_err librdkafka_check(const char *key, const char *value, char *errstr,
                                 size_t errstr_size)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char why[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(c, key, value, why, sizeof why);
    rd_kafka_conf_destroy(c);
    if (r == RD_KAFKA_CONF_OK)
        return NOPS_OK;
    if (r == RD_KAFKA_CONF_INVALID && nops_kafka_is_secret(key))
        nops_errf(errstr, errstr_size, "%s: librdkafka refuses the value (masked)", key);
    else
        nops_errf(errstr, errstr_size, "%s", why);
    return r == RD_KAFKA_CONF_UNKNOWN ? NOPS_NOTFOUND : NOPS_PARSE;
}

const nops_cfg_map_section nops_kafka_librdkafka_section = {
    "kafka.librdkafka",
    "Any librdkafka property (see librdkafka's CONFIGURATION.md), applied to every Kafka client "
    "of the engine: the pipeline's consumer and dead-letter producer, the service stage, the "
    "Kafka sink, the /ingest producer, kafka playbook steps, loadgen. Security settings go here "
    "(`security.protocol`, `sasl.*`, `ssl.*`). Each client's client.id defaults to "
    "neuralops-ROLE (pipeline, dlq, service-stage, sink, ingest-api, kafka-step, loadgen); a "
    "client.id here replaces it. A few properties the engine relies on per client (manual "
    "commits, idempotence, group.id) cannot be overridden. The values of `*password*`, "
    "`*secret*`, `sasl.oauthbearer.config` and `ssl.key.*` are masked in `config show` and in "
    "log lines. A property librdkafka does not know is an error naming its line.",
    nops_kafka_is_secret,
    librdkafka_check,
};

nops_err nops_kafka_cfg_add(nops_cfg *cfg, nops_kafka_params *kp, char *errstr,
                            size_t errstr_size)
{
    nops_err e = nops_cfg_add(cfg, &nops_kafka_cfg_section, kp, errstr, errstr_size);
    return e != NOPS_OK ? e
                        : nops_cfg_add_map(cfg, &nops_kafka_librdkafka_section, &kp->librdkafka,
                                           errstr, errstr_size);
}

char *nops_kafka_mask(const char *line, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap)
        return out;
    for (size_t i = 0; line[i] && o + 1 < cap; i++) {
        out[o++] = line[i];
        if (line[i] != '=' && line[i] != ':')
            continue;
        /* the property name before the separator (spaces and quotes skipped) */
        size_t e = i;
        while (e > 0 && (line[e - 1] == ' ' || line[e - 1] == '"' || line[e - 1] == '\''))
            e--;
        size_t b = e;
        while (b > 0 && (isalnum((unsigned char)line[b - 1]) || line[b - 1] == '.' ||
                         line[b - 1] == '_' || line[b - 1] == '-'))
            b--;
        char name[128];
        if (e == b || e - b >= sizeof name)
            continue;
        memcpy(name, line + b, e - b);
        name[e - b] = '\0';
        if (!nops_kafka_is_secret(name))
            continue;
        snprintf(out + o, cap - o, " ***");
        return out;
    }
    out[o] = '\0';
    return out;
}

/* Every client's librdkafka log line: masked, with the client's name, through nops_log at the
 * syslog level librdkafka gives (0-3 error, 4-5 warn, 6 info, 7 debug). */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char masked[1024];
    nops_kafka_mask(buf ? buf : "", masked, sizeof masked);
    nops_log(level <= 3 ? NOPS_LOG_ERROR : level <= 5 ? NOPS_LOG_WARN
             : level == 6            ? NOPS_LOG_INFO
                                     : NOPS_LOG_DEBUG,
             "kafka", "%s %s: %s", rk ? rd_kafka_name(rk) : "-", fac ? fac : "-", masked);
}

/* One property onto conf; false with the reason (a secret's value never quoted). */
static bool conf_set(rd_kafka_conf_t *conf, const char *origin, const char *k, const char *v,
                     char *errstr, size_t errstr_size)
{
    char why[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, k, v, why, sizeof why);
    if (r == RD_KAFKA_CONF_OK)
        return true;
    if (r == RD_KAFKA_CONF_INVALID && nops_kafka_is_secret(k))
        nops_errf(errstr, errstr_size, "%s: %s: librdkafka refuses the value (masked)", origin,
                  k);
    else
        nops_errf(errstr, errstr_size, "%s: %s", origin, why);
    return false;
}

/* kafka.extra — "k=v,k=v" — onto conf; false with the reason naming the bad entry by number
 * (never its text: a comma inside a password would otherwise print the password's tail). */
static bool conf_extra(rd_kafka_conf_t *conf, const char *extra, char *errstr, size_t errstr_size)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", extra ? extra : "");
    int n = 0;
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
         kv = strtok_r(NULL, ",", &save)) {
        n++;
        char *eq = strchr(kv, '=');
        if (!eq) {
            nops_errf(errstr, errstr_size,
                      "kafka.extra: entry %d is not k=v (a value cannot hold a comma there: "
                      "give such a property in [kafka.librdkafka], one per line)", n);
            return false;
        }
        *eq = '\0';
        if (!conf_set(conf, "kafka.extra", kv, eq + 1, errstr, errstr_size))
            return false;
    }
    return true;
}

struct rd_kafka_conf_s *nops_kafka_conf_new(const nops_kafka_params *kp, const char *brokers,
                                            const char *role, const nops_kafka_prop *props,
                                            size_t n, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, kafka_log); /* its lines through ours, one line each */
    char id[96];
    snprintf(id, sizeof id, "neuralops-%s", role && *role ? role : "client");
    if (!brokers)
        brokers = kp ? kp->brokers : "";
    bool ok = conf_set(c, "client", "client.id", id, errstr, errstr_size) &&
              (!*brokers ||
               conf_set(c, "kafka.brokers", "bootstrap.servers", brokers, errstr, errstr_size)) &&
              (!kp || conf_extra(c, kp->extra, errstr, errstr_size));
    for (size_t i = 0; ok && kp && i < kp->librdkafka.n; i++)
        ok = conf_set(c, "[kafka.librdkafka]", nops_cfg_map_key(&kp->librdkafka, i),
                      nops_cfg_map_value(&kp->librdkafka, i), errstr, errstr_size);
    for (size_t i = 0; ok && i < n; i++)
        ok = conf_set(c, role ? role : "client", props[i][0], props[i][1], errstr, errstr_size);
    if (!ok) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

rd_kafka_t *nops_kafka_mock_new(int brokers, const nops_kafka_topic *topics, size_t n,
                                const nops_kafka_prop *props, size_t n_props,
                                nops_kafka_log_fn log, char *boot, size_t cap, char *errstr,
                                size_t errstr_size)
{
    char nb[16];
    snprintf(nb, sizeof nb, "%d", brokers);
    rd_kafka_conf_t *c = nops_kafka_conf_new(NULL, "", "mock", props, n_props, errstr,
                                             errstr_size);
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

bool nops_kafka_close_unsafe(rd_kafka_t *rk, bool assigned_once)
{
    if (assigned_once || rd_kafka_version() >= 0x02030000)
        return false;
    char *member = rd_kafka_memberid(rk); /* set once a JoinGroup answered */
    const bool joined = member && member[0];
    if (member)
        rd_kafka_mem_free(rk, member);
    return joined;
}

bool nops_kafka_await_first_assignment(rd_kafka_t *rk, const bool *assigned_once,
                                       int timeout_ms, const char *who)
{
    for (int waited = 0; nops_kafka_close_unsafe(rk, *assigned_once); waited += 100) {
        if (waited >= timeout_ms) {
            NOPS_WARN("kafka", "%s: joined its group but got no assignment in %d ms; closing "
                      "it anyway (librdkafka %s may abort here: fixed in 2.3.0)", who,
                      timeout_ms, rd_kafka_version_str());
            return false;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m) /* not processed: never committed, read again by the next owner */
            rd_kafka_message_destroy(m);
    }
    return true;
}
