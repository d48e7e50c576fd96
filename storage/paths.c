/* The storage functions about files on disk that need no database: where
 * the database is by default, and whether a hit's note changed since it
 * was indexed. Apart from the rest, so that `quire search` answered by
 * quired never loads libsqlite3 (cli/front.c). */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "search.h"
#include "store.h"

/* $HOME when it is absolute, else the password database's (into buf), as
 * quired expands '~' in its config file: never the working directory,
 * which a relative default would make the database's. "" (so the root
 * directory) when there is neither. */
static const char *home_dir(char *buf, size_t size) {
        struct passwd pw, *found = NULL;
        const char *e = getenv("HOME");

        if (e && e[0] == '/')
                return e;
        if (getpwuid_r(getuid(), &pw, buf, size, &found) == 0 && found && found->pw_dir && found->pw_dir[0] == '/')
                return found->pw_dir;
        return "";
}

char *store_default_path(void) {
        char buf[4096];
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
        if (asprintf(&p, "%s/.local/share/quire/index.db", home_dir(buf, sizeof buf)) < 0)
                return NULL;
        return p;
}

bool search_hit_is_stale(const struct search_hit *hit) {
        struct stat st;

        if (lstat(hit->source_file, &st) < 0)
                return errno == ENOENT || errno == ENOTDIR;
        if (!S_ISREG(st.st_mode))
                return true;
        if (!hit->has_file_row)
                return false;
        return st.st_size != hit->file_size ||
               (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != hit->file_mtime_ns;
}
