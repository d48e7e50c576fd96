/* quired: keep the index equal to the notes on disk, continuously.
 *
 * The libuv loop thread turns watch events into settled paths (debounce.c)
 * and hands them to the indexer thread (indexer.c), which does all reading
 * and SQLite work; results come back through a uv_async_t. The loop does
 * only metadata work itself: adding watches, listing a directory that just
 * appeared so that nothing created in it before its watch is missed, and
 * reading the small .quireignore files that decide which paths count
 * (cached; at most 256 KiB each). This file parses the arguments, starts,
 * reloads and stops the daemon; quired.h names the other parts. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cookies.h"
#include "daemon-state.h"
#include "debounce.h"
#include "ignore.h"
#include "indexer.h"
#include "log.h"
#include "macro.h"
#include "notify.h"
#include "quired.h"
#include "search-server.h"
#include "store.h"
#include "util.h"
#include "version.h"
#include "watch.h"

/* Operations waiting for the indexer before what waits becomes one
 * reconcile: a rename storm (a renamed tree of a thousand directories, a
 * sync tool moving files about) is otherwise an operation per event. */
#define INDEXER_MAX_WAITING 4096
/* Directories whose .quireignore (or its absence) the loop remembers: an
 * event costs no open(2) per ancestor. Some 150 bytes each. */
#define IGNORE_CACHE_DIRS 4096
/* How long a root found again with its notes kept must go without events
 * below it before what its walk did not find leaves (struct root). */
#define RESTORE_QUIET_MS 3000

static void build_rules(struct daemon *d) {
        d->rules = (struct scan_rules){
                .extensions = d->cfg.extensions,
                .n_extensions = d->cfg.n_extensions,
                .ignore_globs = d->cfg.ignore_globs,
                .n_ignore_globs = d->cfg.n_ignore_globs,
        };
}

