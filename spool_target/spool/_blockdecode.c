/*
 * A block of plain RECORD lines of one stream, typed straight into Arrow
 * buffers: ingest's hot path in C (see records.py, "the compiled path").
 *
 * Why C: on the pure-Python block path every value becomes a Python object
 * (msgspec), is read back out of it and copied into Arrow, then freed. On
 * two cores that per-value work, not the disk, bounds ingest. Here each line
 * is scanned once and each value is appended to its column's buffers, without
 * holding the GIL, so the committer thread works on the other core meanwhile.
 *
 * The contract, which tests/test_compiled_block.py checks against the
 * msgspec block path and against the values the lines hold: decode_block
 * types a block's lines from a given offset while they are lines it takes,
 * with exactly the values that path packs, and stops before the first line
 * it does not take (a *miss*: the caller takes that line and the rest the
 * usual way) or after a given number of records (where ingest flushes). It
 * is strict, and misses on anything unusual: a blank line, another stream or
 * message type, an undeclared property, a value of the wrong JSON type, an
 * integer beyond 64 bits, a repeated top-level key, a lone UTF-16 surrogate
 * escape, bytes that are not UTF-8, nesting deeper than 64. A miss costs
 * nothing but the one line's scan, never a wrong value.
 *
 * What it accepts, line by line (JSON whitespace allowed between tokens):
 *   {"type": "RECORD", "stream": <the stream>, "record": {...},
 *    "time_extracted": <string|null>, "version": <int64|null>, ...}
 *   {"type": "STATE", "value": <any JSON>, ...}
 * in any key order; other top-level keys are skipped (after checking that
 * they are JSON), as msgspec skips them. Inside "record", each key must be
 * a declared property (or _sdc_deleted_at); a repeated key keeps its last
 * value, as on every other path. Keys, the type and the stream name may be
 * spelt with escapes (Python's json.dumps escapes every non-ASCII letter).
 *
 * Slot kinds (one per column, the "plan"):
 *   'i' integer: a JSON integer within 64 bits, or null -> int64
 *   'b' boolean: true, false or null                    -> bitmap
 *   's' string:  a JSON string (unescaped), or null     -> UTF-8 text
 *   'r' raw:     any JSON value's text exactly as sent; null and absent
 *                are null                               -> bytes
 *   'x' none:    always null (_sdc_extra: no undeclared property here)
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* ----- growable byte buffers ------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

/* Set (or leave clear) bit `i` of a bitmap, growing it as rows are added. */
static int bit_put(Buf *b, int64_t i, int on) {
    size_t byte = (size_t)(i >> 3);
    if (byte >= b->len) {
        if (buf_reserve(b, byte + 1 - b->len) < 0)
            return -1;
        memset(b->p + b->len, 0, byte + 1 - b->len);
        b->len = byte + 1;
    }
    if (on)
        b->p[byte] |= (char)(1 << (i & 7));
    return 0;
}

/* ----- one column's buffers, in Arrow's layout ------------------------- */

typedef struct {
    char kind;
    Buf valid;   /* validity bitmap */
    Buf data;    /* int64 values, a bitmap of booleans, or the bytes of texts */
    Buf offsets; /* int32 offsets of texts ('s', 'r') */
    int64_t nulls;
} Column;

/* ----- one line's values, before they are appended --------------------- */

enum { ABSENT = 0, NUL = 1, VALUE = 2 };

typedef struct {
    const char *start, *end; /* a string's content (no quotes), or a raw value's text */
    int64_t ival;            /* an integer, or a boolean as 0/1 */
    char state;
    char escaped; /* the string holds a backslash escape */
} Slot;

/* ----- the scanner ----------------------------------------------------- */

#define MISS NULL

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

static inline int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* One UTF-8 sequence starting at p (its lead byte >= 0x80): its length, or 0 if invalid. */
static inline int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        if (end - p < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F)
            return 0; /* an encoded surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] > 0x8F)
            return 0; /* beyond U+10FFFF */
        return 4;
    }
    return 0;
}

