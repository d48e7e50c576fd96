/* See tokens.h.
 *
 * A tape is a run of tokens, each as varints: the gap from the previous
 * token's end to its start (zigzag, in case a tokenizer ever goes back),
 * then (source length << 3 | is_verbatim << 2 | colocated << 1 | is_lower).
 * is_lower says the token is the ASCII lowercase of its source bytes, which
 * is what unicode61 makes of nearly every word of these notes, so it is
 * rebuilt from the text instead of stored; is_verbatim says the token is
 * its source bytes as they are (a word in lowercase already, as most are,
 * or a CJK run), and then the replay hands FTS5 the text itself, with no
 * copy. Otherwise the token's length and bytes follow. A tape costs about
 * two bytes a token. */
#include "tokens.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunker.h"
#include "derive.h"
#include "document.h"
#include "hash.h"
#include "macro.h"
#include "util.h"

/* The tokenizer arguments of quire's FTS5 tables (schema.c): a tape is
 * made with these and only replayed into a table declared with them. */
static const char *const table_args[] = { "remove_diacritics", "2" };

static bool are_table_args(const char **az, int n) {
        if (n != (int) ELEMENTSOF(table_args))
                return false;
        for (int i = 0; i < n; i++)
                if (strcmp(az[i], table_args[i]) != 0)
                        return false;
        return true;
}

fts5_api *fts5_api_of(sqlite3 *db) {
        fts5_api *api = NULL;
        sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
                return NULL;
        sqlite3_bind_pointer(st, 1, (void *) &api, "fts5_api_ptr", NULL);
        (void) sqlite3_step(st);
        sqlite3_finalize(st);
        return api;
}

static inline char ascii_lower(char c) {
        return (char) (c + ((unsigned) (c - 'A') < 26u) * ('a' - 'A'));
}

void token_tapes_done(struct token_tapes *t) {
        for (size_t i = 0; i < t->n_owned; i++)
                free(t->owned[i]);
        free(t->owned);
        free(t->tapes);
        free(t->bytes);
        *t = (struct token_tapes){ 0 };
}

size_t token_tapes_bytes(const struct token_tapes *t) {
        return t->cap_tapes * sizeof *t->tapes + t->cap_bytes;
}

/* ---- recording (reader threads) ---- */

struct token_recorder {
        sqlite3 *db; /* private, in memory: owns the unicode61 module */
        fts5_tokenizer api;
        Fts5Tokenizer *tokenizer;
};

