/* See scan.h. Directories are walked by path from an explicit stack, not
 * by recursion holding a descriptor per level, so deep trees cannot run
 * us out of file descriptors or stack. Each directory's entries are sorted
 * so notes come out in byte order of their paths, the order of the files
 * table: batches then cover narrow key ranges and B-tree inserts append.
 *
 * A directory's .quireignore is found by its name in the listing the walk
 * reads anyway, so a tree without one costs no extra system call; the
 * parsed files of the directories being walked are kept on a stack of
 * frames, deepest last, that follows the walk down and up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ignore.h"
#include "log.h"
#include "scan.h"
#include "util.h"

void scan_rules_done(struct scan_rules *rules) {
        strv_free(rules->extensions, rules->n_extensions);
        strv_free(rules->ignore_globs, rules->n_ignore_globs);
        *rules = (struct scan_rules){ 0 };
}

bool scan_name_is_hidden(const char *name) {
        return name[0] == '.';
}

/* Editors' scratch files (vim's swap files and its "4913" write probe,
 * backup files, emacs lock and autosave files). */
bool scan_name_is_editor_temp(const char *name) {
        size_t n = strlen(name);

        if (strcmp(name, "4913") == 0)
                return true;
        if (n > 0 && name[n - 1] == '~')
                return true;
        if (n >= 2 && name[0] == '#' && name[n - 1] == '#')
                return true;
        if (n >= 4 && (strcmp(name + n - 4, ".swp") == 0 || strcmp(name + n - 4, ".swx") == 0 ||
                       strcmp(name + n - 4, ".tmp") == 0))
                return true;
        return false;
}

static bool has_extension(const char *name, size_t n, const char *ext) {
        size_t e = strlen(ext);
        return n > e + 1 && name[n - e - 1] == '.' && strcasecmp(name + n - e, ext) == 0;
}

bool scan_name_is_markdown(const struct scan_rules *rules, const char *name) {
        static const char *const builtin[] = { "md", "markdown", "mdown", "mkd", "mkdn" };
        size_t n = strlen(name);

        if (rules && rules->n_extensions > 0) {
                for (size_t i = 0; i < rules->n_extensions; i++)
                        if (has_extension(name, n, rules->extensions[i]))
                                return true;
                return false;
        }
        for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
                if (has_extension(name, n, builtin[i]))
                        return true;
        return false;
}

/* The configured globs (see struct scan_rules). */
static bool glob_ignores(const struct scan_rules *rules, const char *rel, const char *name) {
        if (!rules)
                return false;
        for (size_t i = 0; i < rules->n_ignore_globs; i++) {
                const char *glob = rules->ignore_globs[i];
                size_t n = strlen(glob);
                if (!strchr(glob, '/')) {
                        if (fnmatch(glob, name, 0) == 0)
                                return true;
                        continue;
                }
                if (fnmatch(glob, rel, FNM_PATHNAME) == 0)
                        return true;
                /* A trailing slash-star-star: the directory itself goes,
                 * and with it its subtree. */
                if (n > 3 && strcmp(glob + n - 3, "/**") == 0) {
                        char prefix[PATH_MAX];
                        if (n - 3 < sizeof prefix) {
                                memcpy(prefix, glob, n - 3);
                                prefix[n - 3] = '\0';
                                if (fnmatch(prefix, rel, FNM_PATHNAME) == 0)
                                        return true;
                        }
                }
        }
        return false;
}

/* The .quireignore of one directory on the way down. */
struct ignore_frame {
        struct ignore_file *file; /* a reference */
        char *dir;                /* relative to the root, "" for the root; owned */
        size_t dir_len;
};

struct frame_stack {
        struct ignore_frame *frames; /* shallowest first */
        size_t n, cap;
};

