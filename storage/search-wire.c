/* The search socket's frames (search-wire.h): writing and parsing them,
 * and moving them through a file descriptor. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "search-wire.h"
#include "util.h"

/* A string's length field when the string is NULL. */
#define WIRE_NULL UINT32_MAX

/* A frame under construction: its bytes go after f->len; start is where
 * its length field is, so that a frame that fails leaves f as it was. */
struct frame_builder {
        struct search_frames *f;
        size_t start;
        int error;
};

static void put(struct frame_builder *b, const void *p, size_t n) {
        if (b->error)
                return;
        if (b->f->len + n - b->start > SEARCH_WIRE_MAX_FRAME + sizeof(uint32_t)) {
                b->error = -E2BIG;
                return;
        }
        if (GREEDY_REALLOC(b->f->data, b->f->cap, b->f->len + n, 4096) < 0) {
                b->error = -ENOMEM;
                return;
        }
        memcpy(b->f->data + b->f->len, p, n);
        b->f->len += n;
}

static void put_u8(struct frame_builder *b, uint8_t v) {
        put(b, &v, sizeof v);
}

static void put_u32(struct frame_builder *b, uint32_t v) {
        put(b, &v, sizeof v);
}

static void put_u64(struct frame_builder *b, uint64_t v) {
        put(b, &v, sizeof v);
}

static void put_bytes(struct frame_builder *b, const char *s, size_t n) {
        if (n >= WIRE_NULL) {
                b->error = b->error ? b->error : -E2BIG;
                return;
        }
        put_u32(b, (uint32_t) n);
        put(b, s, n);
}

/* The terminating NUL travels too, so that a parsed string can point into
 * the frame. */
static void put_string(struct frame_builder *b, const char *s) {
        if (!s) {
                put_u32(b, WIRE_NULL);
                return;
        }
        size_t n = strlen(s);
        put_bytes(b, s, n);
        put_u8(b, 0);
}

static struct frame_builder frame_begin(struct search_frames *f, enum search_frame_type type) {
        struct frame_builder b = { .f = f, .start = f->len };
        put_u32(&b, 0);
        put_u8(&b, (uint8_t) type);
        return b;
}

static int frame_end(struct frame_builder *b) {
        if (b->error) {
                b->f->len = b->start;
                return b->error;
        }
        uint32_t body_len = (uint32_t) (b->f->len - b->start - sizeof body_len);
        memcpy(b->f->data + b->start, &body_len, sizeof body_len);
        return 0;
}

int search_frame_request(struct search_frames *f, uint64_t db_dev, uint64_t db_ino,
                         const struct search_query *q) {
        struct frame_builder b = frame_begin(f, SEARCH_FRAME_REQUEST);

        put_u32(&b, SEARCH_WIRE_VERSION);
        put_u64(&b, db_dev);
        put_u64(&b, db_ino);
        put_string(&b, q->match);
        put_string(&b, q->namespace);
        put_string(&b, q->path_glob);
        put_string(&b, q->heading);
        put_string(&b, q->highlight_open);
        put_string(&b, q->highlight_close);
        put_u32(&b, q->limit);
        put_u32(&b, q->offset);
        put_u8(&b, q->skip_snippet);
        put_u8(&b, q->want_match_position);
        if (q->n_tags > SEARCH_WIRE_MAX_TAGS)
                b.error = -E2BIG;
        put_u32(&b, (uint32_t) q->n_tags);
        for (size_t i = 0; i < q->n_tags && !b.error; i++)
                put_string(&b, q->tags[i]);
        return frame_end(&b);
}

int search_frame_hit(struct search_frames *f, const struct search_hit *h) {
        struct frame_builder b = frame_begin(f, SEARCH_FRAME_HIT);
        uint64_t score_bits;

        put_string(&b, h->id);
        put_string(&b, h->namespace);
        put_string(&b, h->source_file);
        put_string(&b, h->heading_hierarchy);
        put_string(&b, h->heading_path);
        put_string(&b, h->snippet);
        put_u64(&b, (uint64_t) h->start_line);
        put_u64(&b, (uint64_t) h->end_line);
        memcpy(&score_bits, &h->score, sizeof score_bits);
        put_u64(&b, score_bits);
        put_u8(&b, h->has_file_row);
        put_u64(&b, (uint64_t) h->file_size);
        put_u64(&b, (uint64_t) h->file_mtime_ns);
        put_u64(&b, (uint64_t) h->match_line);
        put_u64(&b, (uint64_t) h->match_column);
        put_bytes(&b, h->match_text ? h->match_text : "", h->match_text ? h->match_text_len : 0);
        return frame_end(&b);
}

