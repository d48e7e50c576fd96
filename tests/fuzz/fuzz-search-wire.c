/* Fuzz target: any bytes as the body of a search socket frame
 * (storage/search-wire.h), which quired reads from any process that can
 * connect and the CLI from whatever answers on the socket. Each parser
 * gets the bytes; checked on every input: a refusal is -EPROTO (or
 * -EPROTONOSUPPORT for a request of another version), and what a parser
 * takes lies inside the input, each string NUL-terminated there, and
 * comes back the same when written out and parsed again. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "search-wire.h"

static const char *input_start, *input_end;

static bool is_inside(const char *s, size_t n) {
        return s >= input_start && s + n <= input_end;
}

static void check_string(const char *s) {
        if (s)
                FUZZ_CHECK(is_inside(s, strlen(s) + 1), "a parsed string reaches outside the frame");
}

static bool same_string(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The frame f holds one frame: its body. */
static const char *body_of(const struct search_frames *f, size_t *ret_len) {
        uint32_t len;
        memcpy(&len, f->data, sizeof len);
        FUZZ_CHECK(len + sizeof len == f->len, "a frame's length field says %u of %zu bytes", len, f->len);
        *ret_len = len;
        return f->data + sizeof len;
}

static void fuzz_request(const char *data, size_t size) {
        struct search_request req, again;
        int r = search_parse_request(data, size, &req);
        FUZZ_CHECK(r == 0 || r == -EPROTO || r == -EPROTONOSUPPORT, "request: %d", r);
        if (r < 0)
                return;
        const struct search_query *q = &req.query;
        FUZZ_CHECK(q->match, "a request without a query was taken");
        check_string(q->match);
        check_string(q->namespace);
        check_string(q->path_glob);
        check_string(q->heading);
        check_string(q->highlight_open);
        check_string(q->highlight_close);
        FUZZ_CHECK(q->n_tags <= SEARCH_WIRE_MAX_TAGS, "%zu tags", q->n_tags);
        for (size_t i = 0; i < q->n_tags; i++)
                check_string(q->tags[i]);

        struct search_frames f = { 0 };
        size_t len;
        FUZZ_CHECK(search_frame_request(&f, req.db_dev, req.db_ino, q) == 0, "a parsed request cannot be written");
        const char *body = body_of(&f, &len);
        FUZZ_CHECK(search_parse_request(body, len, &again) == 0, "a written request does not parse");
        const struct search_query *a = &again.query;
        FUZZ_CHECK(again.db_dev == req.db_dev && again.db_ino == req.db_ino && a->limit == q->limit &&
                           a->offset == q->offset && a->skip_snippet == q->skip_snippet &&
                           a->want_match_position == q->want_match_position && a->n_tags == q->n_tags &&
                           same_string(a->match, q->match) && same_string(a->namespace, q->namespace) &&
                           same_string(a->path_glob, q->path_glob) && same_string(a->heading, q->heading) &&
                           same_string(a->highlight_open, q->highlight_open) &&
                           same_string(a->highlight_close, q->highlight_close),
                   "a request changed on its way round");
        for (size_t i = 0; i < q->n_tags; i++)
                FUZZ_CHECK(same_string(a->tags[i], q->tags[i]), "tag %zu changed on its way round", i);
        search_frames_done(&f);
}

static void fuzz_hit(const char *data, size_t size) {
        struct search_hit h, again;
        int r = search_parse_hit(data, size, &h);
        FUZZ_CHECK(r == 0 || r == -EPROTO, "hit: %d", r);
        if (r < 0)
                return;
        check_string(h.id);
        check_string(h.namespace);
        check_string(h.source_file);
        check_string(h.heading_hierarchy);
        check_string(h.heading_path);
        check_string(h.snippet);
        FUZZ_CHECK(is_inside(h.match_text, h.match_text_len), "a hit's text reaches outside the frame");

        struct search_frames f = { 0 };
        size_t len;
        FUZZ_CHECK(search_frame_hit(&f, &h) == 0, "a parsed hit cannot be written");
        const char *body = body_of(&f, &len);
        FUZZ_CHECK(search_parse_hit(body, len, &again) == 0, "a written hit does not parse");
        FUZZ_CHECK(same_string(again.id, h.id) && same_string(again.source_file, h.source_file) &&
                           same_string(again.snippet, h.snippet) && again.start_line == h.start_line &&
                           again.end_line == h.end_line && memcmp(&again.score, &h.score, sizeof h.score) == 0 &&
                           again.match_text_len == h.match_text_len &&
                           memcmp(again.match_text, h.match_text, h.match_text_len) == 0,
                   "a hit changed on its way round");
        search_frames_done(&f);
}

static void fuzz_end(const char *data, size_t size) {
        const char *message;
        int status;
        int r = search_parse_end(data, size, &status, &message);
        FUZZ_CHECK(r == 0 || r == -EPROTO, "end: %d", r);
        if (r == 0) {
                FUZZ_CHECK(status <= 0, "an end frame with status %d was taken", status);
                check_string(message);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        input_start = (const char *) data;
        input_end = input_start + size;
        fuzz_request(input_start, size);
        fuzz_hit(input_start, size);
        fuzz_end(input_start, size);
        return 0;
}