/* Takes over the reference to file. */
static int frames_push(struct frame_stack *fs, struct ignore_file *file, const char *dir, size_t dir_len) {
        if (GREEDY_REALLOC(fs->frames, fs->cap, fs->n + 1, 8) < 0) {
                ignore_file_unref(file);
                return -ENOMEM;
        }
        char *copy = strndup(dir, dir_len);
        if (!copy) {
                ignore_file_unref(file);
                return -ENOMEM;
        }
        fs->frames[fs->n++] = (struct ignore_frame){ .file = file, .dir = copy, .dir_len = dir_len };
        return 0;
}

static void frames_pop(struct frame_stack *fs) {
        struct ignore_frame *f = &fs->frames[--fs->n];
        ignore_file_unref(f->file);
        free(f->dir);
}

static void frames_done(struct frame_stack *fs) {
        while (fs->n > 0)
                frames_pop(fs);
        free(fs->frames);
        *fs = (struct frame_stack){ 0 };
}

/* Drop the frames of directories that are not dir (relative to the root)
 * or above it: the walk has left them. */
static void frames_leave_to(struct frame_stack *fs, const char *dir, size_t dir_len) {
        while (fs->n > 0) {
                const struct ignore_frame *f = &fs->frames[fs->n - 1];
                if (f->dir_len == 0 ||
                    (f->dir_len <= dir_len && memcmp(f->dir, dir, f->dir_len) == 0 &&
                     (dir[f->dir_len] == '/' || f->dir_len == dir_len)))
                        return;
                frames_pop(fs);
        }
}

/* gitignore(5)'s precedence: the deepest file with a matching pattern
 * decides (within it, the last matching pattern); the configured globs,
 * like git's global excludes, only when no file has a say. */
static bool is_ignored(const struct scan_rules *rules, const struct frame_stack *fs, const char *rel,
                       const char *name, bool is_dir) {
        for (size_t i = fs ? fs->n : 0; i > 0; i--) {
                const struct ignore_frame *f = &fs->frames[i - 1];
                const char *below = f->dir_len ? rel + f->dir_len + 1 : rel;
                enum ignore_match m = ignore_file_match(f->file, below, is_dir);
                if (m != IGNORE_NO_MATCH)
                        return m == IGNORE_EXCLUDE;
        }
        return glob_ignores(rules, rel, name);
}

/* The verdict on one entry whose parents were already kept. */
static enum scan_verdict classify_entry(const struct scan_rules *rules, const struct frame_stack *fs,
                                        const char *rel, const char *name, bool is_dir) {
        if (scan_name_is_hidden(name))
                return SCAN_HIDDEN;
        /* Paths are stored as TEXT, which other programs decode as UTF-8
         * (Python's sqlite3 raises on anything else); a lossy spelling would
         * name a file that does not exist. So such a note is left out. */
        if (!utf8_is_valid(name, strlen(name)))
                return SCAN_BAD_NAME;
        if (!is_dir && scan_name_is_editor_temp(name))
                return SCAN_EDITOR_TEMP;
        if (is_ignored(rules, fs, rel, name, is_dir))
                return SCAN_IGNORED;
        if (!is_dir && !scan_name_is_markdown(rules, name))
                return SCAN_NOT_MARKDOWN;
        return SCAN_KEEP;
}

/* Where the .quireignore files of the directories on a path come from:
 * loaded as needed (a walk starting below its root) or from a cache. */
typedef int (*ignore_loader)(void *userdata, const char *dir, struct ignore_file **ret);

static int load_ignore_from_cache(void *userdata, const char *dir, struct ignore_file **ret) {
        return ignore_cache_get(userdata, dir, ret);
}

static int load_ignore_from_disk(void *userdata, const char *dir, struct ignore_file **ret) {
        return ignore_file_load_dir(dir, ret);
}

static int push_ignore_of(struct frame_stack *fs, ignore_loader load, void *userdata, const char *abs_dir,
                          const char *rel_dir, size_t rel_len) {
        struct ignore_file *f = NULL;
        int r = load(userdata, abs_dir, &f);
        if (r < 0 || !f)
                return r;
        return frames_push(fs, f, rel_dir, rel_len);
}

