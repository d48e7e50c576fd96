/* See sync.h. Three kinds of thread share one pipeline: the planner walks
 * the trees and turns changed notes into jobs as it finds them, readers load
 * and chunk the jobs, and the calling thread writes the results. The first
 * files are written while the walk goes on; the loaded files are bounded
 * by the queue, not by the tree (what grows with the tree is paths: the
 * files rows of the roots and the jobs, about a hundred bytes a note). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ignore.h"
#include "log.h"
#include "roots.h"
#include "store-internal.h"
#include "sync.h"
#include "tokens.h"
#include "util.h"

/* A batch commits at whichever bound it reaches first: big enough that
 * FTS5 flushes few segments, short enough that a peer waiting for the
 * write lock is not kept waiting long. The queue holds more than a batch so
 * that readers keep loading while the writer commits (with a smaller queue
 * they stalled on it and the two took turns). A batch costs memory three
 * times over while it is written (the loaded files, their copy in the
 * TEMP staging tables, and the statement journal and dirty pages of the
 * one INSERT that applies it), so these bounds set the peak RSS: halving
 * them (from 4000 files and 16 MiB, queue 8192 and 32 MiB) took the cold
 * index of the tldr corpus from 62.5 to 45.3 MiB at the same speed within
 * noise (docs/BENCHMARKS.md). */
#define BATCH_MAX_FILES 2000
#define BATCH_FIRST_FILES 250
#define BATCH_MAX_BYTES (4u << 20)
#define BATCH_MAX_USEC 250000
#define QUEUE_MAX_FILES 4096
#define WAKE_WRITER_FILES 64
#define QUEUE_MAX_BYTES (8u << 20)
/* How many times a file that changed between its read and our write lock
 * is read again before this run leaves it to the next (a daemon gets an
 * event for every such change anyway). */
#define STALE_ROUNDS_MAX 3

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
        struct token_tapes tapes; /* doc's texts tokenized by the reader */
};

static void result_done(struct result *res) {
        document_done(&res->doc);
        token_tapes_done(&res->tapes);
}

/* A directory to walk: the files rows under it, sorted, looked up by the
 * walk as it finds notes; rows never seen are the candidates for removal. */
struct root_plan {
        char *root; /* owned */
        struct file_row *rows;
        size_t n_rows;
        bool *is_seen;
        char **unreadable; /* directories the walk could not list; owned */
        size_t n_unreadable;
        bool keeps_all_unseen; /* ran out of memory noting them */
};

/* A single path: what the files table says of it, looked up before the
 * planner starts (the planner has no connection of its own). */
struct path_plan {
        const char *path; /* borrowed */
        bool has_row;
        struct file_row row; /* without its path */
};

/* Jobs flow from the planner thread (which walks) to the reader threads
 * (which load and chunk) to the calling thread (which writes), all at
 * once. */
struct pipeline {
        const struct document_options *doc_opts;
        const struct scan_rules *rules;
        bool records_tokens; /* readers tokenize for the writer (tokens.h) */
        const char *walk_root; /* sync_options.root */
        const atomic_bool *cancel; /* sync_options.cancel */
        char *const *kept_dirs; /* sync_options.kept_dirs */
        size_t n_kept_dirs;
        char *const *left_dirs; /* sync_options.left_dirs */
        size_t n_left_dirs;
        struct root_plan *roots;
        size_t n_roots;
        struct path_plan *paths;
        size_t n_paths;

        pthread_mutex_t lock;
        pthread_cond_t has_jobs;  /* readers wait for jobs */
        pthread_cond_t not_empty; /* the writer waits for results */
        pthread_cond_t not_full;  /* readers wait for room */
        char **jobs;              /* owned paths, taken in order */
        size_t n_jobs, cap_jobs, next_job;
        bool are_jobs_complete;
        bool is_cancelled;
        int plan_error;
        struct result *ring; /* QUEUE_MAX_FILES of them, owned: 0.8 MiB, off the stack */
        size_t head, n_queued, queued_bytes;
        unsigned readers_running;

        /* Written by the planner only, read after it is joined. */
        struct scan_counts walk_skipped;
        unsigned n_unchanged_by_stat;
        const char **gone_paths; /* single paths found gone or now directories, borrowed */
        size_t n_gone_paths;
};

