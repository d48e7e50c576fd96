/* quire index: bring the index of one or more trees up to date, through
 * sync_run() (storage/sync.c), the same path the daemon takes. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "index.h"
#include "log.h"
#include "roots.h"
#include "scan.h"
#include "search-front.h"
#include "store.h"
#include "sync.h"
#include "util.h"

#define PROGRESS_INTERVAL_USEC 100000

static const char index_help[] =
        "Usage: quire index [OPTIONS] PATH...\n"
        "\n"
        "Index the Markdown notes under each PATH (a directory, walked\n"
        "recursively, or a file). Unchanged files are not read again; files\n"
        "gone from disk, or skipped now, leave the index. Hidden paths, editor\n"
        "temp files and non-Markdown files are skipped, and so is what the\n"
        ".quireignore files in PATH and below exclude (gitignore syntax); a\n"
        "file named as PATH is held to the rules a walk of its folder (or of\n"
        "the tree indexed before that holds it) would apply. What lies in a\n"
        "folder quired watches (same namespace) goes under quired's rules\n"
        "(its extensions, ignore globs and max_file_size) instead.\n"
        "\n"
        "Options:\n"
        "      --db PATH             database (default: $QUIRE_DB or the XDG data dir)\n"
        "  -n, --namespace NS        namespace of these notes (default 'default')\n"
        "  -j, --jobs N              reader threads (default: CPUs - 1, at least 1)\n"
        "      --max-file-size SIZE  skip larger files (default 16M, at most 1G; K, M, G suffixes)\n"
        "      --summary             list every skip category, zeros included\n"
        "  -h, --help                show this help\n"
        "\n"
        "At the end it prints two lines on stdout:\n"
        "  indexed N files in S s: N new, N changed, N unchanged, N removed; chunks: N added, N moved, N removed\n"
        "  skipped: N hidden, N ignored, ...\n"
        "The second line counts what the walk and the reader left out, by cause:\n"
        "hidden, ignored (.quireignore), editor temp, not Markdown, symlinks,\n"
        "special (FIFOs, sockets, devices), binary, too large, unreadable, bad\n"
        "names (not UTF-8). A skipped directory counts once. By default only the\n"
        "causes that occurred are listed ('skipped: nothing' when none); with\n"
        "--summary all ten are, in that order, so that scripts can read them.\n";

struct progress {
        uint64_t started_usec, last_usec;
};

static void print_progress(size_t n_done, size_t n_known, bool is_total, void *userdata) {
        struct progress *pr = userdata;
        uint64_t now = now_monotonic_usec();

        if (now - pr->last_usec < PROGRESS_INTERVAL_USEC)
                return;
        pr->last_usec = now;
        double secs = (now - pr->started_usec) / 1e6;
        double rate = secs > 0 ? n_done / secs : 0;
        if (!is_total) {
                fprintf(stderr, "\r\033[K%zu/%zu+ files  %.0f files/s  (still scanning)", n_done, n_known, rate);
                return;
        }
        double eta = rate > 0 ? (n_known - n_done) / rate : 0;
        unsigned percent = n_known ? (unsigned) (100.0 * n_done / n_known) : 100;
        char bar[21];
        for (unsigned i = 0; i < 20; i++)
                bar[i] = i < percent / 5 ? '#' : '.';
        bar[20] = '\0';
        fprintf(stderr, "\r\033[K[%s] %3u%%  %zu/%zu files  %.0f files/s  ETA %.0fs", bar, percent, n_done, n_known,
                rate, eta);
}

/* A PATH argument as sync_run() wants it: a directory by its realpath; a
 * file by the realpath of its directory and its name as given (the
 * contract's path), so a symlinked file is seen as a symlink. */
