/* What the fuzz targets share: libFuzzer's entry point, which the replay
 * driver (replay.c) calls too, and FUZZ_CHECK, which turns a broken
 * invariant into a crash that libFuzzer keeps the input of. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Say what is wrong, then abort(): libFuzzer and the replay driver both
 * report a crash, and libFuzzer writes the input out as crash-<sha1>. */
#define FUZZ_CHECK(cond, ...)                                                     \
        do {                                                                      \
                if (!(cond)) {                                                    \
                        fprintf(stderr, "%s:%d: invariant broken: ", __FILE__, __LINE__); \
                        fprintf(stderr, __VA_ARGS__);                             \
                        fputc('\n', stderr);                                      \
                        abort();                                                  \
                }                                                                 \
        } while (0)
