/* The search socket's frames (storage/search-wire.h): a request and a hit
 * come back field for field as they went in; a frame cut short anywhere,
 * with bytes left over, a string without its NUL or with one inside, or of
 * another type or version is refused; frames move through a socket whole;
 * the socket's path needs an absolute XDG_RUNTIME_DIR that fits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "macro.h"
#include "search-wire.h"
#include "util.h"

/* The body of the first frame in f (after its length field). */
static const char *first_body(const struct search_frames *f, size_t *ret_len) {
        uint32_t len;
        memcpy(&len, f->data, sizeof len);
        *ret_len = len;
        return f->data + sizeof len;
}

static const char *const tags[] = { "work", "project/alpha" };

static const struct search_query full_query = {
        .match = "tar NOT gzip",
        .namespace = "notes",
        .path_glob = "/home/u/notes/[*]dir/*",
        .heading = "Install",
        .tags = tags,
        .n_tags = 2,
        .limit = 10,
        .offset = 20,
        .highlight_open = "\x02",
        .highlight_close = "\x03",
        .skip_snippet = true,
        .want_match_position = true,
};

static void test_request_round_trip(void) {
        struct search_frames f = { 0 };
        struct search_request req;
        size_t len;

        REQUIRE(search_frame_request(&f, 0xfe00, 0x123456789abcULL, &full_query) == 0);
        const char *body = first_body(&f, &len);
        CHECK_INT_EQ(len + sizeof(uint32_t), f.len);
        REQUIRE(search_parse_request(body, len, &req) == 0);
        CHECK_INT_EQ(req.version, SEARCH_WIRE_VERSION);
        CHECK(req.db_dev == 0xfe00 && req.db_ino == 0x123456789abcULL);
        CHECK_STR_EQ(req.query.match, full_query.match);
        CHECK_STR_EQ(req.query.namespace, "notes");
        CHECK_STR_EQ(req.query.path_glob, full_query.path_glob);
        CHECK_STR_EQ(req.query.heading, "Install");
        CHECK_STR_EQ(req.query.highlight_open, "\x02");
        CHECK_STR_EQ(req.query.highlight_close, "\x03");
        CHECK_INT_EQ(req.query.limit, 10);
        CHECK_INT_EQ(req.query.offset, 20);
        CHECK(req.query.skip_snippet && req.query.want_match_position);
        REQUIRE(req.query.n_tags == 2 && req.query.tags == req.tags);
        CHECK_STR_EQ(req.query.tags[0], "work");
        CHECK_STR_EQ(req.query.tags[1], "project/alpha");

        /* The filters left out stay NULL, not "". */
        struct search_query bare = { .match = "word" };
        f.len = 0;
        REQUIRE(search_frame_request(&f, 1, 2, &bare) == 0);
        body = first_body(&f, &len);
        REQUIRE(search_parse_request(body, len, &req) == 0);
        CHECK_STR_EQ(req.query.match, "word");
        CHECK(!req.query.namespace && !req.query.path_glob && !req.query.heading && !req.query.tags);
        CHECK(!req.query.highlight_open && !req.query.highlight_close);
        CHECK(!req.query.skip_snippet && !req.query.want_match_position);
        search_frames_done(&f);
}

static const struct search_hit full_hit = {
        .id = "0123456789abcdef0123456789abcdef",
        .namespace = "default",
        .source_file = "/n/dir with space/ü.md",
        .heading_hierarchy = "[\"A\",\"B\"]",
        .heading_path = "A > B",
        .snippet = "some \x02word\x03 here",
        .start_line = 3,
        .end_line = 9000000000LL,
        .score = -0.125,
        .has_file_row = true,
        .file_size = 4096,
        .file_mtime_ns = 1700000000123456789LL,
        .match_line = 5,
        .match_column = 17,
        .match_text = "a line\0with a NUL",
        .match_text_len = 17,
};

