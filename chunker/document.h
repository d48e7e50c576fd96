/* One Markdown file read from disk: its identity (size, mtime, raw hash) and
 * its chunks. This is the unit the indexer hands to storage. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "chunker.h"

#define DOCUMENT_MAX_BYTES_DEFAULT (16u * 1024 * 1024)

/* The largest size cap: a note larger than this is not a note, and the
 * cap bounds what one read of a file may cost (its text is held several
 * times over while it is chunked and written). */
#define DOCUMENT_MAX_BYTES_LIMIT (UINT64_C(1) << 30)

/* A size cap as a user writes one (quire index --max-file-size, quired's
 * max_file_size): bytes, or a K, M or G suffix (powers of 1024, either
 * case); 1 byte to DOCUMENT_MAX_BYTES_LIMIT. */
bool document_parse_size(const char *s, uint64_t *ret);

struct document_options {
        struct chunker_options chunker;
        uint64_t max_file_bytes; /* larger files are refused with -EFBIG; 0 = default */
};

struct document {
        int64_t size;     /* from fstat before reading */
        int64_t mtime_ns; /* from fstat before reading */
        /* Also from that fstat: which inode was read and when it last
         * changed, so a writer can tell, under its write lock, that the
         * path still names what was read. ino 0: not read from disk. */
        int64_t ctime_ns;
        uint64_t ino, dev;
        char file_hash[HASH_HEX_LEN]; /* XXH3-128 of the raw bytes */
        char *text;       /* owned: normalized text the chunks point into */
        size_t text_len;
        size_t derived_bytes; /* held by the chunks' derived data (CJK text, tags,
                               * links), for callers that bound their memory */
        struct chunk_list chunks;
};

/* Read path (relative to dirfd, or absolute) without following a final
 * symlink and without blocking on FIFOs. Returns 0, or:
 *   -EMEDIUMTYPE  binary: the file holds a NUL byte
 *   -EAGAIN       it read as binary but changed while being read: read
 *                 it again
 *   -EFBIG        larger than max_file_bytes
 *   -EINVAL       not a regular file (FIFO, socket, device, directory)
 *   -ELOOP        a symlink
 *   other -errno  from open/read (ENOENT, EACCES, EIO, ...)
 * On error nothing needs freeing, and *ret is zeroed but for the identity
 * (size, mtime_ns, ctime_ns, ino, dev) of a file refused once opened
 * (-EMEDIUMTYPE, -EFBIG, -EINVAL from its fstat): a writer dropping its
 * rows can tell, under its write lock, that the refusal still holds. */
int document_load(int dirfd, const char *path, const struct document_options *opts,
                  struct document *ret);

/* The same from memory (tests, fuzzing): size is len, mtime_ns, ctime_ns
 * and ino 0. */
int document_parse(const char *raw, size_t len, const struct document_options *opts,
                   struct document *ret);

void document_done(struct document *doc);
