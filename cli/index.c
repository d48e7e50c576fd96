/* quire index: bring the index of one or more trees up to date.
 *
 * A scan (stat only) is merged with the files table to find what changed;
 * reader threads load and chunk those files while this thread writes them
 * in short BEGIN IMMEDIATE batches, so SQLite's single writer is never
 * idle waiting for disk or the parser, and other writers get their turn
 * between batches. Memory is bounded by the queue, not by the tree. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "document.h"
#include "index.h"
#include "log.h"
#include "scan.h"
#include "store.h"
#include "util.h"

/* A batch commits at whichever bound it reaches first: big enough that
 * FTS5 flushes few segments, short enough that a peer waiting for the
 * write lock is not kept waiting long. The queue holds more than a batch so
 * that readers keep loading while the writer commits (with a smaller queue
 * they stalled on it and the two took turns). */
#define BATCH_MAX_FILES 4000
#define BATCH_FIRST_FILES 250
#define BATCH_MAX_BYTES (16u << 20)
#define BATCH_MAX_USEC 250000
#define QUEUE_MAX_FILES 8192
#define WAKE_WRITER_FILES 64
#define QUEUE_MAX_BYTES (32u << 20)
#define PROGRESS_INTERVAL_USEC 100000

static const char index_help[] =
        "Usage: quire index [OPTIONS] PATH...\n"
        "\n"
        "Index the Markdown notes under each PATH (a directory, walked\n"
        "recursively, or a file). Unchanged files are not read again; files\n"
        "gone from disk leave the index. Hidden paths, editor temp files and\n"
        "non-Markdown files are skipped.\n"
        "\n"
        "Options:\n"
        "      --db PATH             database (default: $QUIRE_DB or the XDG data dir)\n"
        "  -n, --namespace NS        namespace of these notes (default 'default')\n"
        "  -j, --jobs N              reader threads (default: CPUs - 1, at least 1)\n"
        "      --max-file-size SIZE  skip larger files (default 16M; K, M, G suffixes)\n"
        "  -h, --help                show this help\n";

/* What a loaded file does to the index. */
enum result_action {
        RESULT_INDEX,     /* diff its chunks in */
        RESULT_DROP_ROWS, /* gone or no longer a note */
        RESULT_KEEP_ROWS, /* unreadable for now: touch nothing */
};

struct result {
        const char *path;
        int error;
        enum result_action action;
        struct document doc;
};

struct skip_counts {
        unsigned binary, too_large, unreadable, not_regular;
};

struct pipeline {
        char **paths; /* borrowed */
        size_t n_paths;
        const struct document_options *doc_opts;
        atomic_size_t next_path;

        pthread_mutex_t lock;
        pthread_cond_t not_empty, not_full;
        struct result ring[QUEUE_MAX_FILES];
        size_t head, n_queued, queued_bytes;
        unsigned readers_running;
};

