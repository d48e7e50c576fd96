/* One Markdown file from disk (or memory) to a struct document: identity,
 * raw hash, normalized text and chunks. The expected refusals (binary, too
 * big, not a regular file) are returned, never logged: the caller names the
 * file in its one log line. */
#include "document.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "text.h"
#include "util.h"

static uint64_t max_file_bytes(const struct document_options *opts) {
        return opts && opts->max_file_bytes ? opts->max_file_bytes : DOCUMENT_MAX_BYTES_DEFAULT;
}

/* Everything after the bytes are in memory; raw is the caller's. */
static int document_fill(const char *raw, size_t len, const struct document_options *opts,
                         struct document *doc) {
        int r;

        hash_hex(raw, len, doc->file_hash);
        if (memchr(raw, '\0', len))
                return -EMEDIUMTYPE;

        r = text_normalize(raw, len, &doc->text, &doc->text_len);
        if (r < 0)
                return r;
        r = chunker_split(doc->text, doc->text_len, opts ? &opts->chunker : NULL, &doc->chunks);
        if (r < 0)
                return r;
        for (size_t i = 0; i < doc->chunks.n_items; i++) {
                const struct chunk *c = &doc->chunks.items[i];
                r = chunk_derive(&doc->chunks.items[i]);
                if (r < 0)
                        return r;
                doc->derived_bytes += (c->cjk_content ? strlen(c->cjk_content) + strlen(c->cjk_heading) : 0) +
                                      c->derived.n_tags * sizeof *c->derived.tags +
                                      c->derived.n_links * sizeof *c->derived.links;
        }
        return 0;
}

/* Read fd to EOF into a new buffer. A file may grow after fstat, so the cap is
 * enforced on what is read, not only on st_size; one spare byte past the
 * expected size tells EOF from growth without a second read in the common
 * case. */
static int read_all(int fd, size_t expected, uint64_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = expected + 1;

        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                if (len == cap) {
                        size_t ncap = cap * 2;
                        /* Not ncap > max + 1: max may be UINT64_MAX. */
                        if (ncap - 1 > max)
                                ncap = (size_t) max + 1;
                        char *p = realloc(buf, ncap);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        cap = ncap;
                }

                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }

        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static bool changed_since(int fd, const struct stat *before) {
        struct stat now;

        if (fstat(fd, &now) < 0)
                return true;
        return now.st_size != before->st_size || now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
               now.st_mtim.tv_nsec != before->st_mtim.tv_nsec || now.st_ctim.tv_sec != before->st_ctim.tv_sec ||
               now.st_ctim.tv_nsec != before->st_ctim.tv_nsec;
}

/* Which inode, as of st: size, times and numbers (struct document). */
static void note_identity(struct document *doc, const struct stat *st) {
        doc->size = st->st_size;
        doc->mtime_ns = timestamp_ns(st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
        doc->ctime_ns = timestamp_ns(st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
        doc->ino = st->st_ino;
        doc->dev = st->st_dev;
}

int document_load(int dirfd, const char *path, const struct document_options *opts,
                  struct document *ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *raw = NULL;
        struct document doc = { .text = NULL };
        uint64_t max = max_file_bytes(opts);
        struct stat st;
        size_t len = 0;
        int r;

        assert(path);
        assert(ret);
        *ret = (struct document) { .text = NULL };

        /* O_NOFOLLOW: a final symlink fails with ELOOP. O_NONBLOCK: opening a
         * FIFO must not wait for a writer (fifo(7)); fstat then refuses it. */
        fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                /* open(2) on a socket fails with ENXIO: not a regular file either. */
                return errno == ENXIO ? -EINVAL : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        note_identity(&doc, &st);
        if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t) st.st_size > max) {
                note_identity(ret, &st);
                return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
        }

        r = read_all(fd, (size_t) st.st_size, max, &raw, &len);
        if (r < 0)
                return r;

        r = document_fill(raw, len, opts, &doc);
        if (r == -EMEDIUMTYPE && changed_since(fd, &st))
                /* A file truncated while we read it can hand us zeroes it
                 * never held (the kernel zeroes the tail of its last page);
                 * the verdict belongs to no version of the file. */
                r = -EAGAIN;
        if (r < 0) {
                document_done(&doc);
                if (r == -EMEDIUMTYPE)
                        note_identity(ret, &st);
                return r;
        }
        *ret = doc;
        return 0;
}

int document_parse(const char *raw, size_t len, const struct document_options *opts,
                   struct document *ret) {
        struct document doc = { .size = (int64_t) len };
        int r;

        assert(raw || len == 0);
        assert(ret);
        *ret = (struct document) { .text = NULL };

        if (len > max_file_bytes(opts))
                return -EFBIG;

        r = document_fill(raw ? raw : "", len, opts, &doc);
        if (r < 0) {
                document_done(&doc);
                return r;
        }
        *ret = doc;
        return 0;
}

void document_done(struct document *doc) {
        if (!doc)
                return;
        chunk_list_free(&doc->chunks);
        free(doc->text);
        *doc = (struct document) { .text = NULL };
}

bool document_parse_size(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        unsigned shift = 0;
        const char *p = s;

        if (*p < '0' || *p > '9')
                return false;
        for (; *p >= '0' && *p <= '9'; p++) {
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > DOCUMENT_MAX_BYTES_LIMIT)
                        return false;
        }
        switch (*p) {
        case 'k': case 'K': shift = 10; p++; break;
        case 'm': case 'M': shift = 20; p++; break;
        case 'g': case 'G': shift = 30; p++; break;
        }
        if (*p || v == 0 || v > (DOCUMENT_MAX_BYTES_LIMIT >> shift))
                return false;
        *ret = v << shift;
        return true;
}
