/* The file-rule matcher: see _matcher.h. */
#include "_matcher.h"

#include <stdlib.h>
#include <string.h>

/* ---- the program: loaded once, every bound checked ------------------- */

/* Check a segment's atom words; 0 when well formed. */
static int check_atoms(const uint32_t *w, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (w[i]) {
        case A_LIT:
            if (n - i < 2)
                return -1;
            i += 2;
            break;
        case A_ANY:
        case A_STAR:
            i += 1;
            break;
        case A_CLASS: {
            if (n - i < 3)
                return -1;
            size_t items = w[i + 2];
            if (items > (n - i - 3) / 2)
                return -1;
            i += 3 + 2 * items;
            break;
        }
        default:
            return -1;
        }
    }
    return 0;
}

/* Walk the program; with rules/globs/segs NULL only count, else fill. */
static int walk(const uint32_t *w, size_t n, size_t *nrules, size_t *nglobs, size_t *nsegs,
                Rule *rules, Glob *globs, Seg *segs)
{
    size_t i = 0, r, g, s, gi = 0, si = 0;
    if (n < 1)
        return -1;
    size_t rcount = w[i++];
    for (r = 0; r < rcount; r++) {
        if (n - i < 2)
            return -1;
        uint32_t opmask = w[i];
        size_t gcount = w[i + 1];
        i += 2;
        if (rules) {
            rules[r].opmask = opmask;
            rules[r].first = gi;
            rules[r].nglobs = gcount;
        }
        for (g = 0; g < gcount; g++) {
            if (n - i < 1)
                return -1;
            size_t scount = w[i++];
            if (globs) {
                globs[gi].first = si;
                globs[gi].nsegs = scount;
            }
            gi++;
            for (s = 0; s < scount; s++) {
                if (n - i < 2)
                    return -1;
                uint32_t kind = w[i];
                size_t nw = w[i + 1];
                i += 2;
                if (nw > n - i || (kind != SEG_NORMAL && kind != SEG_DSTAR))
                    return -1;
                if (kind == SEG_DSTAR && nw != 0)
                    return -1;
                if (check_atoms(w + i, nw) != 0)
                    return -1;
                if (segs) {
                    segs[si].kind = kind;
                    segs[si].atoms = w + i;
                    segs[si].nwords = nw;
                }
                si++;
                i += nw;
            }
        }
    }
    if (i != n)
        return -1;
    *nrules = rcount;
    *nglobs = gi;
    *nsegs = si;
    return 0;
}

/* ---- the path: bytes from the tracee ---------------------------------- */

/* Decode one UTF-8 sequence at s[0..n) as Python's strict decoder does;
 * a byte that starts no valid sequence becomes U+DC00+byte, as
 * os.fsdecode's surrogateescape makes it. Returns the bytes consumed. */