static void *reader_thread(void *userdata) {
        struct pipeline *p = userdata;

        for (;;) {
                size_t i = atomic_fetch_add(&p->next_path, 1);
                if (i >= p->n_paths)
                        break;
                struct result res = { .path = p->paths[i] };
                res.error = document_load(AT_FDCWD, res.path, p->doc_opts, &res.doc);

                pthread_mutex_lock(&p->lock);
                while (p->n_queued == QUEUE_MAX_FILES || (p->n_queued > 0 && p->queued_bytes >= QUEUE_MAX_BYTES))
                        pthread_cond_wait(&p->not_full, &p->lock);
                p->ring[(p->head + p->n_queued) % QUEUE_MAX_FILES] = res;
                p->n_queued++;
                p->queued_bytes += res.doc.text_len;
                /* Wake the writer for a handful of files, not for each:
                 * a wakeup per file costs more than the file. */
                if (p->n_queued >= WAKE_WRITER_FILES || p->queued_bytes >= QUEUE_MAX_BYTES / 2)
                        pthread_cond_signal(&p->not_empty);
                pthread_mutex_unlock(&p->lock);
        }
        pthread_mutex_lock(&p->lock);
        p->readers_running--;
        pthread_cond_signal(&p->not_empty);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

struct batch {
        struct result items[BATCH_MAX_FILES];
        size_t n;
        /* Starts small and doubles with each commit, so the writer starts
         * while the readers are still filling the first big batch. */
        size_t target;
        size_t bytes;
        uint64_t started_usec;
};

struct index_run {
        const char *ns;
        struct store *store;
        struct batch batch;
        struct index_stats totals;
        struct index_item items[BATCH_MAX_FILES];
        struct skip_counts skipped;
        struct scan_counts scan_skipped;
        unsigned n_unchanged_by_stat;
        size_t n_done, n_total;
        uint64_t started_usec, last_progress_usec;
        bool show_progress;
};

/* What a failed load means for the rows of that file: files that are
 * really gone, or no longer notes at all (binary, too large, a FIFO),
 * leave the index; a file we merely cannot read right now keeps what it
 * had. Logs one line for each file it skips. */
static bool load_error_drops_rows(struct index_run *run, const struct result *res) {
        switch (res->error) {
        case -ENOENT:
        case -ENOTDIR:
                return true;
        case -EMEDIUMTYPE:
                run->skipped.binary++;
                log_warning("Skipping %s: binary file (contains NUL bytes)", res->path);
                return true;
        case -EFBIG:
                run->skipped.too_large++;
                log_warning("Skipping %s: larger than the --max-file-size limit", res->path);
                return true;
        case -EINVAL:
        case -ELOOP:
                run->skipped.not_regular++;
                log_warning("Skipping %s: not a regular file", res->path);
                return true;
        default:
                run->skipped.unreadable++;
                log_warning_errno(res->error, "Failed to read %s: %m (its index entries are kept)", res->path);
                return false;
        }
}

static void print_progress(struct index_run *run, bool force) {
        uint64_t now = now_monotonic_usec();

        if (!run->show_progress || (!force && now - run->last_progress_usec < PROGRESS_INTERVAL_USEC))
                return;
        run->last_progress_usec = now;
        double secs = (now - run->started_usec) / 1e6;
        double rate = secs > 0 ? run->n_done / secs : 0;
        double eta = rate > 0 ? (run->n_total - run->n_done) / rate : 0;
        unsigned percent = run->n_total ? (unsigned) (100.0 * run->n_done / run->n_total) : 100;
        char bar[21];
        for (unsigned i = 0; i < 20; i++)
                bar[i] = i < percent / 5 ? '#' : '.';
        bar[20] = '\0';
        fprintf(stderr, "\r\033[K[%s] %3u%%  %zu/%zu files  %.0f files/s  ETA %.0fs", bar, percent, run->n_done,
                run->n_total, rate, eta);
}

static int flush_batch(struct index_run *run) {
        int r = 0;

        size_t n_items = 0;
        for (size_t i = 0; i < run->batch.n; i++) {
                const struct result *res = &run->batch.items[i];
                if (res->action == RESULT_KEEP_ROWS)
                        continue;
                run->items[n_items++] = (struct index_item){
                        .path = res->path,
                        .doc = res->action == RESULT_INDEX ? &res->doc : NULL,
                };
        }
        if (n_items > 0)
                r = store_apply(run->store, run->ns, run->items, n_items, &run->totals);
        for (size_t i = 0; i < run->batch.n; i++)
                document_done(&run->batch.items[i].doc);
        run->n_done += run->batch.n;
        run->batch.n = 0;
        run->batch.target = run->batch.target * 2 < BATCH_MAX_FILES ? run->batch.target * 2 : BATCH_MAX_FILES;
        run->batch.bytes = 0;
        print_progress(run, false);
        return r;
}

/* Take one loaded file into the batch, deciding what its result means. */
static void batch_add(struct index_run *run, struct result res) {
        if (res.error == 0)
                res.action = RESULT_INDEX;
        else
                res.action = load_error_drops_rows(run, &res) ? RESULT_DROP_ROWS : RESULT_KEEP_ROWS;
        if (run->batch.n == 0)
                run->batch.started_usec = now_monotonic_usec();
        run->batch.items[run->batch.n++] = res;
        run->batch.bytes += res.doc.text_len;
}

static bool batch_is_due(const struct batch *b) {
        return b->n >= b->target || b->bytes >= BATCH_MAX_BYTES ||
               (b->n > 0 && now_monotonic_usec() - b->started_usec >= BATCH_MAX_USEC);
}

static int run_pipeline(struct index_run *run, char **paths, size_t n_paths, unsigned n_readers,
                        const struct document_options *doc_opts) {
        struct pipeline p = {
                .paths = paths,
                .n_paths = n_paths,
                .doc_opts = doc_opts,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .not_empty = PTHREAD_COND_INITIALIZER,
                .not_full = PTHREAD_COND_INITIALIZER,
        };
        pthread_t threads[64];
        int r = 0;

        if (n_paths == 0)
                return 0;
        if (n_readers > n_paths)
                n_readers = (unsigned) n_paths;
        /* Count them in before any starts: a fast reader may finish (and
         * count itself out) before the next one is created. */
        unsigned n_started = 0;
        p.readers_running = n_readers;
        for (; n_started < n_readers; n_started++) {
                r = -pthread_create(&threads[n_started], NULL, reader_thread, &p);
                if (r < 0)
                        break;
        }
        if (n_started == 0)
                return log_error_errno(r, "Failed to start reader threads: %m");
        pthread_mutex_lock(&p.lock);
        p.readers_running -= n_readers - n_started;
        pthread_mutex_unlock(&p.lock);
        r = 0;

        pthread_mutex_lock(&p.lock);
        for (;;) {
                while (p.n_queued == 0 && p.readers_running > 0 && !batch_is_due(&run->batch)) {
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_nsec += 50 * 1000000L;
                        if (until.tv_nsec >= 1000000000L) {
                                until.tv_sec++;
                                until.tv_nsec -= 1000000000L;
                        }
                        pthread_cond_timedwait(&p.not_empty, &p.lock, &until);
                }
                while (p.n_queued > 0 && run->batch.n < BATCH_MAX_FILES) {
                        struct result res = p.ring[p.head];
                        p.head = (p.head + 1) % QUEUE_MAX_FILES;
                        p.n_queued--;
                        p.queued_bytes -= res.doc.text_len;
                        batch_add(run, res);
                }
                pthread_cond_broadcast(&p.not_full);
                bool is_last = p.n_queued == 0 && p.readers_running == 0;
                pthread_mutex_unlock(&p.lock);

                if (r == 0 && (is_last || batch_is_due(&run->batch)))
                        r = flush_batch(run);
                if (r < 0) {
                        /* Stop the readers early: nothing more can be written. */
                        atomic_store(&p.next_path, n_paths);
                }
                pthread_mutex_lock(&p.lock);
                if (is_last)
                        break;
                if (r < 0) {
                        /* Drain without writing so readers never block. */
                        while (p.n_queued > 0) {
                                document_done(&p.ring[p.head].doc);
                                p.head = (p.head + 1) % QUEUE_MAX_FILES;
                                p.n_queued--;
                        }
                        p.queued_bytes = 0;
                        for (size_t i = 0; i < run->batch.n; i++)
                                document_done(&run->batch.items[i].doc);
                        run->batch.n = 0;
                }
        }
        pthread_mutex_unlock(&p.lock);
        for (unsigned i = 0; i < n_started; i++)
                pthread_join(threads[i], NULL);
        return r;
}

/* A row the scan did not see is deleted only when the file is really
 * gone (or is no longer a regular file): a file under a directory we
 * could not list keeps its rows. */
static bool is_really_gone(const char *path) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT || errno == ENOTDIR;
        return !S_ISREG(st.st_mode);
}

