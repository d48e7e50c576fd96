/* The storage functions about files on disk that need no database: where
 * the database is by default, and whether a hit's note changed since it
 * was indexed. Apart from the rest, so that `quire search` answered by
 * quired never loads libsqlite3 (cli/front.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "search.h"
#include "store.h"
#include "util.h"

char *store_default_path(void) {
        _cleanup_free_ char *home = NULL;
        const char *e = getenv("QUIRE_DB");
        char *p = NULL;

        if (e && *e)
                return strdup(e);
        e = getenv("XDG_DATA_HOME");
        if (e && *e == '/') {
                if (asprintf(&p, "%s/quire/index.db", e) < 0)
                        return NULL;
                return p;
        }
        /* Never the working directory (a relative HOME, none at all): with
         * no home in the password database either, the root's. */
        if (home_dir(&home) == -ENOMEM)
                return NULL;
        if (asprintf(&p, "%s/.local/share/quire/index.db", home ? home : "") < 0)
                return NULL;
        return p;
}

bool search_hit_is_stale(const struct search_hit *hit) {
        struct stat st;

        int k = lstat(hit->source_file, &st);
        if (lstat_says_gone(k, errno, &st))
                return true;
        if (k < 0 || !hit->has_file_row)
                return false;
        return st.st_size != hit->file_size ||
               timestamp_ns(st.st_mtim.tv_sec, st.st_mtim.tv_nsec) != hit->file_mtime_ns;
}