static int resolve_argument(const char *arg, char **ret, bool *is_dir) {
        struct stat st;

        if (stat(arg, &st) < 0)
                return log_error_errno(errno, "Failed to index %s: %m", arg);
        if (S_ISDIR(st.st_mode)) {
                *ret = realpath(arg, NULL);
                *is_dir = true;
                if (!*ret)
                        return log_error_errno(errno, "Failed to resolve %s: %m", arg);
                if (strcmp(*ret, "/") == 0) {
                        free(TAKE_PTR(*ret));
                        return log_error_errno(EINVAL, "Failed to index %s: it is the whole filesystem (/), not a "
                                                       "folder of notes", arg);
                }
                return 0;
        }
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EINVAL, "Failed to index %s: not a directory or regular file", arg);
        _cleanup_free_ char *copy1 = strdup(arg), *copy2 = strdup(arg);
        if (!copy1 || !copy2)
                return -ENOMEM;
        _cleanup_free_ char *dir = realpath(dirname(copy1), NULL);
        if (!dir)
                return log_error_errno(errno, "Failed to resolve %s: %m", arg);
        *is_dir = false;
        return asprintf(ret, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, basename(copy2)) < 0 ? -ENOMEM : 0;
}

static void print_summary(const struct sync_stats *st, double secs, bool is_full) {
        const struct index_stats *t = &st->index;
        const struct scan_counts *c = &st->walk;
        unsigned unchanged = st->n_unchanged_by_stat + t->files_unchanged + t->files_touched;
        /* The order is part of the output format (see index_help). */
        const struct {
                const char *cause;
                unsigned n;
        } skips[] = {
                { "hidden", c->hidden },
                { "ignored", c->ignored },
                { "editor temp", c->editor_temp },
                { "not Markdown", c->not_markdown },
                { "symlinks", c->symlinks },
                { "special", c->special + st->not_regular },
                { "binary", st->binary },
                { "too large", st->too_large },
                { "unreadable", st->unreadable + c->unreadable },
                { "bad names", c->bad_names },
        };
        bool is_first = true;

        printf("indexed %u files in %.2f s: %u new, %u changed, %u unchanged, %u removed; "
               "chunks: %u added, %u moved, %u removed\n",
               t->files_new + t->files_changed + unchanged, secs, t->files_new, t->files_changed, unchanged,
               t->files_deleted, t->chunks_inserted, t->chunks_moved, t->chunks_deleted);
        fputs("skipped:", stdout);
        for (size_t i = 0; i < ELEMENTSOF(skips); i++) {
                if (!is_full && skips[i].n == 0)
                        continue;
                printf("%s %u %s", is_first ? "" : ",", skips[i].n, skips[i].cause);
                is_first = false;
        }
        puts(is_first ? " nothing" : "");
}

/* The outermost recorded root of ns that covers dir and is not dir
 * itself, or NULL. */
static const char *enclosing_root(const struct store_root *roots, size_t n_roots, const char *ns, const char *dir) {
        const char *best = NULL;

        for (size_t i = 0; i < n_roots; i++)
                if (strcmp(roots[i].namespace, ns) == 0 && strcmp(roots[i].path, dir) != 0 &&
                    root_covers(roots[i].path, dir) && (!best || strlen(roots[i].path) < strlen(best)))
                        best = roots[i].path;
        return best;
}

/* Whether a PATH directory of this run covers file: its walk takes it. */
static bool is_in_dirs(char *const *dirs, size_t n_dirs, const char *file) {
        for (size_t i = 0; i < n_dirs; i++)
                if (root_covers(dirs[i], file))
                        return true;
        return false;
}

static const char *skip_reason(enum scan_verdict v) {
        switch (v) {
        case SCAN_HIDDEN:
                return "a hidden path (a name in it starts with '.')";
        case SCAN_EDITOR_TEMP:
                return "an editor temp file";
        case SCAN_IGNORED:
                return "excluded by a .quireignore file or an ignore glob";
        case SCAN_NOT_MARKDOWN:
                return "not a Markdown file (by its extension)";
        case SCAN_BAD_NAME:
                return "the name is not valid UTF-8";
        case SCAN_TOO_LONG:
                return "the path is longer than PATH_MAX";
        case SCAN_KEEP:
                break;
        }
        return "skipped";
}

/* A file named on the command line is held to the rules a walk of its
 * tree applies (the outermost recorded root that covers it, else its own
 * folder): named or walked, a note is in the index or not alike, and the
 * next walk of the tree does not undo what this run did. A skipped file is
 * said in one line, counted in the summary, and its rows (indexed before
 * the rules said so) leave. A file in a PATH directory of this run is left
 * to that directory's walk, so that it counts once. Compacts files to the
 * ones to index one by one; 0 or -errno. */
