/* The chunker's invariants (helpers.h) over every file of a real notes tree,
 * the tldr-pages corpus ($QUIRE_CORPUS, else argv[1]), and derive.h's on
 * every chunk (links on the chunk's lines, no empty names; the counts of
 * tags, links and CJK chunks and the time are printed). By default the
 * tarball is streamed through xz and each member chunked from memory, which
 * takes about a second; with --unpack it is unpacked into a mkdtemp
 * directory and every file goes through document_load, which costs what
 * creating 38k files costs (seconds to tens of seconds on a busy disk).
 * Exits 77 (skipped) when the tarball is not there. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "derive.h"
#include "document.h"
#include "helpers.h"
#include "macro.h"
#include "util.h"

static const char *tarball;
static char tmpdir[] = "/tmp/quire-chunker-corpus-XXXXXX";
static bool have_tmpdir;

struct totals {
        size_t n_files, n_bytes, n_chunks, n_oversized, n_bad_files, n_failed;
        /* derive.h over every chunk */
        size_t n_tags, n_front_matter_tags, n_links[3], n_cjk_chunks, n_bad_derived;
        uint64_t derive_usec, cjk_usec;
};
static struct totals totals;

/* Tags and links of one chunk, and its CJK text, with what must hold
 * whatever the input: links on the chunk's lines, names that are text. */
static void account_derived(const char *name, const struct chunk *c) {
        struct derived d;
        _cleanup_free_ char *indexed = NULL;

        uint64_t t = now_monotonic_usec();
        int r = derive_chunk(c->content, c->content_len, c->start_line, &d);
        totals.derive_usec += now_monotonic_usec() - t;
        if (r < 0) {
                fprintf(stderr, "Failed to derive %s:%u: %s\n", name, c->start_line, strerror(-r));
                totals.n_failed++;
                return;
        }
        for (size_t i = 0; i < d.n_tags; i++) {
                totals.n_tags++;
                totals.n_front_matter_tags += d.tags[i].is_front_matter;
                if (d.tags[i].name[0] == '\0' || (d.tags[i].is_front_matter && c->start_line != 1))
                        totals.n_bad_derived++;
        }
        for (size_t i = 0; i < d.n_links; i++) {
                const struct derived_link *l = &d.links[i];
                totals.n_links[l->kind]++;
                if (l->line < c->start_line || l->line > c->end_line || !l->target ||
                    (l->fragment && l->fragment[0] == '\0')) {
                        fprintf(stderr, "%s:%u: bad link %s\n", name, l->line, l->target ? l->target : "(null)");
                        totals.n_bad_derived++;
                }
        }
        derived_done(&d);

        t = now_monotonic_usec();
        bool has_cjk = cjk_text_has_cjk(c->content, c->content_len);
        if (has_cjk) {
                totals.n_cjk_chunks++;
                if (cjk_index_text(c->content, c->content_len, &indexed) < 0)
                        totals.n_failed++;
        }
        totals.cjk_usec += now_monotonic_usec() - t;
}

static void account(const char *name, const struct document *doc) {
        if (check_chunk_invariants(doc, name, stderr) > 0)
                totals.n_bad_files++;
        totals.n_files++;
        totals.n_bytes += (size_t) doc->size;
        totals.n_chunks += doc->chunks.n_items;
        for (size_t i = 0; i < doc->chunks.n_items; i++) {
                totals.n_oversized += doc->chunks.items[i].content_len > CHUNKER_MAX_BYTES_DEFAULT;
                account_derived(name, &doc->chunks.items[i]);
        }
}

static void report(uint64_t usec) {
        /* For the record, not asserted: timings belong to bench/. */
        printf("  %zu files, %.1f MB, %zu chunks (%zu over max), %.3f s\n", totals.n_files,
               totals.n_bytes / 1e6, totals.n_chunks, totals.n_oversized, usec / 1e6);
        printf("  derived: %zu tags (%zu front matter), links %zu wiki, %zu embed, %zu markdown;"
               " %.3f s, %.0f ns/chunk\n",
               totals.n_tags, totals.n_front_matter_tags, totals.n_links[LINK_WIKI], totals.n_links[LINK_EMBED],
               totals.n_links[LINK_MARKDOWN], totals.derive_usec / 1e6,
               totals.n_chunks ? totals.derive_usec * 1e3 / (double) totals.n_chunks : 0.0);
        printf("  CJK: %zu chunks; has_cjk over all + index_text of those %.3f s\n", totals.n_cjk_chunks,
               totals.cjk_usec / 1e6);
        CHECK(totals.n_files > 1000);
        CHECK_INT_EQ(totals.n_failed, 0);
        CHECK_INT_EQ(totals.n_bad_files, 0);
        CHECK_INT_EQ(totals.n_bad_derived, 0);
        CHECK(totals.n_chunks >= totals.n_files);
}

