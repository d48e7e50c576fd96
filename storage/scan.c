/* See scan.h. Directories are walked by path from an explicit stack, not
 * by recursion holding a descriptor per level, so deep trees cannot run
 * us out of file descriptors or stack. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "scan.h"

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

bool scan_name_is_markdown(const char *name) {
        static const char *const extensions[] = { ".md", ".markdown", ".mdown", ".mkd", ".mkdn" };
        size_t n = strlen(name);

        for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
                size_t e = strlen(extensions[i]);
                if (n > e && strcasecmp(name + n - e, extensions[i]) == 0)
                        return true;
        }
        return false;
}

struct path_stack {
        char **items;
        size_t n, cap;
};

static int push_path(struct path_stack *st, char *path) {
        if (st->n == st->cap) {
                size_t cap = st->cap ? st->cap * 2 : 64;
                char **p = realloc(st->items, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                st->items = p;
                st->cap = cap;
        }
        st->items[st->n++] = path;
        return 0;
}

static int add_entry(struct scan_result *r, size_t *cap, char *path, const struct stat *st) {
        if (r->n_entries == *cap) {
                size_t c = *cap ? *cap * 2 : 1024;
                struct scan_entry *p = realloc(r->entries, c * sizeof *p);
                if (!p)
                        return -ENOMEM;
                r->entries = p;
                *cap = c;
        }
        r->entries[r->n_entries++] = (struct scan_entry){
                .path = path,
                .size = st->st_size,
                .mtime_ns = (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
        };
        return 0;
}

static char *path_join(const char *dir, const char *name) {
        char *p;
        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* List one directory: files go to r, subdirectories onto the stack. */
static int scan_dir(const char *dir, struct scan_result *r, size_t *cap, struct path_stack *todo) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                /* Gone since its parent was listed: a rename or delete raced
                 * the scan, and whoever did it will be seen on its own. */
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                if (errno == ELOOP) {
                        r->skipped.symlinks++;
                        return 0;
                }
                r->skipped.unreadable++;
                log_warning_errno(errno, "Failed to read directory %s: %m (skipped)", dir);
                return 0;
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }

        int ret = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                const char *name = de->d_name;
                struct stat st;

                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                if (scan_name_is_hidden(name)) {
                        r->skipped.hidden++;
                        continue;
                }
                unsigned char type = de->d_type;
                bool have_stat = false;
                if (type == DT_UNKNOWN || type == DT_REG) {
                        if (type == DT_REG && (scan_name_is_editor_temp(name) || !scan_name_is_markdown(name))) {
                                /* Decided by name alone: no stat needed. */
                        } else {
                                if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                        continue; /* vanished under us */
                                have_stat = true;
                                type = S_ISDIR(st.st_mode)   ? DT_DIR
                                       : S_ISREG(st.st_mode) ? DT_REG
                                       : S_ISLNK(st.st_mode) ? DT_LNK
                                                             : DT_FIFO;
                        }
                }
                if (type == DT_LNK) {
                        r->skipped.symlinks++;
                        continue;
                }
                if (type == DT_DIR) {
                        char *sub = path_join(dir, name);
                        if (!sub || push_path(todo, sub) < 0) {
                                free(sub);
                                ret = -ENOMEM;
                                break;
                        }
                        continue;
                }
                if (scan_name_is_editor_temp(name)) {
                        r->skipped.editor_temp++;
                        continue;
                }
                if (!scan_name_is_markdown(name)) {
                        r->skipped.not_markdown++;
                        continue;
                }
                if (type != DT_REG) {
                        r->skipped.special++;
                        continue;
                }
                if (!have_stat && fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISREG(st.st_mode)) {
                        r->skipped.special++;
                        continue;
                }
                char *path = path_join(dir, name);
                if (!path || add_entry(r, cap, path, &st) < 0) {
                        free(path);
                        ret = -ENOMEM;
                        break;
                }
        }
        closedir(d);
        return ret;
}

static int cmp_entry(const void *a, const void *b) {
        return strcmp(((const struct scan_entry *) a)->path, ((const struct scan_entry *) b)->path);
}

int scan_tree(const char *root, struct scan_result *ret) {
        struct path_stack todo = { 0 };
        size_t cap = 0;
        int r = 0;

        *ret = (struct scan_result){ 0 };
        struct stat st;
        if (stat(root, &st) < 0)
                return log_error_errno(errno, "Failed to scan %s: %m", root);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(ENOTDIR, "Failed to scan %s: %m", root);

        char *first = strdup(root);
        if (!first || push_path(&todo, first) < 0) {
                free(first);
                free(todo.items);
                return -ENOMEM;
        }
        while (todo.n > 0) {
                char *dir = todo.items[--todo.n];
                if (r == 0)
                        r = scan_dir(dir, ret, &cap, &todo);
                free(dir);
        }
        free(todo.items);
        if (r < 0) {
                scan_result_done(ret);
                return log_error_errno(r, "Failed to scan %s: %m", root);
        }
        qsort(ret->entries, ret->n_entries, sizeof *ret->entries, cmp_entry);
        return 0;
}

void scan_result_done(struct scan_result *r) {
        for (size_t i = 0; i < r->n_entries; i++)
                free(r->entries[i].path);
        free(r->entries);
        *r = (struct scan_result){ 0 };
}
