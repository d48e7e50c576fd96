/* quired's settings: $XDG_CONFIG_HOME/quire/config.ini, then command-line
 * flags on top (flags beat the file). Bad input is one line naming the
 * file, line and key (or the flag), and exit status 2. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum watch_backend_kind {
        WATCH_BACKEND_INOTIFY,  /* Linux default: one inotify fd under uv_poll */
        WATCH_BACKEND_FS_EVENT, /* libuv's uv_fs_event_t per directory (kqueue/FSEvents elsewhere) */
};

/* How the indexer thread (and the threads it starts) is scheduled. */
enum indexer_priority {
        INDEXER_PRIORITY_IDLE,   /* default: SCHED_IDLE and the idle I/O class */
        INDEXER_PRIORITY_NORMAL, /* the daemon's own policy and I/O class */
};

#define CONFIG_SETTLE_MS_DEFAULT 30
#define CONFIG_MAX_DELAY_MS_DEFAULT 1000
#define CONFIG_RESCAN_INTERVAL_S_DEFAULT 300

struct root_config {
        char *path;      /* owned; a DIR argument as given; from the file ~ expanded,
                          * relative to the file's directory, no trailing '/' */
        char *namespace; /* owned */
};

struct config {
        char *db_path;    /* owned; NULL: the store's default; from the file resolved like a root */
        char *config_path; /* owned; the file that was read (absolute), NULL if none */
        struct root_config *roots; /* owned */
        size_t n_roots;
        bool has_roots_from_file; /* roots are the file's [root] sections, not DIR arguments */
        char **ignore_globs; /* owned; gitignore-ish globs on the path relative to its root */
        size_t n_ignore_globs;
        char **extensions; /* owned; without dot, e.g. "md"; empty = the built-in list */
        size_t n_extensions;
        unsigned settle_ms;
        unsigned max_delay_ms;
        unsigned rescan_interval_s; /* periodic rescan of what could not be watched */
        uint64_t max_file_bytes;
        enum watch_backend_kind backend;
        enum indexer_priority indexer_priority;
        int log_level; /* syslog level: LOG_INFO default, --verbose LOG_DEBUG, --quiet LOG_WARNING */
        bool is_help;    /* --help was given: print usage, exit 0 */
        bool is_version; /* --version */
};

/* Fill cfg from the command line and the config file it names (--config
 * FILE, else $XDG_CONFIG_HOME/quire/config.ini or ~/.config/quire/config.ini
 * when that exists). DIR arguments are roots in namespace --namespace (or
 * "default"); when any DIR is given the file's roots are not used. Returns
 * 0, or -EINVAL after printing one line saying what is wrong (caller exits
 * 2), or another -errno (e.g. -ENOMEM, or --config FILE unreadable).
 * cfg is overwritten, not freed first; on error it is left empty. Safe to
 * call again with the same argv (SIGHUP): getopt is restarted here. */
int config_load(int argc, char **argv, struct config *cfg);

void config_done(struct config *cfg);

/* The usage text of quired. */
extern const char config_usage[];
