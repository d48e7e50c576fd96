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

/* A directory argument: the files rows under it, sorted, looked up by the
 * scan as it finds notes; rows never seen are the candidates for removal. */
struct root_plan {
        char *root; /* realpath, owned */
        struct file_row *rows;
        size_t n_rows;
        bool *is_seen;
};

/* Jobs flow from the planner thread (which walks the roots) to the reader
 * threads (which load and chunk files) to this thread (which writes), all
 * three at once: the first files are written while the walk goes on. */
struct pipeline {
        const struct document_options *doc_opts;
        struct root_plan *roots;
        size_t n_roots;
        char **single_files; /* file arguments, borrowed */
        size_t n_single_files;

        pthread_mutex_t lock;
        pthread_cond_t has_jobs;  /* readers wait for jobs */
        pthread_cond_t not_empty; /* the writer waits for results */
        pthread_cond_t not_full;  /* readers wait for room */
        char **jobs;              /* owned paths, taken in order */
        size_t n_jobs, cap_jobs, next_job;
        bool are_jobs_complete;
        bool is_cancelled;
        int plan_error;
        struct result ring[QUEUE_MAX_FILES];
        size_t head, n_queued, queued_bytes;
        unsigned readers_running;

        /* Written by the planner only, read after it is joined. */
        struct scan_counts scan_skipped;
        unsigned n_unchanged_by_stat;
};

static int job_add(struct pipeline *p, const char *path) {
        char *copy = strdup(path);
        int r = 0;

        if (!copy)
                return -ENOMEM;
        pthread_mutex_lock(&p->lock);
        if (p->n_jobs == p->cap_jobs) {
                size_t cap = p->cap_jobs ? p->cap_jobs * 2 : 1024;
                char **j = realloc(p->jobs, cap * sizeof *j);
                if (!j)
                        r = -ENOMEM;
                else {
                        p->jobs = j;
                        p->cap_jobs = cap;
                }
        }
        if (r == 0) {
                p->jobs[p->n_jobs++] = copy;
                if (p->n_jobs - p->next_job == 1 || p->n_jobs % 64 == 0)
                        pthread_cond_broadcast(&p->has_jobs);
        } else
                free(copy);
        pthread_mutex_unlock(&p->lock);
        return r;
}

static int cmp_row_path(const void *key, const void *row) {
        return strcmp(key, ((const struct file_row *) row)->path);
}

struct root_scan {
        struct pipeline *pipeline;
        struct root_plan *plan;
};

/* A note found by the scan: a job unless its size and mtime match what is
 * indexed. */