struct path_list {
        char **items;
        size_t n, cap;
};

static int path_list_add(struct path_list *l, char *path) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 1024;
                char **p = realloc(l->items, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                l->items = p;
                l->cap = cap;
        }
        l->items[l->n++] = path;
        return 0;
}

/* Merge the sorted scan of root with the sorted files rows under it: new
 * or changed files become jobs, rows without a file become gone
 * candidates. Both lists are in strcmp order, which is SQLite's BINARY
 * order for these strings. */
static int plan_root(struct index_run *run, const char *root, struct scan_result *scan, struct path_list *jobs,
                     struct path_list *gone) {
        struct file_row *rows = NULL;
        size_t n_rows = 0, a = 0, b = 0;
        int r;

        r = store_list_files(run->store, run->ns, root, &rows, &n_rows);
        if (r < 0)
                return r;
        while (r == 0 && (a < scan->n_entries || b < n_rows)) {
                int c = a == scan->n_entries ? 1 : b == n_rows ? -1 : strcmp(scan->entries[a].path, rows[b].path);
                if (c < 0) {
                        r = path_list_add(jobs, scan->entries[a].path);
                        scan->entries[a++].path = NULL;
                } else if (c > 0) {
                        if (is_really_gone(rows[b].path)) {
                                r = path_list_add(gone, rows[b].path);
                                rows[b].path = NULL;
                        }
                        b++;
                } else {
                        const struct scan_entry *e = &scan->entries[a];
                        if (e->size == rows[b].size && e->mtime_ns == rows[b].mtime_ns)
                                run->n_unchanged_by_stat++;
                        else {
                                r = path_list_add(jobs, scan->entries[a].path);
                                scan->entries[a].path = NULL;
                        }
                        a++, b++;
                }
        }
        file_rows_free(rows, n_rows);
        return r;
}

