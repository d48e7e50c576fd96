/* derive-dump: print what derive.h finds in each chunk of Markdown files:
 * the chunk's line range, then its tags and links as dump_derived() prints
 * them, and "cjk" when cjk_text_has_cjk() says so. For reviewing the rules
 * of docs/CHUNKER.md ("Derived data") on real notes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "derive.h"
#include "document.h"
#include "helpers.h"

int main(int argc, char **argv) {
        int status = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE.md...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct document doc;
                int r = document_load(AT_FDCWD, argv[i], NULL, &doc);
                if (r < 0) {
                        fprintf(stderr, "Failed to load %s: %s\n", argv[i], strerror(-r));
                        status = 1;
                        continue;
                }
                if (argc > 2)
                        printf("==> %s <==\n", argv[i]);
                for (size_t c = 0; c < doc.chunks.n_items; c++) {
                        const struct chunk *chunk = &doc.chunks.items[c];
                        struct derived d;
                        r = derive_chunk(chunk->content, chunk->content_len, chunk->start_line, &d);
                        if (r < 0) {
                                fprintf(stderr, "Failed to derive %s:%u: %s\n", argv[i], chunk->start_line,
                                        strerror(-r));
                                status = 1;
                                continue;
                        }
                        printf("chunk %u-%u%s\n", chunk->start_line, chunk->end_line,
                               cjk_text_has_cjk(chunk->content, chunk->content_len) ? " cjk" : "");
                        dump_derived(stdout, &d);
                        derived_done(&d);
                }
                document_done(&doc);
        }
        return status;
}
