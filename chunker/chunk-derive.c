/* A chunk's derived data (derive.h) computed beside its content: on the
 * reader threads for the chunks quire writes, and by the writer for chunks
 * a foreign program inserted, from the same three inputs, so both give the
 * same rows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunker.h"

int chunk_derive(struct chunk *c) {
        const char *heading = c->heading_hierarchy ? c->heading_hierarchy : "[]";
        size_t heading_len = strlen(heading);
        int r;

        r = derive_chunk(c->content, c->content_len, c->start_line, &c->derived);
        if (r < 0)
                return r;
        if (cjk_text_has_cjk(c->content, c->content_len) || cjk_text_has_cjk(heading, heading_len)) {
                r = cjk_index_text(c->content, c->content_len, &c->cjk_content);
                if (r == 0)
                        r = cjk_index_text(heading, heading_len, &c->cjk_heading);
                if (r < 0) {
                        chunk_derived_done(c);
                        return r;
                }
        }
        return 0;
}

void chunk_derived_done(struct chunk *c) {
        derived_done(&c->derived);
        free(c->cjk_content);
        free(c->cjk_heading);
        c->cjk_content = c->cjk_heading = NULL;
}
