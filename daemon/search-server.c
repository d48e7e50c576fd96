/* The search socket's server side: a couple of threads, each with its own
 * read-only connection to the database, take turns in accept() and answer
 * one client at a time. A client that has not sent its request
 * SEARCH_IO_TIMEOUT_SEC after connecting, or stops reading the answer for
 * that long, is dropped: it holds a thread no longer than that. A search
 * whose client hung up, or that runs when quired stops, is abandoned. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "search-server.h"
#include "search-wire.h"
#include "store.h"
#include "util.h"

/* Two: one long search does not hold up a short one, and each thread's
 * connection keeps its own page cache, so more would cost memory the
 * watcher is meant not to use. */
#define SEARCH_SERVER_THREADS 2
#define SEARCH_IO_TIMEOUT_SEC 5
/* Hits are sent in writes of about this size: a search of ten hits is one
 * write, and one of thousands does not wait for all of them. */
#define SEARCH_SEND_BYTES (64 * 1024)

struct search_server {
        int listen_fd;
        int stop_pipe[2]; /* written once to stop: readable for every thread */
        atomic_bool is_stopping; /* set with it: the searches under way end */
        char *db_path; /* a realpath: the socket is named by it */
        char socket_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        pthread_t threads[SEARCH_SERVER_THREADS];
        size_t n_threads;
};

/* One thread's state, kept across the clients it answers. */
struct search_worker {
        struct search_server *srv;
        struct store *store; /* opened at the first search */
        char *frame;
        size_t frame_cap;
        struct search_frames out;
        int fd;        /* the client being answered */
        int send_error; /* the first failed write to it */
        size_t n_hits;
};

static int set_cloexec_blocking(int fd, bool is_blocking) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, is_blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        return 0;
}

/* The runtime directory is the user's own (mode 0700), so this is a second
 * fence, for a socket reached some other way. */
static bool peer_is_our_user(int fd) {
#ifdef SO_PEERCRED
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        return cred.uid == geteuid();
#else
        uid_t uid;
        gid_t gid;
        if (getpeereid(fd, &uid, &gid) < 0)
                return false;
        return uid == geteuid();
#endif
}

static int flush_hits(struct search_worker *w) {
        if (w->send_error == 0)
                w->send_error = search_write_frames(w->fd, &w->out);
        w->out.len = 0;
        return w->send_error;
}

static int send_hit(const struct search_hit *hit, void *userdata) {
        struct search_worker *w = userdata;
        w->n_hits++;
        int r = search_frame_hit(&w->out, hit);
        if (r < 0)
                return log_error_errno(r, "Failed to send a hit in %s: %m", hit->source_file);
        if (w->out.len >= SEARCH_SEND_BYTES)
                return flush_hits(w);
        return 0;
}

/* The store's search check: a client that hung up (closed its end: a
 * quire killed, or one that gave up) wants no answer, and its search
 * would keep the thread from the next client for as long as it runs.
 * POLLHUP only, not POLLRDHUP: a client may shut down its writing side
 * after its request and still read the answer. */
static int check_client(void *userdata) {
        struct search_worker *w = userdata;
        struct pollfd p = { .fd = w->fd };

        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
                return -ECONNRESET;
        return 0;
}

/* The worker's store, on the file now at the database's path, which must
 * be the one the client found there: after the database was replaced,
 * the store follows it. -ESTALE when the client saw another file. */
static int store_for(struct search_worker *w, const struct search_request *req) {
        struct search_server *srv = w->srv;
        struct stat st;

        if (stat(srv->db_path, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_dev != req->db_dev || (uint64_t) st.st_ino != req->db_ino)
                return -ESTALE;
        if (w->store && store_is_file(w->store, req->db_dev, req->db_ino))
                return 0;
        w->store = store_close(w->store);
        int r = store_open(srv->db_path, &(struct store_options){ .flags = STORE_READONLY }, &w->store);
        if (r < 0)
                return r;
        /* Replaced again while it was being opened (the store looked at
         * its path after the open): which one it has is not known, so it
         * goes, and this client searches in process. */
        if (!store_is_file(w->store, req->db_dev, req->db_ino)) {
                w->store = store_close(w->store);
                return -ESTALE;
        }
        store_set_cancel(w->store, &srv->is_stopping);
        store_set_search_check(w->store, check_client, w);
        return 0;
}

static int run_search(struct search_worker *w, const struct search_request *req, char *message,
                      size_t message_size) {
        /* The store's errors are the client's to report. */
        log_capture_begin(message, message_size);
        int r = store_for(w, req);
        /* Whatever kept the database from opening here, the client's own
         * open reports in its words: only the search's errors (-EINVAL,
         * a malformed query) are final. */
        if (r < 0 && r != -ESTALE)
                r = -EIO;
        if (r == 0)
                r = store_search(w->store, &req->query, send_hit, w);
        log_capture_end();
        return r;
}

static void answer(struct search_worker *w, int fd) {
        struct timeval timeout = { .tv_sec = SEARCH_IO_TIMEOUT_SEC };
        struct search_request req;
        /* As long as a log line (log.c), so that the client reports what
         * the in-process search would: a long query's error ends with
         * SQLite's reason. */
        char message[4096] = "";
        uint64_t start_usec = now_monotonic_usec();

        /* The request has a deadline of its own (below). */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0) {
                log_warning_errno(errno, "Failed to set a search client's timeout: %m");
                return;
        }
        if (!peer_is_our_user(fd)) {
                log_warning("Refused a search from another user");
                return;
        }
        ssize_t n = search_read_frame(fd, &w->frame, &w->frame_cap,
                                      start_usec + SEARCH_IO_TIMEOUT_SEC * UINT64_C(1000000), w->srv->stop_pipe[0]);
        if (n <= 0) {
                log_debug_errno((int) n, "A search client sent no request: %m");
                return;
        }
        int r = search_parse_request(w->frame, (size_t) n, &req);
        if (r == -EPROTONOSUPPORT)
                snprintf(message, sizeof message, "quired speaks version %d of the search protocol, not %u",
                         SEARCH_WIRE_VERSION, req.version);
        else if (r < 0) {
                log_debug("A search client sent a malformed request");
                return;
        }

        w->fd = fd;
        w->send_error = 0;
        w->n_hits = 0;
        w->out.len = 0;
        if (r == 0)
                r = run_search(w, &req, message, sizeof message);
        if (r > 0) /* send_hit() never stops a search early */
                r = 0;
        if (w->send_error == 0 && search_frame_end(&w->out, r, *message ? message : NULL) < 0)
                w->send_error = -ENOMEM;
        flush_hits(w);
        double ms = (double) (now_monotonic_usec() - start_usec) / 1000.0;
        if (r == -ECONNRESET || r == -ECANCELED)
                log_debug("Abandoned a search after %.2f ms: %s", ms,
                          r == -ECANCELED ? "quired is stopping" : "its client left");
        else
                log_debug("Answered a search in %.2f ms: %s, %zu hits%s", ms,
                          r == 0 ? "ok" : *message ? message : strerror(-r), w->n_hits,
                          w->send_error < 0 ? "; the client left before the end" : "");
}

