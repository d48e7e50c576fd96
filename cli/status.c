/* quire status: what the index holds, whether the no-duplicates
 * guarantee stands (duplicate groups must be 0), and, when a quired runs
 * on the database, whether its index is current (exit status 1 if not). */
#include <getopt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon-state.h"
#include "log.h"
#include "macro.h"
#include "search.h"
#include "util.h"

static const char status_help[] =
        "Usage: quire status [OPTIONS]\n"
        "\n"
        "Show files, chunks and namespaces in the index, its size and schema\n"
        "version, the number of duplicate chunk groups (always 0), and whether\n"
        "a quired runs on the database (its pid, state and last heartbeat).\n"
        "With a quired running, also whether the index is current: changes\n"
        "waiting (queue, settling) and the age of the oldest, directories\n"
        "watched and not watched (watch limit), overflows recovered from, and\n"
        "the last full reconcile.\n"
        "\n"
        "Exit status: 0; 1 when the index lags (a change has waited longer than\n"
        "the daemon's threshold: 3 s, or twice its max delay when longer), part\n"
        "of a root is not watched, a root is missing, quired is stopped (SIGSTOP,\n"
        "Ctrl-Z), or indexing fails and is retried, when --check finds the file\n"
        "damaged, or on failure. No daemon running is 0.\n"
        "\n"
        "Options:\n"
        "      --db PATH   database (default: $QUIRE_DB or the XDG data dir)\n"
        "      --check     also check every page of the file (SQLite's\n"
        "                  integrity_check) and read the full-text indexes\n"
        "                  whole (seconds on a large index)\n"
        "      --json      one JSON object\n"
        "  -h, --help      show this help\n";

/* What --check found: n problems, the first one's text. */
struct integrity {
        bool is_checked;
        unsigned n;
        char *first; /* owned */
};

/* What the daemon's state says of the index, for both formats. */
struct index_freshness {
        bool is_known;     /* a daemon runs and reports it */
        int64_t oldest_ms; /* age of the oldest waiting change, -1: none */
        bool is_lagging, has_unwatched;
        bool has_missing_roots; /* their notes are kept, but nothing follows them */
        bool is_failing;        /* indexing fails, and is retried */
        enum process_stop stop; /* the process is stopped: it indexes nothing */
};

/* The daemon's indexing error in the storage's words where strerror()'s
 * would mislead: the store maps SQLite's codes to errno values
 * (store_errno()), and "Device or resource busy" is a lock another
 * program holds. */
static const char *failing_reason(int error) {
        switch (error) {
        case -EBUSY:
                return "the database is locked by another program";
        case -EBADMSG:
                return "the database file is damaged (quire status --check; quire repair)";
        default:
                return strerror(-error);
        }
}

static struct index_freshness freshness_of(int r, const struct daemon_state_info *d) {
        struct index_freshness f = { .oldest_ms = -1 };
        int64_t at_ns;

        if (r <= 0 || d->pid <= 0 || !d->has_index_state)
                return f;
        f.is_known = true;
        if (d->oldest_pending[0] && utc_timestamp_parse(d->oldest_pending, &at_ns) == 0 && at_ns >= 0) {
                uint64_t now = now_realtime_usec(), at = (uint64_t) at_ns / 1000u;
                f.oldest_ms = now > at ? (int64_t) ((now - at) / 1000) : 0;
                f.is_lagging = f.oldest_ms > (int64_t) d->lag_threshold_ms;
        }
        f.has_unwatched = d->n_unwatched > 0;
        f.has_missing_roots = d->n_missing_roots > 0;
        f.is_failing = d->failing_error < 0;
        /* Its state file says what it last saw; an idle quired writes
         * nothing, so only the process itself can tell it is stopped. */
        f.stop = process_stop_of(d->pid, "quired");
        return f;
}

static bool is_current(const struct index_freshness *f) {
        return !f->is_lagging && !f->has_unwatched && !f->has_missing_roots && !f->is_failing &&
               f->stop == PROCESS_NOT_STOPPED;
}

