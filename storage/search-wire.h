/* How `quire search` asks quired, and quired answers, over a unix socket.
 *
 * A search process that opens the database itself spends most of its time
 * on things other than the query: loading libsqlite3, parsing the schema,
 * compiling statements. quired has all of that done already, so when it
 * runs on the database a search names, the CLI sends it the query and
 * prints the hits it streams back, through the same code that prints hits
 * found in process. Both ends are on one machine and of one user: numbers
 * travel in host byte order.
 *
 * The socket is $XDG_RUNTIME_DIR/quire/search-HASH, HASH that of the
 * database's realpath. A request names the file the client found there
 * (st_dev, st_ino), and quired answers only when its own look at the path
 * finds the same file: after the database was replaced, both follow the
 * path to the new one; a client that sees another file (or a hash that
 * collided) searches in process.
 *
 * A message is a frame: a u32 length, then that many bytes, the first of
 * which says what the frame is. A request is one SEARCH_FRAME_REQUEST; the
 * answer is any number of SEARCH_FRAME_HIT, best first, and one
 * SEARCH_FRAME_END with a status (0 or -errno) and a message for the
 * user when that status is an error. No libsqlite3 here. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "search.h"

#define SEARCH_WIRE_VERSION 1
/* The largest frame either end accepts: a hit holds one chunk's
 * snippet and one line of text, a request a query and a few filters. */
#define SEARCH_WIRE_MAX_FRAME (4u << 20)
#define SEARCH_WIRE_MAX_TAGS 64

enum search_frame_type {
        SEARCH_FRAME_REQUEST = 'Q',
        SEARCH_FRAME_HIT = 'H',
        SEARCH_FRAME_END = 'E',
};

/* Frames being written: a growing buffer. */
struct search_frames {
        char *data;
        size_t len, cap;
};

/* Append one frame. 0, -ENOMEM, or -E2BIG when it would exceed
 * SEARCH_WIRE_MAX_FRAME (the buffer is then as it was). */
int search_frame_request(struct search_frames *f, uint64_t db_dev, uint64_t db_ino,
                         const struct search_query *q);
int search_frame_hit(struct search_frames *f, const struct search_hit *h);
int search_frame_end(struct search_frames *f, int status, const char *message);
void search_frames_done(struct search_frames *f);

/* A request as read: query's strings and tags point into the frame. */
struct search_request {
        uint32_t version;
        uint64_t db_dev, db_ino;
        struct search_query query;
        const char *tags[SEARCH_WIRE_MAX_TAGS];
};

/* Parse the body of a frame (its type byte first) of len bytes; strings
 * point into body. -EPROTO when it is not a well-formed frame of that
 * type; a request of another version parses only as far as
 * ret->version, and returns -EPROTONOSUPPORT. */
int search_parse_request(const char *body, size_t len, struct search_request *ret);
int search_parse_hit(const char *body, size_t len, struct search_hit *ret);
int search_parse_end(const char *body, size_t len, int *ret_status, const char **ret_message);

/* Read one frame from fd into *body (grown as needed, the caller frees):
 * its length, 0 at end of file before a frame starts, -EPROTO for a
 * frame that is too long or cut off, or -errno (-EAGAIN: a receive
 * timeout, or deadline_usec passed). deadline_usec, CLOCK_MONOTONIC in
 * µs (0: none), bounds the whole frame, which a per-read timeout does
 * not: a peer sending a byte now and then keeps each read short. The
 * read ends with -ECANCELED as soon as stop_fd (-1: none) is readable: a
 * daemon stopping does not wait for a client that sends nothing. */
ssize_t search_read_frame(int fd, char **body, size_t *cap, uint64_t deadline_usec, int stop_fd);
/* Write all of f, without SIGPIPE. 0 or -errno. */
int search_write_frames(int fd, const struct search_frames *f);

/* The socket of the database at db_realpath, in buf. -ENOENT when
 * XDG_RUNTIME_DIR is not set or not absolute (no socket then),
 * -ENAMETOOLONG when the path does not fit a sockaddr_un. */
int search_socket_path(const char *db_realpath, char *buf, size_t size);