static int drop_skipped_files(struct store *store, const struct sync_options *opts, const struct store_root *roots,
                              size_t n_roots, char *const *dirs, size_t n_dirs, char **files, size_t *n_files,
                              struct sync_stats *stats) {
        struct ignore_cache *cache = NULL;
        struct index_item *skipped = calloc(*n_files + 1, sizeof *skipped);
        size_t n_kept = 0, n_skipped = 0, i = 0;
        int r = skipped ? ignore_cache_new(64, &cache) : -ENOMEM;

        for (; r == 0 && i < *n_files; i++) {
                char *file = files[i];
                if (is_in_dirs(dirs, n_dirs, file)) {
                        free(file);
                        continue;
                }
                const char *tree = enclosing_root(roots, n_roots, opts->namespace, file);
                size_t tree_len = tree ? strlen(tree) : path_parent_len(file, strlen(file));
                _cleanup_free_ char *own = tree ? NULL : strndup(file, tree_len);
                if (!tree && !own) {
                        r = -ENOMEM;
                        break;
                }
                const char *rel = file + tree_len + (file[tree_len] == '/');
                enum scan_verdict v = scan_classify_path(opts->rules, cache, tree ? tree : own, rel, false);
                struct stat st;
                /* As the walk does: never followed (it was skipped without
                 * a word, though named on the command line). */
                if (v == SCAN_KEEP && lstat(file, &st) == 0 && S_ISLNK(st.st_mode)) {
                        log_warning("Skipping %s: a symlink (never followed; name the file it points to)", file);
                        stats->walk.symlinks++;
                        skipped[n_skipped++] = (struct index_item){ .path = file };
                        continue;
                }
                if (v == SCAN_KEEP) {
                        files[n_kept++] = file;
                        continue;
                }
                log_warning("Skipping %s: %s", file, skip_reason(v));
                scan_count_skip(&stats->walk, v);
                skipped[n_skipped++] = (struct index_item){ .path = file };
        }
        if (r == 0 && n_skipped > 0)
                r = store_apply(store, opts->namespace, skipped, n_skipped, &stats->index);
        for (size_t k = 0; k < n_skipped; k++)
                free((char *) skipped[k].path);
        /* Those not looked at (out of memory) stay the caller's to free. */
        memmove(files + n_kept, files + i, (*n_files - i) * sizeof *files);
        *n_files = n_kept + (*n_files - i);
        ignore_cache_free(cache);
        free(skipped);
        return r < 0 ? log_error_errno(r, "Failed to index: %m") : 0;
}

/* The innermost root of ns that quired recorded (with the rules it walks
 * it with) at or above path, or NULL. quire index holds what lies there to
 * quired's rules, not to its own: under its own, a .txt note quired's
 * extensions let in would leave the index, and a folder its ignore globs
 * keep out would come in, until quired's next walk of the root undid it. */
static const struct store_root *quired_root_of(const struct store_root *roots, size_t n_roots, const char *ns,
                                               const char *path) {
        const struct store_root *best = NULL;

        for (size_t i = 0; i < n_roots; i++)
                if (roots[i].rules && strcmp(roots[i].namespace, ns) == 0 && root_covers(roots[i].path, path) &&
                    (!best || strlen(roots[i].path) > strlen(best->path)))
                        best = &roots[i];
        return best;
}

/* Moves the items of v[0..n) that pred keeps to the front, in order;
 * returns how many. */
static size_t partition(char **v, size_t n, bool (*pred)(const char *, const void *), const void *userdata) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                if (pred(v[i], userdata)) {
                        char *x = v[i];
                        memmove(v + k + 1, v + k, (i - k) * sizeof *v);
                        v[k++] = x;
                }
        return k;
}

struct quired_root_match {
        const struct store_root *roots, *root;
        size_t n_roots;
        const char *ns;
};

static bool is_under_root(const char *path, const void *userdata) {
        const struct quired_root_match *m = userdata;
        return quired_root_of(m->roots, m->n_roots, m->ns, path) == m->root;
}

static bool is_under_any_root(const char *path, const void *userdata) {
        const struct quired_root_match *m = userdata;
        return quired_root_of(m->roots, m->n_roots, m->ns, path) != NULL;
}