int token_recorder_new(struct token_recorder **ret) {
        struct token_recorder *r = calloc(1, sizeof *r);
        fts5_api *api;
        void *userdata;

        if (!r)
                return -ENOMEM;
        if (sqlite3_open_v2(":memory:", &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
                goto fail;
        api = fts5_api_of(r->db);
        if (!api || api->xFindTokenizer(api, "unicode61", &userdata, &r->api) != SQLITE_OK ||
            r->api.xCreate(userdata, (const char **) table_args, (int) ELEMENTSOF(table_args), &r->tokenizer) !=
                    SQLITE_OK)
                goto fail;
        *ret = r;
        return 0;
fail:
        token_recorder_free(r);
        return -ENOMEM;
}

void token_recorder_free(struct token_recorder *r) {
        if (!r)
                return;
        if (r->tokenizer)
                r->api.xDelete(r->tokenizer);
        sqlite3_close(r->db);
        free(r);
}

struct recording {
        struct token_tapes *t;
        const char *text;
        int len;
        int last_end;
        int r;
};

static inline uint8_t *put_varint(uint8_t *p, uint64_t v) {
        for (; v >= 0x80; v >>= 7)
                *p++ = (uint8_t) (v | 0x80);
        *p++ = (uint8_t) v;
        return p;
}

/* The flags of a token's head varint; the source length is shifted above them. */
enum {
        TOKEN_LOWER = 1 << 0,
        TOKEN_COLOCATED = 1 << 1,
        TOKEN_VERBATIM = 1 << 2,
        TOKEN_HEAD_SHIFT = 3,
};

/* How token relates to the n bytes of its source: TOKEN_VERBATIM if it is
 * those very bytes (lowercase words, CJK runs), else TOKEN_LOWER if it is
 * their ASCII lowercase, else 0. */
static unsigned token_kind(const char *token, const char *source, int n) {
        int i = 0;
        while (i < n && token[i] == source[i])
                i++;
        if (i == n)
                return TOKEN_VERBATIM;
        for (i = 0; i < n; i++)
                if ((unsigned char) source[i] >= 0x80 || token[i] != ascii_lower(source[i]))
                        return 0;
        return TOKEN_LOWER;
}

/* Called once per token, millions of times for a tree: no call that is
 * not needed, one capacity check. */
static int record_token(void *ctx, int tflags, const char *token, int n_token, int start, int end) {
        struct recording *rec = ctx;
        struct token_tapes *t = rec->t;
        int64_t gap = (int64_t) start - rec->last_end;

        if (n_token < 0 || start < 0 || end < start || end > rec->len || (tflags & ~FTS5_TOKEN_COLOCATED)) {
                rec->r = -EINVAL;
                return SQLITE_ERROR;
        }
        size_t most = 3 * 10 + (size_t) n_token;
        if (t->n_bytes + most > t->cap_bytes && GREEDY_REALLOC(t->bytes, t->cap_bytes, t->n_bytes + most, 256) < 0) {
                rec->r = -ENOMEM;
                return SQLITE_NOMEM;
        }
        unsigned kind = n_token == end - start ? token_kind(token, rec->text + start, n_token) : 0;
        uint64_t zigzag = gap < 0 ? ((uint64_t) -gap << 1) - 1 : (uint64_t) gap << 1;
        uint64_t head = (uint64_t) (end - start) << TOKEN_HEAD_SHIFT | kind |
                        (tflags & FTS5_TOKEN_COLOCATED ? TOKEN_COLOCATED : 0);
        uint8_t *p = put_varint(t->bytes + t->n_bytes, zigzag);
        p = put_varint(p, head);
        if (!kind) {
                p = put_varint(p, (uint64_t) n_token);
                memcpy(p, token, (size_t) n_token);
                p += n_token;
        }
        t->n_bytes = (size_t) (p - t->bytes);
        rec->last_end = end;
        return SQLITE_OK;
}

int token_recorder_add(struct token_recorder *r, struct token_tapes *t, const char *text, size_t len) {
        size_t offset = t->n_bytes;

        if (len > INT32_MAX)
                return -EFBIG;
        struct recording rec = { .t = t, .text = text, .len = (int) len };
        if (t->n_tapes == t->cap_tapes && GREEDY_REALLOC(t->tapes, t->cap_tapes, t->n_tapes + 1, 4) < 0)
                return -ENOMEM;
        int rc = r->api.xTokenize(r->tokenizer, &rec, FTS5_TOKENIZE_DOCUMENT, text, (int) len, record_token);
        if (rc != SQLITE_OK || rec.r < 0) {
                t->n_bytes = offset;
                return rec.r < 0 ? rec.r : -ENOMEM;
        }
        t->tapes[t->n_tapes++] = (struct token_tape){
                .text = text,
                .text_len = len,
                .text_hash = hash64(text, len),
                .offset = offset,
                .len = t->n_bytes - offset,
        };
        return 0;
}

static int add_owned(struct token_recorder *r, struct token_tapes *t, char *text) {
        if (GREEDY_REALLOC(t->owned, t->cap_owned, t->n_owned + 1, 4) < 0) {
                free(text);
                return -ENOMEM;
        }
        t->owned[t->n_owned++] = text;
        return token_recorder_add(r, t, text, strlen(text));
}

int token_recorder_add_document(struct token_recorder *r, struct token_tapes *t, const char *path,
                                const struct document *doc) {
        const char *last_heading = NULL;
        bool has_cjk = false;
        int q;

        /* About two bytes a token, a token every five or six bytes. */
        q = GREEDY_REALLOC(t->bytes, t->cap_bytes, doc->text_len / 2 + 64, 256);
        if (q == 0)
                q = GREEDY_REALLOC(t->tapes, t->cap_tapes, 2 * doc->chunks.n_items + 2, 4);
        if (q == 0)
                q = token_recorder_add(r, t, path, strlen(path));
        for (size_t i = 0; q == 0 && i < doc->chunks.n_items; i++) {
                const struct chunk *c = &doc->chunks.items[i];
                q = token_recorder_add(r, t, c->content, c->content_len);
                /* Sections split at blank lines share their heading path:
                 * one tape serves them all. */
                if (q == 0 && c->heading_hierarchy &&
                    (!last_heading || strcmp(last_heading, c->heading_hierarchy) != 0)) {
                        q = token_recorder_add(r, t, c->heading_hierarchy, strlen(c->heading_hierarchy));
                        last_heading = c->heading_hierarchy;
                }
                if (q == 0 && c->cjk_content) {
                        has_cjk = true;
                        q = token_recorder_add(r, t, c->cjk_content, strlen(c->cjk_content));
                        if (q == 0)
                                q = token_recorder_add(r, t, c->cjk_heading, strlen(c->cjk_heading));
                }
        }
        if (q == 0 && has_cjk) {
                /* The CJK row's path column, as derived.c stages it. */
                char *path_text;
                q = cjk_index_text(path, strlen(path), &path_text);
                if (q == 0)
                        q = add_owned(r, t, path_text);
        }
        return q;
}

/* ---- replay (the writer's connection) ---- */

struct replay_slot {
        const struct token_tape *tape; /* NULL: free */
        const uint8_t *bytes;          /* those of the tapes it came with */
};

struct token_replay {
        fts5_tokenizer real;
        void *real_userdata;
        struct replay_slot *slots; /* open addressing on text_hash */
        size_t n_slots, n_used;
        char *scratch; /* a lowercase token being rebuilt */
        size_t cap_scratch;
        struct token_replay_counts counts;
};

struct replay_tokenizer {
        struct token_replay *rp;
        Fts5Tokenizer *real;
        bool can_play; /* declared with table_args */
};

static int replay_create(void *userdata, const char **az, int n, Fts5Tokenizer **ret) {
        struct token_replay *rp = userdata;
        struct replay_tokenizer *tok = sqlite3_malloc(sizeof *tok);
        int rc;

        if (!tok)
                return SQLITE_NOMEM;
        *tok = (struct replay_tokenizer){ .rp = rp, .can_play = are_table_args(az, n) };
        rc = rp->real.xCreate(rp->real_userdata, az, n, &tok->real);
        if (rc != SQLITE_OK) {
                sqlite3_free(tok);
                return rc;
        }
        *ret = (Fts5Tokenizer *) tok;
        return SQLITE_OK;
}

static void replay_delete(Fts5Tokenizer *t) {
        struct replay_tokenizer *tok = (struct replay_tokenizer *) t;
        tok->rp->real.xDelete(tok->real);
        sqlite3_free(tok);
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
                uint8_t b = *(*p)++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/* A tape is only ever played into the text it was recorded from, so a
 * check that fails here is a bug in this file: stop the statement. */
static int play(struct token_replay *rp, const struct token_tape *tape, const uint8_t *bytes, const char *text,
                void *ctx, int (*x_token)(void *, int, const char *, int, int, int)) {
        const uint8_t *p = bytes + tape->offset, *end = p + tape->len;
        int64_t last_end = 0;

        while (p < end) {
                uint64_t zigzag, head, n_token;
                if (!get_varint(&p, end, &zigzag) || !get_varint(&p, end, &head))
                        return SQLITE_INTERNAL;
                int64_t gap = zigzag & 1 ? -(int64_t) ((zigzag + 1) >> 1) : (int64_t) (zigzag >> 1);
                int64_t start = last_end + gap, src_len = (int64_t) (head >> TOKEN_HEAD_SHIFT);
                if (start < 0 || src_len > (int64_t) tape->text_len - start)
                        return SQLITE_INTERNAL;
                const char *token;
                if (head & TOKEN_VERBATIM) {
                        token = text + start;
                        n_token = (uint64_t) src_len;
                } else if (head & TOKEN_LOWER) {
                        if ((size_t) src_len >= rp->cap_scratch &&
                            GREEDY_REALLOC(rp->scratch, rp->cap_scratch, (size_t) src_len + 1, 64) < 0)
                                return SQLITE_NOMEM;
                        for (int64_t i = 0; i < src_len; i++)
                                rp->scratch[i] = ascii_lower(text[start + i]);
                        token = rp->scratch;
                        n_token = (uint64_t) src_len;
                } else {
                        if (!get_varint(&p, end, &n_token) || n_token > (uint64_t) (end - p))
                                return SQLITE_INTERNAL;
                        token = (const char *) p;
                        p += n_token;
                }
                int tflags = head & TOKEN_COLOCATED ? FTS5_TOKEN_COLOCATED : 0;
                int rc = x_token(ctx, tflags, token, (int) n_token, (int) start, (int) (start + src_len));
                if (rc != SQLITE_OK)
                        return rc;
                last_end = start + src_len;
        }
        return SQLITE_OK;
}

static int replay_tokenize(Fts5Tokenizer *t, void *ctx, int flags, const char *text, int n_text,
                           int (*x_token)(void *, int, const char *, int, int, int)) {
        struct replay_tokenizer *tok = (struct replay_tokenizer *) t;
        struct token_replay *rp = tok->rp;

        if (flags != FTS5_TOKENIZE_DOCUMENT || !tok->can_play || n_text < 0)
                return rp->real.xTokenize(tok->real, ctx, flags, text, n_text, x_token);
        if (rp->n_used > 0) {
                uint64_t h = hash64(text, (size_t) n_text);
                for (size_t i = h & (rp->n_slots - 1); rp->slots[i].tape; i = (i + 1) & (rp->n_slots - 1)) {
                        const struct token_tape *tape = rp->slots[i].tape;
                        if (tape->text_hash == h && tape->text_len == (size_t) n_text &&
                            memcmp(tape->text, text, (size_t) n_text) == 0) {
                                rp->counts.played++;
                                return play(rp, tape, rp->slots[i].bytes, text, ctx, x_token);
                        }
                }
        }
        rp->counts.tokenized++;
        return rp->real.xTokenize(tok->real, ctx, flags, text, n_text, x_token);
}

static fts5_tokenizer replay_module = {
        .xCreate = replay_create,
        .xDelete = replay_delete,
        .xTokenize = replay_tokenize,
};

int token_replay_install(sqlite3 *db, struct token_replay **ret) {
        struct token_replay *rp = calloc(1, sizeof *rp);
        fts5_api *api = fts5_api_of(db);

        if (!rp)
                return -ENOMEM;
        if (!api || api->xFindTokenizer(api, "unicode61", &rp->real_userdata, &rp->real) != SQLITE_OK ||
            api->xCreateTokenizer(api, "unicode61", rp, &replay_module, NULL) != SQLITE_OK) {
                free(rp);
                return -EOPNOTSUPP;
        }
        *ret = rp;
        return 0;
}

void token_replay_free(struct token_replay *rp) {
        if (!rp)
                return;
        free(rp->slots);
        free(rp->scratch);
        free(rp);
}

static void put_slot(struct replay_slot *slots, size_t n_slots, struct replay_slot slot) {
        size_t i = slot.tape->text_hash & (n_slots - 1);
        while (slots[i].tape)
                i = (i + 1) & (n_slots - 1);
        slots[i] = slot;
}

static bool grow_slots(struct token_replay *rp) {
        size_t n = rp->n_slots ? rp->n_slots * 2 : 1024;
        struct replay_slot *slots = calloc(n, sizeof *slots);

        if (!slots)
                return false;
        for (size_t i = 0; i < rp->n_slots; i++)
                if (rp->slots[i].tape)
                        put_slot(slots, n, rp->slots[i]);
        free(rp->slots);
        rp->slots = slots;
        rp->n_slots = n;
        return true;
}

void token_replay_add(struct token_replay *rp, const struct token_tapes *t) {
        for (size_t k = 0; k < t->n_tapes; k++) {
                if ((rp->n_used + 1) * 2 > rp->n_slots && !grow_slots(rp))
                        return;
                put_slot(rp->slots, rp->n_slots, (struct replay_slot){ .tape = &t->tapes[k], .bytes = t->bytes });
                rp->n_used++;
        }
}

void token_replay_clear(struct token_replay *rp) {
        if (rp->n_used == 0)
                return;
        memset(rp->slots, 0, rp->n_slots * sizeof *rp->slots);
        rp->n_used = 0;
}

struct token_replay_counts token_replay_counts(const struct token_replay *rp) {
        return rp->counts;
}