/* A JSON string at p (on its opening quote): the content's span, whether it
 * holds escapes, and the position after the closing quote. Misses on a raw
 * control character, a bad escape, a lone surrogate or invalid UTF-8. */
static const char *scan_string(const char *p, const char *end, const char **cstart, const char **cend, char *escaped) {
    p++;
    *cstart = p;
    *escaped = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *cend = p;
            return p + 1;
        }
        if (c < 0x20)
            return MISS;
        if (c == '\\') {
            *escaped = 1;
            if (p + 1 >= end)
                return MISS;
            char e = p[1];
            if (e == 'u') {
                unsigned u;
                if (end - p < 6 || hex4(p + 2, &u) < 0)
                    return MISS;
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return MISS; /* a low surrogate without its high one */
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned lo;
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return MISS; /* a high surrogate without its low one */
                    p += 6;
                }
                continue;
            }
            if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't')
                return MISS;
            p += 2;
            continue;
        }
        if (c >= 0x80) {
            int n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (!n)
                return MISS;
            p += n;
            continue;
        }
        p++;
    }
    return MISS; /* no closing quote on this line */
}

/* A JSON number at p: the position after it; *integer says whether it has no
 * fraction and no exponent. */
static const char *scan_number(const char *p, const char *end, int *integer) {
    const char *q = p;
    *integer = 1;
    if (q < end && *q == '-')
        q++;
    if (q >= end)
        return MISS;
    if (*q == '0')
        q++;
    else if (*q >= '1' && *q <= '9')
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    else
        return MISS;
    if (q < end && *q == '.') {
        *integer = 0;
        q++;
        if (q >= end || *q < '0' || *q > '9')
            return MISS;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        *integer = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            return MISS;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    return q;
}

/* The int64 a JSON integer's text [p, q) denotes; -1 if it does not fit. */
static int integer_value(const char *p, const char *q, int64_t *out) {
    int negative = *p == '-';
    if (negative)
        p++;
    uint64_t v = 0;
    for (; p < q; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)v;
    }
    return 0;
}

static inline int literal(const char *p, const char *end, const char *word, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0;
}

/* Any JSON value at p, checked: the position after it. */
static const char *skip_value(const char *p, const char *end, int depth) {
    if (p >= end)
        return MISS;
    const char *s, *e;
    char esc;
    int integer;
    switch (*p) {
    case '"':
        return scan_string(p, end, &s, &e, &esc);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        int object = *p == '{';
        if (depth >= MAX_DEPTH)
            return MISS;
        p = skip_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (object) {
                if (p >= end || *p != '"')
                    return MISS;
                p = scan_string(p, end, &s, &e, &esc);
                if (!p)
                    return MISS;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    return MISS;
                p = skip_ws(p + 1, end);
            }
            p = skip_value(p, end, depth + 1);
            if (!p)
                return MISS;
            p = skip_ws(p, end);
            if (p >= end)
                return MISS;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return MISS;
            p = skip_ws(p + 1, end);
        }
    }
    case 't':
        return literal(p, end, "true", 4) ? p + 4 : MISS;
    case 'f':
        return literal(p, end, "false", 5) ? p + 5 : MISS;
    case 'n':
        return literal(p, end, "null", 4) ? p + 4 : MISS;
    default:
        return scan_number(p, end, &integer);
    }
}

/* One value of a slot of the given kind, at p: fills the slot, returns the position after it. */
static const char *typed_value(char kind, const char *p, const char *end, Slot *slot) {
    if (p >= end)
        return MISS;
    if (*p == 'n') {
        if (!literal(p, end, "null", 4))
            return MISS;
        slot->state = NUL;
        return p + 4;
    }
    int integer;
    const char *q;
    switch (kind) {
    case 'i':
        q = scan_number(p, end, &integer);
        if (!q || !integer || integer_value(p, q, &slot->ival) < 0)
            return MISS;
        slot->state = VALUE;
        return q;
    case 'b':
        if (literal(p, end, "true", 4)) {
            slot->ival = 1;
            q = p + 4;
        } else if (literal(p, end, "false", 5)) {
            slot->ival = 0;
            q = p + 5;
        } else
            return MISS;
        slot->state = VALUE;
        return q;
    case 's':
        if (*p != '"')
            return MISS;
        q = scan_string(p, end, &slot->start, &slot->end, &slot->escaped);
        if (q)
            slot->state = VALUE;
        return q;
    case 'r':
        q = skip_value(p, end, 1);
        if (q) {
            slot->start = p;
            slot->end = q;
            slot->state = VALUE;
        }
        return q;
    default:
        return MISS;
    }
}

