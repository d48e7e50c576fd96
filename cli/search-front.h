/* quire search up to the point where it needs the database: its options,
 * how hits are printed, and asking quired, which answers from the database
 * it has open. Shared by the quire executable (front.c), which loads no
 * SQLite when quired answers, and the in-process search (search.c), so
 * that a hit prints the same whoever found it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "search.h"

enum output_format {
        FORMAT_TEXT,
        FORMAT_JSON,
        FORMAT_VIMGREP,
        FORMAT_FILES,
};

/* A set of strings (owned copies), open addressing: --files meets each
 * path once per chunk that has a hit. */
struct path_set {
        char **slots;
        size_t n, cap; /* cap a power of two, at most half full */
};

/* 1 if path was added, 0 if it was there, -ENOMEM. */
int path_set_add(struct path_set *set, const char *path);
void path_set_done(struct path_set *set);

struct search_output {
        enum output_format format;
        bool use_color;
        /* --files: the paths seen so far, how many to skip and how many
         * to print still. */
        struct path_set seen_paths;
        unsigned files_to_skip, files_left;
};

/* What the command line asks for. */
struct search_args {
        struct search_query query;
        struct search_output out;
        const char *tags[8]; /* --tag may be given a few times: each must hold */
        char *path_glob;     /* owned: query.path_glob */
        const char *db_arg;
        bool is_sync;
        unsigned sync_timeout_ms;
};

/* Parse quire search's arguments (argv[0] is "search"). -1: go on and
 * search; otherwise the command is done and this is its exit status:
 * --help printed (0), a usage error reported (2), --path not resolved
 * (1). Call search_args_done() either way. */
int search_args_parse(int argc, char **argv, struct search_args *a);
void search_args_done(struct search_args *a);

/* store_search()'s callback: print one hit as out (the userdata, a
 * struct search_output) says; 1 once --files has printed enough. */
int search_print_hit(const struct search_hit *h, void *userdata);

/* The search answered by the quired that runs on db_path, its hits
 * printed by search_print_hit() like those found in process: true when
 * it answered (*ret_rc is the exit status), false when the search is to
 * run in process: no quired there, or it could not search. Nothing is
 * printed before its whole answer is in. */
bool search_via_daemon(const char *db_path, struct search_args *a, int *ret_rc);