static void test_hit_round_trip(void) {
        struct search_frames f = { 0 };
        struct search_hit h;
        size_t len;

        REQUIRE(search_frame_hit(&f, &full_hit) == 0);
        const char *body = first_body(&f, &len);
        REQUIRE(search_parse_hit(body, len, &h) == 0);
        CHECK_STR_EQ(h.id, full_hit.id);
        CHECK_STR_EQ(h.namespace, "default");
        CHECK_STR_EQ(h.source_file, full_hit.source_file);
        CHECK_STR_EQ(h.heading_hierarchy, full_hit.heading_hierarchy);
        CHECK_STR_EQ(h.heading_path, "A > B");
        CHECK_STR_EQ(h.snippet, full_hit.snippet);
        CHECK_INT_EQ(h.start_line, 3);
        CHECK_INT_EQ(h.end_line, 9000000000LL);
        CHECK(h.score == -0.125);
        CHECK(h.has_file_row);
        CHECK_INT_EQ(h.file_size, 4096);
        CHECK_INT_EQ(h.file_mtime_ns, 1700000000123456789LL);
        CHECK_INT_EQ(h.match_line, 5);
        CHECK_INT_EQ(h.match_column, 17);
        CHECK_MEM_EQ(h.match_text, h.match_text_len, full_hit.match_text, full_hit.match_text_len);

        /* A hit of a search without match positions: no text at all. */
        struct search_hit no_text = full_hit;
        no_text.match_text = NULL;
        no_text.match_text_len = 0;
        f.len = 0;
        REQUIRE(search_frame_hit(&f, &no_text) == 0);
        body = first_body(&f, &len);
        REQUIRE(search_parse_hit(body, len, &h) == 0);
        CHECK_INT_EQ(h.match_text_len, 0);

        /* The end frame: a status and the user's message, or none. */
        const char *message = NULL;
        int status = 1;
        f.len = 0;
        REQUIRE(search_frame_end(&f, -EINVAL, "Invalid search query 'a NOT': fts5: syntax error") == 0);
        body = first_body(&f, &len);
        REQUIRE(search_parse_end(body, len, &status, &message) == 0);
        CHECK_INT_EQ(status, -EINVAL);
        CHECK_STR_EQ(message, "Invalid search query 'a NOT': fts5: syntax error");
        f.len = 0;
        REQUIRE(search_frame_end(&f, 0, NULL) == 0);
        body = first_body(&f, &len);
        REQUIRE(search_parse_end(body, len, &status, &message) == 0);
        CHECK(status == 0 && message == NULL);
        search_frames_done(&f);
}

/* Every prefix of a frame, and the frame with a byte more, is refused;
 * so is a frame parsed as another type. */
static void test_cut_and_padded_frames_are_refused(void) {
        struct search_frames f = { 0 };
        struct search_request req;
        struct search_hit h;
        size_t len;

        REQUIRE(search_frame_request(&f, 1, 2, &full_query) == 0);
        const char *body = first_body(&f, &len);
        for (size_t n = 0; n < len; n++)
                if (search_parse_request(body, n, &req) != -EPROTO) {
                        check_fail(__FILE__, __LINE__, __func__, "a request cut short was taken");
                        fprintf(stderr, "    at %zu of %zu bytes\n", n, len);
                        break;
                }
        char *padded = malloc(len + 1);
        REQUIRE(padded);
        memcpy(padded, body, len);
        padded[len] = 'x';
        CHECK_INT_EQ(search_parse_request(padded, len + 1, &req), -EPROTO);
        CHECK_INT_EQ(search_parse_hit(body, len, &h), -EPROTO);
        free(padded);

        f.len = 0;
        REQUIRE(search_frame_hit(&f, &full_hit) == 0);
        body = first_body(&f, &len);
        for (size_t n = 0; n < len; n++)
                if (search_parse_hit(body, n, &h) != -EPROTO) {
                        check_fail(__FILE__, __LINE__, __func__, "a hit cut short was taken");
                        fprintf(stderr, "    at %zu of %zu bytes\n", n, len);
                        break;
                }
        CHECK_INT_EQ(search_parse_request(body, len, &req), -EPROTO);
        search_frames_done(&f);
}

/* The strings of a frame end in their NUL and hold no other; a request
 * names its version first, and one of another version is refused as such. */
