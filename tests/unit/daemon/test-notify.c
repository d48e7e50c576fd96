/* STATUS= to the service manager: at most one per interval of the clock
 * the caller passes (held back: false, so the caller retries), a status
 * equal to the last one sent is not sent again, control characters in a
 * note's name cannot start a second assignment, and with no NOTIFY_SOCKET
 * nothing is sent and nothing is held back. The manager's end is a real
 * datagram socket; the clock is the test's, so no timing is involved. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "notify.h"

#define INTERVAL 250000u

static int manager_fd = -1;
static char socket_dir[] = "/tmp/quire-test-notify-XXXXXX";
static char socket_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];

/* The next datagram the "manager" got, or "" when none waits. */
static const char *received(void) {
        static char buf[8192];
        ssize_t n = recv(manager_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        buf[n > 0 ? n : 0] = '\0';
        return buf;
}

static struct notify_status status(uint64_t n_files, const char *last_path) {
        return (struct notify_status){ .n_roots = 1, .n_files = n_files, .n_chunks = 2 * n_files,
                                       .last_path = last_path, .state = "watching" };
}

static void test_one_status_per_interval_and_the_held_one_later(void) {
        struct notify_status st = status(1, NULL);
        CHECK(notify_status(&st, 1000000, INTERVAL));
        CHECK_STR_EQ(received(), "STATUS=Watching 1 root: 1 files, 2 chunks; queue 0");

        /* Within the interval: held back, nothing on the socket. */
        st = status(2, NULL);
        CHECK(!notify_status(&st, 1000000 + INTERVAL - 1, INTERVAL));
        CHECK_STR_EQ(received(), "");
        st = status(3, NULL);
        CHECK(!notify_status(&st, 1000000 + INTERVAL / 2, INTERVAL));
        CHECK_STR_EQ(received(), "");

        /* The retry once the interval is over says the newest. */
        CHECK(notify_status(&st, 1000000 + INTERVAL, INTERVAL));
        CHECK_STR_EQ(received(), "STATUS=Watching 1 root: 3 files, 6 chunks; queue 0");
        CHECK_STR_EQ(received(), "");
}

static void test_a_burst_sends_one_per_interval(void) {
        unsigned sent = 0;
        uint64_t t0 = 5000000;

        /* 1000 reports over one second, each with news: four intervals. */
        for (unsigned i = 0; i < 1000; i++) {
                struct notify_status st = status(100 + i, NULL);
                if (notify_status(&st, t0 + i * 1000u, INTERVAL) && received()[0])
                        sent++;
        }
        CHECK_INT_EQ(sent, 4);
        CHECK_STR_EQ(received(), "");
}

static void test_the_same_status_is_not_sent_twice(void) {
        struct notify_status st = status(42, "/notes/a.md");
        CHECK(notify_status(&st, 10000000, INTERVAL));
        CHECK_STR_EQ(received(), "STATUS=Watching 1 root: 42 files, 84 chunks; queue 0; last /notes/a.md");
        /* Nothing new: true (nothing to retry), and nothing sent. */
        CHECK(notify_status(&st, 10000000 + 2 * INTERVAL, INTERVAL));
        CHECK_STR_EQ(received(), "");
}

static void test_control_characters_cannot_start_an_assignment(void) {
        struct notify_status st = status(7, "/notes/x\nMAINPID=1\x7f.md");
        CHECK(notify_status(&st, 20000000, INTERVAL));
        const char *msg = received();
        CHECK_STR_EQ(msg, "STATUS=Watching 1 root: 7 files, 14 chunks; queue 0; last /notes/x?MAINPID=1?.md");
        CHECK(strchr(msg, '\n') == NULL);
}

static void test_without_a_manager_nothing_is_sent_or_held(void) {
        unsetenv("NOTIFY_SOCKET");
        struct notify_status st = status(9, NULL);
        CHECK(notify_status(&st, 30000000, INTERVAL));
        CHECK(notify_status(&st, 30000001, INTERVAL));
        st = status(10, NULL);
        CHECK(notify_status(&st, 30000002, INTERVAL));
        CHECK_STR_EQ(received(), "");
        setenv("NOTIFY_SOCKET", socket_path, 1);
}

int main(void) {
        struct sockaddr_un addr = { .sun_family = AF_UNIX };

        if (!mkdtemp(socket_dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(socket_path, sizeof socket_path, "%s/notify.sock", socket_dir);
        memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
        manager_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (manager_fd < 0 || bind(manager_fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
                perror("notify socket");
                return 1;
        }
        setenv("NOTIFY_SOCKET", socket_path, 1);

        RUN(test_one_status_per_interval_and_the_held_one_later);
        RUN(test_a_burst_sends_one_per_interval);
        RUN(test_the_same_status_is_not_sent_twice);
        RUN(test_control_characters_cannot_start_an_assignment);
        RUN(test_without_a_manager_nothing_is_sent_or_held);

        close(manager_fd);
        unlink(socket_path);
        rmdir(socket_dir);
        return check_summary();
}