static void close_handle(uv_handle_t *h) {
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

static void shutdown_daemon(struct daemon *d, const char *why) {
        if (d->is_stopping)
                return;
        d->is_stopping = true;
        log_info("Stopping (%s)", why);
        notify_stopping();
        d->state = "stopping";
        write_state_file(d, true);
        /* Pending changes are not flushed: the next start's reconcile
         * finds them by their mtime, so nothing is lost by leaving now. */
        search_server_stop(d->search_server);
        d->search_server = NULL;
        watcher_free(d->watcher);
        d->watcher = NULL;
        debounce_free(d->debounce);
        d->debounce = NULL;
        indexer_stop(d->indexer); /* finishes the batch in progress */
        d->indexer = NULL;
        close_handle((uv_handle_t *) &d->sigterm);
        close_handle((uv_handle_t *) &d->sigint);
        close_handle((uv_handle_t *) &d->sighup);
        close_handle((uv_handle_t *) &d->rescan_timer);
        close_handle((uv_handle_t *) &d->restore_timer);
        close_handle((uv_handle_t *) &d->retry_timer);
        close_handle((uv_handle_t *) &d->watchdog_timer);
        close_handle((uv_handle_t *) &d->extend_timer);
        close_handle((uv_handle_t *) &d->status_timer);
        close_handle((uv_handle_t *) &d->pending_timer);
        close_handle((uv_handle_t *) &d->state_timer);
        close_handle((uv_handle_t *) &d->look_for_timer);
        if (d->mounts_fd >= 0)
                close_handle((uv_handle_t *) &d->mounts_poll);
}

/* The configuration file cfg's roots come from, recorded with them: NULL
 * for DIR arguments, which hold for one run and are never taken for a
 * configuration that dropped roots (drop_unconfigured_roots()). */
static const char *roots_config(const struct config *cfg) {
        return cfg->has_roots_from_file ? cfg->config_path : NULL;
}

/* Whether cfg lists a root that resolves to path, in namespace ns. */
static bool config_has_root(const struct config *cfg, const char *path, const char *ns) {
        for (size_t i = 0; i < cfg->n_roots; i++) {
                _cleanup_free_ char *resolved = realpath(cfg->roots[i].path, NULL);
                if (resolved && strcmp(resolved, path) == 0 && strcmp(cfg->roots[i].namespace, ns) == 0)
                        return true;
        }
        return false;
}

/* The database, the watch backend, the size cap and the indexer's
 * priority are what the running daemon was built on at start: a reload
 * that changes one says so and keeps the running value, so that d->cfg
 * stays what is in effect. */
static void keep_start_settings(struct config *running, struct config *next) {
        const char *file = next->config_path ? next->config_path : "the configuration";
        const char *a = running->db_path, *b = next->db_path;

        if ((a && b) ? strcmp(a, b) != 0 : a != b) {
                log_warning("The database changed in %s; it takes effect when quired restarts", file);
                /* Swapped: the running path stays, the new one goes with the old configuration. */
                char *t = running->db_path;
                running->db_path = next->db_path;
                next->db_path = t;
        }
        if (running->backend != next->backend) {
                log_warning("The watch backend changed in %s; it takes effect when quired restarts", file);
                next->backend = running->backend;
        }
        if (running->max_file_bytes != next->max_file_bytes) {
                log_warning("max_file_size changed in %s; it takes effect when quired restarts", file);
                next->max_file_bytes = running->max_file_bytes;
        }
        if (running->indexer_priority != next->indexer_priority) {
                log_warning("indexer_priority changed in %s; it takes effect when quired restarts", file);
                next->indexer_priority = running->indexer_priority;
        }
}

static void reload(struct daemon *d) {
        struct config cfg = { 0 };
        const char *state = d->state;
        int r;

        log_info("Reloading %s", d->cfg.config_path ? d->cfg.config_path : "the configuration");
        notify_reloading();
        set_state(d, "reloading");
        optind = 0; /* glibc: a full rescan of argv */
        /* A mistake costs the new configuration, not the daemon: one line
         * that says both, without the command-line hint of a start. */
        char why[LOG_LINE_MAX];
        log_capture_begin(why, sizeof why);
        r = config_load(d->argc, d->argv, &cfg);
        log_capture_end();
        if (r < 0) {
                static const char hint[] = " (see 'quired --help')";
                size_t n = strlen(why);
                if (n >= sizeof hint - 1 && strcmp(why + n - (sizeof hint - 1), hint) == 0)
                        why[n - (sizeof hint - 1)] = '\0';
                log_error("%s; keeping the current configuration", why[0] ? why : "Failed to load the configuration");
                config_done(&cfg);
                /* Back to where we were: during the first reconcile READY=1
                 * is still the reconcile's to send (on_report). */
                set_state(d, state);
                if (d->is_ready)
                        notify_ready();
                return;
        }
        keep_start_settings(&d->cfg, &cfg);
        /* Settled changes go first, under the old rules and roots. */
        debounce_flush_all(d->debounce);
        /* Roots watched until now are not looked at as if found at start:
         * one emptied while watched is empty on evidence. */
        _cleanup_free_ char **present = calloc(d->n_roots + 1, sizeof *present);
        _cleanup_free_ char **restoring = calloc(d->n_roots + 1, sizeof *restoring); /* borrowed from present */
        char **gone = NULL;
        size_t n_present = 0, n_restoring = 0, n_gone = 0;
        for (size_t i = 0; i < d->n_roots; i++) {
                struct root *old = &d->roots[i];
                if (!old->path) {
                        drop_missing_root_if_unconfigured(d, &cfg, old);
                        if (!old->keeps_notes)
                                (void) strv_push(&gone, &n_gone, strdup(old->configured));
                        continue;
                }
                watcher_remove_tree(d->watcher, old->path);
                /* A root no longer configured (same folder, same namespace)
                 * takes its notes out of the index with it. */
                if (!config_has_root(&cfg, old->path, old->namespace)) {
                        log_info("Root %s is no longer configured; dropping its notes from the index", old->path);
                        drop_tree_sparing_roots(d, &cfg, old->namespace, old->path);
                }
                if (present && restoring && old->is_restoring)
                        restoring[n_restoring++] = old->path;
                if (present)
                        present[n_present++] = TAKE_PTR(old->path);
        }
        roots_free(d);
        config_done(&d->cfg);
        d->cfg = cfg;
        build_rules(d);
        ignore_cache_clear(d->ignores);
        debounce_set_timing(d->debounce, d->cfg.settle_ms, d->cfg.max_delay_ms);
        r = indexer_set_rules(d->indexer, &d->rules, roots_config(&d->cfg));
        if (r == 0)
                r = roots_from_config(d, present, n_present, restoring, n_restoring, gone, n_gone);
        for (size_t i = 0; i < n_present; i++)
                free(present[i]);
        strv_free(gone, n_gone);
        if (r < 0) {
                log_error_errno(r, "Failed to apply the new configuration: %m");
                return;
        }
        watch_all_roots(d);
        follow_root_paths(d);
        forget_unmounted_below(d, "/");
        /* quire status shows the new roots (and missing ones) at once, not
         * when the reload's reconcile ends. */
        write_state_file(d, true);
        d->is_ready = false;
        reconcile_all(d);
        d->ready_barrier = ++d->barrier_seq;
        if (indexer_barrier(d->indexer, d->ready_barrier) < 0)
                d->ready_barrier = 0;
}

/* Whether path is the state file's: its removal (`rm -f index.db*` to
 * start afresh takes it with the database) is watched for as an awaited
 * path (watch_ancestors()), an entry event in its folder, so that quired's
 * own writes to it wake nothing; until it is back quire status says no
 * daemon runs and a second quired starts on the database. */
bool is_state_file_path(const struct daemon *d, const char *path) {
        return d->state_file && path && strcmp(path, daemon_state_path(d->state_file)) == 0;
}

/* The state file made again where it was removed; or, where another
 * quired has taken the database meanwhile, a stop. */
void check_state_file(struct daemon *d) {
        long other_pid = 0;

        if (!d->state_file || d->is_stopping)
                return;
        int r = daemon_state_relink(d->state_file, &other_pid);
        if (r == -EBUSY && other_pid <= 0) {
                /* Held, but by no daemon that said so: most likely a quire
                 * status reading it at that moment. Again in a second
                 * (the state file's timer looks first). */
                log_debug("The daemon state file %s was removed, and something holds the new one; trying again",
                          daemon_state_path(d->state_file));
                if (!uv_is_active((uv_handle_t *) &d->state_timer))
                        uv_timer_start(&d->state_timer, state_timer_cb, 1000, 0);
        } else if (r == -EBUSY) {
                log_error("Another quired (pid %ld) took over %s while this one's state file was gone; stopping",
                          other_pid, d->db_path);
                d->stop_error = -EALREADY;
                shutdown_daemon(d, "another daemon");
        } else if (r < 0)
                log_debug_errno(r, "Failed to check the daemon state file %s: %m", daemon_state_path(d->state_file));
        else if (r > 0) {
                log_info("The daemon state file %s was removed; made it again", daemon_state_path(d->state_file));
                write_state_file(d, true);
        }
}

static void signal_cb(uv_signal_t *s, int signum) {
        struct daemon *d = s->data;

        if (signum == SIGHUP)
                reload(d);
        else
                shutdown_daemon(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* A start that failed once the loop's handles exist: close them all (the
 * loop runs their close callbacks), return r. */
static int stop_at_start(struct daemon *d, int r) {
        shutdown_daemon(d, "setup failed");
        uv_run(d->loop, UV_RUN_DEFAULT);
        return r;
}

/* SIGTERM, SIGINT and SIGHUP: held back from the start of main() until
 * the loop's handlers for them exist. Their default action would end a
 * quired still opening (or migrating) its database, a reload as much as a
 * stop, with no line said; held, they wait for the loop. */
static void block_loop_signals(int how) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGHUP);
        (void) pthread_sigmask(how, &set, NULL);
}

