/*
 * mock_broker.c — a Kafka-protocol broker for tests/deploy/check_deploy.py's `topology` check:
 * a librdkafka mock cluster of three brokers on loopback (tests/support/kafkautil.h) with the
 * topics named on the command line (name:partitions ...) created, its bootstrap servers printed
 * as one line on stdout. It lives until its stdin closes (or it is killed), so the cluster can
 * be used by other processes — the engines under test, kcat — for as long as the check needs.
 * Exit status: 0 after stdin closed, 2 on bad usage, 1 when the cluster could not be made.
 */
#include "tests/support/kafkautil.h"

#include <stdlib.h>
#include <unistd.h>

#define MAX_TOPICS 32

int main(int argc, char **argv)
{
    tu_topic topics[MAX_TOPICS];
    int n = 0;
    for (int i = 1; i < argc && n < MAX_TOPICS; i++, n++) {
        char *colon = strrchr(argv[i], ':');
        int parts = colon ? atoi(colon + 1) : 0;
        if (!colon || colon == argv[i] || parts < 1) {
            fprintf(stderr, "usage: %s topic:partitions ...\n", argv[0]);
            return 2;
        }
        *colon = '\0';
        topics[n] = (tu_topic){.name = argv[i], .partitions = parts};
    }
    if (n == 0 || n < argc - 1) {
        fprintf(stderr, "usage: %s topic:partitions ... (at most %d topics)\n", argv[0],
                MAX_TOPICS);
        return 2;
    }
    char boot[1024];
    rd_kafka_t *rk = tu_mock_cluster(3, topics, (size_t)n, boot, sizeof boot);
    if (!rk) return 1;
    printf("%s\n", boot);
    fflush(stdout);
    char buf[256];
    while (read(STDIN_FILENO, buf, sizeof buf) > 0)
        ;
    rd_kafka_destroy(rk);
    return 0;
}