static void scan_counts_add(struct scan_counts *a, const struct scan_counts *b) {
        a->hidden += b->hidden;
        a->editor_temp += b->editor_temp;
        a->not_markdown += b->not_markdown;
        a->symlinks += b->symlinks;
        a->special += b->special;
        a->unreadable += b->unreadable;
}

/* Turn one PATH argument into jobs: a directory is scanned and merged,
 * a file is a job of its own. */
static int plan_argument(struct index_run *run, const char *arg, struct path_list *jobs, struct path_list *gone) {
        struct stat st;
        int r;

        if (stat(arg, &st) < 0)
                return log_error_errno(errno, "Failed to index %s: %m", arg);
        if (S_ISDIR(st.st_mode)) {
                _cleanup_free_ char *root = realpath(arg, NULL);
                struct scan_result scan;
                if (!root)
                        return log_error_errno(errno, "Failed to resolve %s: %m", arg);
                r = scan_tree(root, &scan);
                if (r < 0)
                        return r;
                scan_counts_add(&run->scan_skipped, &scan.skipped);
                r = plan_root(run, root, &scan, jobs, gone);
                scan_result_done(&scan);
                return r;
        }
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EINVAL, "Failed to index %s: not a directory or regular file", arg);

        /* The contract's path: realpath of the directory + the name as given. */
        _cleanup_free_ char *copy1 = strdup(arg), *copy2 = strdup(arg);
        if (!copy1 || !copy2)
                return -ENOMEM;
        _cleanup_free_ char *dir = realpath(dirname(copy1), NULL);
        if (!dir)
                return log_error_errno(errno, "Failed to resolve %s: %m", arg);
        char *path;
        if (asprintf(&path, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, basename(copy2)) < 0)
                return -ENOMEM;
        r = path_list_add(jobs, path);
        if (r < 0)
                free(path);
        return r;
}

static bool parse_size(const char *s, uint64_t *ret) {
        char *end;

        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno)
                return false;
        unsigned shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        }
        if (*end || v == 0 || v > (UINT64_MAX >> shift))
                return false;
        *ret = (uint64_t) v << shift;
        return true;
}

static void print_summary(const struct index_run *run) {
        const struct index_stats *t = &run->totals;
        double secs = (now_monotonic_usec() - run->started_usec) / 1e6;
        unsigned unchanged = run->n_unchanged_by_stat + t->files_unchanged + t->files_touched;
        const struct skip_counts *k = &run->skipped;
        const struct scan_counts *c = &run->scan_skipped;

        printf("indexed %u files in %.2f s: %u new, %u changed, %u unchanged, %u removed; "
               "chunks: %u added, %u moved, %u removed\n",
               t->files_new + t->files_changed + unchanged, secs, t->files_new, t->files_changed, unchanged,
               t->files_deleted, t->chunks_inserted, t->chunks_moved, t->chunks_deleted);
        printf("skipped: %u hidden, %u editor temp, %u not Markdown, %u symlinks, %u special, %u binary, "
               "%u too large, %u unreadable\n",
               c->hidden, c->editor_temp, c->not_markdown, c->symlinks, c->special + k->not_regular, k->binary,
               k->too_large, k->unreadable + c->unreadable);
}

