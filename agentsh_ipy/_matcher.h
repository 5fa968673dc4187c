/* The file-rule matcher of the native fast path, without Python: the
 * extension (_native.c) wraps it, the fuzz target (fuzz/fuzz_matcher.c)
 * drives it directly.
 *
 * The policy (pure Python, agentsh_ipy/policy/_table.py) compiles its file
 * rules into a flat uint32 program; table_match checks a path against it,
 * first match wins, and answers the index of the rule (-1: none matched).
 * Python's Policy.check_file is the reference: tests/unit/test_native_table.py
 * compares the two on generated policies and paths.
 *
 * The path comes from a sandboxed program (any bytes, any length), so it is
 * parsed with lengths everywhere, no fixed buffers; the program is
 * validated once when loaded so matching never reads out of bounds.
 *
 * Program layout (native-endian uint32 words):
 *   nrules, then per rule: opmask, nglobs, then per glob: nsegs, then per
 *   segment: kind (SEG_NORMAL, SEG_DSTAR), nwords, then nwords atom words:
 *   A_LIT cp | A_ANY | A_STAR | A_CLASS negate nitems (lo hi)*nitems.
 */
#ifndef AGENTSH_MATCHER_H
#define AGENTSH_MATCHER_H

#include <stddef.h>
#include <stdint.h>

enum { SEG_NORMAL = 0, SEG_DSTAR = 1 };
enum { A_LIT = 0, A_ANY = 1, A_STAR = 2, A_CLASS = 3 };

/* A segment of the program: atoms[0..nwords) words; a DSTAR has none. */
typedef struct {
    uint32_t kind;
    const uint32_t *atoms;
    size_t nwords;
} Seg;

typedef struct {
    size_t first; /* index of its first Seg in the table's segs */
    size_t nsegs;
} Glob;

typedef struct {
    uint32_t opmask;
    size_t first; /* index of its first Glob */
    size_t nglobs;
} Rule;

typedef struct {
    uint32_t *words;
    Rule *rules;
    size_t nrules;
    Glob *globs;
    Seg *segs;
} Table;

enum { TABLE_OK = 0, TABLE_MALFORMED = -1, TABLE_NOMEM = -2 };

/* Load a copy of the program (nbytes long) into a zeroed t: TABLE_OK, or
 * TABLE_MALFORMED / TABLE_NOMEM (t is then to be freed all the same). */
int table_load(Table *t, const void *program, size_t nbytes);
void table_free(Table *t);

/* The index of the first rule whose mask meets ops and one of whose globs
 * matches the path (n bytes, normalized here), -1 when none does, or
 * TABLE_NOMEM. */
long table_match(const Table *t, uint32_t ops, const unsigned char *path, size_t n);

#endif