/* ----- appending a line's values --------------------------------------- */

static void utf8_put(char **w, unsigned cp) {
    char *o = *w;
    if (cp < 0x80)
        *o++ = (char)cp;
    else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *w = o;
}

/* A string's content with its escapes resolved (scan_string checked them);
 * the result is never longer than the escaped text. */
static int unescape_put(Buf *b, const char *p, const char *end) {
    if (buf_reserve(b, (size_t)(end - p)) < 0)
        return -1;
    char *w = b->p + b->len;
    while (p < end) {
        if (*p != '\\') {
            *w++ = *p++;
            continue;
        }
        char e = p[1];
        unsigned u = 0;
        switch (e) {
        case 'b': *w++ = '\b'; p += 2; break;
        case 'f': *w++ = '\f'; p += 2; break;
        case 'n': *w++ = '\n'; p += 2; break;
        case 'r': *w++ = '\r'; p += 2; break;
        case 't': *w++ = '\t'; p += 2; break;
        case 'u':
            hex4(p + 2, &u);
            p += 6;
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo = 0xDC00;
                hex4(p + 2, &lo);
                p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            utf8_put(&w, u);
            break;
        default: *w++ = e; p += 2; break; /* " \ / */
        }
    }
    b->len = (size_t)(w - b->p);
    return 0;
}

static int column_append(Column *col, int64_t row, const Slot *slot) {
    int valid = slot->state == VALUE;
    if (bit_put(&col->valid, row, valid) < 0)
        return -1;
    if (!valid)
        col->nulls++;
    switch (col->kind) {
    case 'i': {
        int64_t v = valid ? slot->ival : 0;
        return buf_put(&col->data, &v, sizeof v);
    }
    case 'b':
        return bit_put(&col->data, row, valid && slot->ival);
    case 's':
    case 'r': {
        if (valid) {
            int rc = col->kind == 's' && slot->escaped ? unescape_put(&col->data, slot->start, slot->end)
                                                       : buf_put(&col->data, slot->start, (size_t)(slot->end - slot->start));
            if (rc < 0)
                return -1;
            if (col->data.len > INT32_MAX)
                return -2; /* beyond Arrow's 32-bit offsets: let the usual path take it */
        }
        int32_t off = (int32_t)col->data.len;
        return buf_put(&col->offsets, &off, sizeof off);
    }
    default:
        return 0; /* 'x': validity only */
    }
}

/* ----- lines ----------------------------------------------------------- */

enum { T_NONE, T_RECORD, T_STATE };

typedef struct {
    Py_ssize_t nkeys;         /* record keys: properties, then _sdc_deleted_at */
    const char **keys;
    Py_ssize_t *key_lens;
    const char *kinds;        /* one per slot: properties, deleted_at, extra, time_extracted, version */
    Py_ssize_t width;
    const char *stream;
    Py_ssize_t stream_len;
    Slot *slots;
    Py_ssize_t guess;         /* the record key expected next: keys come in the same order, as a rule */
    Buf scratch;              /* a key or a name spelt with escapes, resolved */
    int oom;
} Decoder;

/* A key or a name as text: a span without escapes is used as it is; one
 * with escapes (a Python tap's json.dumps escapes every non-ASCII letter) is
 * resolved into the decoder's scratch buffer, valid until the next call. */
static int resolved(Decoder *d, const char **s, const char **e, char escaped) {
    if (!escaped)
        return 0;
    d->scratch.len = 0;
    if (unescape_put(&d->scratch, *s, *e) < 0) {
        d->oom = 1;
        return -1;
    }
    *s = d->scratch.p;
    *e = d->scratch.p + d->scratch.len;
    return 0;
}