static void *serve(void *userdata) {
        struct search_worker w = { .srv = userdata, .fd = -1 };
        struct search_server *srv = w.srv;
        sigset_t all;

        /* Signals are the event loop's. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
        for (;;) {
                struct pollfd p[] = {
                        { .fd = srv->listen_fd, .events = POLLIN },
                        { .fd = srv->stop_pipe[0], .events = POLLIN },
                };
                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(errno, "Stopped answering searches: %m");
                        break;
                }
                if (p[1].revents)
                        break;
                /* The other thread may have taken the client: the listening
                 * socket does not block. */
                int fd = accept(srv->listen_fd, NULL, NULL);
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                                log_debug_errno(errno, "Failed to accept a search client: %m");
                        continue;
                }
                if (set_cloexec_blocking(fd, true) == 0)
                        answer(&w, fd);
                close(fd);
        }
        store_close(w.store);
        free(w.frame);
        search_frames_done(&w.out);
        return NULL;
}

static int listen_on(struct search_server *srv) {
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        _cleanup_free_ char *dir = strdup(srv->socket_path);

        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return log_warning_errno(errno, "Failed to create %s for the search socket: %m", dir);

        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0)
                return log_warning_errno(errno, "Failed to create the search socket: %m");
        int r = set_cloexec_blocking(fd, false);
        /* One daemon per database (the state file's lock), so a socket
         * already there is one a killed daemon left. */
        if (r == 0 && unlink(srv->socket_path) < 0 && errno != ENOENT)
                r = -errno;
        memcpy(addr.sun_path, srv->socket_path, strlen(srv->socket_path) + 1);
        if (r == 0 && bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0)
                r = -errno;
        if (r == 0 && listen(fd, 64) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return log_warning_errno(r, "Failed to listen on %s: %m", srv->socket_path);
        }
        srv->listen_fd = fd;
        return 0;
}

int search_server_start(const char *db_path, struct search_server **ret) {
        struct search_server *srv = calloc(1, sizeof *srv);
        int r;

        if (!srv)
                return -ENOMEM;
        srv->listen_fd = srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
        srv->db_path = realpath(db_path, NULL);
        if (!srv->db_path) {
                r = log_warning_errno(errno, "Failed to resolve %s for the search socket: %m", db_path);
                goto fail;
        }
        r = search_socket_path(srv->db_path, srv->socket_path, sizeof srv->socket_path);
        if (r == -ENAMETOOLONG)
                log_warning("XDG_RUNTIME_DIR is too long a path for the search socket; searches run in "
                            "their own processes");
        if (r < 0)
                goto fail;
        r = listen_on(srv);
        if (r < 0)
                goto fail;
        if (pipe(srv->stop_pipe) < 0 || set_cloexec_blocking(srv->stop_pipe[0], true) < 0 ||
            set_cloexec_blocking(srv->stop_pipe[1], true) < 0) {
                r = log_warning_errno(errno, "Failed to start answering searches: %m");
                goto fail;
        }
        for (; srv->n_threads < SEARCH_SERVER_THREADS; srv->n_threads++) {
                r = -pthread_create(&srv->threads[srv->n_threads], NULL, serve, srv);
                if (r < 0) {
                        log_warning_errno(r, "Failed to start a search thread: %m");
                        goto fail;
                }
        }
        log_debug("Answering searches on %s", srv->socket_path);
        *ret = srv;
        return 0;
fail:
        search_server_stop(srv);
        return r;
}

void search_server_stop(struct search_server *srv) {
        if (!srv)
                return;
        if (srv->n_threads > 0) {
                /* A search under way would otherwise run to its end (or
                 * its deadline) before its thread sees the pipe. */
                atomic_store(&srv->is_stopping, true);
                /* Never read: it stays readable for every thread's poll(). */
                while (write(srv->stop_pipe[1], "x", 1) < 0 && errno == EINTR)
                        ;
                for (size_t i = 0; i < srv->n_threads; i++)
                        pthread_join(srv->threads[i], NULL);
        }
        if (srv->listen_fd >= 0) {
                close(srv->listen_fd);
                unlink(srv->socket_path);
        }
        if (srv->stop_pipe[0] >= 0)
                close(srv->stop_pipe[0]);
        if (srv->stop_pipe[1] >= 0)
                close(srv->stop_pipe[1]);
        free(srv->db_path);
        free(srv);
}
