/* See mounts.h. A line: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 -
 * ext3 /dev/root rw": mount id, parent id, major:minor, root of the mount
 * within its filesystem, mount point, then options. */
#include "mounts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "macro.h"
#include "util.h"

static bool is_octal_digit(char c) {
        return c >= '0' && c <= '7';
}

/* Copies a field of len bytes, undoing the kernel's octal escapes of
 * space, tab, newline and backslash ("\040"). */
static char *unescape_field(const char *field, size_t len) {
        char *copy = malloc(len + 1), *o = copy;

        if (!copy)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                if (field[i] == '\\' && i + 3 < len && is_octal_digit(field[i + 1]) && field[i + 1] <= '3' &&
                    is_octal_digit(field[i + 2]) && is_octal_digit(field[i + 3])) {
                        *o++ = (char) ((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
                        i += 3;
                } else
                        *o++ = field[i];
        }
        *o = '\0';
        return copy;
}

int mount_table_parse(FILE *f, struct mount_table *ret) {
        _cleanup_free_ char *line = NULL;
        struct mount_table t = { 0 };
        size_t cap = 0, cap_v = 0;

        while (getline(&line, &cap, f) >= 0) {
                unsigned major_no, minor_no;
                int point_at = -1;

                if (sscanf(line, "%*d %*d %u:%u %*s %n", &major_no, &minor_no, &point_at) != 2 || point_at < 0)
                        continue;
                const char *point = line + point_at;
                size_t len = strcspn(point, " \n");
                if (len == 0)
                        continue;
                if (GREEDY_REALLOC(t.v, cap_v, t.n + 1, 16) < 0)
                        goto oom;
                t.v[t.n].point = unescape_field(point, len);
                if (!t.v[t.n].point)
                        goto oom;
                t.v[t.n++].dev = makedev(major_no, minor_no);
        }
        *ret = t;
        return 0;
oom:
        mount_table_done(&t);
        return -ENOMEM;
}

int mount_table_read(struct mount_table *ret) {
        _cleanup_fclose_ FILE *f = fopen(MOUNT_TABLE_PATH, "re");

        if (!f)
                return -errno;
        return mount_table_parse(f, ret);
}

void mount_table_done(struct mount_table *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->v[i].point);
        free(t->v);
        *t = (struct mount_table){ 0 };
}

bool mount_table_has_dev(const struct mount_table *t, dev_t dev) {
        for (size_t i = 0; i < t->n; i++)
                if (t->v[i].dev == dev)
                        return true;
        return false;
}

bool mount_table_has_point(const struct mount_table *t, const char *point) {
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->v[i].point, point) == 0)
                        return true;
        return false;
}