static void test_bad_strings_and_versions_are_refused(void) {
        struct search_frames f = { 0 };
        struct search_request req;
        size_t len;

        REQUIRE(search_frame_request(&f, 1, 2, &(struct search_query){ .match = "abc" }) == 0);
        char *body = (char *) first_body(&f, &len);
        /* type, version, dev, ino, then match: length 3, "abc", NUL. */
        size_t match_at = 1 + 4 + 8 + 8 + 4;
        REQUIRE(memcmp(body + match_at, "abc", 4) == 0);
        body[match_at + 1] = '\0';
        CHECK_INT_EQ(search_parse_request(body, len, &req), -EPROTO);
        body[match_at + 1] = 'b';
        body[match_at + 3] = 'x';
        CHECK_INT_EQ(search_parse_request(body, len, &req), -EPROTO);
        body[match_at + 3] = '\0';
        REQUIRE(search_parse_request(body, len, &req) == 0);

        uint32_t version = SEARCH_WIRE_VERSION + 1;
        memcpy(body + 1, &version, sizeof version);
        CHECK_INT_EQ(search_parse_request(body, len, &req), -EPROTONOSUPPORT);
        CHECK_INT_EQ(req.version, SEARCH_WIRE_VERSION + 1);

        /* More tags than a request may carry are not written. */
        const char *many[SEARCH_WIRE_MAX_TAGS + 1];
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = "t";
        f.len = 0;
        CHECK_INT_EQ(search_frame_request(&f, 1, 2,
                                          &(struct search_query){ .match = "a", .tags = many,
                                                                  .n_tags = ELEMENTSOF(many) }),
                     -E2BIG);
        CHECK_INT_EQ(f.len, 0);
        search_frames_done(&f);
}

/* Frames through a socket pair: several in one write come out one by one,
 * the end of the stream is 0, a stream that stops inside a frame and a
 * length over the limit are -EPROTO. */
static void test_frames_through_a_socket(void) {
        struct search_frames f = { 0 };
        char *body = NULL;
        size_t cap = 0;
        int sv[2];

        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        REQUIRE(search_frame_hit(&f, &full_hit) == 0);
        size_t hit_frame_len = f.len;
        REQUIRE(search_frame_end(&f, 0, NULL) == 0);
        REQUIRE(search_write_frames(sv[0], &f) == 0);
        ssize_t n = search_read_frame(sv[1], &body, &cap, 0, -1);
        CHECK_INT_EQ(n, hit_frame_len - sizeof(uint32_t));
        CHECK(n > 0 && body[0] == SEARCH_FRAME_HIT);
        n = search_read_frame(sv[1], &body, &cap, 0, -1);
        CHECK(n > 0 && body[0] == SEARCH_FRAME_END);

        /* Half a frame, then the writer goes. */
        REQUIRE(write(sv[0], f.data, hit_frame_len / 2) == (ssize_t) (hit_frame_len / 2));
        uint32_t too_long = SEARCH_WIRE_MAX_FRAME + 1;
        int pair2[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, pair2) == 0);
        REQUIRE(write(pair2[0], &too_long, sizeof too_long) == sizeof too_long);
        close(sv[0]);
        CHECK_INT_EQ(search_read_frame(sv[1], &body, &cap, 0, -1), -EPROTO);
        CHECK_INT_EQ(search_read_frame(pair2[1], &body, &cap, 0, -1), -EPROTO);
        close(pair2[0]);
        close(pair2[1]);

        /* Nothing at all: the end of the stream. */
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, pair2) == 0);
        close(pair2[0]);
        CHECK_INT_EQ(search_read_frame(pair2[1], &body, &cap, 0, -1), 0);
        close(pair2[1]);
        close(sv[1]);
        free(body);
        search_frames_done(&f);
}

/* A deadline bounds the whole frame: a peer that sent part of one and
 * then nothing, or sends nothing, gets -EAGAIN once it has passed, while
 * a frame that is all there is read whatever the deadline. */
