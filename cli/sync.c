/* quire search --sync, the first half: make the index current before
 * searching. With a quired on the database this is watchman's query
 * cookie: a uniquely named hidden file created at the top of each root the
 * daemon publishes in its state file; the daemon sees the cookie's event
 * after the events of every change made before it, pushes what is pending
 * through its indexer at once, and lists the cookie's name in the state
 * file once all of it is committed (daemon/cookies.h). Without a daemon
 * the CLI syncs the roots recorded in the database itself, a stat per
 * unchanged note. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "daemon-state.h"
#include "log.h"
#include "macro.h"
#include "roots.h"
#include "store.h"
#include "sync.h"
#include "util.h"

/* The state file is polled: from 1 ms, doubling up to this. */
#define POLL_MAX_USEC 8000

struct cookie {
        char *path; /* owned; NULL once removed */
        const char *name; /* into path */
        char *root; /* owned: the state file is read again while we wait */
};

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000), .tv_nsec = (long) (usec % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void cookies_remove(struct cookie *cookies, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (cookies[i].path && unlink(cookies[i].path) < 0 && errno != ENOENT)
                        log_debug_errno(errno, "Failed to remove %s: %m", cookies[i].path);
                free(cookies[i].path);
                free(cookies[i].root);
                cookies[i] = (struct cookie){ .path = NULL };
        }
}

/* One cookie per root, each with its own name: a backend that orders
 * events per directory (kqueue) only vouches for the root a cookie is in.
 * A root that is gone has nothing to wait for. A root the watch limit
 * left unwatched would never report its cookie; quired walks it at any
 * other root's cookie (its unwatched directories' roots are walked then).
 * 0, or -errno logged. */
static int cookies_create(const struct daemon_state_info *info, struct cookie *cookies, size_t *ret_n) {
        size_t n = 0;

        for (size_t i = 0; i < info->n_roots; i++) {
                char id[RANDOM_ID_LEN], *path;
                if (strv_contains(info->unwatched_roots, info->n_unwatched_roots, info->roots[i]))
                        continue;
                int r = random_id(id);
                if (r < 0)
                        return log_error_errno(r, "Failed to make a sync cookie name: %m");
                id[16] = '\0';
                if (asprintf(&path, "%s/" DAEMON_COOKIE_PREFIX "%ld-%s", info->roots[i], (long) getpid(), id) < 0)
                        return log_error_errno(ENOMEM, "Failed to make a sync cookie name: %m");
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0) {
                        r = -errno;
                        free(path);
                        if (r == -ENOENT)
                                continue;
                        *ret_n = n;
                        return log_error_errno(r, "Failed to create a sync cookie in %s (--sync needs write access "
                                                  "to the folders quired watches): %m", info->roots[i]);
                }
                close(fd);
                cookies[n++] = (struct cookie){ .path = path, .name = strrchr(path, '/') + 1,
                                                .root = strdup(info->roots[i]) };
                *ret_n = n;
                if (!cookies[n - 1].root)
                        return log_error_errno(ENOMEM, "Failed to remember a sync cookie: %m");
        }
        *ret_n = n;
        return 0;
}

static bool is_acknowledged(const struct daemon_state_info *info, const char *name) {
        for (size_t i = 0; i < info->n_cookies; i++)
                if (strcmp(info->cookies[i], name) == 0)
                        return true;
        return false;
}

static bool streq_ptr(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}

/* The rules recorded with the root at path among roots. */
static const char *recorded_rules(const struct store_root *roots, size_t n, const char *path) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(roots[i].path, path) == 0)
                        return roots[i].rules;
        return NULL;
}

/* One sync_run() of dirs, roots of ns, under rules_text (NULL: the built-in
 * rules); kept: the roots of ns not there, whose notes stay; left: the
 * roots of ns walked under other rules, which this walk leaves alone. */
static int sync_dirs(struct store *s, const char *ns, const char *rules_text, char **dirs, size_t n_dirs,
                     char *const *kept, size_t n_kept, char *const *left, size_t n_left) {
        _cleanup_(scan_rules_done) struct scan_rules rules = { 0 };
        uint64_t max_file_bytes = 0;
        int r = rules_text ? root_rules_parse(rules_text, &rules, &max_file_bytes) : 0;

        if (r < 0)
                return log_error_errno(r, "Failed to sync the roots: %m");
        /* Chunk sizes are the built-in ones, as quired's. */
        struct sync_options opts = {
                .namespace = ns,
                .doc = { .max_file_bytes = max_file_bytes },
                .rules = rules_text ? &rules : NULL,
                /* And the walk of a root around one of those keeps them too. */
                .kept_dirs = kept,
                .n_kept_dirs = n_kept,
                .left_dirs = left,
                .n_left_dirs = n_left,
        };
        struct sync_stats stats = { 0 };
        return sync_run(s, &opts, dirs, n_dirs, NULL, 0, &stats);
}