int search_frame_end(struct search_frames *f, int status, const char *message) {
        struct frame_builder b = frame_begin(f, SEARCH_FRAME_END);

        put_u32(&b, (uint32_t) status);
        put_string(&b, message);
        return frame_end(&b);
}

void search_frames_done(struct search_frames *f) {
        free(f->data);
        *f = (struct search_frames){ 0 };
}

/* A frame being parsed; bad once anything did not fit. */
struct frame_parser {
        const char *p;
        size_t left;
        bool is_bad;
};

static const char *take(struct frame_parser *r, size_t n) {
        if (r->is_bad || n > r->left) {
                r->is_bad = true;
                return NULL;
        }
        const char *p = r->p;
        r->p += n;
        r->left -= n;
        return p;
}

static uint8_t get_u8(struct frame_parser *r) {
        const char *p = take(r, 1);
        return p ? (uint8_t) *p : 0;
}

static uint32_t get_u32(struct frame_parser *r) {
        uint32_t v = 0;
        const char *p = take(r, sizeof v);
        if (p)
                memcpy(&v, p, sizeof v);
        return v;
}

static uint64_t get_u64(struct frame_parser *r) {
        uint64_t v = 0;
        const char *p = take(r, sizeof v);
        if (p)
                memcpy(&v, p, sizeof v);
        return v;
}

static const char *get_bytes(struct frame_parser *r, size_t *ret_len) {
        uint32_t n = get_u32(r);
        *ret_len = 0;
        if (n == WIRE_NULL) {
                r->is_bad = true;
                return NULL;
        }
        const char *p = take(r, n);
        if (p)
                *ret_len = n;
        return p;
}

/* NULL for a NULL string; a string with a NUL inside, or none at its
 * end, makes the frame bad. */
static const char *get_string(struct frame_parser *r) {
        uint32_t n = get_u32(r);
        if (n == WIRE_NULL || r->is_bad)
                return NULL;
        const char *p = take(r, (size_t) n + 1);
        if (!p)
                return NULL;
        if (p[n] != '\0' || memchr(p, '\0', n)) {
                r->is_bad = true;
                return NULL;
        }
        return p;
}

static struct frame_parser parser_begin(const char *body, size_t len, enum search_frame_type type) {
        struct frame_parser r = { .p = body, .left = len };
        if (get_u8(&r) != type)
                r.is_bad = true;
        return r;
}

/* Well formed: nothing was missing and nothing is left over. */
static int parser_end(const struct frame_parser *r) {
        return r->is_bad || r->left > 0 ? -EPROTO : 0;
}

int search_parse_request(const char *body, size_t len, struct search_request *ret) {
        struct frame_parser r = parser_begin(body, len, SEARCH_FRAME_REQUEST);
        struct search_request req = { .version = get_u32(&r) };

        if (r.is_bad)
                return -EPROTO;
        if (req.version != SEARCH_WIRE_VERSION) {
                *ret = req;
                return -EPROTONOSUPPORT;
        }
        req.db_dev = get_u64(&r);
        req.db_ino = get_u64(&r);
        struct search_query *q = &req.query;
        q->match = get_string(&r);
        q->namespace = get_string(&r);
        q->path_glob = get_string(&r);
        q->heading = get_string(&r);
        q->highlight_open = get_string(&r);
        q->highlight_close = get_string(&r);
        q->limit = get_u32(&r);
        q->offset = get_u32(&r);
        q->skip_snippet = get_u8(&r) != 0;
        q->want_match_position = get_u8(&r) != 0;
        uint32_t n_tags = get_u32(&r);
        if (n_tags > SEARCH_WIRE_MAX_TAGS)
                return -EPROTO;
        for (uint32_t i = 0; i < n_tags; i++) {
                req.tags[i] = get_string(&r);
                if (!req.tags[i])
                        return -EPROTO;
        }
        q->tags = n_tags ? req.tags : NULL;
        q->n_tags = n_tags;
        /* Only the filters may be absent. */
        if (!q->match || (!q->highlight_open != !q->highlight_close))
                return -EPROTO;
        int r_end = parser_end(&r);
        if (r_end < 0)
                return r_end;
        *ret = req;
        /* The copy's tags must point into its own array. */
        ret->query.tags = n_tags ? ret->tags : NULL;
        return 0;
}