static void test_deadline_bounds_the_frame(void) {
        struct search_frames f = { 0 };
        char *body = NULL;
        size_t cap = 0;
        int sv[2];

        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        REQUIRE(search_frame_end(&f, 0, NULL) == 0);
        REQUIRE(search_write_frames(sv[0], &f) == 0);
        CHECK(search_read_frame(sv[1], &body, &cap, now_monotonic_usec() + 5000000, -1) > 0);
        REQUIRE(write(sv[0], f.data, 2) == 2);
        CHECK_INT_EQ(search_read_frame(sv[1], &body, &cap, now_monotonic_usec() + 50000, -1), -EAGAIN);
        CHECK_INT_EQ(search_read_frame(sv[1], &body, &cap, now_monotonic_usec() + 50000, -1), -EAGAIN);
        /* Passed already: not even a read. */
        REQUIRE(search_write_frames(sv[0], &f) == 0);
        CHECK_INT_EQ(search_read_frame(sv[1], &body, &cap, 1, -1), -EAGAIN);
        close(sv[0]);
        close(sv[1]);
        free(body);
        search_frames_done(&f);
}

/* A stop ends a read that waits for a peer sending nothing (quired
 * stopping waited up to the 5 s deadline for such a client), while a
 * frame there is read as long as no stop has come. */
static void test_stop_ends_the_read(void) {
        struct search_frames f = { 0 };
        char *body = NULL;
        size_t cap = 0;
        int sv[2], stop[2];

        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        REQUIRE(pipe(stop) == 0);
        REQUIRE(search_frame_end(&f, 0, NULL) == 0);
        REQUIRE(search_write_frames(sv[0], &f) == 0);
        CHECK(search_read_frame(sv[1], &body, &cap, 0, stop[0]) > 0);
        REQUIRE(write(stop[1], "x", 1) == 1);
        /* No deadline at all: without the stop this read would block. */
        CHECK_INT_EQ(search_read_frame(sv[1], &body, &cap, 0, stop[0]), -ECANCELED);
        REQUIRE(write(sv[0], f.data, 2) == 2);
        CHECK_INT_EQ(search_read_frame(sv[1], &body, &cap, now_monotonic_usec() + 5000000, stop[0]), -ECANCELED);
        close(stop[0]);
        close(stop[1]);
        close(sv[0]);
        close(sv[1]);
        free(body);
        search_frames_done(&f);
}

static void test_socket_path(void) {
        char path[sizeof(((struct sockaddr_un *) NULL)->sun_path)], other[sizeof path];
        const char *db = "/home/u/.local/share/quire/index.db";

        REQUIRE(unsetenv("XDG_RUNTIME_DIR") == 0);
        CHECK_INT_EQ(search_socket_path(db, path, sizeof path), -ENOENT);
        REQUIRE(setenv("XDG_RUNTIME_DIR", "run/user/1000", 1) == 0);
        CHECK_INT_EQ(search_socket_path(db, path, sizeof path), -ENOENT);
        REQUIRE(setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1) == 0);
        REQUIRE(search_socket_path(db, path, sizeof path) == 0);
        /* FNV-1a of the path, 16 hex digits. */
        char expected[64];
        snprintf(expected, sizeof expected, "/run/user/1000/quire/search-%016llx",
                 (unsigned long long) fnv1a64(db, strlen(db)));
        CHECK_STR_EQ(path, expected);
        REQUIRE(search_socket_path("/home/u/other.db", other, sizeof other) == 0);
        CHECK(strcmp(path, other) != 0);
        char long_dir[200];
        memset(long_dir, 'd', sizeof long_dir - 1);
        long_dir[0] = '/';
        long_dir[sizeof long_dir - 1] = '\0';
        REQUIRE(setenv("XDG_RUNTIME_DIR", long_dir, 1) == 0);
        CHECK_INT_EQ(search_socket_path(db, path, sizeof path), -ENAMETOOLONG);
}

int main(void) {
        RUN(test_request_round_trip);
        RUN(test_hit_round_trip);
        RUN(test_cut_and_padded_frames_are_refused);
        RUN(test_bad_strings_and_versions_are_refused);
        RUN(test_frames_through_a_socket);
        RUN(test_deadline_bounds_the_frame);
        RUN(test_stop_ends_the_read);
        RUN(test_socket_path);
        return check_summary();
}