/* The verdict on rel below root, checking every directory on the way;
 * with load, the .quireignore files of root and of those directories are
 * pushed onto fs as they are passed (so a walk can go on from rel). */
static enum scan_verdict classify_path(const struct scan_rules *rules, const char *root, const char *rel,
                                       bool is_dir, ignore_loader load, void *userdata, struct frame_stack *fs,
                                       int *error) {
        char abs[PATH_MAX], prefix[PATH_MAX];
        size_t n_root = root ? strlen(root) : 0;
        const char *name = rel;

        *error = 0;
        if (load) {
                if (n_root + 1 + strlen(rel) >= sizeof abs)
                        return SCAN_TOO_LONG;
                memcpy(abs, root, n_root + 1);
                *error = push_ignore_of(fs, load, userdata, abs, "", 0);
        }
        for (const char *slash = strchr(rel, '/'); slash && *error == 0; slash = strchr(name, '/')) {
                size_t n = (size_t) (slash - rel);
                if (n >= sizeof prefix)
                        return SCAN_TOO_LONG;
                memcpy(prefix, rel, n);
                prefix[n] = '\0';
                enum scan_verdict v = classify_entry(rules, fs, prefix, prefix + (name - rel), true);
                if (v != SCAN_KEEP)
                        return v;
                if (load) {
                        abs[n_root] = '/';
                        memcpy(abs + n_root + 1, prefix, n + 1);
                        *error = push_ignore_of(fs, load, userdata, abs, prefix, n);
                }
                name = slash + 1;
        }
        if (*error < 0)
                return SCAN_IGNORED;
        return classify_entry(rules, fs, rel, name, is_dir);
}

enum scan_verdict scan_classify(const struct scan_rules *rules, const char *rel, bool is_dir) {
        int error;
        return classify_path(rules, NULL, rel, is_dir, NULL, NULL, NULL, &error);
}

enum scan_verdict scan_classify_path(const struct scan_rules *rules, struct ignore_cache *cache, const char *root,
                                     const char *rel, bool is_dir) {
        struct frame_stack fs = { 0 };
        int error;

        if (!cache)
                return scan_classify(rules, rel, is_dir);
        enum scan_verdict v = classify_path(rules, root, rel, is_dir, load_ignore_from_cache, cache, &fs, &error);
        frames_done(&fs);
        /* Out of memory: say "skip" and let the next reconcile decide,
         * rather than index what the rules might exclude. */
        if (error < 0)
                log_warning_errno(error, "Failed to read the ignore rules of %s/%s: %m", root, rel);
        return v;
}

/* What is still to do, deepest last: notes to report and directories to
 * list. Pushed in reverse order, popped in byte order of their paths. */
struct pending {
        char *path; /* owned */
        bool is_dir;
        struct stat st; /* notes only */
};

struct scan {
        const char *root;
        size_t root_len;
        const struct scan_rules *rules;
        scan_note_cb note_cb;
        scan_unreadable_cb unreadable_cb;
        void *userdata;
        struct scan_counts *skipped;
        struct pending *todo;
        size_t n_todo, cap_todo;
        struct frame_stack frames;
        char rel[PATH_MAX]; /* scratch: an entry's path relative to the root */
};

static int push_pending(struct scan *sc, char *path, bool is_dir, const struct stat *st) {
        if (GREEDY_REALLOC(sc->todo, sc->cap_todo, sc->n_todo + 1, 256) < 0)
                return -ENOMEM;
        sc->todo[sc->n_todo++] = (struct pending){ .path = path, .is_dir = is_dir, .st = is_dir ? (struct stat){ 0 } : *st };
        return 0;
}

/* One entry of a listing: first every name (the .quireignore, which may
 * come last, must be known before any verdict), then the kept ones. */
struct entry {
        size_t name_offset; /* into the listing's names */
        const char *name;   /* set once names stop moving */
        unsigned char type; /* d_type */
        bool is_dir;
        struct stat st;
};

struct listing {
        char *names; /* NUL-separated; owned */
        size_t names_len, names_cap;
        struct entry *entries;
        size_t n, cap;
};