static void json_timestamp_or_null(const char *ts) {
        if (ts[0])
                json_write_string(stdout, ts);
        else
                fputs("null", stdout);
}

/* The daemon part: r is daemon_state_read()'s answer. */
static void print_daemon_json(int r, const struct daemon_state_info *d, const struct index_freshness *f) {
        if (r < 0) {
                fputs(",\"daemon\":{\"running\":null,\"error\":", stdout);
                json_write_string(stdout, strerror(-r));
                fputc('}', stdout);
        } else if (r == 0)
                fputs(",\"daemon\":{\"running\":false}", stdout);
        else {
                if (d->pid > 0)
                        printf(",\"daemon\":{\"running\":true,\"pid\":%ld,\"state\":", d->pid);
                else /* held, but not written yet */
                        fputs(",\"daemon\":{\"running\":true,\"pid\":null,\"state\":", stdout);
                json_write_string(stdout, d->state);
                fputs(",\"heartbeat\":", stdout);
                if (d->heartbeat[0])
                        json_write_string(stdout, d->heartbeat);
                else
                        fputs("null", stdout);
                printf(",\"queue\":%zu", d->queue_length);
                if (f->is_known) {
                        printf(",\"settling\":%zu,\"oldest_pending\":", d->n_settling);
                        json_timestamp_or_null(d->oldest_pending);
                        if (f->oldest_ms >= 0)
                                printf(",\"oldest_pending_age_ms\":%lld", (long long) f->oldest_ms);
                        else
                                fputs(",\"oldest_pending_age_ms\":null", stdout);
                        printf(",\"lag_threshold_ms\":%u,\"lagging\":%s,\"watched_dirs\":%zu,"
                               "\"unwatched_dirs\":%zu,\"overflows\":%llu,\"last_reconcile\":",
                               d->lag_threshold_ms, f->is_lagging ? "true" : "false", d->n_watched, d->n_unwatched,
                               (unsigned long long) d->n_overflows);
                        json_timestamp_or_null(d->last_reconcile);
                        fputs(",\"roots\":[", stdout);
                        for (size_t i = 0; i < d->n_roots; i++) {
                                if (i)
                                        fputc(',', stdout);
                                json_write_string(stdout, d->roots[i]);
                        }
                        fputs("],\"missing_roots\":[", stdout);
                        for (size_t i = 0; i < d->n_missing_roots; i++) {
                                if (i)
                                        fputc(',', stdout);
                                json_write_string(stdout, d->missing_roots[i]);
                        }
                        printf("],\"stopped\":%s,\"failing\":", f->stop != PROCESS_NOT_STOPPED ? "true" : "false");
                        if (f->is_failing) {
                                fputs("{\"error\":", stdout);
                                json_write_string(stdout, failing_reason(d->failing_error));
                                fputs(",\"since\":", stdout);
                                json_timestamp_or_null(d->failing_since);
                                printf(",\"retry_s\":%u}", d->retry_s);
                        } else
                                fputs("null", stdout);
                        printf(",\"current\":%s", is_current(f) ? "true" : "false");
                }
                fputc('}', stdout);
        }
}

/* A name (a namespace: any bytes `quire index -n` took) as one field, then
 * spaces to width columns, a character a column. */
static void print_field_padded(const char *text, size_t width) {
        char *printed = NULL;
        size_t len = 0, columns = 0;
        FILE *f = open_memstream(&printed, &len);

        if (!f) {
                fputs(text, stdout);
                return;
        }
        fputs_field(text, f);
        if (fclose(f) != 0) {
                free(printed);
                fputs(text, stdout);
                return;
        }
        fputs(printed, stdout);
        for (size_t i = 0; i < len; i++)
                columns += ((unsigned char) printed[i] & 0xc0) != 0x80;
        for (; columns < width; columns++)
                fputc(' ', stdout);
        free(printed);
}

