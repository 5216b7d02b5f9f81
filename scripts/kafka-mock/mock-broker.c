/*
 * mock-broker: a tiny in-process Kafka "cluster" for dev and tests.
 *
 * It uses librdkafka's built-in mock cluster (rdkafka_mock.h), which speaks
 * enough of the Kafka protocol for producers, consumer groups and offset
 * commits.  No JVM, no ZooKeeper, starts in milliseconds.
 *
 * Usage: mock-broker [--no-stdin] [--brokers N] topic:partitions [...]
 *
 *   - Topics are created up front: the mock broker does NOT implement the
 *     CreateTopics admin API, so clients (kafkajs admin) cannot create them.
 *   - Prints exactly one line "BOOTSTRAP host:port[,host:port...]" on stdout
 *     once the cluster is listening, then flushes.
 *   - Runs until SIGTERM/SIGINT, or until stdin reaches EOF.  The stdin rule
 *     ties the broker's lifetime to its parent: a test runner that spawns us
 *     with a pipe on stdin and then dies (even by SIGKILL) closes the pipe,
 *     and we exit instead of leaking a server.  Daemons (infra.sh) pass
 *     --no-stdin because their stdin is /dev/null (immediate EOF).
 *
 * Build: gcc -O2 -Wall -o mock-broker mock-broker.c -lrdkafka
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
        (void)sig;
        stop_requested = 1;
}

static void usage(const char *argv0) {
        fprintf(stderr,
                "usage: %s [--no-stdin] [--brokers N] topic:partitions "
                "[topic:partitions ...]\n",
                argv0);
        exit(2);
}

int main(int argc, char **argv) {
        int watch_stdin = 1;
        int broker_cnt  = 1;
        int first_topic = argc;
        char errstr[512];
        int i;

        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--no-stdin")) {
                        watch_stdin = 0;
                } else if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        broker_cnt = atoi(argv[++i]);
                        if (broker_cnt < 1)
                                usage(argv[0]);
                } else if (!strcmp(argv[i], "-h") ||
                           !strcmp(argv[i], "--help")) {
                        usage(argv[0]);
                } else if (argv[i][0] == '-') {
                        fprintf(stderr, "mock-broker: unknown option %s\n",
                                argv[i]);
                        usage(argv[0]);
                } else {
                        first_topic = i;
                        break;
                }
        }

        /* Validate all topic args before starting anything. */
        for (i = first_topic; i < argc; i++) {
                const char *colon = strrchr(argv[i], ':');
                char *end;
                long n;
                if (!colon || colon == argv[i]) {
                        fprintf(stderr,
                                "mock-broker: bad topic spec '%s' "
                                "(want name:partitions)\n",
                                argv[i]);
                        return 2;
                }
                n = strtol(colon + 1, &end, 10);
                if (*end || n < 1 || n > 10000) {
                        fprintf(stderr,
                                "mock-broker: bad partition count in '%s'\n",
                                argv[i]);
                        return 2;
                }
        }

        /* Signals: graceful stop on TERM/INT; ignore SIGPIPE so a parent that
         * stops reading our stdout cannot kill us mid-write. No SA_RESTART, so
         * poll()/pause() return EINTR and we notice the flag. */
        {
                struct sigaction sa;
                memset(&sa, 0, sizeof(sa));
                sa.sa_handler = on_signal;
                sigemptyset(&sa.sa_mask);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGINT, &sa, NULL);
                signal(SIGPIPE, SIG_IGN);
        }

        /* The mock cluster needs an rd_kafka_t for bookkeeping only; this
         * producer never connects anywhere (no bootstrap.servers). */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        /* Keep librdkafka's own logging to warnings and worse, on stderr. */
        if (rd_kafka_conf_set(conf, "log_level", "4", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
                fprintf(stderr, "mock-broker: conf: %s\n", errstr);
                return 1;
        }
        rd_kafka_t *rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "mock-broker: rd_kafka_new: %s\n", errstr);
                return 1;
        }

        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, broker_cnt);
        if (!mc) {
                fprintf(stderr, "mock-broker: failed to create mock cluster\n");
                rd_kafka_destroy(rk);
                return 1;
        }

        for (i = first_topic; i < argc; i++) {
                char name[512];
                const char *colon = strrchr(argv[i], ':');
                size_t len        = (size_t)(colon - argv[i]);
                int parts         = atoi(colon + 1);
                rd_kafka_resp_err_t err;
                if (len >= sizeof(name)) {
                        fprintf(stderr, "mock-broker: topic name too long\n");
                        return 2;
                }
                memcpy(name, argv[i], len);
                name[len] = '\0';
                /* replication factor 1: enough for the single-broker case and
                 * valid for multi-broker clusters too. */
                err = rd_kafka_mock_topic_create(mc, name, parts, 1);
                if (err) {
                        fprintf(stderr,
                                "mock-broker: create topic %s: %s\n", name,
                                rd_kafka_err2str(err));
                        return 1;
                }
        }

        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);

        while (!stop_requested) {
                if (watch_stdin) {
                        struct pollfd pfd = {.fd = STDIN_FILENO,
                                             .events = POLLIN};
                        int r = poll(&pfd, 1, 1000);
                        if (r < 0) {
                                if (errno == EINTR)
                                        continue;
                                break; /* unexpected: stop rather than spin */
                        }
                        if (r > 0) {
                                char buf[256];
                                ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                                /* EOF (0) or error: parent is gone. Any
                                 * data written to us is ignored. */
                                if (n <= 0 && !(n < 0 && errno == EINTR))
                                        break;
                        }
                } else {
                        pause(); /* woken by the signal handler */
                }
        }

        /* No graceful teardown: all state is in memory and nobody needs it,
         * and rd_kafka_mock_cluster_destroy() + rd_kafka_destroy() take about
         * a second (thread joins), which every test would pay in stop().
         * The kernel closes the listening and client sockets. */
        (void)mc;
        (void)rk;
        fflush(NULL);
        _exit(0);
}