/* What a loaded file holds in memory, as far as the queue and the batch
 * bounds go: its text, what its chunks derived from it (the CJK text of a
 * Chinese note is twice its size again) and its token tapes. */
static size_t result_bytes(const struct result *res) {
        return res->doc.text_len + res->doc.derived_bytes + token_tapes_bytes(&res->tapes);
}

/* A stop asked for from outside (quired stopping): the walk ends at the
 * next note, where otherwise it went on to the last, for jobs nobody
 * would take. A walk cut short removes nothing. */
static bool is_stop_requested(const struct pipeline *p) {
        return p->cancel && atomic_load(p->cancel);
}

static int job_add(struct pipeline *p, const char *path) {
        char *copy = strdup(path);
        int r = 0;

        if (!copy)
                return -ENOMEM;
        pthread_mutex_lock(&p->lock);
        /* Or the writer failed: nobody takes jobs any more. */
        r = p->is_cancelled ? -ECANCELED : GREEDY_REALLOC(p->jobs, p->cap_jobs, p->n_jobs + 1, 1024);
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

static bool is_below_one_of(char *const *dirs, size_t n_dirs, const char *path) {
        for (size_t i = 0; i < n_dirs; i++)
                if (root_covers(dirs[i], path))
                        return true;
        return false;
}

/* Whether path, in the tree walked from root, lies in a left directory
 * inside that tree: another walk's. One around the tree does not count
 * (a root of other rules around the roots walked, as --sync leaves the
 * outer one to its own walk too). */
static bool is_left(const struct pipeline *p, const char *root, const char *path) {
        size_t root_len = strlen(root);
        for (size_t i = 0; i < p->n_left_dirs; i++)
                if (strlen(p->left_dirs[i]) > root_len && root_covers(p->left_dirs[i], path))
                        return true;
        return false;
}

struct root_walk {
        struct pipeline *pipeline;
        struct root_plan *plan;
};

/* Whether a note indexed under a larger size cap is past this one: read
 * again (the reader refuses it as too large), so that it leaves, however
 * unchanged its stat. */
static bool is_over_cap(const struct pipeline *p, const struct stat *st) {
        uint64_t cap = p->doc_opts && p->doc_opts->max_file_bytes ? p->doc_opts->max_file_bytes
                                                                   : DOCUMENT_MAX_BYTES_DEFAULT;
        return st->st_size > 0 && (uint64_t) st->st_size > cap;
}

/* A note found by the walk: a job unless its size and mtime match what is
 * indexed. */
static int on_note(const char *path, const struct stat *st, void *userdata) {
        struct root_walk *rw = userdata;
        struct root_plan *plan = rw->plan;
        if (is_stop_requested(rw->pipeline))
                return -ECANCELED;
        if (is_left(rw->pipeline, plan->root, path))
                return 0; /* another walk's */
        const struct file_row *row =
                plan->n_rows > 0 ? bsearch(path, plan->rows, plan->n_rows, sizeof *plan->rows, cmp_row_path) : NULL;

        if (row) {
                plan->is_seen[row - plan->rows] = true;
                if (file_row_matches_stat(row, st) && !is_over_cap(rw->pipeline, st)) {
                        rw->pipeline->n_unchanged_by_stat++;
                        return 0;
                }
        }
        return job_add(rw->pipeline, path);
}

/* The notes at or below dir are unknown, not gone: their rows stay. */
static void on_unreadable(const char *dir, void *userdata) {
        struct root_plan *plan = ((struct root_walk *) userdata)->plan;
        char *copy = plan->keeps_all_unseen ? NULL : strdup(dir);
        char **u = copy ? realloc(plan->unreadable, (plan->n_unreadable + 1) * sizeof *u) : NULL;

        if (!u) {
                /* Out of memory: keeping every unseen row is the safe side. */
                free(copy);
                plan->keeps_all_unseen = true;
                return;
        }
        plan->unreadable = u;
        plan->unreadable[plan->n_unreadable++] = copy;
}

static void plan_path(struct pipeline *p, const struct path_plan *pp, int *r) {
        struct stat st;

        /* As the walk does (scan.c): a path no TEXT column can hold. */
        if (!utf8_is_valid(pp->path, strlen(pp->path))) {
                p->walk_skipped.bad_names++;
                log_warning("Skipping %s: the name is not valid UTF-8", pp->path);
                return;
        }
        int k = lstat(pp->path, &st);
        if (lstat_says_gone(k, errno, &st)) {
                if (pp->has_row)
                        p->gone_paths[p->n_gone_paths++] = pp->path;
        } else if (k == 0 && pp->has_row && file_row_matches_stat(&pp->row, &st) && !is_over_cap(p, &st))
                p->n_unchanged_by_stat++;
        else
                *r = job_add(p, pp->path);
}

static void *planner_thread(void *userdata) {
        struct pipeline *p = userdata;
        int r = 0;

        for (size_t i = 0; r == 0 && i < p->n_paths; i++)
                if (is_stop_requested(p))
                        r = -ECANCELED;
                else
                        plan_path(p, &p->paths[i], &r);
        for (size_t i = 0; r == 0 && i < p->n_roots; i++) {
                struct root_walk rw = { .pipeline = p, .plan = &p->roots[i] };
                const char *root = p->walk_root ? p->walk_root : p->roots[i].root;
                r = scan_tree(root, p->roots[i].root, p->rules, on_note, on_unreadable, &rw, &p->walk_skipped);
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
        struct token_recorder *recorder = NULL;

        if (p->records_tokens && token_recorder_new(&recorder) < 0)
                log_debug("A reader could not make a tokenizer; the writer tokenizes its files");
        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->next_job == p->n_jobs && !p->are_jobs_complete && !p->is_cancelled)
                        pthread_cond_wait(&p->has_jobs, &p->lock);
                if (p->is_cancelled || p->next_job == p->n_jobs)
                        break;
                struct result res = { .path = p->jobs[p->next_job++] };
                pthread_mutex_unlock(&p->lock);

                res.error = document_load(AT_FDCWD, res.path, p->doc_opts, &res.doc);
                /* A tape missing (out of memory) is tokenized by the writer. */
                if (res.error == 0 && recorder)
                        (void) token_recorder_add_document(recorder, &res.tapes, res.path, &res.doc);

                pthread_mutex_lock(&p->lock);
                while (!p->is_cancelled &&
                       (p->n_queued == QUEUE_MAX_FILES || (p->n_queued > 0 && p->queued_bytes >= QUEUE_MAX_BYTES)))
                        pthread_cond_wait(&p->not_full, &p->lock);
                if (p->is_cancelled) {
                        result_done(&res);
                        break;
                }
                p->ring[(p->head + p->n_queued) % QUEUE_MAX_FILES] = res;
                p->n_queued++;
                p->queued_bytes += result_bytes(&res);
                /* Wake the writer for a handful of files, not for each:
                 * a wakeup per file costs more than the file. */
                if (p->n_queued >= WAKE_WRITER_FILES || p->queued_bytes >= QUEUE_MAX_BYTES / 2)
                        pthread_cond_signal(&p->not_empty);
        }
        p->readers_running--;
        pthread_cond_signal(&p->not_empty);
        pthread_mutex_unlock(&p->lock);
        token_recorder_free(recorder);
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

struct writer {
        struct store *store;
        const struct sync_options *opts;
        struct sync_stats *stats;
        struct batch batch;
        struct index_item items[BATCH_MAX_FILES];
        size_t n_done;
        char **stale; /* owned: paths store_apply() found changed since read */
        size_t n_stale, cap_stale;
};

/* Keep a path to be synced again once this round is done. */
static int keep_stale(struct writer *w, const char *path) {
        if (GREEDY_REALLOC(w->stale, w->cap_stale, w->n_stale + 1, 16) < 0)
                return -ENOMEM;
        w->stale[w->n_stale] = strdup(path);
        if (!w->stale[w->n_stale])
                return -ENOMEM;
        w->n_stale++;
        return 0;
}

/* Keep the paths of the items store_apply() marked stale. */
static int collect_stale(struct writer *w, size_t n_items) {
        for (size_t i = 0; i < n_items; i++) {
                if (!w->items[i].is_stale)
                        continue;
                int r = keep_stale(w, w->items[i].path);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Apply n items of w->items, keeping the stale ones for later. */
static int apply_items(struct writer *w, size_t n) {
        int r = store_apply(w->store, w->opts->namespace, w->items, n, &w->stats->index);
        return r < 0 ? r : collect_stale(w, n);
}

/* What a failed load means for the rows of that file: files that are
 * really gone, or no longer notes at all (binary, too large, a FIFO),
 * leave the index; a file we merely cannot read right now keeps what it
 * had. Logs one line for each file it skips. */
static bool load_error_drops_rows(struct sync_stats *stats, const struct result *res) {
        switch (res->error) {
        case -ENOENT:
        case -ENOTDIR:
                return true;
        case -EAGAIN:
                /* Changed while being read (document_load): flush_batch
                 * has it read again, and until then it keeps its rows. */
                return false;
        case -EMEDIUMTYPE:
                stats->binary++;
                log_warning("Skipping %s: binary file (contains NUL bytes)", res->path);
                return true;
        case -EFBIG:
                stats->too_large++;
                log_warning("Skipping %s: larger than the maximum file size", res->path);
                return true;
        case -EINVAL:
        case -ELOOP:
                stats->not_regular++;
                log_warning("Skipping %s: not a regular file", res->path);
                return true;
        default:
                stats->unreadable++;
                log_warning_errno(res->error, "Failed to read %s: %m (its index entries are kept)", res->path);
                return false;
        }
}

static int flush_batch(struct writer *w) {
        size_t n_items = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < w->batch.n; i++) {
                const struct result *res = &w->batch.items[i];
                if (res->error == -EAGAIN)
                        r = keep_stale(w, res->path);
                if (res->action == RESULT_KEEP_ROWS)
                        continue;
                bool is_gone = res->error == -ENOENT || res->error == -ENOTDIR;
                w->items[n_items++] = (struct index_item){
                        .path = res->path,
                        .doc = res->action == RESULT_INDEX ? &res->doc : NULL,
                        .tapes = &res->tapes,
                        .refused = res->action == RESULT_DROP_ROWS && !is_gone ? &res->doc : NULL,
                        .is_gone = is_gone,
                };
        }
        if (r == 0 && n_items > 0)
                r = apply_items(w, n_items);
        for (size_t i = 0; i < w->batch.n; i++)
                result_done(&w->batch.items[i]);
        w->n_done += w->batch.n;
        w->batch.n = 0;
        w->batch.bytes = 0;
        w->batch.target = w->batch.target * 2 < BATCH_MAX_FILES ? w->batch.target * 2 : BATCH_MAX_FILES;
        return r;
}

/* Take one loaded file into the batch, deciding what its result means. */
static void batch_add(struct writer *w, struct result res) {
        w->stats->n_read++;
        if (res.error == 0)
                res.action = RESULT_INDEX;
        else
                res.action = load_error_drops_rows(w->stats, &res) ? RESULT_DROP_ROWS : RESULT_KEEP_ROWS;
        if (w->batch.n == 0)
                w->batch.started_usec = now_monotonic_usec();
        w->batch.items[w->batch.n++] = res;
        w->batch.bytes += result_bytes(&res);
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

/* The writer's side of the pipeline, on the calling thread. */
static int write_results(struct writer *w, struct pipeline *p) {
        int r = 0;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->n_queued == 0 && p->readers_running > 0 && !batch_is_due(&w->batch)) {
                        struct timespec until;
                        timespec_in_msec(&until, 50);
                        pthread_cond_timedwait(&p->not_empty, &p->lock, &until);
                }
                while (p->n_queued > 0 && w->batch.n < BATCH_MAX_FILES) {
                        struct result res = p->ring[p->head];
                        p->head = (p->head + 1) % QUEUE_MAX_FILES;
                        p->n_queued--;
                        p->queued_bytes -= result_bytes(&res);
                        batch_add(w, res);
                }
                pthread_cond_broadcast(&p->not_full);
                bool is_last = p->n_queued == 0 && p->readers_running == 0;
                size_t n_known = p->n_jobs;
                bool is_total = p->are_jobs_complete;
                pthread_mutex_unlock(&p->lock);

                if (is_last || batch_is_due(&w->batch)) {
                        r = flush_batch(w);
                        if (w->opts->progress_cb)
                                w->opts->progress_cb(w->n_done, n_known, is_total, w->opts->userdata);
                        if (r == 0 && !is_last && w->opts->cancel && atomic_load(w->opts->cancel))
                                r = -ECANCELED;
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
                result_done(&p->ring[p->head]);
                p->head = (p->head + 1) % QUEUE_MAX_FILES;
                p->n_queued--;
        }
        p->queued_bytes = 0;
        pthread_cond_broadcast(&p->has_jobs);
        pthread_cond_broadcast(&p->not_full);
        pthread_mutex_unlock(&p->lock);
}

static unsigned default_readers(void) {
        /* One CPU stays with the writer, which is the bottleneck. */
        long n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return n_cpus > 2 ? (unsigned) n_cpus - 1 : 1;
}

static int run_pipeline(struct writer *w, struct pipeline *p) {
        unsigned n_readers = w->opts->n_readers ? w->opts->n_readers : default_readers();
        pthread_t planner, readers[64];
        unsigned n_started = 0;
        int r;

        if (n_readers > 64)
                n_readers = 64;
        r = -pthread_create(&planner, NULL, planner_thread, p);
        if (r < 0)
                return log_error_errno(r, "Failed to start the planner thread: %m");
        /* Named, so top -H, ps -L and the priority tests can tell the
         * threads apart (a thread starts with its creator's name). They
         * inherit the creator's scheduling policy and I/O priority: the
         * daemon's idle indexer makes idle readers. */
        (void) pthread_setname_np(planner, "quire-planner");
        /* Count them in before any starts: a fast reader may finish (and
         * count itself out) before the next one is created. */
        p->readers_running = n_readers;
        for (; n_started < n_readers; n_started++) {
                r = -pthread_create(&readers[n_started], NULL, reader_thread, p);
                if (r == 0)
                        (void) pthread_setname_np(readers[n_started], "quire-reader");
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
                r = write_results(w, p);
                if (r < 0)
                        cancel_pipeline(p);
        }
        pthread_join(planner, NULL);
        for (unsigned i = 0; i < n_started; i++)
                pthread_join(readers[i], NULL);
        /* Results of readers that finished after a cancel. */
        for (; p->n_queued > 0; p->n_queued--, p->head = (p->head + 1) % QUEUE_MAX_FILES)
                result_done(&p->ring[p->head]);
        if (r == 0)
                r = p->plan_error;
        return r;
}

/* is_gone: the file is not there (store_apply() checks that it still is
 * not); otherwise it is there, but no longer a note by the rules. */
static int remove_batch_add(struct writer *w, size_t *n, const char *path, bool is_gone) {
        w->items[(*n)++] = (struct index_item){ .path = path, .is_gone = is_gone };
        if (*n < BATCH_MAX_FILES)
                return 0;
        *n = 0;
        return apply_items(w, BATCH_MAX_FILES);
}

static bool is_below_unreadable(const struct root_plan *plan, const char *path) {
        if (plan->keeps_all_unseen)
                return true;
        for (size_t i = 0; i < plan->n_unreadable; i++) {
                size_t n = strlen(plan->unreadable[i]);
                if (strncmp(path, plan->unreadable[i], n) == 0 && (path[n] == '/' || path[n] == '\0'))
                        return true;
        }
        return false;
}

/* Whether path's folder is where its path says, no symlink on the way
 * (the stored paths are realpaths). */
static bool is_its_own_path(const char *path) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = slash && slash > path ? strndup(path, (size_t) (slash - path)) : NULL;
        _cleanup_free_ char *real = dir ? realpath(dir, NULL) : NULL;

        return real && strcmp(real, dir) == 0;
}

enum unseen_row {
        UNSEEN_KEEP,    /* below a directory the walk could not list, lstat failed (EACCES), or a note still */
        UNSEEN_GONE,    /* the file is gone or no longer a regular file */
        UNSEEN_SKIPPED, /* the file is there, but the rules skip it now */
};

/* What becomes of the row of a file the walk did not see: it goes when the
 * file is gone, and when it is there but the rules skip it now (a new
 * .quireignore line, a reloaded glob). A note the rules keep was away
 * while its directory was listed (an editor's save that renames the
 * original aside, then back): its rows stay, as they are; its return
 * raises an event, and a change since is found by the next stat. Unless
 * a folder on its way is a symlink now (mv sub elsewhere; ln -s ...
 * sub): the walk follows none, and lstat() follows those. ignores is made
 * on first use (rarely needed: a walk sees what it keeps). */
static enum unseen_row unseen_row_fate(const struct pipeline *p, const struct root_plan *plan, const char *path,
                                       struct ignore_cache **ignores) {
        const char *root = p->walk_root ? p->walk_root : plan->root;
        size_t root_len = strlen(root);
        struct stat st;
        int l = lstat(path, &st);

        if (lstat_says_gone(l, errno, &st))
                return UNSEEN_GONE;
        if (l < 0 || is_below_unreadable(plan, path))
                return UNSEEN_KEEP;
        if (strncmp(path, root, root_len) != 0 || path[root_len] != '/' || !is_its_own_path(path))
                return UNSEEN_SKIPPED;
        /* Out of memory for the cache: the rules without .quireignore, on
         * the side of keeping (a skipped note leaves at the next walk). */
        if (!*ignores && ignore_cache_new(64, ignores) < 0)
                *ignores = NULL;
        if (scan_classify_path(p->rules, *ignores, root, path + root_len + 1, false) == SCAN_KEEP)
                return UNSEEN_KEEP;
        return *ignores ? UNSEEN_SKIPPED : UNSEEN_KEEP;
}

static bool is_kept(const struct pipeline *p, const struct root_plan *plan, const char *path) {
        return is_below_one_of(p->kept_dirs, p->n_kept_dirs, path) || is_left(p, plan->root, path);
}

/* Rows of walked roots the walk did not see, and single paths found gone,
 * whose files are really gone or skipped: removed in batches. */
static int remove_gone(struct writer *w, const struct pipeline *p) {
        struct ignore_cache *ignores = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < p->n_gone_paths; i++)
                r = remove_batch_add(w, &n, p->gone_paths[i], true);
        for (size_t i = 0; r == 0 && i < p->n_roots; i++) {
                const struct root_plan *plan = &p->roots[i];
                for (size_t k = 0; r == 0 && k < plan->n_rows; k++) {
                        if (plan->is_seen[k] || is_kept(p, plan, plan->rows[k].path))
                                continue;
                        enum unseen_row fate = unseen_row_fate(p, plan, plan->rows[k].path, &ignores);
                        if (fate != UNSEEN_KEEP)
                                r = remove_batch_add(w, &n, plan->rows[k].path, fate == UNSEEN_GONE);
                }
        }
        if (r == 0 && n > 0)
                r = apply_items(w, n);
        ignore_cache_free(ignores);
        return r;
}

