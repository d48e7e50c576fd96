/* See scan.h. Directories are walked by path from an explicit stack, not
 * by recursion holding a descriptor per level, so deep trees cannot run
 * us out of file descriptors or stack. Each directory's entries are sorted
 * so notes come out in byte order of their paths, the order of the files
 * table: batches then cover narrow key ranges and B-tree inserts append. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "scan.h"
#include "util.h"

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

static bool is_ignored(const struct scan_rules *rules, const char *rel, const char *name) {
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

/* The verdict on one entry whose parents were already kept. */
static enum scan_verdict classify_entry(const struct scan_rules *rules, const char *rel, const char *name,
                                        bool is_dir) {
        if (scan_name_is_hidden(name))
                return SCAN_HIDDEN;
        /* Paths are stored as TEXT, which other programs decode as UTF-8
         * (Python's sqlite3 raises on anything else); a lossy spelling would
         * name a file that does not exist. So such a note is left out. */
        if (!utf8_is_valid(name, strlen(name)))
                return SCAN_BAD_NAME;
        if (!is_dir && scan_name_is_editor_temp(name))
                return SCAN_EDITOR_TEMP;
        if (is_ignored(rules, rel, name))
                return SCAN_IGNORED;
        if (!is_dir && !scan_name_is_markdown(rules, name))
                return SCAN_NOT_MARKDOWN;
        return SCAN_KEEP;
}

enum scan_verdict scan_classify(const struct scan_rules *rules, const char *rel, bool is_dir) {
        char prefix[PATH_MAX];
        const char *name = rel;

        /* Every directory on the way must have been kept, too. */
        for (const char *slash = strchr(rel, '/'); slash; slash = strchr(name, '/')) {
                size_t n = (size_t) (slash - rel);
                if (n >= sizeof prefix)
                        return SCAN_IGNORED;
                memcpy(prefix, rel, n);
                prefix[n] = '\0';
                enum scan_verdict v = classify_entry(rules, prefix, prefix + (name - rel), true);
                if (v != SCAN_KEEP)
                        return v;
                name = slash + 1;
        }
        return classify_entry(rules, rel, name, is_dir);
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
        const struct scan_rules *rules;
        scan_note_cb note_cb;
        void *userdata;
        struct scan_counts *skipped;
        struct pending *todo;
        size_t n_todo, cap_todo;
};

static int push_pending(struct scan *sc, char *path, bool is_dir, const struct stat *st) {
        if (sc->n_todo == sc->cap_todo) {
                size_t cap = sc->cap_todo ? sc->cap_todo * 2 : 256;
                struct pending *p = realloc(sc->todo, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                sc->todo = p;
                sc->cap_todo = cap;
        }
        sc->todo[sc->n_todo++] = (struct pending){ .path = path, .is_dir = is_dir, .st = is_dir ? (struct stat){ 0 } : *st };
        return 0;
}

struct entry {
        char *name; /* owned */
        bool is_dir;
        struct stat st;
};

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

/* The entries of dir worth keeping, classified; skipped ones counted. */
static int read_dir(struct scan *sc, const char *dir, struct entry **ret, size_t *n_ret) {
        struct scan_counts *skipped = sc->skipped;
        struct entry *entries = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

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
                skipped->unreadable++;
                log_warning_errno(errno, "Failed to read directory %s: %m (skipped)", dir);
                return 0;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }

        struct dirent *de;
        while ((de = readdir(d))) {
                const char *name = de->d_name;
                struct stat st;

                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                if (scan_name_is_hidden(name)) {
                        skipped->hidden++;
                        continue;
                }
                unsigned char type = de->d_type;
                bool have_stat = false;
                if (type == DT_UNKNOWN) {
                        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue; /* vanished under us */
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
                char rel[PATH_MAX];
                size_t n_root = strlen(sc->root);
                int k = dir[n_root] ? snprintf(rel, sizeof rel, "%s/%s", dir + n_root + 1, name)
                                    : snprintf(rel, sizeof rel, "%s", name);
                if (k < 0 || (size_t) k >= sizeof rel)
                        continue;
                switch (classify_entry(sc->rules, rel, name, type == DT_DIR)) {
                case SCAN_KEEP:
                        break;
                case SCAN_HIDDEN:
                        skipped->hidden++;
                        continue;
                case SCAN_EDITOR_TEMP:
                        skipped->editor_temp++;
                        continue;
                case SCAN_IGNORED:
                        skipped->ignored++;
                        continue;
                case SCAN_NOT_MARKDOWN:
                        skipped->not_markdown++;
                        continue;
                case SCAN_BAD_NAME:
                        skipped->bad_names++;
                        log_warning("Skipping %s/%s: the name is not valid UTF-8", dir, name);
                        continue;
                }
                if (type != DT_DIR) {
                        if (type != DT_REG || (!have_stat && fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) ||
                            !S_ISREG(st.st_mode)) {
                                skipped->special++;
                                continue;
                        }
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        struct entry *e = realloc(entries, cap * sizeof *e);
                        if (!e) {
                                r = -ENOMEM;
                                break;
                        }
                        entries = e;
                }
                entries[n] = (struct entry){ .name = strdup(name), .is_dir = type == DT_DIR };
                if (!entries[n].name) {
                        r = -ENOMEM;
                        break;
                }
                if (type != DT_DIR)
                        entries[n].st = st;
                n++;
        }
        closedir(d);
        *ret = entries;
        *n_ret = n;
        return r;
}

/* List one directory and queue its notes and subdirectories, in order. */
static int scan_dir(struct scan *sc, const char *dir) {
        struct entry *entries = NULL;
        size_t n = 0;
        int r;

        r = read_dir(sc, dir, &entries, &n);
        if (r == 0 && n > 0)
                qsort(entries, n, sizeof *entries, cmp_entry);
        for (size_t i = n; r == 0 && i > 0; i--) {
                char *path;
                if (asprintf(&path, "%s/%s", dir, entries[i - 1].name) < 0)
                        r = -ENOMEM;
                else if ((r = push_pending(sc, path, entries[i - 1].is_dir, &entries[i - 1].st)) < 0)
                        free(path);
        }
        for (size_t i = 0; i < n; i++)
                free(entries[i].name);
        free(entries);
        return r;
}

int scan_tree(const char *root, const struct scan_rules *rules, scan_note_cb note_cb, void *userdata,
              struct scan_counts *counts) {
        struct scan sc = { .root = root, .rules = rules, .note_cb = note_cb, .userdata = userdata, .skipped = counts };
        struct stat st;
        int r;

        /* A root that is gone is the caller's news to tell (a daemon takes
         * it as "its notes are gone"), so no error line here. */
        if (stat(root, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;

        r = scan_dir(&sc, root);
        while (sc.n_todo > 0) {
                struct pending next = sc.todo[--sc.n_todo];
                if (r == 0)
                        r = next.is_dir ? scan_dir(&sc, next.path) : note_cb(next.path, &next.st, userdata);
                free(next.path);
        }
        free(sc.todo);
        if (r == -ENOMEM)
                return log_error_errno(r, "Failed to scan %s: %m", root);
        return r;
}