static Py_ssize_t find_key(Decoder *d, const char *k, Py_ssize_t n) {
    Py_ssize_t g = d->guess;
    if (g < d->nkeys && d->key_lens[g] == n && memcmp(d->keys[g], k, (size_t)n) == 0) {
        d->guess = g + 1;
        return g;
    }
    for (Py_ssize_t i = 0; i < d->nkeys; i++)
        if (d->key_lens[i] == n && memcmp(d->keys[i], k, (size_t)n) == 0) {
            d->guess = i + 1;
            return i;
        }
    return -1;
}

static const char *scan_record(Decoder *d, const char *p, const char *end) {
    for (Py_ssize_t i = 0; i < d->nkeys; i++)
        d->slots[i].state = ABSENT;
    d->guess = 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        const char *ks, *ke;
        char esc;
        if (p >= end || *p != '"')
            return MISS;
        p = scan_string(p, end, &ks, &ke, &esc);
        if (!p || resolved(d, &ks, &ke, esc) < 0)
            return MISS;
        Py_ssize_t i = find_key(d, ks, ke - ks);
        if (i < 0)
            return MISS; /* an undeclared property: the exact path keeps it in _sdc_extra */
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return MISS;
        p = skip_ws(p + 1, end);
        p = typed_value(d->kinds[i], p, end, &d->slots[i]);
        if (!p)
            return MISS;
        p = skip_ws(p, end);
        if (p >= end)
            return MISS;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return MISS;
        p = skip_ws(p + 1, end);
    }
}

#define KEY_IS(word) (ke - ks == (Py_ssize_t)(sizeof(word) - 1) && memcmp(ks, word, sizeof(word) - 1) == 0)

/* One line [p, end): its type, and for a STATE the value's text. The
 * record's values are left in d->slots (time_extracted and version too). */
static int scan_line(Decoder *d, const char *p, const char *end, const char **vs, const char **ve) {
    Slot *te = &d->slots[d->width - 2], *version = &d->slots[d->width - 1];
    int type = T_NONE, seen_stream = 0, seen_record = 0, seen_value = 0;
    te->state = version->state = ABSENT;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    for (;;) {
        const char *ks, *ke, *s, *e;
        char esc;
        if (p >= end || *p != '"')
            return -1;
        p = scan_string(p, end, &ks, &ke, &esc);
        if (!p || resolved(d, &ks, &ke, esc) < 0)
            return -1;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        if (KEY_IS("type")) {
            if (type != T_NONE || p >= end || *p != '"')
                return -1;
            p = scan_string(p, end, &s, &e, &esc);
            if (!p || resolved(d, &s, &e, esc) < 0)
                return -1;
            if (e - s == 6 && memcmp(s, "RECORD", 6) == 0)
                type = T_RECORD;
            else if (e - s == 5 && memcmp(s, "STATE", 5) == 0)
                type = T_STATE;
            else
                return -1;
        } else if (KEY_IS("stream")) {
            if (seen_stream++ || p >= end || *p != '"')
                return -1;
            p = scan_string(p, end, &s, &e, &esc);
            if (!p || resolved(d, &s, &e, esc) < 0 || e - s != d->stream_len || memcmp(s, d->stream, (size_t)(e - s)) != 0)
                return -1;
        } else if (KEY_IS("record")) {
            if (seen_record++ || p >= end || *p != '{')
                return -1;
            p = scan_record(d, p, end);
        } else if (KEY_IS("time_extracted")) {
            if (te->state != ABSENT)
                return -1;
            p = typed_value('s', p, end, te);
        } else if (KEY_IS("version")) {
            if (version->state != ABSENT)
                return -1;
            p = typed_value('i', p, end, version);
        } else if (KEY_IS("value")) {
            if (seen_value++)
                return -1;
            *vs = p;
            p = skip_value(p, end, 1);
            *ve = p;
        } else {
            p = skip_value(p, end, 1);
        }
        if (!p)
            return -1;
        p = skip_ws(p, end);
        if (p >= end)
            return -1;
        if (*p == '}')
            break;
        if (*p != ',')
            return -1;
        p = skip_ws(p + 1, end);
    }
    if (skip_ws(p + 1, end) != end)
        return -1; /* something after the object */
    if (type == T_RECORD && seen_stream && seen_record)
        return T_RECORD;
    if (type == T_STATE && seen_value)
        return T_STATE;
    return -1;
}