static int run(struct daemon *d) {
        struct store *store = NULL;
        int r;

        d->db_path = d->cfg.db_path ? strdup(d->cfg.db_path) : store_default_path();
        if (!d->db_path)
                return -ENOMEM;
        const char *db_path = d->db_path;
        r = store_open(db_path, NULL, &store);
        if (r < 0)
                return r;
        /* One daemon per database: two would index every change twice. */
        long other_pid = 0;
        r = daemon_state_open(db_path, &d->state_file, &other_pid);
        if (r == -EBUSY) {
                store_close(store);
                if (other_pid > 0)
                        log_error("Another quired (pid %ld) is running on %s", other_pid, db_path);
                else /* its state not written yet, or not a quired's */
                        log_error("Another process holds the daemon state file of %s: is another quired starting?",
                                  db_path);
                return -EALREADY;
        }
        if (r == -EBADFD)
                log_warning("The daemon state file of %s is not a regular file (quire status will not see this "
                            "daemon)", db_path);
        else if (r < 0)
                log_warning_errno(r, "Failed to create the daemon state file of %s (quire status will not see "
                                     "this daemon): %m", db_path);
        /* Every handle shutdown_daemon() closes exists from here on (the
         * state file's timer before its first write), so that a failure
         * below can stop through it. */
        uv_timer_t *timers[] = { &d->rescan_timer, &d->restore_timer, &d->retry_timer, &d->watchdog_timer,
                                 &d->extend_timer, &d->status_timer, &d->pending_timer, &d->state_timer,
                                 &d->look_for_timer };
        for (size_t i = 0; i < ELEMENTSOF(timers); i++) {
                uv_timer_init(d->loop, timers[i]);
                timers[i]->data = d;
        }
        uv_signal_t *signals[] = { &d->sigterm, &d->sigint, &d->sighup };
        int signums[] = { SIGTERM, SIGINT, SIGHUP };
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                uv_signal_init(d->loop, signals[i]);
                signals[i]->data = d;
                uv_signal_start(signals[i], signal_cb, signums[i]);
        }
        block_loop_signals(SIG_UNBLOCK); /* one that came meanwhile is the loop's now */
        d->state = "starting";
        write_state_file(d, true);
        r = search_server_start(db_path, &d->search_server);
        if (r == -ENOENT)
                log_debug("No XDG_RUNTIME_DIR: searches are not answered by quired");

        build_rules(d);
        struct document_options doc = {
                .chunker = { .min_bytes = CHUNKER_MIN_BYTES_DEFAULT, .max_bytes = CHUNKER_MAX_BYTES_DEFAULT },
                .max_file_bytes = d->cfg.max_file_bytes,
        };
        d->max_waiting = INDEXER_MAX_WAITING;
        d->restore_quiet_ms = RESTORE_QUIET_MS;
        const char *restore_quiet = getenv("QUIRE_TEST_RESTORE_QUIET_MS"); /* test-only */
        if (restore_quiet && atoi(restore_quiet) > 0)
                d->restore_quiet_ms = (unsigned) atoi(restore_quiet);
        const char *max_waiting = getenv("QUIRE_TEST_MAX_QUEUE"); /* test-only */
        if (max_waiting && atoi(max_waiting) > 0)
                d->max_waiting = (size_t) atoi(max_waiting);
        r = cookie_table_new(&d->cookies);
        if (r < 0) {
                store_close(store);
                return stop_at_start(d, log_error_errno(r, "Failed to start: %m"));
        }
        r = indexer_start(d->loop, store, &doc, &d->rules, roots_config(&d->cfg),
                          d->cfg.indexer_priority == INDEXER_PRIORITY_IDLE, on_report, d, &d->indexer);
        if (r < 0) {
                store_close(store);
                return stop_at_start(d, log_error_errno(r, "Failed to start the indexer thread: %m"));
        }
        r = watcher_new(d->loop, d->cfg.backend, on_watch_event, d, &d->watcher);