/* Run argv with stdout to a pipe; returns the read end. */
static int spawn_reader(char *const argv[], pid_t *ret_pid) {
        int fds[2];

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return -errno;
        }
        if (pid == 0) {
                if (dup2(fds[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(fds[1]);
        *ret_pid = pid;
        return fds[0];
}

static int wait_ok(pid_t pid) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int run_program(char *const argv[]) {
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        return wait_ok(pid);
}

static int read_exactly(int fd, void *buf, size_t n) {
        size_t got = 0;

        while (got < n) {
                ssize_t r = read(fd, (char *) buf + got, n - got);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -EPIPE;
                got += (size_t) r;
        }
        return 0;
}

static bool is_markdown(const char *name) {
        size_t n = strlen(name);
        return n >= 3 && strcmp(name + n - 3, ".md") == 0;
}

/* The tarball is GNU tar: 512-byte headers, octal sizes, 'L' entries for
 * names over 100 bytes. Only regular files are chunked. */
static void test_every_corpus_file_chunks_with_the_invariants(void) {
        char *xz_argv[] = { (char *) "xz", (char *) "-dc", (char *) tarball, NULL };
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -1;
        size_t cap = 0;
        char long_name[4096] = "";
        uint64_t usec = 0;
        pid_t pid = -1;

        if (access(tarball, R_OK) < 0)
                SKIP("corpus %s not readable: %s", tarball, strerror(errno));
        fd = spawn_reader(xz_argv, &pid);
        REQUIRE(fd >= 0);

        for (;;) {
                unsigned char header[512];
                char name[257];

                REQUIRE_INT_EQ(read_exactly(fd, header, sizeof header), 0);
                if (header[0] == '\0')
                        break; /* the zero blocks at the end */

                size_t size = strtoull((const char *) header + 124, NULL, 8);
                size_t padded = (size + 511) / 512 * 512;
                if (padded + 1 > cap) {
                        cap = padded + 1;
                        free(data);
                        data = malloc(cap);
                        REQUIRE(data);
                }
                REQUIRE_INT_EQ(read_exactly(fd, data, padded), 0);

                char type = (char) header[156];
                if (type == 'L') {
                        snprintf(long_name, sizeof long_name, "%.*s", (int) size, data);
                        continue;
                }
                snprintf(name, sizeof name, "%.100s", (const char *) header);
                const char *path = long_name[0] ? long_name : name;

                if ((type == '0' || type == '\0') && is_markdown(path)) {
                        struct document doc;
                        uint64_t t = now_monotonic_usec();
                        int r = document_parse(data, size, NULL, &doc);
                        usec += now_monotonic_usec() - t;
                        if (r < 0) {
                                fprintf(stderr, "Failed to chunk %s: %s\n", path, strerror(-r));
                                totals.n_failed++;
                        } else {
                                account(path, &doc);
                                document_done(&doc);
                        }
                }
                long_name[0] = '\0';
        }
        /* Drain what follows the end marker, so xz exits cleanly. */
        while (read(fd, data, cap) > 0)
                ;
        CHECK_INT_EQ(wait_ok(pid), 0);
        report(usec);
}

static int remove_cb(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st, (void) type, (void) ftw;
        return remove(path) < 0 ? -errno : 0;
}

static int load_cb(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        struct document doc;
        int r;

        (void) st, (void) ftw;
        if (type != FTW_F || !is_markdown(path))
                return 0;
        r = document_load(AT_FDCWD, path, NULL, &doc);
        if (r < 0) {
                fprintf(stderr, "Failed to load %s: %s\n", path, strerror(-r));
                totals.n_failed++;
                return 0;
        }
        account(path, &doc);
        document_done(&doc);
        return 0;
}

static void test_every_unpacked_corpus_file_loads_with_the_invariants(void) {
        char *tar_argv[] = { (char *) "tar", (char *) "-xJf", (char *) tarball, (char *) "-C", tmpdir, NULL };

        if (access(tarball, R_OK) < 0)
                SKIP("corpus %s not readable: %s", tarball, strerror(errno));
        REQUIRE(mkdtemp(tmpdir));
        have_tmpdir = true;
        REQUIRE_INT_EQ(run_program(tar_argv), 0);

        uint64_t t = now_monotonic_usec();
        REQUIRE_INT_EQ(nftw(tmpdir, load_cb, 32, FTW_PHYS), 0);
        report(now_monotonic_usec() - t);
}

int main(int argc, char **argv) {
        bool unpack = argc > 1 && strcmp(argv[1], "--unpack") == 0;

        if (unpack)
                argc--, argv++;
        /* The environment wins, so a run can point at another corpus. */
        tarball = getenv("QUIRE_CORPUS");
        if (!tarball && argc > 1)
                tarball = argv[1];
        if (!tarball) {
                printf("no corpus given ($QUIRE_CORPUS or an argument)\n");
                return 77;
        }

        if (unpack)
                RUN(test_every_unpacked_corpus_file_loads_with_the_invariants);
        else
                RUN(test_every_corpus_file_chunks_with_the_invariants);

        if (have_tmpdir)
                nftw(tmpdir, remove_cb, 32, FTW_DEPTH | FTW_PHYS);
        return check_summary();
}
