/* quired answering `quire search` over a unix socket (storage/search-wire.h
 * has the protocol and why). Plain threads blocking in accept(): a search
 * never runs on the event loop, and the loop never waits for one. */
#pragma once

struct search_server;

/* Listen on the socket of the database at db_path and start answering.
 * -ENOENT when there is nowhere to put the socket (no XDG_RUNTIME_DIR), in
 * which case searches simply run in their own processes; other -errno,
 * logged. */
int search_server_start(const char *db_path, struct search_server **ret);
/* Stop the threads (a search under way is abandoned: its client searches
 * in process), remove the socket, free. Safe on NULL. */
void search_server_stop(struct search_server *srv);