static void print_daemon_text(int r, const struct daemon_state_info *d, const struct index_freshness *f) {
        if (r < 0)
                printf("daemon:           unknown (%s)\n", strerror(-r));
        else if (r == 0)
                printf("daemon:           not running\n");
        else if (d->pid <= 0)
                printf("daemon:           running (starting)\n");
        else {
                printf("daemon:           running (pid %ld, %s, heartbeat %s", d->pid, d->state, d->heartbeat);
                if (d->queue_length > 0)
                        printf(", queue %zu", d->queue_length);
                fputs(")\n", stdout);
        }
        if (!f->is_known)
                return;
        if (f->stop != PROCESS_NOT_STOPPED) {
                _cleanup_free_ char *why = daemon_stop_text(d->pid, f->stop);
                printf("index:            not current: %s", why ? why : "quired is stopped");
        } else if (f->is_failing)
                printf("index:            not current: indexing has failed since %s (%s); quired retries every "
                       "%u s (see its log)",
                       d->failing_since[0] ? d->failing_since : "start", failing_reason(d->failing_error), d->retry_s);
        else if (f->is_lagging)
                printf("index:            lagging: a change has waited %.1f s (more than %.1f s)",
                       f->oldest_ms / 1000.0, d->lag_threshold_ms / 1000.0);
        else if (f->has_unwatched)
                printf("index:            not current: %zu directories are not watched", d->n_unwatched);
        else if (f->has_missing_roots)
                printf("index:            not current: %zu root%s missing", d->n_missing_roots,
                       d->n_missing_roots == 1 ? " is" : "s are");
        else
                printf("index:            current");
        if (f->oldest_ms >= 0) {
                if (!f->is_lagging)
                        printf(" (oldest change waiting %.1f s)", f->oldest_ms / 1000.0);
                printf("; queue %zu, %zu settling", d->queue_length, d->n_settling);
        }
        fputc('\n', stdout);
        printf("watched:          %zu directories", d->n_watched);
        if (d->n_unwatched > 0)
                printf(", %zu not watched (watch limit: rescanned periodically; see the daemon's log)",
                       d->n_unwatched);
        /* Their notes stay in the index (docs/ROOTS.md): say which they are. */
        for (size_t i = 0; i < d->n_missing_roots; i++) {
                fputs("\nmissing root:     ", stdout);
                fputs_field(d->missing_roots[i], stdout);
                printf(" (%s; looked for periodically)",
                       strv_contains(d->dropped_roots, d->n_dropped_roots, d->missing_roots[i])
                               ? "deleted or moved away while watched: its notes left the index"
                               : "notes kept");
        }
        printf("\noverflows:        %llu recovered\n", (unsigned long long) d->n_overflows);
        printf("last reconcile:   %s\n", d->last_reconcile[0] ? d->last_reconcile : "none yet");
}

static void print_json(const char *path, const struct store_status *st, const struct integrity *in, int daemon_r,
                       const struct daemon_state_info *daemon, const struct index_freshness *fresh) {
        fputs("{\"database\":", stdout);
        json_write_string(stdout, path);
        printf(",\"schema_version\":%d,\"files\":%lld,\"chunks\":%lld,\"duplicate_groups\":%lld,"
               "\"database_bytes\":%lld,\"wal_bytes\":%lld,\"namespaces\":[",
               st->schema_version, (long long) st->files, (long long) st->chunks, (long long) st->duplicate_groups,
               (long long) st->db_bytes, (long long) st->wal_bytes);
        for (size_t i = 0; i < st->n_namespaces; i++) {
                fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
                json_write_string(stdout, st->namespaces[i].name);
                printf(",\"files\":%lld,\"chunks\":%lld}", (long long) st->namespaces[i].files,
                       (long long) st->namespaces[i].chunks);
        }
        fputc(']', stdout);
        if (in->is_checked) {
                printf(",\"integrity\":{\"ok\":%s,\"problems\":%u,\"first_problem\":", in->n ? "false" : "true",
                       in->n);
                if (in->first)
                        json_write_string(stdout, in->first);
                else
                        fputs("null", stdout);
                fputc('}', stdout);
        }
        print_daemon_json(daemon_r, daemon, fresh);
        fputs("}\n", stdout);
}