/* ----- the Python function --------------------------------------------- */

static void free_columns(Column *cols, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        free(cols[i].valid.p);
        free(cols[i].data.p);
        free(cols[i].offsets.p);
    }
    free(cols);
}

static PyObject *bytes_of(const Buf *b) {
    return PyBytes_FromStringAndSize(b->p ? b->p : "", (Py_ssize_t)b->len);
}

PyDoc_STRVAR(decode_block_doc,
"decode_block(block, start, max_records, stream, keys, kinds)\n"
"    -> (records, lines, end, columns, states)\n\n"
"Type the lines of `block` (bytes of whole lines, each ending in a newline\n"
"except perhaps the last) from byte offset `start`, as long as they are plain\n"
"RECORD lines of `stream` (bytes, UTF-8) or STATE lines, and stop after\n"
"`max_records` records. `keys`: the record's keys (a tuple of bytes: the\n"
"properties, then _sdc_deleted_at); `kinds`: one slot kind per column (bytes:\n"
"the properties, _sdc_deleted_at, _sdc_extra, time_extracted, version; see\n"
"the file's header).\n\n"
"`records`, `lines`: how many were typed; `end`: the offset of the first line\n"
"not taken (len(block) when all were). `columns`: per slot, (null_count,\n"
"validity, data, offsets) as bytes in Arrow's layout (offsets None for 'i' and\n"
"'b'; all None for 'x'). `states`: per STATE line, (its line index counted\n"
"from `start`, its first byte, the first byte of the next line, its value's\n"
"text as sent).");

