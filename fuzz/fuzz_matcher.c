/* libFuzzer target for the native matcher (agentsh_ipy/_matcher.c): the
 * path bytes a sandboxed program controls, and (first byte 0xff) a table
 * program, which must be refused or then matched without a bad read.
 * Built with clang -fsanitize=fuzzer,address,undefined by .ci/run.
 */
#include <stdlib.h>

#include "../agentsh_ipy/_matcher.h"

/* policy/_table.compile_file_rules of three rules:
 *   a (read, write):  /home/STAR/.ssh/STARSTAR, /STARSTAR/.env
 *   b (write):        /w/[!.]?STAR/[a-c+-0]STAR.py, /t/[]x]e-acute-U+DCFF/STARSTAR/z
 *   c (create):       /, /STAR, /STARSTAR
 * (STAR is '*': written out, it would end this comment.) */
static const uint32_t PROGRAM[] = {
    3, 3, 2, 4, 0, 8, 0, 104, 0, 111, 0, 109, 0, 101, 0, 1, 2, 0, 8, 0, 46, 0, 115, 0, 115, 0,
    104, 1, 0, 2, 1, 0, 0, 8, 0, 46, 0, 101, 0, 110, 0, 118, 2, 2, 3, 0, 2, 0, 119, 0, 7, 3, 1,
    1, 46, 46, 1, 2, 0, 14, 3, 0, 2, 97, 99, 43, 48, 2, 0, 46, 0, 112, 0, 121, 4, 0, 2, 0, 116,
    0, 11, 3, 0, 2, 93, 93, 120, 120, 0, 233, 0, 56575, 1, 0, 0, 2, 0, 122, 4, 3, 0, 1, 0, 1, 2,
    1, 1, 0,
};

static const unsigned char *PATHS[] = {
    (const unsigned char *)"/",
    (const unsigned char *)"/home/u/.ssh/id",
    (const unsigned char *)"/a/b/../c//d/",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Table fixed;
    static int loaded;
    if (!loaded) {
        if (table_load(&fixed, PROGRAM, sizeof(PROGRAM)) != TABLE_OK)
            abort(); /* the compiler's own output must load */
        loaded = 1;
    }
    if (size > 0 && data[0] == 0xff) {
        Table t = {0};
        if (table_load(&t, data + 1, size - 1) == TABLE_OK) {
            for (size_t i = 0; i < sizeof(PATHS) / sizeof(PATHS[0]); i++) {
                const unsigned char *p = PATHS[i];
                size_t n = 0;
                while (p[n])
                    n++;
                table_match(&t, ~0u, p, n);
            }
        }
        table_free(&t);
        return 0;
    }
    uint32_t ops = size > 0 ? data[0] : 1;
    table_match(&fixed, ops, data, size);
    return 0;
}