/* quired's roots of ns inside the directories dirs[0..n_dirs) of this run
 * (none of which lies in a root of quired's): the walks of those leave
 * them alone (sync_options.left_dirs), and they are walked under quired's
 * rules. Borrowed from roots. */
static int quired_roots_inside(const struct store_root *roots, size_t n_roots, const char *ns, char *const *dirs,
                               size_t n_dirs, const char ***ret, size_t *n_ret) {
        const char **inside = calloc(n_roots + 1, sizeof *inside);
        size_t n = 0;

        if (!inside)
                return log_error_errno(ENOMEM, "Failed to index: %m");
        for (size_t i = 0; i < n_roots; i++) {
                struct stat st;
                if (quired_root_of(roots, n_roots, ns, roots[i].path) != &roots[i])
                        continue;
                /* Gone (quired may keep its notes meanwhile): the walk
                 * around it finds its notes gone, as it would anyway. */
                if (stat(roots[i].path, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                /* Inside another of the same rules: walked with it. */
                bool is_in_one_listed = false;
                for (size_t k = 0; k < n_roots && !is_in_one_listed; k++)
                        is_in_one_listed = k != i && roots[k].rules && strcmp(roots[k].namespace, ns) == 0 &&
                                           strcmp(roots[k].rules, roots[i].rules) == 0 &&
                                           strcmp(roots[k].path, roots[i].path) != 0 &&
                                           root_covers(roots[k].path, roots[i].path);
                if (is_in_one_listed)
                        continue;
                for (size_t k = 0; k < n_dirs; k++)
                        if (root_covers(dirs[k], roots[i].path)) {
                                inside[n++] = roots[i].path;
                                break;
                        }
        }
        *ret = inside;
        *n_ret = n;
        return 0;
}

/* Index, root by root under quired's rules and walked from the root (its
 * ignore globs are relative to it), the directories dirs[0..n_dirs) and
 * files[0..*n_files) of this run that lie in a root of quired's, and the
 * roots of quired's inside the run's other directories (inside). Compacts
 * files as drop_skipped_files() does; all_dirs are the run's directories,
 * whose walks take the files inside them. */
static int index_in_quired_roots(struct store *store, const struct sync_options *opts,
                                 const struct store_root *roots, size_t n_roots, char **dirs, size_t n_dirs,
                                 char **files, size_t *n_files, const char *const *inside, size_t n_inside,
                                 char *const *all_dirs, size_t n_all_dirs, struct sync_stats *stats) {
        size_t dirs_done = 0, files_done = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < n_roots; i++) {
                const struct store_root *root = &roots[i];
                if (quired_root_of(roots, n_roots, opts->namespace, root->path) != root)
                        continue;
                struct quired_root_match one = { .roots = roots, .n_roots = n_roots, .ns = opts->namespace,
                                                 .root = root };
                size_t n_root_dirs = partition(dirs + dirs_done, n_dirs - dirs_done, is_under_root, &one);
                size_t n_root_files = partition(files + files_done, *n_files - files_done, is_under_root, &one);
                bool is_inside = strv_contains((char **) inside, n_inside, root->path);
                if (n_root_dirs == 0 && n_root_files == 0 && !is_inside)
                        continue;

                _cleanup_(scan_rules_done) struct scan_rules rules = { 0 };
                struct sync_options root_opts = *opts;
                r = root_rules_parse(root->rules, &rules, &root_opts.doc.max_file_bytes);
                if (r < 0)
                        return log_error_errno(r, "Failed to index %s: %m", root->path);
                root_opts.rules = &rules;
                root_opts.root = root->path;
                /* The ones its rules skip leave; the rest stay in order at
                 * the front of files. */
                size_t n_kept_files = n_root_files;
                r = drop_skipped_files(store, &root_opts, root, 1, all_dirs, n_all_dirs, files + files_done,
                                       &n_kept_files, stats);
                memmove(files + files_done + n_kept_files, files + files_done + n_root_files,
                        (*n_files - files_done - n_root_files) * sizeof *files);
                *n_files -= n_root_files - n_kept_files;
                if (r < 0)
                        return r;
                /* A root inside a directory of the run is walked whole (no
                 * directory of the run lies in it: they are outermost). */
                char *root_path = root->path;
                r = sync_run(store, &root_opts, is_inside ? &root_path : dirs + dirs_done,
                             is_inside ? 1 : n_root_dirs, files + files_done, n_kept_files, stats);
                dirs_done += n_root_dirs;
                files_done += n_kept_files;
        }
        return r;
}

/* A directory inside a tree indexed before (quire index notes, then quire
 * index notes/sub) is walked as part of that tree, so that its
 * .quireignore files and globs apply as they would to the whole tree, and
 * is not recorded as a root of its own. The rest are roots: walked as
 * such, with the files, and recorded for `quire search --sync`. What lies
 * in a root of quired's goes under quired's rules (quired_root_of()); the
 * other walks leave such roots inside them alone. */
static int index_under_roots(struct store *store, struct sync_options *opts, char **dirs, size_t n_dirs,
                             char **files, size_t *n_files, struct sync_stats *stats) {
        struct store_root *roots = NULL;
        size_t n_roots = 0, n_own = 0, n_inside = 0;
        _cleanup_free_ const char **inside = NULL;
        const char **root_of = calloc(n_dirs + 1, sizeof *root_of);
        int r;

        if (!root_of)
                return log_error_errno(ENOMEM, "Failed to index: %m");
        r = store_list_roots(store, &roots, &n_roots);
        struct quired_root_match any = { .roots = roots, .n_roots = n_roots, .ns = opts->namespace };
        size_t n_quired_dirs = r == 0 ? partition(dirs, n_dirs, is_under_any_root, &any) : 0;
        size_t n_quired_files = r == 0 ? partition(files, *n_files, is_under_any_root, &any) : 0;
        char **other_dirs = dirs + n_quired_dirs, **other_files = files + n_quired_files;
        size_t n_other_dirs = n_dirs - n_quired_dirs, n_other_files = *n_files - n_quired_files;
        if (r == 0)
                r = quired_roots_inside(roots, n_roots, opts->namespace, other_dirs, n_other_dirs, &inside,
                                        &n_inside);
        opts->left_dirs = (char *const *) inside;
        opts->n_left_dirs = n_inside;
        if (r == 0 && n_other_files > 0)
                r = drop_skipped_files(store, opts, roots, n_roots, dirs, n_dirs, other_files, &n_other_files,
                                       stats);
        for (size_t i = 0; r == 0 && i < n_other_dirs; i++) {
                root_of[i] = enclosing_root(roots, n_roots, opts->namespace, other_dirs[i]);
                if (!root_of[i]) {
                        char *own = other_dirs[i];
                        memmove(other_dirs + n_own + 1, other_dirs + n_own, (i - n_own) * sizeof *dirs);
                        memmove(root_of + n_own + 1, root_of + n_own, (i - n_own) * sizeof *root_of);
                        other_dirs[n_own] = own;
                        root_of[n_own++] = NULL;
                }
        }
        if (r == 0 && (n_own > 0 || n_other_files > 0))
                r = sync_run(store, opts, other_dirs, n_own, other_files, n_other_files, stats);
        /* What `quire search --sync` brings up to date when no daemon runs. */
        for (size_t i = 0; r == 0 && i < n_own; i++)
                r = store_add_root(store, opts->namespace, other_dirs[i], false, NULL, NULL);
        for (size_t first = n_own; r == 0 && first < n_other_dirs;) {
                size_t end = first + 1;
                while (end < n_other_dirs && root_of[end] == root_of[first])
                        end++;
                opts->root = root_of[first];
                r = sync_run(store, opts, other_dirs + first, end - first, NULL, 0, stats);
                opts->root = NULL;
                first = end;
        }
        opts->left_dirs = NULL;
        opts->n_left_dirs = 0;
        if (r == 0)
                r = index_in_quired_roots(store, opts, roots, n_roots, dirs, n_quired_dirs, files, &n_quired_files,
                                          inside, n_inside, dirs, n_dirs, stats);
        /* The files left to free, together at the front. */
        memmove(files + n_quired_files, other_files, n_other_files * sizeof *files);
        *n_files = n_quired_files + n_other_files;
        store_roots_free(roots, n_roots);
        free(root_of);
        return r;
}

int cmd_index(int argc, char **argv) {
        enum { OPT_DB = 0x100, OPT_MAX_FILE_SIZE, OPT_SUMMARY };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "namespace", required_argument, NULL, 'n' },
                { "jobs", required_argument, NULL, 'j' },
                { "max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE },
                { "summary", no_argument, NULL, OPT_SUMMARY },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        /* .doc zeroed: the default chunk sizes and file size cap. */
        struct sync_options opts = { .namespace = "default" };
        const char *db_arg = NULL;
        bool is_full_summary = false;
        int opt, r;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":n:j:h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        if (!*optarg)
                                return usage_error("index", "--db must not be empty");
                        db_arg = optarg;
                        break;
                case 'n':
                        if (!*optarg)
                                return usage_error("index", "--namespace must not be empty");
                        opts.namespace = optarg;
                        break;
                case 'j':
                        if (!parse_unsigned(optarg, &opts.n_readers) || opts.n_readers > 64)
                                return usage_error("index", "--jobs needs a number from 1 to 64, not '%s'", optarg);
                        break;
                case OPT_MAX_FILE_SIZE:
                        if (!document_parse_size(optarg, &opts.doc.max_file_bytes))
                                return usage_error("index",
                                                   "--max-file-size needs a size like 512K or 16M (at most 1G), "
                                                   "not '%s'",
                                                   optarg);
                        break;
                case OPT_SUMMARY:
                        is_full_summary = true;
                        break;
                case 'h':
                        fputs(index_help, stdout);
                        return 0;
                default:
                        return usage_bad_option("index", opt, argv);
                }
        }
        if (optind >= argc)
                return usage_error("index", "missing PATH");

        struct progress progress = { .started_usec = now_monotonic_usec() };
        if (isatty(STDERR_FILENO) && !getenv("CI")) {
                opts.progress_cb = print_progress;
                opts.userdata = &progress;
        }

        /* Every argument is checked before anything is written. */
        size_t n_args = (size_t) (argc - optind), n_dirs = 0, n_files = 0;
        char **dirs = calloc(n_args, sizeof *dirs), **files = calloc(n_args, sizeof *files);
        /* The same PATH twice (notes notes/, or through a symlink) is one
         * tree: walked twice, its files would be counted twice in the
         * summary. A set, as xargs may hand over thousands of files. */
        struct path_set seen = { 0 };
        r = dirs && files ? 0 : -ENOMEM;
        for (int i = optind; r == 0 && i < argc; i++) {
                char *resolved = NULL;
                bool is_dir = false;
                r = resolve_argument(argv[i], &resolved, &is_dir);
                if (r == 0)
                        r = path_set_add(&seen, resolved);
                if (r > 0) {
                        if (is_dir)
                                dirs[n_dirs++] = resolved;
                        else
                                files[n_files++] = resolved;
                        r = 0;
                } else
                        free(resolved);
        }
        path_set_done(&seen);
        /* notes and notes/sub: notes covers notes/sub, rules and all. */
        size_t n_outermost = roots_outermost_first(dirs, n_dirs);
        for (size_t i = n_outermost; i < n_dirs; i++)
                free(dirs[i]);
        n_dirs = n_outermost;

        struct store *store = NULL;
        struct sync_stats stats = { 0 };
        _cleanup_free_ char *db_path = r == 0 ? db_path_or_default(db_arg) : NULL;
        if (r == 0)
                r = db_path ? store_open(db_path, NULL, &store) : -ENOMEM;
        /* Lines logged while the bar is up (a skipped file) clear it first. */
        log_set_status_line(opts.progress_cb != NULL);
        if (r == 0) {
                r = index_under_roots(store, &opts, dirs, n_dirs, files, &n_files, &stats);
                if (r == -ENOENT || r == -ENOTDIR)
                        log_error("Failed to index: a directory vanished while it was being walked; run again");
        }
        if (opts.progress_cb)
                fputs("\r\033[K", stderr);
        log_set_status_line(false);
        if (r == 0)
                print_summary(&stats, (now_monotonic_usec() - progress.started_usec) / 1e6, is_full_summary);

        store_close(store);
        for (size_t i = 0; i < n_dirs; i++)
                free(dirs[i]);
        for (size_t i = 0; i < n_files; i++)
                free(files[i]);
        free(dirs);
        free(files);
        return r < 0 || stats.unreadable + stats.walk.unreadable > 0 ? 1 : 0;
}