static int plan_root(struct store *s, const char *ns, struct pipeline *p, const char *dir) {
        struct root_plan *plan = &p->roots[p->n_roots];
        struct file_row row;
        int r;

        /* A note of that very name (rm x.md; mkdir x.md) is no longer a
         * regular file: its rows go, as the walk's unseen rows would. */
        r = store_file_lookup(s, ns, dir, &row);
        if (r < 0)
                return r;
        if (r > 0)
                p->gone_paths[p->n_gone_paths++] = dir;

        plan->root = strdup(dir);
        if (!plan->root)
                return -ENOMEM;
        p->n_roots++;
        r = store_list_files(s, ns, plan->root, &plan->rows, &plan->n_rows);
        if (r < 0)
                return r;
        plan->is_seen = calloc(plan->n_rows + 1, sizeof *plan->is_seen);
        return plan->is_seen ? 0 : -ENOMEM;
}

static void pipeline_done(struct pipeline *p) {
        for (size_t i = 0; i < p->n_roots; i++) {
                free(p->roots[i].root);
                file_rows_free(p->roots[i].rows, p->roots[i].n_rows);
                free(p->roots[i].is_seen);
                for (size_t k = 0; k < p->roots[i].n_unreadable; k++)
                        free(p->roots[i].unreadable[k]);
                free(p->roots[i].unreadable);
        }
        free(p->roots);
        free(p->paths);
        free(p->gone_paths);
        free(p->ring);
        for (size_t i = 0; i < p->n_jobs; i++)
                free(p->jobs[i]);
        free(p->jobs);
}