#ifdef __linux__
        if (r == -EMFILE) {
                /* quired has a handful of descriptors open here: it is the
                 * per-user count of inotify instances that ran out. */
                long suggested, limit = inotify_instances_limit(&suggested);
                log_error("Failed to set up file watching: no inotify instance left (fs.inotify.max_user_instances "
                          "= %ld is used up by other programs; raise it, e.g. sysctl "
                          "fs.inotify.max_user_instances=%ld)",
                          limit, suggested);
                return stop_at_start(d, r);
        }
#endif
        if (r < 0)
                return stop_at_start(d, log_error_errno(r, "Failed to set up file watching: %m"));
        r = debounce_new(d->loop, d->cfg.settle_ms, d->cfg.max_delay_ms, DEBOUNCE_MAX_PATHS, on_settled,
                         on_debounce_overflow, d, &d->debounce);
        if (r == 0)
                r = ignore_cache_new(IGNORE_CACHE_DIRS, &d->ignores);
        if (r == 0)
                r = roots_from_config(d, NULL, 0, NULL, 0, NULL, 0);
        if (r < 0)
                return stop_at_start(d, log_error_errno(r, "Failed to start: %m"));

        /* Watches go in before the reconcile walks: a change made during
         * the walk is then reported, not missed. */
        watch_mounts(d);
        watch_all_roots(d);
        follow_root_paths(d);
        /* What the database recorded of quired's last run, read once. */
        struct store *recorded = NULL;
        if (store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &recorded) < 0)
                recorded = NULL;
        drop_unconfigured_roots(d, recorded);
        restore_unmounted_below(d, recorded);
        store_close(recorded);
        reconcile_all(d);
        log_info("Watching %zu directories; reconciling with %s", watcher_count(d->watcher), db_path);
        set_state(d, "reconciling");

        start_systemd_timers(d);

        uv_run(d->loop, UV_RUN_DEFAULT);
        return d->stop_error;
}