/* No daemon: bring every recorded root up to date, one sync_run() per
 * namespace and set of rules. */
static int sync_recorded_roots(const char *db_path) {
        struct store *s = NULL;
        struct store_root *roots = NULL;
        size_t n_roots = 0;
        int r;

        /* Nothing to bring up to date; the search says the database is missing. */
        if (access(db_path, F_OK) < 0)
                return 0;
        r = store_open(db_path, NULL, &s);
        if (r < 0)
                return r;
        r = store_list_roots(s, &roots, &n_roots);
        /* Folders below quired's roots whose filesystem was unmounted while
         * it watched: their mount points are empty, and walking them would
         * take the drive's notes for deleted (docs/ROOTS.md). */
        char **unmounted = NULL;
        size_t n_unmounted = 0;
        if (r == 0)
                r = store_list_unmounted(s, &unmounted, &n_unmounted);
        _cleanup_free_ char **dirs = calloc(n_roots + 1, sizeof *dirs);
        _cleanup_free_ char **kept = calloc(n_roots + n_unmounted + 1, sizeof *kept);
        _cleanup_free_ char **group = calloc(n_roots + 1, sizeof *group);
        _cleanup_free_ char **group_left = calloc(n_roots + 1, sizeof *group_left);
        if (r == 0 && (!dirs || !kept || !group || !group_left))
                r = log_error_errno(ENOMEM, "Failed to sync the roots: %m");
        for (size_t first = 0; r == 0 && first < n_roots;) {
                size_t end = first, n_dirs = 0, n_kept = n_unmounted;
                for (size_t i = 0; i < n_unmounted; i++)
                        kept[i] = unmounted[i];
                for (; end < n_roots && strcmp(roots[end].namespace, roots[first].namespace) == 0; end++) {
                        struct stat st;
                        if (stat(roots[end].path, &st) < 0 || !S_ISDIR(st.st_mode)) {
                                log_warning("Root %s (namespace %s) is gone; its notes stay in the index, marked stale",
                                            roots[end].path, roots[end].namespace);
                                kept[n_kept++] = roots[end].path;
                                continue;
                        }
                        /* A drive not mounted: walking its mount point would
                         * drop every note (docs/ROOTS.md). */
                        if (root_is_empty_where_notes_are(s, roots[end].namespace, roots[end].path) > 0) {
                                log_warning("Root %s (namespace %s) is an empty folder, but notes were indexed from "
                                            "it (a drive not mounted?); they stay in the index, marked stale",
                                            roots[end].path, roots[end].namespace);
                                kept[n_kept++] = roots[end].path;
                                continue;
                        }
                        dirs[n_dirs++] = roots[end].path;
                }
                /* Each under the rules recorded with it: quired's roots as
                 * quired walks them (its extensions, ignore globs and file
                 * size cap), the others under the built-in rules; one
                 * sync_run() per set of rules. A root recorded inside another
                 * (notes/sub, then notes) is walked as part of it when the
                 * two have the same rules, and left out of its walk (walked
                 * under its own) when not. */
                for (size_t i = 0; r == 0 && i < n_dirs; i++) {
                        const char *rules_text = recorded_rules(roots + first, end - first, dirs[i]);
                        size_t n_group = 0, n_group_left = 0;
                        bool is_done = false;
                        for (size_t k = 0; k < i && !is_done; k++)
                                is_done = streq_ptr(recorded_rules(roots + first, end - first, dirs[k]), rules_text);
                        if (is_done)
                                continue;
                        for (size_t k = 0; k < n_dirs; k++) {
                                if (streq_ptr(recorded_rules(roots + first, end - first, dirs[k]), rules_text))
                                        group[n_group++] = dirs[k];
                                else
                                        group_left[n_group_left++] = dirs[k];
                        }
                        n_group = roots_outermost_first(group, n_group);
                        r = sync_dirs(s, roots[first].namespace, rules_text, group, n_group, kept, n_kept, group_left,
                                      n_group_left);
                }
                if (r == -ENOENT || r == -ENOTDIR)
                        r = log_error_errno(r, "Failed to sync: a directory vanished while it was being walked; "
                                               "run again");
                first = end;
        }
        store_roots_free(roots, n_roots);
        strv_free(unmounted, n_unmounted);
        store_close(s);
        return r;
}