static void add_walk_counts(struct scan_counts *a, const struct scan_counts *b) {
        a->hidden += b->hidden;
        a->editor_temp += b->editor_temp;
        a->ignored += b->ignored;
        a->not_markdown += b->not_markdown;
        a->symlinks += b->symlinks;
        a->special += b->special;
        a->unreadable += b->unreadable;
        a->bad_names += b->bad_names;
}

static int sync_round(struct store *s, const struct sync_options *opts, char *const *dirs, size_t n_dirs,
                      char *const *paths, size_t n_paths, struct sync_stats *stats, unsigned round) {
        struct pipeline p = {
                .doc_opts = &opts->doc,
                .rules = opts->rules,
                /* Readers may not call SQLite in one-thread mode, where
                 * `quire search --sync` indexes its few stale hits.
                 * QUIRE_TEST_NO_TOKEN_REPLAY: the tests' reference index. */
                .records_tokens = s->replay && !store_is_one_thread() && !getenv("QUIRE_TEST_NO_TOKEN_REPLAY"),
                .walk_root = opts->root,
                .cancel = opts->cancel,
                .kept_dirs = opts->kept_dirs,
                .n_kept_dirs = opts->n_kept_dirs,
                .left_dirs = opts->left_dirs,
                .n_left_dirs = opts->n_left_dirs,
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .has_jobs = PTHREAD_COND_INITIALIZER,
                .not_empty = PTHREAD_COND_INITIALIZER,
                .not_full = PTHREAD_COND_INITIALIZER,
                .roots = calloc(n_dirs + n_paths + 1, sizeof *p.roots),
                .paths = calloc(n_paths + 1, sizeof *p.paths),
                .gone_paths = calloc(n_dirs + n_paths + 1, sizeof *p.gone_paths),
                .ring = calloc(QUEUE_MAX_FILES, sizeof *p.ring),
        };
        /* The writer's batch is as big: both on the heap, since a thread's
         * stack may be small (512 KiB on macOS) and rounds nest. */
        struct writer *w = calloc(1, sizeof *w);
        int r = 0;

        if (!w || !p.roots || !p.paths || !p.gone_paths || !p.ring) {
                r = -ENOMEM;
                goto finish;
        }
        w->store = s;
        w->opts = opts;
        w->stats = stats;
        w->batch.target = BATCH_FIRST_FILES;

        for (size_t i = 0; r == 0 && i < n_dirs; i++)
                r = plan_root(s, opts->namespace, &p, dirs[i]);
        for (size_t i = 0; r == 0 && i < n_paths; i++) {
                struct stat st;
                if (lstat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
                        r = plan_root(s, opts->namespace, &p, paths[i]);
                        continue;
                }
                struct path_plan *pp = &p.paths[p.n_paths++];
                pp->path = paths[i];
                r = store_file_lookup(s, opts->namespace, paths[i], &pp->row);
                pp->has_row = r > 0;
                r = r < 0 ? r : 0;
        }
        if (r == 0)
                r = run_pipeline(w, &p);
        if (r == 0)
                r = remove_gone(w, &p);
        stats->n_unchanged_by_stat += p.n_unchanged_by_stat;
        add_walk_counts(&stats->walk, &p.walk_skipped);
        /* Files that changed between their read and our write: what they
         * hold now, read again (and whatever another writer committed for
         * them meanwhile stays unless it is older). */
        if (r == 0 && w->n_stale > 0) {
                if (round < STALE_ROUNDS_MAX)
                        r = sync_round(s, opts, NULL, 0, w->stale, w->n_stale, stats, round + 1);
                else
                        /* In flux, not broken (a note being written, a
                         * folder being renamed about): no error, but the
                         * index does not hold what it says now. */
                        for (size_t i = 0; i < w->n_stale; i++)
                                log_warning("Not indexing %s for now: it kept changing while being indexed (its "
                                            "index entries are kept; the next run reads it again)",
                                            w->stale[i]);
        }
finish:
        pipeline_done(&p);
        if (w)
                for (size_t i = 0; i < w->n_stale; i++)
                        free(w->stale[i]);
        free(w ? w->stale : NULL);
        free(w);
        return r;
}

int sync_run(struct store *s, const struct sync_options *opts, char *const *dirs, size_t n_dirs,
             char *const *paths, size_t n_paths, struct sync_stats *stats) {
        return sync_round(s, opts, dirs, n_dirs, paths, n_paths, stats, 1);
}