int main(int argc, char **argv) {
        struct daemon d = { .argc = argc, .argv = argv, .mounts_fd = -1 };
        int r;

        block_loop_signals(SIG_BLOCK);
        log_setup("quired");
        r = config_load(argc, argv, &d.cfg);
        if (r < 0) {
                config_done(&d.cfg);
                return r == -EINVAL ? 2 : 1;
        }
        if (d.cfg.is_help) {
                fputs(config_usage, stdout);
                config_done(&d.cfg);
                return 0;
        }
        if (d.cfg.is_version) {
                printf("quired %s\n", QUIRE_VERSION);
                config_done(&d.cfg);
                return 0;
        }
        log_set_max_level(d.cfg.log_level);
        signal(SIGPIPE, SIG_IGN);
        (void) store_use_threads(); /* before any thread or connection */

        /* Only now: the loop allocates, and only this path closes it. */
        d.loop = uv_default_loop();
        if (!d.loop) {
                log_error("Failed to create the event loop");
                config_done(&d.cfg);
                return 1;
        }
        r = run(&d);

        search_server_stop(d.search_server);
        daemon_state_close(d.state_file);
        ignore_cache_free(d.ignores);
        cookie_table_free(d.cookies);
        free(d.last_path);
        roots_free(&d);
        strv_free(d.unwatched, d.n_unwatched);
        strv_free(d.unmounted_below, d.n_unmounted_below);
        strv_free(d.unmounted_recorded, d.n_unmounted_recorded);
        strv_free(d.awaited, d.n_awaited);
        for (size_t i = 0; i < d.n_left_behind; i++)
                free(d.left_behind[i].configured);
        free(d.left_behind);
        free(d.db_path);
        if (d.mounts_fd >= 0)
                close(d.mounts_fd);
        mount_table_done(&d.mounts);
        config_done(&d.cfg);
        int rc = uv_loop_close(d.loop);
        if (rc < 0)
                log_debug("Loop closed with handles left: %s", uv_strerror(rc));
        /* 3: another daemon has the database; the unit does not restart
         * on it (RestartPreventExitStatus), it would only fail again. */
        return r == -EALREADY ? 3 : r < 0 ? 1 : 0;
}