int cmd_index(int argc, char **argv) {
        enum { OPT_DB = 0x100, OPT_MAX_FILE_SIZE };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "namespace", required_argument, NULL, 'n' },
                { "jobs", required_argument, NULL, 'j' },
                { "max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct document_options doc_opts = {
                .chunker = { .min_bytes = CHUNKER_MIN_BYTES_DEFAULT, .max_bytes = CHUNKER_MAX_BYTES_DEFAULT },
                .max_file_bytes = DOCUMENT_MAX_BYTES_DEFAULT,
        };
        const char *db_arg = NULL;
        /* One CPU stays with the writer, which is the bottleneck. */
        long n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned n_readers = n_cpus > 2 ? (unsigned) n_cpus - 1 : 1;
        struct index_run *run;
        int opt, r;

        run = calloc(1, sizeof *run);
        if (!run)
                return 1;
        run->ns = "default";
        run->batch.target = BATCH_FIRST_FILES;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":n:j:h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        db_arg = optarg;
                        break;
                case 'n':
                        if (!*optarg) {
                                free(run);
                                return usage_error("index", "--namespace must not be empty");
                        }
                        run->ns = optarg;
                        break;
                case 'j':
                        if (!parse_unsigned(optarg, &n_readers) || n_readers > 64) {
                                free(run);
                                return usage_error("index", "--jobs needs a number from 1 to 64, not '%s'", optarg);
                        }
                        break;
                case OPT_MAX_FILE_SIZE:
                        if (!parse_size(optarg, &doc_opts.max_file_bytes)) {
                                free(run);
                                return usage_error("index", "--max-file-size needs a size like 512K or 16M, not '%s'",
                                                   optarg);
                        }
                        break;
                case 'h':
                        free(run);
                        fputs(index_help, stdout);
                        return 0;
                default:
                        free(run);
                        return usage_bad_option("index", opt, argv);
                }
        }
        if (optind >= argc) {
                free(run);
                return usage_error("index", "missing PATH");
        }

        run->started_usec = run->last_progress_usec = now_monotonic_usec();
        run->show_progress = isatty(STDERR_FILENO) && !getenv("CI");

        struct path_list jobs = { 0 }, gone = { 0 };
        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        r = db_path ? store_open(db_path, NULL, &run->store) : -ENOMEM;
        for (int i = optind; r == 0 && i < argc; i++)
                r = plan_argument(run, argv[i], &jobs, &gone);
        if (r == 0) {
                run->n_total = jobs.n;
                r = run_pipeline(run, jobs.items, jobs.n, n_readers, &doc_opts);
        }
        for (size_t i = 0; r == 0 && i < gone.n; i += BATCH_MAX_FILES) {
                size_t n = gone.n - i < BATCH_MAX_FILES ? gone.n - i : BATCH_MAX_FILES;
                for (size_t k = 0; k < n; k++)
                        run->items[k] = (struct index_item){ .path = gone.items[i + k] };
                r = store_apply(run->store, run->ns, run->items, n, &run->totals);
        }
        if (run->show_progress && run->n_total > 0) {
                print_progress(run, true);
                fputs("\r\033[K", stderr);
        }
        if (r == 0)
                print_summary(run);

        bool had_unreadable = run->skipped.unreadable + run->scan_skipped.unreadable > 0;
        for (size_t i = 0; i < jobs.n; i++)
                free(jobs.items[i]);
        free(jobs.items);
        for (size_t i = 0; i < gone.n; i++)
                free(gone.items[i]);
        free(gone.items);
        store_close(run->store);
        free(run);
        return r < 0 || had_unreadable ? 1 : 0;
}