static size_t decode_one(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    uint32_t v;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        v = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        v = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (b == 0xED)
            hi = 0x9F; /* no UTF-16 surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        v = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *cp = 0xDC00 + b;
        return 1;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        goto escape;
    for (size_t k = 1; k < len; k++) {
        if (k > 1 && (s[k] < 0x80 || s[k] > 0xBF))
            goto escape;
        v = (v << 6) | (s[k] & 0x3F);
    }
    *cp = v;
    return len;
escape:
    *cp = 0xDC00 + b;
    return 1;
}

/* A normalized path as code points: segments [off, off+len) into cps. */
typedef struct {
    uint32_t *cps;
    size_t *off;
    size_t *len;
    size_t n;
    int root; /* the path is "/" */
} Path;

static void path_free(Path *p)
{
    free(p->cps);
    free(p->off);
    free(p->len);
}

/* Normalize as policy._glob.normalize_path does (drop "" and ".", ".."
 * pops) and decode. Returns 1 for an absolute path, 0 for a relative one
 * (it matches no rule), -1 when out of memory. */
static int path_parse(const unsigned char *s, size_t n, Path *p)
{
    memset(p, 0, sizeof(*p));
    if (n == 0 || s[0] != '/')
        return 0;
    size_t maxsegs = n / 2 + 1;
    size_t *boff = malloc(maxsegs * sizeof(size_t)); /* byte offsets */
    size_t *blen = malloc(maxsegs * sizeof(size_t));
    p->cps = malloc(n * sizeof(uint32_t));
    p->off = malloc(maxsegs * sizeof(size_t));
    p->len = malloc(maxsegs * sizeof(size_t));
    if (!boff || !blen || !p->cps || !p->off || !p->len) {
        free(boff);
        free(blen);
        path_free(p);
        return -1;
    }
    size_t nseg = 0, i = 0;
    while (i < n) {
        while (i < n && s[i] == '/')
            i++;
        size_t start = i;
        while (i < n && s[i] != '/')
            i++;
        size_t len = i - start;
        if (len == 0 || (len == 1 && s[start] == '.'))
            continue;
        if (len == 2 && s[start] == '.' && s[start + 1] == '.') {
            if (nseg > 0)
                nseg--;
            continue;
        }
        boff[nseg] = start;
        blen[nseg] = len;
        nseg++;
    }
    size_t c = 0;
    for (size_t k = 0; k < nseg; k++) {
        const unsigned char *seg = s + boff[k];
        size_t j = 0;
        p->off[k] = c;
        while (j < blen[k]) {
            j += decode_one(seg + j, blen[k] - j, &p->cps[c]);
            c++;
        }
        p->len[k] = c - p->off[k];
    }
    free(boff);
    free(blen);
    if (nseg == 0) { /* "/": one empty segment, which only '*'-like globs match */
        p->root = 1;
        p->off[0] = 0;
        p->len[0] = 0;
        nseg = 1;
    }
    p->n = nseg;
    return 1;
}

/* ---- matching ---------------------------------------------------------- */

/* Length in words of the atom at w[0] (validated at load). */
static size_t atom_words(const uint32_t *w)
{
    switch (w[0]) {
    case A_LIT:
        return 2;
    case A_CLASS:
        return 3 + 2 * (size_t)w[2];
    default:
        return 1;
    }
}

static int atom_matches(const uint32_t *w, uint32_t c)
{
    switch (w[0]) {
    case A_LIT:
        return w[1] == c;
    case A_ANY:
        return 1;
    case A_CLASS: {
        int in = 0;
        for (size_t k = 0; k < w[2]; k++)
            if (w[3 + 2 * k] <= c && c <= w[4 + 2 * k]) {
                in = 1;
                break;
            }
        return w[1] ? !in : in;
    }
    default:
        return 0;
    }
}

/* One glob segment against one path segment: '*' any run, every other
 * atom exactly one code point (the classic backtrack-to-last-star walk). */
static int seg_matches(const Seg *sg, const uint32_t *s, size_t n)
{
    const uint32_t *w = sg->atoms, *end = sg->atoms + sg->nwords;
    const uint32_t *star = NULL;
    size_t i = 0, mark = 0;
    while (i < n) {
        if (w < end && w[0] == A_STAR) {
            star = w;
            w += 1;
            mark = i;
        } else if (w < end && atom_matches(w, s[i])) {
            w += atom_words(w);
            i++;
        } else if (star) {
            w = star + 1;
            i = ++mark;
        } else {
            return 0;
        }
    }
    while (w < end && w[0] == A_STAR)
        w++;
    return w == end;
}

/* A glob against the path, segment by segment: a DSTAR not last is any
 * run of whole segments (zero included), a DSTAR last is one or more; the
 * same walk as seg_matches one level up. */
static int glob_matches(const Table *t, const Glob *g, const Path *p)
{
    const Seg *P = t->segs + g->first;
    size_t m = g->nsegs, pi = 0, si = 0, mark = 0;
    long star = -1;
    if (m == 0) /* the glob "/" */
        return p->root;
    while (si < p->n) {
        if (pi < m && P[pi].kind == SEG_DSTAR) {
            if (pi == m - 1)
                return !p->root; /* one or more non-empty segments remain */
            star = (long)pi;
            pi++;
            mark = si;
        } else if (pi < m && seg_matches(&P[pi], p->cps + p->off[si], p->len[si])) {
            pi++;
            si++;
        } else if (star >= 0 && !p->root) {
            pi = (size_t)star + 1;
            si = ++mark;
        } else {
            return 0;
        }
    }
    while (pi < m && P[pi].kind == SEG_DSTAR && pi != m - 1)
        pi++;
    return pi == m;
}

/* ---- the table --------------------------------------------------------- */

int table_load(Table *t, const void *program, size_t nbytes)
{
    size_t n = nbytes / sizeof(uint32_t), nr = 0, ng = 0, ns = 0;
    if (nbytes % sizeof(uint32_t) != 0 || n == 0)
        return TABLE_MALFORMED;
    t->words = malloc(n * sizeof(uint32_t));
    if (!t->words)
        return TABLE_NOMEM;
    memcpy(t->words, program, n * sizeof(uint32_t));
    if (walk(t->words, n, &nr, &ng, &ns, NULL, NULL, NULL) != 0)
        return TABLE_MALFORMED;
    /* +1: malloc(0) may return NULL */
    t->rules = malloc((nr + 1) * sizeof(Rule));
    t->globs = malloc((ng + 1) * sizeof(Glob));
    t->segs = malloc((ns + 1) * sizeof(Seg));
    if (!t->rules || !t->globs || !t->segs)
        return TABLE_NOMEM;
    walk(t->words, n, &nr, &ng, &ns, t->rules, t->globs, t->segs);
    t->nrules = nr;
    return TABLE_OK;
}

void table_free(Table *t)
{
    free(t->words);
    free(t->rules);
    free(t->globs);
    free(t->segs);
    memset(t, 0, sizeof(*t));
}

long table_match(const Table *t, uint32_t ops, const unsigned char *path, size_t n)
{
    Path p;
    long found = -1;
    int absolute = path_parse(path, n, &p);
    if (absolute < 0)
        return TABLE_NOMEM;
    if (!absolute)
        return -1; /* a relative path matches no rule */
    for (size_t r = 0; r < t->nrules && found < 0; r++) {
        const Rule *rule = &t->rules[r];
        if (!(rule->opmask & ops))
            continue;
        for (size_t g = 0; g < rule->nglobs; g++)
            if (glob_matches(t, &t->globs[rule->first + g], &p)) {
                found = (long)r;
                break;
            }
    }
    path_free(&p);
    return found;
}
