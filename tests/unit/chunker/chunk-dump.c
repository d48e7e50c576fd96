/* chunk-dump: print the chunks of Markdown files in the golden format of
 * cases/NAME.expected (options from a NAME.opts next to the file, if any).
 * Regenerate a case with: chunk-dump cases/NAME.md > cases/NAME.expected,
 * then review the diff against the rules in docs/CHUNKER.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "document.h"
#include "helpers.h"

int main(int argc, char **argv) {
        int status = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE.md...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct document_options opts;
                struct document doc;
                int r;

                r = case_options(argv[i], &opts);
                if (r < 0) {
                        fprintf(stderr, "Failed to read options for %s: %s\n", argv[i], strerror(-r));
                        status = 1;
                        continue;
                }
                r = document_load(AT_FDCWD, argv[i], &opts, &doc);
                if (r < 0) {
                        fprintf(stderr, "Failed to load %s: %s\n", argv[i], strerror(-r));
                        status = 1;
                        continue;
                }
                if (argc > 2)
                        printf("==> %s <==\n", argv[i]);
                dump_document(stdout, &doc, &opts);
                document_done(&doc);
        }
        return status;
}
