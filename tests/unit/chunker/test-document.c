/* document_load against real files in a mkdtemp directory: what it refuses
 * (binary, FIFO, symlink, missing, too big, unreadable) and with which
 * errno, and what it records for a file it reads. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "document.h"
#include "macro.h"

static char tmpdir[] = "/tmp/quire-chunker-document-XXXXXX";
static int dirfd_tmp = -1;

static void write_file(const char *name, const void *data, size_t len) {
        _cleanup_close_ int fd = openat(dirfd_tmp, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, data, len) != (ssize_t) len) {
                perror(name);
                abort();
        }
}

static bool is_zeroed(const struct document *doc) {
        static const struct document zero;
        return memcmp(doc, &zero, sizeof zero) == 0;
}

/* Whether doc holds nothing but, with has_identity, the identity of the
 * file at name (a refusal once it was open: document.h), and none without. */
static bool holds_identity_only(const struct document *doc, const char *name, bool has_identity) {
        struct document rest = *doc;
        struct stat st;

        if (!has_identity)
                return is_zeroed(doc);
        if (fstatat(dirfd_tmp, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || doc->ino == 0 || st.st_ino != doc->ino ||
            st.st_dev != doc->dev || st.st_size != doc->size ||
            doc->mtime_ns != (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec)
                return false;
        rest.size = rest.mtime_ns = rest.ctime_ns = 0;
        rest.ino = rest.dev = 0;
        return is_zeroed(&rest);
}

/* Load name and check it fails with `expected`, leaving *ret zeroed but
 * for the identity of what was refused, with has_identity. */
#define CHECK_LOAD_FAILS(name, opts, expected, has_identity)                  \
        do {                                                                   \
                struct document _doc;                                          \
                memset(&_doc, 0xAA, sizeof _doc);                              \
                CHECK_INT_EQ(document_load(dirfd_tmp, name, opts, &_doc), expected); \
                CHECK(holds_identity_only(&_doc, name, has_identity));         \
        } while (0)

static void test_markdown_file_loads_with_identity_and_chunks(void) {
        static const char text[] = "\xEF\xBB\xBF# Title\r\n\r\nbody\r\n";
        struct document doc;
        struct stat st;
        char hash[HASH_HEX_LEN];

        write_file("note.md", text, sizeof text - 1);
        REQUIRE(fstatat(dirfd_tmp, "note.md", &st, 0) == 0);
        REQUIRE_INT_EQ(document_load(dirfd_tmp, "note.md", NULL, &doc), 0);

        CHECK_INT_EQ(doc.size, sizeof text - 1);
        CHECK_INT_EQ(doc.mtime_ns, (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
        hash_hex(text, sizeof text - 1, hash);
        CHECK_STR_EQ(doc.file_hash, hash); /* of the raw bytes, BOM and \r included */
        CHECK_MEM_EQ(doc.text, doc.text_len, "# Title\n\nbody\n", 14);
        REQUIRE_INT_EQ(doc.chunks.n_items, 1);
        CHECK_INT_EQ(doc.chunks.items[0].start_line, 1);
        CHECK_INT_EQ(doc.chunks.items[0].end_line, 3);
        CHECK_STR_EQ(doc.chunks.items[0].heading_hierarchy, "[\"Title\"]");
        document_done(&doc);
        CHECK(is_zeroed(&doc));
}

static void test_absolute_path_ignores_dirfd(void) {
        char path[sizeof tmpdir + 16];
        struct document doc;

        write_file("abs.md", "text\n", 5);
        snprintf(path, sizeof path, "%s/abs.md", tmpdir);
        REQUIRE_INT_EQ(document_load(-1, path, NULL, &doc), 0);
        CHECK_INT_EQ(doc.chunks.n_items, 1);
        document_done(&doc);
}

static void test_empty_file_has_no_chunks(void) {
        struct document doc;

        write_file("empty.md", "", 0);
        REQUIRE_INT_EQ(document_load(dirfd_tmp, "empty.md", NULL, &doc), 0);
        CHECK_INT_EQ(doc.size, 0);
        CHECK_INT_EQ(doc.chunks.n_items, 0);
        CHECK_STR_EQ(doc.file_hash, "99aa06d3014798d86001c324468d497f");
        document_done(&doc);
}

static void test_nul_byte_is_binary(void) {
        write_file("binary.md", "# Title\n\0\x01\x02", 11);
        CHECK_LOAD_FAILS("binary.md", NULL, -EMEDIUMTYPE, true);
}

static void test_fifo_is_refused_without_blocking(void) {
        REQUIRE(mkfifoat(dirfd_tmp, "fifo.md", 0644) == 0);
        /* Without O_NONBLOCK the open would wait for a writer forever. */
        alarm(10);
        CHECK_LOAD_FAILS("fifo.md", NULL, -EINVAL, true);
        alarm(0);
}

static void test_directory_is_refused(void) {
        REQUIRE(mkdirat(dirfd_tmp, "dir.md", 0755) == 0);
        CHECK_LOAD_FAILS("dir.md", NULL, -EINVAL, true);
}

static void test_socket_is_refused(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        REQUIRE(fd >= 0);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock.md", tmpdir);
        REQUIRE(bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
        CHECK_LOAD_FAILS("sock.md", NULL, -EINVAL, false);
}

static void test_symlink_is_refused(void) {
        write_file("target.md", "text\n", 5);
        REQUIRE(symlinkat("target.md", dirfd_tmp, "link.md") == 0);
        CHECK_LOAD_FAILS("link.md", NULL, -ELOOP, false);
}

static void test_missing_file_is_enoent(void) {
        CHECK_LOAD_FAILS("missing.md", NULL, -ENOENT, false);
}

static void test_file_over_max_is_efbig(void) {
        struct document_options opts = { .max_file_bytes = 10 };
        struct document doc;

        write_file("big.md", "01234567890\n", 12);
        CHECK_LOAD_FAILS("big.md", &opts, -EFBIG, true);

        /* Exactly max is fine. */
        opts.max_file_bytes = 12;
        CHECK_INT_EQ(document_load(dirfd_tmp, "big.md", &opts, &doc), 0);
        document_done(&doc);
}

static void test_growth_past_max_while_reading_is_efbig(void) {
        /* A file that grows after fstat must not slip past the cap. procfs
         * files stand in for one: fstat says 0 bytes, read gives more. */
        struct document_options opts = { .max_file_bytes = 16 };
        struct document doc;
        struct stat st;

        if (stat("/proc/self/maps", &st) < 0 || st.st_size != 0)
                SKIP("no /proc/self/maps with st_size 0 here");
        memset(&doc, 0xAA, sizeof doc);
        CHECK_INT_EQ(document_load(AT_FDCWD, "/proc/self/maps", &opts, &doc), -EFBIG);
        CHECK(is_zeroed(&doc));
}

static void test_growth_under_the_largest_max_is_read(void) {
        /* max + 1 is the buffer's bound: with max = UINT64_MAX (quire index
         * --max-file-size 18446744073709551615) it must not wrap to 0. */
        struct document_options opts = { .max_file_bytes = UINT64_MAX };
        struct document doc;
        struct stat st;

        if (stat("/proc/self/maps", &st) < 0 || st.st_size != 0)
                SKIP("no /proc/self/maps with st_size 0 here");
        CHECK_INT_EQ(document_load(AT_FDCWD, "/proc/self/maps", &opts, &doc), 0);
        CHECK(doc.text_len > 0);
        document_done(&doc);
}

/* As root, CAP_DAC_OVERRIDE reads a mode 000 file anyway: check from a child
 * that dropped to nobody instead, and make sure the directory itself is not
 * what it was refused for by loading a readable file next to it first. */
static int load_as_nobody(const char *name) {
        char path[sizeof tmpdir + 32];
        int status;

        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                struct document doc;
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(100);
                char readable[sizeof tmpdir + 32];
                snprintf(readable, sizeof readable, "%s/public.md", tmpdir);
                if (document_load(AT_FDCWD, readable, NULL, &doc) < 0)
                        _exit(101);
                document_done(&doc);
                _exit(-document_load(AT_FDCWD, path, NULL, &doc));
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? -WEXITSTATUS(status) : -ECHILD;
}

static void test_unreadable_file_is_eacces(void) {
        write_file("public.md", "text\n", 5);
        write_file("secret.md", "text\n", 5);
        REQUIRE(fchmodat(dirfd_tmp, "secret.md", 0, 0) == 0);
        if (geteuid() != 0) {
                CHECK_LOAD_FAILS("secret.md", NULL, -EACCES, false);
                return;
        }

        REQUIRE(chmod(tmpdir, 0755) == 0);
        int r = load_as_nobody("secret.md");
        REQUIRE(chmod(tmpdir, 0700) == 0);
        if (r == -100)
                SKIP("running as root and cannot drop to uid 65534 to see the refusal");
        if (r == -101)
                SKIP("running as root and uid 65534 cannot reach %s", tmpdir);
        CHECK_INT_EQ(r, -EACCES);
}

static void test_parse_from_memory_matches_load(void) {
        static const char text[] = "# A\n\ntext\n";
        struct document a, b;

        write_file("same.md", text, sizeof text - 1);
        REQUIRE_INT_EQ(document_load(dirfd_tmp, "same.md", NULL, &a), 0);
        REQUIRE_INT_EQ(document_parse(text, sizeof text - 1, NULL, &b), 0);
        CHECK_STR_EQ(a.file_hash, b.file_hash);
        CHECK_INT_EQ(b.size, sizeof text - 1);
        CHECK_INT_EQ(b.mtime_ns, 0);
        REQUIRE_INT_EQ(a.chunks.n_items, b.chunks.n_items);
        for (size_t i = 0; i < a.chunks.n_items; i++)
                CHECK_STR_EQ(a.chunks.items[i].content_hash, b.chunks.items[i].content_hash);
        document_done(&a);
        document_done(&b);
}

static void test_parse_refuses_nul_and_oversize(void) {
        struct document_options opts = { .max_file_bytes = 4 };
        struct document doc;

        CHECK_INT_EQ(document_parse("a\0b", 3, NULL, &doc), -EMEDIUMTYPE);
        CHECK(is_zeroed(&doc));
        CHECK_INT_EQ(document_parse("12345", 5, &opts, &doc), -EFBIG);
        CHECK(is_zeroed(&doc));
}

static int remove_tree(const char *dir) {
        /* Everything made here is flat: files, a FIFO, a socket, a symlink
         * and one empty directory. */
        static const char *const names[] = {
                "note.md", "abs.md", "empty.md", "binary.md", "fifo.md", "dir.md", "sock.md",
                "target.md", "link.md", "big.md", "public.md", "secret.md", "same.md",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (unlinkat(dirfd_tmp, names[i], 0) < 0 && errno == EISDIR)
                        unlinkat(dirfd_tmp, names[i], AT_REMOVEDIR);
        return rmdir(dir);
}

int main(void) {
        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }
        dirfd_tmp = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd_tmp < 0) {
                perror(tmpdir);
                return 1;
        }

        RUN(test_markdown_file_loads_with_identity_and_chunks);
        RUN(test_absolute_path_ignores_dirfd);
        RUN(test_empty_file_has_no_chunks);
        RUN(test_nul_byte_is_binary);
        RUN(test_fifo_is_refused_without_blocking);
        RUN(test_directory_is_refused);
        RUN(test_socket_is_refused);
        RUN(test_symlink_is_refused);
        RUN(test_missing_file_is_enoent);
        RUN(test_file_over_max_is_efbig);
        RUN(test_growth_past_max_while_reading_is_efbig);
        RUN(test_growth_under_the_largest_max_is_read);
        RUN(test_unreadable_file_is_eacces);
        RUN(test_parse_from_memory_matches_load);
        RUN(test_parse_refuses_nul_and_oversize);

        if (remove_tree(tmpdir) < 0)
                fprintf(stderr, "Failed to remove %s: %m\n", tmpdir);
        close(dirfd_tmp);
        return check_summary();
}