static PyObject *decode_block(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer block, stream;
    Py_ssize_t start;
    long long max_records;
    PyObject *keys;
    const char *kinds;
    Py_ssize_t nkinds;
    if (!PyArg_ParseTuple(args, "y*nLy*O!y#", &block, &start, &max_records, &stream, &PyTuple_Type, &keys, &kinds, &nkinds))
        return NULL;
    PyObject *result = NULL, *states = NULL, *columns = NULL;
    Column *cols = NULL;
    Buf state_spans = {0}; /* per STATE: line index, line start, next line, value start, value end */
    Decoder d;
    memset(&d, 0, sizeof d);
    d.nkeys = PyTuple_GET_SIZE(keys);
    d.width = nkinds;
    d.kinds = kinds;
    d.stream = stream.buf;
    d.stream_len = stream.len;
    if (d.width != d.nkeys + 3) {
        PyErr_SetString(PyExc_ValueError, "kinds must name each key's slot, then _sdc_extra, time_extracted and version");
        goto done;
    }
    if (start < 0 || start > block.len) {
        PyErr_SetString(PyExc_ValueError, "start lies outside the block");
        goto done;
    }
    d.keys = PyMem_Calloc((size_t)d.nkeys + 1, sizeof *d.keys);
    d.key_lens = PyMem_Calloc((size_t)d.nkeys + 1, sizeof *d.key_lens);
    d.slots = PyMem_Calloc((size_t)d.width, sizeof *d.slots);
    cols = calloc((size_t)d.width, sizeof *cols);
    states = PyList_New(0);
    if (!d.keys || !d.key_lens || !d.slots || !cols || !states) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < d.nkeys; i++) {
        PyObject *k = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(k)) {
            PyErr_SetString(PyExc_TypeError, "keys must be bytes");
            goto done;
        }
        d.keys[i] = PyBytes_AS_STRING(k);
        d.key_lens[i] = PyBytes_GET_SIZE(k);
    }
    for (Py_ssize_t i = 0; i < d.width; i++)
        cols[i].kind = kinds[i];

    /* The scan touches no Python object, so other threads run meanwhile
     * (ingest's committer types columns and writes Parquet). A STATE's place
     * and text are kept as offsets into the block, made objects afterwards. */
    const char *base = block.buf, *p = base + start, *stop = base + block.len;
    int64_t records = 0, lines = 0;
    Py_BEGIN_ALLOW_THREADS
    while (p < stop && records < max_records) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *end = nl ? nl : stop;
        const char *next = nl ? nl + 1 : stop;
        const char *vs = NULL, *ve = NULL;
        int type = scan_line(&d, p, end, &vs, &ve);
        if (type < 0)
            break; /* not a line this path takes: the caller takes it, and the rest */
        if (type == T_STATE) {
            int64_t span[5] = {lines, p - base, next - base, vs - base, ve - base};
            if (buf_put(&state_spans, span, sizeof span) < 0) {
                d.oom = 1;
                break;
            }
        } else {
            /* Arrow's offsets are 32-bit: a column's text stops short of 2 GiB. */
            int room = 1;
            for (Py_ssize_t i = 0; i < d.width; i++)
                if ((kinds[i] == 's' || kinds[i] == 'r') && d.slots[i].state == VALUE &&
                    cols[i].data.len + (size_t)(d.slots[i].end - d.slots[i].start) > INT32_MAX)
                    room = 0;
            if (!room)
                break;
            for (Py_ssize_t i = 0; i < d.width; i++) {
                if (kinds[i] == 'x')
                    d.slots[i].state = ABSENT;
                if (column_append(&cols[i], records, &d.slots[i]) < 0)
                    d.oom = 1;
            }
            if (d.oom)
                break;
            records++;
        }
        lines++;
        p = next;
    }
    Py_END_ALLOW_THREADS
    if (d.oom) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t at = 0; at < state_spans.len; at += 5 * sizeof(int64_t)) {
        const int64_t *span = (const int64_t *)(state_spans.p + at);
        PyObject *entry = Py_BuildValue("(LLLy#)", (long long)span[0], (long long)span[1], (long long)span[2],
                                        base + span[3], (Py_ssize_t)(span[4] - span[3]));
        if (!entry || PyList_Append(states, entry) < 0) {
            Py_XDECREF(entry);
            goto done;
        }
        Py_DECREF(entry);
    }
    columns = PyList_New(d.width);
    if (!columns)
        goto done;
    for (Py_ssize_t i = 0; i < d.width; i++) {
        Column *c = &cols[i];
        PyObject *entry;
        if (c->kind == 'x')
            entry = Py_BuildValue("(LOOO)", (long long)records, Py_None, Py_None, Py_None);
        else if (c->kind == 'i' || c->kind == 'b')
            entry = Py_BuildValue("(LNNO)", (long long)c->nulls, bytes_of(&c->valid), bytes_of(&c->data), Py_None);
        else {
            int32_t zero = 0;
            Buf offsets = {0};
            if (buf_put(&offsets, &zero, sizeof zero) < 0 || buf_put(&offsets, c->offsets.p ? c->offsets.p : "", c->offsets.len) < 0) {
                free(offsets.p);
                PyErr_NoMemory();
                goto done;
            }
            entry = Py_BuildValue("(LNNN)", (long long)c->nulls, bytes_of(&c->valid), bytes_of(&c->data), bytes_of(&offsets));
            free(offsets.p);
        }
        if (!entry)
            goto done;
        PyList_SET_ITEM(columns, i, entry);
    }
    result = Py_BuildValue("(LLnOO)", (long long)records, (long long)lines, (Py_ssize_t)(p - base), columns, states);

done:
    if (cols)
        free_columns(cols, d.width);
    free(state_spans.p);
    free(d.scratch.p);
    PyMem_Free(d.keys);
    PyMem_Free(d.key_lens);
    PyMem_Free(d.slots);
    Py_XDECREF(columns);
    Py_XDECREF(states);
    PyBuffer_Release(&block);
    PyBuffer_Release(&stream);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_block", decode_block, METH_VARARGS, decode_block_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blockdecode",
    "Ingest's hot path in C: a block of plain RECORD lines typed into Arrow buffers (see records.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__blockdecode(void) { return PyModule_Create(&module); }