static int on_note(const char *path, const struct stat *st, void *userdata) {
        struct root_scan *rs = userdata;
        struct root_plan *plan = rs->plan;
        const struct file_row *row =
                plan->n_rows > 0 ? bsearch(path, plan->rows, plan->n_rows, sizeof *plan->rows, cmp_row_path) : NULL;

        if (row) {
                plan->is_seen[row - plan->rows] = true;
                if (row->size == st->st_size &&
                    row->mtime_ns == (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec) {
                        rs->pipeline->n_unchanged_by_stat++;
                        return 0;
                }
        }
        return job_add(rs->pipeline, path);
}

static void *planner_thread(void *userdata) {
        struct pipeline *p = userdata;
        int r = 0;

        for (size_t i = 0; r == 0 && i < p->n_single_files; i++)
                r = job_add(p, p->single_files[i]);
        for (size_t i = 0; r == 0 && i < p->n_roots; i++) {
                struct root_scan rs = { .pipeline = p, .plan = &p->roots[i] };
                r = scan_tree(p->roots[i].root, on_note, &rs, &p->scan_skipped);
        }
        pthread_mutex_lock(&p->lock);
        p->plan_error = r;
        p->are_jobs_complete = true;
        pthread_cond_broadcast(&p->has_jobs);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static void *reader_thread(void *userdata) {
        struct pipeline *p = userdata;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->next_job == p->n_jobs && !p->are_jobs_complete && !p->is_cancelled)
                        pthread_cond_wait(&p->has_jobs, &p->lock);
                if (p->is_cancelled || p->next_job == p->n_jobs)
                        break;
                struct result res = { .path = p->jobs[p->next_job++] };
                pthread_mutex_unlock(&p->lock);

                res.error = document_load(AT_FDCWD, res.path, p->doc_opts, &res.doc);

                pthread_mutex_lock(&p->lock);
                while (!p->is_cancelled &&
                       (p->n_queued == QUEUE_MAX_FILES || (p->n_queued > 0 && p->queued_bytes >= QUEUE_MAX_BYTES)))
                        pthread_cond_wait(&p->not_full, &p->lock);
                if (p->is_cancelled) {
                        document_done(&res.doc);
                        break;
                }
                p->ring[(p->head + p->n_queued) % QUEUE_MAX_FILES] = res;
                p->n_queued++;
                p->queued_bytes += res.doc.text_len;
                /* Wake the writer for a handful of files, not for each:
                 * a wakeup per file costs more than the file. */
                if (p->n_queued >= WAKE_WRITER_FILES || p->queued_bytes >= QUEUE_MAX_BYTES / 2)
                        pthread_cond_signal(&p->not_empty);
        }
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
        size_t n_done;
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

static void print_progress(struct index_run *run, size_t n_known, bool is_total, bool force) {
        uint64_t now = now_monotonic_usec();

        if (!run->show_progress || (!force && now - run->last_progress_usec < PROGRESS_INTERVAL_USEC))
                return;
        run->last_progress_usec = now;
        double secs = (now - run->started_usec) / 1e6;
        double rate = secs > 0 ? run->n_done / secs : 0;
        if (!is_total) {
                fprintf(stderr, "\r\033[K%zu/%zu+ files  %.0f files/s  (still scanning)", run->n_done, n_known, rate);
                return;
        }
        double eta = rate > 0 ? (n_known - run->n_done) / rate : 0;
        unsigned percent = n_known ? (unsigned) (100.0 * run->n_done / n_known) : 100;
        char bar[21];
        for (unsigned i = 0; i < 20; i++)
                bar[i] = i < percent / 5 ? '#' : '.';
        bar[20] = '\0';
        fprintf(stderr, "\r\033[K[%s] %3u%%  %zu/%zu files  %.0f files/s  ETA %.0fs", bar, percent, run->n_done,
                n_known, rate, eta);
}

static int flush_batch(struct index_run *run) {
        size_t n_items = 0;
        int r = 0;

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
        run->batch.bytes = 0;
        run->batch.target = run->batch.target * 2 < BATCH_MAX_FILES ? run->batch.target * 2 : BATCH_MAX_FILES;
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

static void timespec_in_msec(struct timespec *ts, long msec) {
        clock_gettime(CLOCK_REALTIME, ts);
        ts->tv_nsec += msec * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

/* The writer's side of the pipeline, on this thread. */
static int write_results(struct index_run *run, struct pipeline *p) {
        int r = 0;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->n_queued == 0 && p->readers_running > 0 && !batch_is_due(&run->batch)) {
                        struct timespec until;
                        timespec_in_msec(&until, 50);
                        pthread_cond_timedwait(&p->not_empty, &p->lock, &until);
                }
                while (p->n_queued > 0 && run->batch.n < BATCH_MAX_FILES) {
                        struct result res = p->ring[p->head];
                        p->head = (p->head + 1) % QUEUE_MAX_FILES;
                        p->n_queued--;
                        p->queued_bytes -= res.doc.text_len;
                        batch_add(run, res);
                }
                pthread_cond_broadcast(&p->not_full);
                bool is_last = p->n_queued == 0 && p->readers_running == 0;
                size_t n_known = p->n_jobs;
                bool is_total = p->are_jobs_complete;
                pthread_mutex_unlock(&p->lock);

                if (is_last || batch_is_due(&run->batch)) {
                        r = flush_batch(run);
                        print_progress(run, n_known, is_total, false);
                }
                if (r < 0 || is_last)
                        return r;
                pthread_mutex_lock(&p->lock);
        }
}

/* Stop readers and planner early (after a write failed): they drop what
 * they hold instead of waiting for room that will never come. */
static void cancel_pipeline(struct pipeline *p) {
        pthread_mutex_lock(&p->lock);
        p->is_cancelled = true;
        while (p->n_queued > 0) {
                document_done(&p->ring[p->head].doc);
                p->head = (p->head + 1) % QUEUE_MAX_FILES;
                p->n_queued--;
        }
        p->queued_bytes = 0;
        pthread_cond_broadcast(&p->has_jobs);
        pthread_cond_broadcast(&p->not_full);
        pthread_mutex_unlock(&p->lock);
}

static int run_pipeline(struct index_run *run, struct pipeline *p, unsigned n_readers) {
        pthread_t planner, readers[64];
        unsigned n_started = 0;
        int r;

        r = -pthread_create(&planner, NULL, planner_thread, p);
        if (r < 0)
                return log_error_errno(r, "Failed to start the planner thread: %m");
        /* Count them in before any starts: a fast reader may finish (and
         * count itself out) before the next one is created. */
        p->readers_running = n_readers;
        for (; n_started < n_readers; n_started++) {
                r = -pthread_create(&readers[n_started], NULL, reader_thread, p);
                if (r < 0)
                        break;
        }
        pthread_mutex_lock(&p->lock);
        p->readers_running -= n_readers - n_started;
        pthread_mutex_unlock(&p->lock);

        if (n_started == 0) {
                log_error_errno(r, "Failed to start reader threads: %m");
                cancel_pipeline(p);
        } else {
                r = write_results(run, p);
                if (r < 0)
                        cancel_pipeline(p);
        }
        pthread_join(planner, NULL);
        for (unsigned i = 0; i < n_started; i++)
                pthread_join(readers[i], NULL);
        /* Results of readers that finished after a cancel. */
        for (; p->n_queued > 0; p->n_queued--, p->head = (p->head + 1) % QUEUE_MAX_FILES)
                document_done(&p->ring[p->head].doc);
        if (r == 0)
                r = p->plan_error;
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

/* Rows of the roots that the scan did not see and whose files are gone,
 * removed in batches. */
static int remove_gone(struct index_run *run, const struct pipeline *p) {
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < p->n_roots; i++) {
                const struct root_plan *plan = &p->roots[i];
                for (size_t k = 0; r == 0 && k < plan->n_rows; k++) {
                        if (plan->is_seen[k] || !is_really_gone(plan->rows[k].path))
                                continue;
                        run->items[n++] = (struct index_item){ .path = plan->rows[k].path };
                        if (n == BATCH_MAX_FILES) {
                                r = store_apply(run->store, run->ns, run->items, n, &run->totals);
                                n = 0;
                        }
                }
        }
        if (r == 0 && n > 0)
                r = store_apply(run->store, run->ns, run->items, n, &run->totals);
        return r;
}

/* Check one PATH argument before anything is written: a directory gets a
 * root plan with its indexed rows, a file becomes a job of its own. */
static int plan_argument(struct index_run *run, struct pipeline *p, const char *arg) {
        struct stat st;
        int r;

        if (stat(arg, &st) < 0)
                return log_error_errno(errno, "Failed to index %s: %m", arg);
        if (S_ISDIR(st.st_mode)) {
                struct root_plan *plan = &p->roots[p->n_roots];
                plan->root = realpath(arg, NULL);
                if (!plan->root)
                        return log_error_errno(errno, "Failed to resolve %s: %m", arg);
                p->n_roots++;
                r = store_list_files(run->store, run->ns, plan->root, &plan->rows, &plan->n_rows);
                if (r < 0)
                        return r;
                plan->is_seen = calloc(plan->n_rows + 1, sizeof *plan->is_seen);
                return plan->is_seen ? 0 : -ENOMEM;
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
        p->single_files[p->n_single_files++] = path;
        return 0;
}

static void pipeline_done(struct pipeline *p) {
        for (size_t i = 0; i < p->n_roots; i++) {
                free(p->roots[i].root);
                file_rows_free(p->roots[i].rows, p->roots[i].n_rows);
                free(p->roots[i].is_seen);
        }
        free(p->roots);
        for (size_t i = 0; i < p->n_single_files; i++)
                free(p->single_files[i]);
        free(p->single_files);
        for (size_t i = 0; i < p->n_jobs; i++)
                free(p->jobs[i]);
        free(p->jobs);
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

static void print_summary(const struct index_run *run, const struct pipeline *p) {
        const struct index_stats *t = &run->totals;
        double secs = (now_monotonic_usec() - run->started_usec) / 1e6;
        unsigned unchanged = p->n_unchanged_by_stat + t->files_unchanged + t->files_touched;
        const struct skip_counts *k = &run->skipped;
        const struct scan_counts *c = &p->scan_skipped;

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

        struct pipeline p = {
                .doc_opts = &doc_opts,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .has_jobs = PTHREAD_COND_INITIALIZER,
                .not_empty = PTHREAD_COND_INITIALIZER,
                .not_full = PTHREAD_COND_INITIALIZER,
                .roots = calloc(argc - optind, sizeof *p.roots),
                .single_files = calloc(argc - optind, sizeof *p.single_files),
        };
        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        r = db_path && p.roots && p.single_files ? store_open(db_path, NULL, &run->store) : -ENOMEM;
        for (int i = optind; r == 0 && i < argc; i++)
                r = plan_argument(run, &p, argv[i]);
        if (r == 0)
                r = run_pipeline(run, &p, n_readers);
        if (r == 0)
                r = remove_gone(run, &p);
        if (run->show_progress && p.n_jobs > 0) {
                print_progress(run, p.n_jobs, true, true);
                fputs("\r\033[K", stderr);
        }
        if (r == 0)
                print_summary(run, &p);

        bool had_unreadable = run->skipped.unreadable + p.scan_skipped.unreadable > 0;
        pipeline_done(&p);
        store_close(run->store);
        free(run);
        return r < 0 || had_unreadable ? 1 : 0;
}