static void listing_done(struct listing *l) {
        free(l->names);
        free(l->entries);
        *l = (struct listing){ 0 };
}

static int listing_add(struct listing *l, const char *name, unsigned char type) {
        size_t n = strlen(name) + 1;

        if (GREEDY_REALLOC(l->entries, l->cap, l->n + 1, 64) < 0 ||
            GREEDY_REALLOC(l->names, l->names_cap, l->names_len + n, 4096) < 0)
                return -ENOMEM;
        memcpy(l->names + l->names_len, name, n);
        l->entries[l->n++] = (struct entry){ .name_offset = l->names_len, .type = type };
        l->names_len += n;
        return 0;
}

/* Byte order of the full paths these names end: a directory's name is
 * followed by the '/' of its children's paths, so "a.md" < "a/" < "a0". */
static int cmp_entry(const void *x, const void *y) {
        const struct entry *a = x, *b = y;
        const unsigned char *p = (const unsigned char *) a->name, *q = (const unsigned char *) b->name;

        while (*p && *p == *q)
                p++, q++;
        unsigned ca = *p ? *p : a->is_dir ? '/' : 0;
        unsigned cb = *q ? *q : b->is_dir ? '/' : 0;
        return (ca > cb) - (ca < cb);
}

void scan_count_skip(struct scan_counts *skipped, enum scan_verdict v) {
        switch (v) {
        case SCAN_KEEP:
                break;
        case SCAN_HIDDEN:
                skipped->hidden++;
                break;
        case SCAN_EDITOR_TEMP:
                skipped->editor_temp++;
                break;
        case SCAN_IGNORED:
                skipped->ignored++;
                break;
        case SCAN_NOT_MARKDOWN:
                skipped->not_markdown++;
                break;
        case SCAN_BAD_NAME:
                skipped->bad_names++;
                break;
        case SCAN_TOO_LONG:
                skipped->unreadable++;
                break;
        }
}

/* Read dir's names: hidden ones are counted and dropped at once; whether a
 * .quireignore is among them is noted. -EIO and the like: readdir() failed
 * partway, and the listing is not the whole directory. */
static int list_names(struct scan *sc, DIR *d, struct listing *l, bool *has_ignore_file) {
        struct dirent *de;
        int r;

        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return -errno;
                        return 0;
                }
                const char *name = de->d_name;
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                if (scan_name_is_hidden(name)) {
                        if (strcmp(name, IGNORE_FILE_NAME) == 0)
                                *has_ignore_file = true;
                        sc->skipped->hidden++;
                        continue;
                }
                r = listing_add(l, name, de->d_type);
                if (r < 0)
                        return r;
        }
}

/* dir could not be listed (error: -errno): counted, logged, and passed
 * on, so that the rows below it are kept. */
static void skip_unreadable(struct scan *sc, const char *dir, int error) {
        sc->skipped->unreadable++;
        log_warning_errno(error, "Failed to read directory %s: %m (skipped)", dir);
        if (sc->unreadable_cb)
                sc->unreadable_cb(dir, sc->userdata);
}

/* An entry of dir that fstatat() failed on (error: errno; EACCES is the
 * directory's own, see read_dir). Gone since the listing: nothing to say,
 * the rows of what is gone go. Anything else (EIO): it is there for all we
 * know, so it is counted and logged as unreadable, and passed on so that
 * its rows are kept (the whole of dir's, if even its path cannot be
 * made). */
static void skip_unstatable(struct scan *sc, const char *dir, const char *name, int error) {
        char *path;

        if (error == ENOENT || error == ENOTDIR)
                return;
        sc->skipped->unreadable++;
        log_warning_errno(error, "Failed to read %s/%s: %m (skipped)", dir, name);
        if (!sc->unreadable_cb)
                return;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                path = NULL;
        sc->unreadable_cb(path ? path : dir, sc->userdata);
        free(path);
}

