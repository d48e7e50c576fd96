/* The mount table (/proc/self/mountinfo, proc(5)): which filesystems are
 * mounted, and where. quired asks it when a root's directory is no longer
 * at its path (unmounted, or deleted?) and diffs its mount points to see
 * filesystems mounted or unmounted below a root, which raise no inotify
 * event. No libuv: the caller polls the file for changes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define MOUNT_TABLE_PATH "/proc/self/mountinfo"

struct mount {
        dev_t dev;   /* the filesystem's device number, as st_dev */
        char *point; /* where it is mounted, the kernel's escapes undone */
};

struct mount_table {
        struct mount *v;
        size_t n;
};

/* Reads the table from f (MOUNT_TABLE_PATH's format; lines that do not
 * parse are skipped). 0 or -ENOMEM; *ret owns what it holds. */
int mount_table_parse(FILE *f, struct mount_table *ret);
/* Reads MOUNT_TABLE_PATH: 0, or -errno where it cannot be opened (no
 * /proc, not Linux). */
int mount_table_read(struct mount_table *ret);
void mount_table_done(struct mount_table *t);

bool mount_table_has_dev(const struct mount_table *t, dev_t dev);
bool mount_table_has_point(const struct mount_table *t, const char *point);
