/* chunk-bench DIR: how fast the chunker layer goes over every .md under DIR,
 * phase by phase (best of 5 runs each, one thread): text_normalize alone,
 * cmark parsing alone, document_parse (hash + normalize + parse + split +
 * chunk hashes) and document_load (the same plus open/fstat/read, page cache
 * warm); then over every chunk, derive.h: derive_chunk, cjk_text_has_cjk
 * and cjk_index_text. The numbers quoted in docs/CHUNKER.md come from here. */
#include <cmark.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>

#include "derive.h"
#include "document.h"
#include "helpers.h"
#include "text.h"
#include "util.h"

#define RUNS 5

struct file {
        char *path;
        char *raw;
        size_t len;
};

static struct file *files;
static size_t n_files, cap_files, total_bytes;

static int collect_cb(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        size_t n = strlen(path);
        struct file f = { .path = strdup(path) };

        (void) st, (void) ftw;
        if (type != FTW_F || n < 3 || strcmp(path + n - 3, ".md") != 0) {
                free(f.path);
                return 0;
        }
        if (!f.path || read_file(path, &f.raw, &f.len) < 0)
                return -1;
        if (n_files == cap_files) {
                cap_files = cap_files ? cap_files * 2 : 1024;
                files = realloc(files, cap_files * sizeof *files);
                if (!files)
                        return -1;
        }
        files[n_files++] = f;
        total_bytes += f.len;
        return 0;
}

static void report(const char *what, uint64_t best_usec, size_t n_chunks) {
        double s = best_usec / 1e6;
        printf("%-34s %7.3f s  %7.1f MB/s  %8.0f files/s", what, s, total_bytes / 1e6 / s, n_files / s);
        if (n_chunks)
                printf("  %zu chunks", n_chunks);
        printf("\n");
}

int main(int argc, char **argv) {
        uint64_t best[4] = { UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX };
        size_t n_chunks = 0;

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        if (nftw(argv[1], collect_cb, 32, FTW_PHYS) != 0) {
                fprintf(stderr, "Failed to read the files under %s\n", argv[1]);
                return 1;
        }
        printf("%zu files, %.1f MB\n", n_files, total_bytes / 1e6);

        for (int run = 0; run < RUNS; run++) {
                uint64_t t;

                t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++) {
                        char *text;
                        size_t len;
                        if (text_normalize(files[i].raw, files[i].len, &text, &len) < 0)
                                return 1;
                        free(text);
                }
                t = now_monotonic_usec() - t;
                best[0] = t < best[0] ? t : best[0];

                t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++)
                        cmark_node_free(cmark_parse_document(files[i].raw, files[i].len, CMARK_OPT_DEFAULT));
                t = now_monotonic_usec() - t;
                best[1] = t < best[1] ? t : best[1];

                n_chunks = 0;
                t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++) {
                        struct document doc;
                        if (document_parse(files[i].raw, files[i].len, NULL, &doc) < 0)
                                return 1;
                        n_chunks += doc.chunks.n_items;
                        document_done(&doc);
                }
                t = now_monotonic_usec() - t;
                best[2] = t < best[2] ? t : best[2];

                t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++) {
                        struct document doc;
                        if (document_load(AT_FDCWD, files[i].path, NULL, &doc) < 0)
                                return 1;
                        document_done(&doc);
                }
                t = now_monotonic_usec() - t;
                best[3] = t < best[3] ? t : best[3];
        }

        report("text_normalize", best[0], 0);
        report("cmark_parse_document (+free)", best[1], 0);
        report("document_parse (all in memory)", best[2], n_chunks);
        report("document_load (from page cache)", best[3], 0);

        /* derive.h, chunk by chunk, on documents parsed beforehand. */
        struct document *docs = calloc(n_files, sizeof *docs);
        uint64_t best_derived[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
        if (!docs)
                return 1;
        for (size_t i = 0; i < n_files; i++)
                if (document_parse(files[i].raw, files[i].len, NULL, &docs[i]) < 0)
                        return 1;
        for (int run = 0; run < RUNS; run++) {
                uint64_t t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++)
                        for (size_t c = 0; c < docs[i].chunks.n_items; c++) {
                                const struct chunk *chunk = &docs[i].chunks.items[c];
                                struct derived d;
                                if (derive_chunk(chunk->content, chunk->content_len, chunk->start_line, &d) < 0)
                                        return 1;
                                derived_done(&d);
                        }
                t = now_monotonic_usec() - t;
                best_derived[0] = t < best_derived[0] ? t : best_derived[0];

                size_t n_cjk = 0;
                t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++)
                        for (size_t c = 0; c < docs[i].chunks.n_items; c++)
                                n_cjk += cjk_text_has_cjk(docs[i].chunks.items[c].content,
                                                          docs[i].chunks.items[c].content_len);
                t = now_monotonic_usec() - t;
                best_derived[1] = t < best_derived[1] ? t : best_derived[1];
                if (n_cjk == SIZE_MAX)
                        return 1; /* keeps the loop from being optimized away */

                t = now_monotonic_usec();
                for (size_t i = 0; i < n_files; i++)
                        for (size_t c = 0; c < docs[i].chunks.n_items; c++) {
                                char *text;
                                if (cjk_index_text(docs[i].chunks.items[c].content,
                                                   docs[i].chunks.items[c].content_len, &text) < 0)
                                        return 1;
                                free(text);
                        }
                t = now_monotonic_usec() - t;
                best_derived[2] = t < best_derived[2] ? t : best_derived[2];
        }
        report("derive_chunk (every chunk)", best_derived[0], n_chunks);
        report("cjk_text_has_cjk (every chunk)", best_derived[1], 0);
        report("cjk_index_text (every chunk)", best_derived[2], 0);
        printf("per chunk: derive_chunk %.0f ns, cjk_text_has_cjk %.0f ns, cjk_index_text %.0f ns\n",
               best_derived[0] * 1e3 / (double) n_chunks, best_derived[1] * 1e3 / (double) n_chunks,
               best_derived[2] * 1e3 / (double) n_chunks);
        for (size_t i = 0; i < n_files; i++)
                document_done(&docs[i]);
        free(docs);

        for (size_t i = 0; i < n_files; i++) {
                free(files[i].path);
                free(files[i].raw);
        }
        free(files);
        return 0;
}