/* The entries of dir worth keeping, classified; skipped ones counted. */
static int read_dir(struct scan *sc, const char *dir, struct listing *l) {
        struct scan_counts *skipped = sc->skipped;
        const char *rel_dir = dir[sc->root_len] ? dir + sc->root_len + 1 : "";
        size_t rel_dir_len = strlen(rel_dir);
        bool has_ignore_file = false, is_denied = false;
        size_t n_kept = 0;
        int r;

        /* The walk is depth first: frames of directories that are not
         * above this one belong to subtrees already done. */
        frames_leave_to(&sc->frames, rel_dir, rel_dir_len);

        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                /* Gone since its parent was listed: a rename or delete raced
                 * the scan, and whoever did it will be seen on its own. */
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                if (errno == ELOOP) {
                        skipped->symlinks++;
                        return 0;
                }
                skip_unreadable(sc, dir, -errno);
                return 0;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        r = list_names(sc, d, l, &has_ignore_file);
        if (r < 0 && r != -ENOMEM) {
                /* Only part of it was listed: what was not is unknown, not
                 * gone, so the directory is unreadable as a whole (rather
                 * than half walked), and every row below it is kept. */
                skip_unreadable(sc, dir, r);
                closedir(d);
                l->n = 0;
                return 0;
        }
        if (r == 0 && has_ignore_file) {
                struct ignore_file *f = NULL;
                r = ignore_file_load(fd, dir, &f);
                if (r == 0 && f)
                        r = frames_push(&sc->frames, f, rel_dir, rel_dir_len);
        }

        /* The entries' paths below the root share rel_dir + "/". */
        size_t prefix_len = rel_dir_len ? rel_dir_len + 1 : 0;
        if (prefix_len > 0 && prefix_len < sizeof sc->rel) {
                memcpy(sc->rel, rel_dir, rel_dir_len);
                sc->rel[rel_dir_len] = '/';
        }
        for (size_t i = 0; r == 0 && prefix_len < sizeof sc->rel && i < l->n; i++) {
                struct entry *e = &l->entries[i];
                const char *name = l->names + e->name_offset;
                unsigned char type = e->type;
                struct stat st;
                bool have_stat = false;

                if (type == DT_UNKNOWN) {
                        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                if (errno == EACCES) {
                                        is_denied = true;
                                        break;
                                }
                                skip_unstatable(sc, dir, name, errno);
                                continue;
                        }
                        have_stat = true;
                        type = S_ISDIR(st.st_mode)   ? DT_DIR
                               : S_ISREG(st.st_mode) ? DT_REG
                               : S_ISLNK(st.st_mode) ? DT_LNK
                                                     : DT_FIFO;
                }
                if (type == DT_LNK) {
                        skipped->symlinks++;
                        continue;
                }
                /* Decided by name (and the path below the root) first: most
                 * skipped entries need no stat at all. */
                size_t n_name = strlen(name);
                if (prefix_len + n_name >= sizeof sc->rel) {
                        /* Not a note we could open, nor a directory we
                         * could list, by any path: said, not left out
                         * unseen (its rows, if any, stay: unreadable). */
                        log_warning("Skipping a path longer than %d bytes: %s/%s", PATH_MAX, dir, name);
                        scan_count_skip(skipped, SCAN_TOO_LONG);
                        continue;
                }
                memcpy(sc->rel + prefix_len, name, n_name + 1);
                enum scan_verdict v = classify_entry(sc->rules, &sc->frames, sc->rel, name, type == DT_DIR);
                if (v != SCAN_KEEP) {
                        if (v == SCAN_BAD_NAME)
                                log_warning("Skipping %s/%s: the name is not valid UTF-8", dir, name);
                        scan_count_skip(skipped, v);
                        continue;
                }
                if (type != DT_DIR) {
                        if (type == DT_REG && !have_stat && fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                if (errno == EACCES) {
                                        is_denied = true;
                                        break;
                                }
                                skip_unstatable(sc, dir, name, errno);
                                continue;
                        }
                        if (type != DT_REG || !S_ISREG(st.st_mode)) {
                                skipped->special++;
                                continue;
                        }
                }
                l->entries[n_kept++] = (struct entry){
                        .name_offset = e->name_offset,
                        .is_dir = type == DT_DIR,
                        .st = type == DT_DIR ? (struct stat){ 0 } : st,
                };
        }
        if (is_denied) {
                /* Listed but not searchable (r--): nothing in it can be
                 * looked at or opened, so it is unreadable as a whole. */
                skip_unreadable(sc, dir, -EACCES);
                n_kept = 0;
        }
        closedir(d);
        l->n = r == 0 ? n_kept : 0;
        for (size_t i = 0; i < l->n; i++)
                l->entries[i].name = l->names + l->entries[i].name_offset;
        return r;
}