static void print_text(const char *path, const struct store_status *st, const struct integrity *in, int daemon_r,
                       const struct daemon_state_info *daemon, const struct index_freshness *fresh) {
        fputs("database:         ", stdout);
        fputs_field(path, stdout);
        fputc('\n', stdout);
        printf("schema version:   %d\n", st->schema_version);
        printf("size:             %.1f MiB (+ %.1f MiB WAL)\n", st->db_bytes / 1048576.0, st->wal_bytes / 1048576.0);
        printf("files:            %lld\n", (long long) st->files);
        printf("chunks:           %lld\n", (long long) st->chunks);
        printf("duplicate groups: %lld\n", (long long) st->duplicate_groups);
        printf("namespaces:       %zu\n", st->n_namespaces);
        for (size_t i = 0; i < st->n_namespaces; i++) {
                fputs("  ", stdout);
                print_field_padded(st->namespaces[i].name, 16);
                printf(" %lld files, %lld chunks\n", (long long) st->namespaces[i].files,
                       (long long) st->namespaces[i].chunks);
        }
        if (in->is_checked && in->n == 0)
                printf("integrity:        ok\n");
        else if (in->is_checked)
                printf("integrity:        DAMAGED: %u%s problem%s, first: %s\n", in->n, in->n >= 100 ? " or more" : "",
                       in->n == 1 ? "" : "s", in->first);
        print_daemon_text(daemon_r, daemon, fresh);
}

int cmd_status(int argc, char **argv) {
        enum { OPT_DB = 0x100, OPT_JSON, OPT_CHECK };
        static const struct option options[] = {
                { "db", required_argument, NULL, OPT_DB },
                { "json", no_argument, NULL, OPT_JSON },
                { "check", no_argument, NULL, OPT_CHECK },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *db_arg = NULL;
        bool json = false, is_checking = false;
        int opt;

        opterr = 0;
        while ((opt = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DB:
                        if (!*optarg)
                                return usage_error("status", "--db must not be empty");
                        db_arg = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_CHECK:
                        is_checking = true;
                        break;
                case 'h':
                        fputs(status_help, stdout);
                        return 0;
                default:
                        return usage_bad_option("status", opt, argv);
                }
        }
        if (optind < argc)
                return usage_error("status", "unexpected argument '%s'", argv[optind]);

        _cleanup_free_ char *db_path = db_path_or_default(db_arg);
        if (!db_path)
                return 1;
        struct store *s = NULL;
        if (store_open(db_path, &(struct store_options){ .flags = STORE_READONLY }, &s) < 0)
                return 1;
        struct store_status st;
        struct integrity in = { .is_checked = is_checking };
        int r = store_get_status(s, &st);
        if (r == 0 && is_checking) {
                r = store_check_integrity(s, &in.n, &in.first);
                if (r < 0)
                        store_status_done(&st);
        }
        store_close(s);
        if (r < 0)
                return 1;
        /* Whether a daemon runs is an answer of its own, not a failure of
         * status: an unreadable state file prints as "unknown". */
        _cleanup_(daemon_state_info_done) struct daemon_state_info daemon = { 0 };
        int daemon_r = daemon_state_read(db_path, &daemon);
        /* Once: the exit status says what was printed. */
        struct index_freshness f = freshness_of(daemon_r, &daemon);
        if (json)
                print_json(db_path, &st, &in, daemon_r, &daemon, &f);
        else
                print_text(db_path, &st, &in, daemon_r, &daemon, &f);
        store_status_done(&st);
        free(in.first);
        /* Scripts ask "is the index current?" with the exit status; no
         * daemon is not a lag (the index is what the last writer left). */
        return (f.is_known && !is_current(&f)) || in.n > 0 ? 1 : 0;
}