int search_sync_index(const char *db_path, unsigned timeout_ms) {
        uint64_t start = now_monotonic_usec(), deadline = start + (uint64_t) timeout_ms * 1000;
        uint64_t poll_usec = 1000;
        _cleanup_(daemon_state_info_done) struct daemon_state_info info = { 0 };
        struct cookie *cookies = NULL;
        size_t n_cookies = 0;
        long daemon_pid = 0;
        int r;

        for (;;) {
                daemon_state_info_done(&info);
                r = daemon_state_read(db_path, &info);
                if (r < 0) {
                        log_error_errno(r, "Failed to read the daemon state of %s: %m", db_path);
                        goto finish;
                }
                if (r == 0) {
                        /* No daemon (any more): do its work here. */
                        cookies_remove(cookies, n_cookies);
                        r = sync_recorded_roots(db_path);
                        goto finish;
                }
                if (info.pid > 0 && !info.has_index_state) {
                        r = log_error_errno(EOPNOTSUPP, "Failed to sync: the quired running on %s (pid %ld) is "
                                                        "older than this quire and cannot; restart it", db_path,
                                            info.pid);
                        goto finish;
                }
                /* A daemon that has published its roots (it may still be
                 * reconciling: the cookie then waits for that too). */
                if (info.pid > 0 && (info.n_roots > 0 || strcmp(info.state, "starting") != 0)) {
                        if (info.pid != daemon_pid) {
                                /* The first look, or another daemon took
                                 * over: cookies for this one. */
                                cookies_remove(cookies, n_cookies);
                                free(cookies);
                                cookies = calloc(info.n_roots + 1, sizeof *cookies);
                                n_cookies = 0;
                                if (!cookies) {
                                        r = log_error_errno(ENOMEM, "Failed to sync: %m");
                                        goto finish;
                                }
                                daemon_pid = info.pid;
                                r = cookies_create(&info, cookies, &n_cookies);
                                if (r < 0)
                                        goto finish;
                                /* No root quired watches: nothing would
                                 * report a cookie. Do its work here. */
                                if (n_cookies == 0 && info.n_unwatched_roots > 0) {
                                        r = sync_recorded_roots(db_path);
                                        goto finish;
                                }
                        }
                        size_t n_waiting = 0;
                        for (size_t i = 0; i < n_cookies; i++)
                                n_waiting += !is_acknowledged(&info, cookies[i].name);
                        enum process_stop stop = n_waiting > 0 ? process_stop_of(info.pid, "quired")
                                                               : PROCESS_NOT_STOPPED;
                        if (stop != PROCESS_NOT_STOPPED) {
                                _cleanup_free_ char *why = daemon_stop_text(info.pid, stop);
                                r = log_error_errno(EHOSTDOWN, "Failed to sync %s: %s", db_path,
                                                    why ? why : "quired is stopped");
                                goto finish;
                        }
                        if (n_waiting == 0) {
                                /* What quired cannot follow, the cookies
                                 * do not vouch for: say which. */
                                for (size_t i = 0; i < info.n_missing_roots; i++)
                                        log_warning("Root %s is missing for quired (pid %ld); what the index holds "
                                                    "of it may be out of date (see quire status)",
                                                    info.missing_roots[i], info.pid);
                                r = 0;
                                goto finish;
                        }
                }
                if (now_monotonic_usec() >= deadline) {
                        const char *root = NULL;
                        for (size_t i = 0; !root && i < n_cookies; i++)
                                if (!is_acknowledged(&info, cookies[i].name))
                                        root = cookies[i].root;
                        if (root)
                                log_error("Failed to sync: quired (pid %ld) has not caught up with the changes in "
                                          "%s after %u ms (see quire status)", info.pid, root, timeout_ms);
                        else
                                log_error("Failed to sync: quired on %s has not published its folders after %u ms "
                                          "(see quire status)", db_path, timeout_ms);
                        r = -ETIMEDOUT;
                        goto finish;
                }
                sleep_usec(poll_usec);
                poll_usec = poll_usec * 2 < POLL_MAX_USEC ? poll_usec * 2 : POLL_MAX_USEC;
        }
finish:
        cookies_remove(cookies, n_cookies);
        free(cookies);
        return r;
}