int search_parse_hit(const char *body, size_t len, struct search_hit *ret) {
        struct frame_parser r = parser_begin(body, len, SEARCH_FRAME_HIT);
        struct search_hit h = { 0 };
        uint64_t score_bits;

        h.id = get_string(&r);
        h.namespace = get_string(&r);
        h.source_file = get_string(&r);
        h.heading_hierarchy = get_string(&r);
        h.heading_path = get_string(&r);
        h.snippet = get_string(&r);
        h.start_line = (int64_t) get_u64(&r);
        h.end_line = (int64_t) get_u64(&r);
        score_bits = get_u64(&r);
        memcpy(&h.score, &score_bits, sizeof h.score);
        h.has_file_row = get_u8(&r) != 0;
        h.file_size = (int64_t) get_u64(&r);
        h.file_mtime_ns = (int64_t) get_u64(&r);
        h.match_line = (int64_t) get_u64(&r);
        h.match_column = (int64_t) get_u64(&r);
        h.match_text = get_bytes(&r, &h.match_text_len);
        if (parser_end(&r) < 0 || !h.id || !h.namespace || !h.source_file || !h.heading_hierarchy ||
            !h.heading_path || !h.snippet)
                return -EPROTO;
        *ret = h;
        return 0;
}

int search_parse_end(const char *body, size_t len, int *ret_status, const char **ret_message) {
        struct frame_parser r = parser_begin(body, len, SEARCH_FRAME_END);
        int status = (int) get_u32(&r);
        const char *message = get_string(&r);

        if (parser_end(&r) < 0 || status > 0)
                return -EPROTO;
        *ret_status = status;
        *ret_message = message;
        return 0;
}

/* Read exactly n bytes; 0 at a clean end of file before the first byte,
 * -EAGAIN once deadline_usec (CLOCK_MONOTONIC; 0: none) has passed,
 * -ECANCELED once stop_fd (-1: none) is readable. */
static ssize_t read_full(int fd, char *buf, size_t n, uint64_t deadline_usec, int stop_fd) {
        size_t done = 0;
        while (done < n) {
                if (deadline_usec || stop_fd >= 0) {
                        uint64_t now = now_monotonic_usec();
                        if (deadline_usec && now >= deadline_usec)
                                return -EAGAIN;
                        struct pollfd p[] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
                        int k = poll(p, stop_fd >= 0 ? 2 : 1,
                                     deadline_usec ? (int) ((deadline_usec - now + 999) / 1000) : -1);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return -errno;
                        if (k == 0)
                                return -EAGAIN;
                        if (stop_fd >= 0 && p[1].revents)
                                return -ECANCELED;
                }
                ssize_t k = read(fd, buf + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                if (k == 0)
                        return done == 0 ? 0 : -EPROTO;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

ssize_t search_read_frame(int fd, char **body, size_t *cap, uint64_t deadline_usec, int stop_fd) {
        uint32_t len;
        ssize_t k = read_full(fd, (char *) &len, sizeof len, deadline_usec, stop_fd);
        if (k <= 0)
                return k;
        if (len == 0 || len > SEARCH_WIRE_MAX_FRAME)
                return -EPROTO;
        if (GREEDY_REALLOC(*body, *cap, len, 4096) < 0)
                return -ENOMEM;
        k = read_full(fd, *body, len, deadline_usec, stop_fd);
        if (k == 0)
                return -EPROTO;
        return k < 0 ? k : (ssize_t) len;
}

int search_write_frames(int fd, const struct search_frames *f) {
        size_t done = 0;
        while (done < f->len) {
                ssize_t k = send(fd, f->data + done, f->len - done, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                done += (size_t) k;
        }
        return 0;
}

int search_socket_path(const char *db_realpath, char *buf, size_t size) {
        const char *runtime = getenv("XDG_RUNTIME_DIR");
        /* Relative would depend on each process's working directory. */
        if (!runtime || runtime[0] != '/')
                return -ENOENT;
        size_t max = sizeof(((struct sockaddr_un *) NULL)->sun_path);
        int n = snprintf(buf, size, "%s/quire/search-%016llx", runtime,
                         (unsigned long long) fnv1a64(db_realpath, strlen(db_realpath)));
        if (n < 0 || (size_t) n >= size || (size_t) n >= max)
                return -ENAMETOOLONG;
        return 0;
}
