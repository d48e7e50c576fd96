/* Token tapes: the tokens FTS5's unicode61 tokenizer makes of a text,
 * recorded on a reader thread and replayed on the writer's connection.
 *
 * Tokenizing is the largest part of an FTS5 insert that does not need the
 * write lock, and the writer is the one thread a cold index waits for
 * (docs/BENCHMARKS.md). So the readers tokenize what they load with their
 * own unicode61 instance, and the writer's connection gets a tokenizer
 * named "unicode61" that, asked to tokenize a document text it holds a
 * tape for, plays the tape back; anything else (queries, highlights, the
 * old values FTS5 re-tokenizes to delete a row, texts without a tape, or
 * another table's arguments) goes to the real unicode61. A tape is found
 * by the text itself (hash, then byte comparison), so a replay hands
 * FTS5 exactly what unicode61 would have for that text: the schema, the
 * other writers and the index stay exactly as they are. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct document;

/* The FTS5 API of a connection (the FTS5 docs, "Extending FTS5"), or NULL
 * when it has none. */
fts5_api *fts5_api_of(sqlite3 *db);

struct token_tape {
        const char *text; /* borrowed from the document, or one of owned */
        size_t text_len;
        uint64_t text_hash;
        size_t offset, len; /* the encoded tokens: bytes[offset, offset + len) */
};

/* The tapes of one loaded file. */
struct token_tapes {
        struct token_tape *tapes;
        size_t n_tapes, cap_tapes;
        uint8_t *bytes;
        size_t n_bytes, cap_bytes;
        char **owned; /* texts made for the writer (the CJK path column) */
        size_t n_owned, cap_owned;
};

void token_tapes_done(struct token_tapes *t);
/* What t holds in memory, for callers that bound theirs. */
size_t token_tapes_bytes(const struct token_tapes *t);

/* A reader thread's own unicode61, with the arguments quire's FTS5 tables
 * declare. */
struct token_recorder;
int token_recorder_new(struct token_recorder **ret);
void token_recorder_free(struct token_recorder *r);
/* Record text[0, len); text must stay where it is while t is used. */
int token_recorder_add(struct token_recorder *r, struct token_tapes *t, const char *text, size_t len);
/* Record every text the writer will hand FTS5 for doc, stored under path:
 * each chunk's content and heading path, the path, and the CJK index's
 * texts of the chunks that have them. On error t may hold part of them,
 * which is harmless: what has no tape is tokenized by the writer. */
int token_recorder_add_document(struct token_recorder *r, struct token_tapes *t, const char *path,
                                const struct document *doc);

/* The writer's side: installed on a connection before it touches an FTS5
 * table, freed after the connection is closed. */
struct token_replay;
int token_replay_install(sqlite3 *db, struct token_replay **ret);
void token_replay_free(struct token_replay *rp);
/* Offer t's tapes until token_replay_clear(); t and its texts must stay
 * where they are until then. Out of memory, the tapes not taken are simply
 * not replayed. */
void token_replay_add(struct token_replay *rp, const struct token_tapes *t);
void token_replay_clear(struct token_replay *rp);

/* Document texts played from a tape, and tokenized by unicode61. */
struct token_replay_counts {
        uint64_t played, tokenized;
};
struct token_replay_counts token_replay_counts(const struct token_replay *rp);
