/* What the storage tests that walk a real tree share: writing a note at a
 * path below a temporary directory. */
#pragma once

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base/rel holds text afterwards, its parents made as needed; a test
 * that cannot set up its tree aborts. */
static inline void tree_write(const char *base, const char *rel, const char *text) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", base, rel);
        for (char *p = strchr(path + strlen(base) + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = '\0';
                (void) mkdir(path, 0755);
                *p = '/';
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        size_t n = strlen(text);
        if (fd < 0 || write(fd, text, n) != (ssize_t) n)
                abort();
        close(fd);
}