/* List one directory and queue its notes and subdirectories, in order. */
static int scan_dir(struct scan *sc, const char *dir) {
        struct listing l = { 0 };
        int r;

        r = read_dir(sc, dir, &l);
        if (r == 0 && l.n > 0)
                qsort(l.entries, l.n, sizeof *l.entries, cmp_entry);
        for (size_t i = l.n; r == 0 && i > 0; i--) {
                char *path;
                if (asprintf(&path, "%s/%s", dir, l.entries[i - 1].name) < 0)
                        r = -ENOMEM;
                else if ((r = push_pending(sc, path, l.entries[i - 1].is_dir, &l.entries[i - 1].st)) < 0)
                        free(path);
        }
        listing_done(&l);
        return r;
}

int scan_tree(const char *root, const char *dir, const struct scan_rules *rules, scan_note_cb note_cb,
              scan_unreadable_cb unreadable_cb, void *userdata, struct scan_counts *counts) {
        struct scan *sc = calloc(1, sizeof *sc);
        struct stat st;
        int r = 0;

        if (!sc)
                return log_error_errno(-ENOMEM, "Failed to scan %s: %m", root);
        *sc = (struct scan){ .root = root, .root_len = strlen(root), .rules = rules, .note_cb = note_cb,
                             .unreadable_cb = unreadable_cb, .userdata = userdata, .skipped = counts };
        if (!dir)
                dir = root;
        /* A directory that is gone is the caller's news to tell (a daemon
         * takes it as "its notes are gone"), so no error line here. */
        if (stat(dir, &st) < 0)
                r = -errno;
        else if (!S_ISDIR(st.st_mode))
                r = -ENOTDIR;
        else if (strncmp(dir, root, sc->root_len) != 0 || (dir[sc->root_len] != '/' && dir[sc->root_len] != '\0'))
                r = -EINVAL;
        if (r < 0) {
                free(sc);
                return r;
        }
        /* As for the names below it (classify_entry): a root whose own
         * path is not UTF-8 has no note a TEXT column could name. */
        if (!utf8_is_valid(root, sc->root_len)) {
                counts->bad_names++;
                log_warning("Skipping %s: the name is not valid UTF-8", root);
                free(sc);
                return 0;
        }

        bool is_kept = true;
        if (dir[sc->root_len]) {
                /* Below the root: the rules of the directories above apply
                 * as well, and may skip dir altogether. */
                enum scan_verdict v = classify_path(rules, root, dir + sc->root_len + 1, true, load_ignore_from_disk,
                                                    NULL, &sc->frames, &r);
                is_kept = r == 0 && v == SCAN_KEEP;
                if (r == 0)
                        scan_count_skip(counts, v);
        }
        if (r == 0 && is_kept)
                r = scan_dir(sc, dir);
        while (sc->n_todo > 0) {
                struct pending next = sc->todo[--sc->n_todo];
                if (r == 0)
                        r = next.is_dir ? scan_dir(sc, next.path) : note_cb(next.path, &next.st, userdata);
                free(next.path);
        }
        free(sc->todo);
        frames_done(&sc->frames);
        free(sc);
        if (r == -ENOMEM)
                return log_error_errno(r, "Failed to scan %s: %m", dir);
        return r;
}
