/* OTLP trace export (protobuf bytes) -> DecodedSpan, without building the upb message.

   The fast path of collector/ingest/decode.py's decode_trace_body. decode.py's upb walk
   (decode_traces) is the reference: for a body this module accepts, it builds exactly
   what that walk builds (the same DecodedSpan, SpanEvent and Rejection values, dicts in
   the same order). Anything else it *declines*, returning None, and the caller sends the
   whole body through upb, so every unusual input keeps upb's answer and error message:

   - wire format: a truncated or malformed tag, varint or length; a field number this
     decoder does not know (newer fields, the profiles' *_strindex); a wire type that is
     not the field's; groups; a singular field or a second AnyValue member appearing
     twice (protobuf would keep the last or merge); invalid UTF-8 in any string field,
     read or not; AnyValue nesting deeper than MAX_DEPTH; Resource.entity_refs;
   - limits: more spans than max_spans (upb's path answers 413); a span, scope or scope
     version name longer than value_bytes bytes; an attribute value (string, bytes as hex,
     array or kvlist item count, kvlist key, at any depth) past a limit, unless its
     attribute name is content (is_content(name): kept whole, as any_value keeps it);
     a negative limit.

   Within those bounds decode.py's cuts never apply, so building values whole is exact:
   a string of at most value_bytes UTF-8 bytes is kept by _limited_attributes, _bounded
   and _long_text alike. Spans refused for bad ids or times, and spans, resources or
   events with too many attributes, are rejected here with decode.py's messages.

   The GIL is held throughout; the only Python code called back is is_content (a memoized
   dict lookup). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 16      /* AnyValue levels inside an attribute; upb allows 100 message levels */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* A dict about to get n keys, sized once instead of grown. */
#if PY_VERSION_HEX < 0x030D0000
#define new_dict(n) _PyDict_NewPresized(n)
#else
#define new_dict(n) PyDict_New()
#endif

/* Functions returning PyObject * return NULL either with an exception set (a real error,
   e.g. MemoryError) or without one: "decline". Functions returning int return 0 for ok,
   -1 the same way. */
#define DECLINE NULL

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Buf;

typedef struct {
    Py_ssize_t attributes, value_bytes, events, array_items, max_spans;
    PyObject *is_content;
    Py_ssize_t spans;
} Ctx;

/* ---------------------------------------------------------------- classes (setup) */

static const char *SPAN_FIELDS[] = {
    "trace_id", "span_id", "parent_span_id", "name", "kind", "start_ns", "end_ns", "attributes",
    "events", "status_code", "status_message", "resource", "scope_name", "scope_version",
};
#define N_SPAN_FIELDS 14
static const char *EVENT_FIELDS[] = {"name", "time_ns", "attributes"};
#define N_EVENT_FIELDS 3

static PyTypeObject *span_type, *event_type;
static Py_ssize_t span_offsets[N_SPAN_FIELDS], event_offsets[N_EVENT_FIELDS];
static PyObject *rejection_type;
static PyObject *s_empty, *s_invalid_trace_id, *s_invalid_span_id, *s_invalid_time, *s_too_many;

/* The slot offsets of a slots dataclass, in the given field order; -1 with an error if the
   class is not what this module was written for (then decode.py keeps to the upb path). */
static int
slot_offsets(PyObject *cls, PyObject *names, const char **expected, int n, Py_ssize_t *offsets)
{
    if (!PyType_Check(cls) || !PyTuple_Check(names) || PyTuple_GET_SIZE(names) != n) {
        PyErr_Format(PyExc_TypeError, "%R: expected a slots dataclass of %d fields", cls, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, expected[i]) != 0) {
            PyErr_Format(PyExc_TypeError, "%R: field %d is %R, expected %s", cls, i, name, expected[i]);
            return -1;
        }
        PyObject *descr = PyObject_GetAttr(cls, name);
        if (descr == NULL)
            return -1;
        int is_slot = Py_IS_TYPE(descr, &PyMemberDescr_Type);
        PyMemberDef *member = is_slot ? ((PyMemberDescrObject *)descr)->d_member : NULL;
        Py_DECREF(descr); /* the class keeps it */
        if (!is_slot) {
            PyErr_Format(PyExc_TypeError, "%R.%U is not a slot", cls, name);
            return -1;
        }
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
            PyErr_Format(PyExc_TypeError, "%R.%U is not a writable object slot", cls, name);
            return -1;
        }
        offsets[i] = member->offset;
    }
    return 0;
}

static PyObject *
setup(PyObject *self, PyObject *args)
{
    PyObject *span_cls, *span_names, *event_cls, *event_names, *rejection_cls;
    if (!PyArg_ParseTuple(args, "OOOOO", &span_cls, &span_names, &event_cls, &event_names, &rejection_cls))
        return NULL;
    if (slot_offsets(span_cls, span_names, SPAN_FIELDS, N_SPAN_FIELDS, span_offsets) < 0 ||
        slot_offsets(event_cls, event_names, EVENT_FIELDS, N_EVENT_FIELDS, event_offsets) < 0)
        return NULL;
    Py_INCREF(span_cls);
    Py_XSETREF(span_type, (PyTypeObject *)span_cls);
    Py_INCREF(event_cls);
    Py_XSETREF(event_type, (PyTypeObject *)event_cls);
    Py_INCREF(rejection_cls);
    Py_XSETREF(rejection_type, rejection_cls);
    Py_RETURN_NONE;
}

/* A new instance with every slot set from values (references stolen, all of them, even on
   failure). The dataclass's __init__ only assigns its fields, which is what this does. */
static PyObject *
new_record(PyTypeObject *type, const Py_ssize_t *offsets, PyObject **values, int n)
{
    PyObject *obj = type->tp_alloc(type, 0);
    if (obj == NULL) {
        for (int i = 0; i < n; i++)
            Py_XDECREF(values[i]);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        *(PyObject **)((char *)obj + offsets[i]) = values[i];
    return obj;
}

/* ---------------------------------------------------------------- wire format */

static inline int
read_varint(Buf *b, uint64_t *out)
{
    const uint8_t *p = b->p;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= b->end)
            return -1;
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1)
            return -1; /* past 64 bits: upb drops the excess, we decline */
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            b->p = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline int
read_tag(Buf *b, uint32_t *field, int *wt)
{
    uint64_t tag;
    if (read_varint(b, &tag) < 0 || tag > UINT32_MAX || (tag >> 3) == 0)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    return 0;
}

static inline int
read_len(Buf *b, Buf *sub)
{
    uint64_t n;
    if (read_varint(b, &n) < 0 || n > (uint64_t)(b->end - b->p))
        return -1;
    sub->p = b->p;
    sub->end = b->p + n;
    b->p += n;
    return 0;
}

static inline int
read_fixed64(Buf *b, uint64_t *out)
{
    if (b->end - b->p < 8)
        return -1;
    memcpy(out, b->p, 8); /* little-endian hosts only; see setup.py */
    b->p += 8;
    return 0;
}

/* Read the value of a field of the given (expected) wire type; -1 if the wire type is not
   that, or the value is malformed. LEN values land in *sub, numbers in *num. */
static inline int
read_value(Buf *b, int wt, int expected, Buf *sub, uint64_t *num)
{
    if (wt != expected)
        return -1;
    switch (wt) {
    case WT_VARINT:
        return read_varint(b, num);
    case WT_I64:
        return read_fixed64(b, num);
    case WT_LEN:
        return read_len(b, sub);
    case WT_I32:
        if (b->end - b->p < 4)
            return -1;
        b->p += 4;
        return 0;
    }
    return -1;
}

/* The next occurrence of a LEN field in a message already checked whole: 1 found, 0 none. */
static int
next_of(Buf *b, uint32_t want, Buf *out)
{
    while (b->p < b->end) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(b, &field, &wt) < 0 || read_value(b, wt, wt, &sub, &num) < 0)
            return 0; /* cannot happen: the message was checked */
        if (field == want) {
            *out = sub;
            return 1;
        }
    }
    return 0;
}

/* Strict UTF-8 (as Python's codec and upb check it): no overlongs, surrogates or > U+10FFFF. */
static int
utf8_valid(const uint8_t *s, Py_ssize_t n)
{
    const uint8_t *end = s + n;
    while (s < end) {
        uint8_t c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        Py_ssize_t left = end - s;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || (s[1] & 0xC0) != 0x80)
                return 0;
            s += 2;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
                return 0;
            s += 3;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
                return 0;
            s += 4;
        }
        else
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- values */

/* A str from UTF-8 bytes; NULL without an error (decline) when they are not valid UTF-8. */
static PyObject *
text(Buf b)
{
    Py_ssize_t n = b.end - b.p;
    if (n == 0)
        return Py_NewRef(s_empty);
    PyObject *s = PyUnicode_DecodeUTF8((const char *)b.p, n, NULL);
    if (s == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        PyErr_Clear();
    return s;
}

/* Short ASCII strings remembered across calls, one table for attribute names and one for
   values: spans repeat a few dozen names and many values (models, providers, services), so
   one str object per string (its hash computed once) is shared by every dict holding it.
   Direct-mapped, so bounded; a string enters only when it is seen twice in a row at its
   slot, so unique values (response ids) and invented names do not evict the repeated ones. */
typedef struct {
    PyObject *str; /* compact ASCII */
    uint64_t hash;
    uint64_t candidate; /* hash of the last miss at this slot */
} Cached;

#define CACHE_SLOTS 4096 /* per table, a power of 2 */
#define CACHE_MAX_BYTES 64
static Cached name_cache[CACHE_SLOTS], value_cache[CACHE_SLOTS];

/* A hash of n <= CACHE_MAX_BYTES bytes, 8 at a time; *ascii is whether they all are. */
static inline uint64_t
hash_bytes(const uint8_t *p, Py_ssize_t n, int *ascii)
{
    const uint64_t k = 0x9E3779B97F4A7C15ULL;
    uint64_t h = (uint64_t)n * k, high = 0, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        high |= w;
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, (size_t)n);
        high |= w;
        h = (h ^ w) * k;
    }
    *ascii = (high & 0x8080808080808080ULL) == 0;
    return h ^ (h >> 32);
}

/* A str from UTF-8 bytes, through a cache when short and ASCII (else text()). */
static PyObject *
cached_text(Cached *cache, Buf b)
{
    Py_ssize_t n = b.end - b.p;
    if (n == 0 || n > CACHE_MAX_BYTES)
        return text(b);
    int ascii;
    uint64_t h = hash_bytes(b.p, n, &ascii);
    if (!ascii)
        return text(b);
    Cached *slot = &cache[h & (CACHE_SLOTS - 1)];
    PyObject *hit = slot->str;
    if (hit != NULL && slot->hash == h && PyUnicode_GET_LENGTH(hit) == n &&
        memcmp(PyUnicode_1BYTE_DATA(hit), b.p, (size_t)n) == 0)
        return Py_NewRef(hit);
    PyObject *s = PyUnicode_New(n, 127);
    if (s == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(s), b.p, (size_t)n);
    if (slot->candidate == h) {
        Py_XSETREF(slot->str, Py_NewRef(s));
        slot->hash = h;
    }
    slot->candidate = h;
    return s;
}

static PyObject *
hex_text(Buf b)
{
    static const char digits[] = "0123456789abcdef";
    Py_ssize_t n = b.end - b.p;
    PyObject *s = PyUnicode_New(2 * n, 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = (Py_UCS1)digits[b.p[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[b.p[i] & 15];
    }
    return s;
}

static PyObject *any_value(Ctx *c, Buf b, int depth, int *over);

/* A KeyValue: its name and value (None when absent). */
static int
key_value(Ctx *c, Buf b, PyObject **key, PyObject **value, int depth, int *over, Py_ssize_t *key_bytes)
{
    Buf kb = {NULL, NULL}, vb = {NULL, NULL};
    int has_key = 0, has_value = 0;
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0)
            return -1;
        if (field == 1 && !has_key) {
            if (read_value(&b, wt, WT_LEN, &kb, &num) < 0)
                return -1;
            has_key = 1;
        }
        else if (field == 2 && !has_value) {
            if (read_value(&b, wt, WT_LEN, &vb, &num) < 0)
                return -1;
            has_value = 1;
        }
        else
            return -1; /* key_strindex, unknown or repeated */
    }
    *key = has_key ? cached_text(name_cache, kb) : Py_NewRef(s_empty);
    if (*key == NULL)
        return -1;
    *key_bytes = has_key ? kb.end - kb.p : 0;
    *value = has_value ? any_value(c, vb, depth, over) : Py_NewRef(Py_None);
    if (*value == NULL) {
        Py_CLEAR(*key);
        return -1;
    }
    return 0;
}

/* How many times a LEN field (and nothing else) occurs in an ArrayValue or KeyValueList. */
static Py_ssize_t
count_only(Buf b, uint32_t want)
{
    Py_ssize_t n = 0;
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0 || field != want || read_value(&b, wt, WT_LEN, &sub, &num) < 0)
            return -1;
        n++;
    }
    return n;
}

static PyObject *
array_value(Ctx *c, Buf b, int depth, int *over)
{
    Py_ssize_t n = count_only(b, 1);
    if (n < 0)
        return DECLINE;
    if (n > c->array_items)
        *over = 1;
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    Buf item;
    for (Py_ssize_t i = 0; next_of(&b, 1, &item); i++) {
        PyObject *v = any_value(c, item, depth + 1, over);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static PyObject *
kvlist_value(Ctx *c, Buf b, int depth, int *over)
{
    Py_ssize_t n = count_only(b, 1);
    if (n < 0)
        return DECLINE;
    if (n > c->array_items)
        *over = 1;
    PyObject *dict = new_dict(n);
    if (dict == NULL)
        return NULL;
    Buf kv;
    while (next_of(&b, 1, &kv)) {
        PyObject *key, *value;
        Py_ssize_t key_bytes;
        if (key_value(c, kv, &key, &value, depth + 1, over, &key_bytes) < 0) {
            Py_DECREF(dict);
            return NULL;
        }
        if (key_bytes > c->value_bytes)
            *over = 1; /* _bounded cuts a kvlist's keys too */
        int err = PyDict_SetItem(dict, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (err < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

/* An AnyValue as decode.any_value gives it; *over set when anything in it is past a limit. */
static PyObject *
any_value(Ctx *c, Buf b, int depth, int *over)
{
    if (depth > MAX_DEPTH)
        return DECLINE;
    uint32_t kind = 0;
    Buf sub = {NULL, NULL};
    uint64_t num = 0;
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        if (kind != 0 || read_tag(&b, &field, &wt) < 0)
            return DECLINE; /* a second member of the oneof: protobuf keeps the last or merges */
        static const int wire[8] = {-1, WT_LEN, WT_VARINT, WT_VARINT, WT_I64, WT_LEN, WT_LEN, WT_LEN};
        if (field > 7 || read_value(&b, wt, wire[field], &sub, &num) < 0)
            return DECLINE; /* string_value_strindex (8), unknown fields, bad wire types */
        kind = field;
    }
    switch (kind) {
    case 0:
        Py_RETURN_NONE;
    case 1:
        if (sub.end - sub.p > c->value_bytes)
            *over = 1;
        return cached_text(value_cache, sub);
    case 2:
        return PyBool_FromLong(num != 0);
    case 3:
        return PyLong_FromLongLong((long long)(int64_t)num);
    case 4: {
        double d;
        memcpy(&d, &num, sizeof d);
        return PyFloat_FromDouble(d);
    }
    case 5:
        return array_value(c, sub, depth, over);
    case 6:
        return kvlist_value(c, sub, depth, over);
    case 7:
        if (sub.end - sub.p > c->value_bytes / 2)
            *over = 1;
        return hex_text(sub);
    }
    return DECLINE;
}

/* The n `field` KeyValues of a message (checked whole) as _limited_attributes builds them,
   given n is at most c->attributes. With build 0 they are only checked and
   NULL is returned with *ok set. */
static PyObject *
attributes(Ctx *c, Buf msg, uint32_t field, Py_ssize_t n, int build, int *ok)
{
    *ok = 0;
    PyObject *dict = NULL;
    if (build && (dict = new_dict(n)) == NULL)
        return NULL;
    Buf kv;
    while (next_of(&msg, field, &kv)) {
        PyObject *key, *value;
        Py_ssize_t key_bytes;
        int over = 0;
        if (key_value(c, kv, &key, &value, 0, &over, &key_bytes) < 0)
            goto fail;
        if (build && over) {
            /* Past a limit: only content is kept whole (any_value); the rest is cut or refused. */
            PyObject *flag = PyObject_CallOneArg(c->is_content, key);
            int content = flag == NULL ? -1 : PyObject_IsTrue(flag);
            Py_XDECREF(flag);
            if (content != 1) {
                Py_DECREF(key);
                Py_DECREF(value);
                goto fail;
            }
        }
        int err = build ? PyDict_SetItem(dict, key, value) : 0;
        Py_DECREF(key);
        Py_DECREF(value);
        if (err < 0)
            goto fail;
    }
    *ok = 1;
    return dict;
fail:
    Py_XDECREF(dict);
    return NULL;
}

/* Check the KeyValues of a message without keeping them. */
static int
check_attributes(Ctx *c, Buf msg, uint32_t field)
{
    int ok;
    attributes(c, msg, field, 0, 0, &ok);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- rejections */

/* decode._shown: a name as a rejection message quotes it. */
static PyObject *
shown(PyObject *name)
{
    if (PyUnicode_GET_LENGTH(name) <= 64)
        return PyObject_Repr(name);
    PyObject *head = PyUnicode_Substring(name, 0, 64);
    if (head == NULL)
        return NULL;
    PyObject *quoted = PyObject_Repr(head);
    Py_DECREF(head);
    if (quoted == NULL)
        return NULL;
    PyObject *out = PyUnicode_FromFormat("%U...", quoted);
    Py_DECREF(quoted);
    return out;
}

/* Rejection(reason, f"span {_shown(name)}: {what}"), what formatted with one Py_ssize_t. */
static PyObject *
span_rejection(PyObject *reason, PyObject *name, const char *what, Py_ssize_t n, Py_ssize_t limit)
{
    PyObject *quoted = shown(name);
    if (quoted == NULL)
        return NULL;
    PyObject *why = PyUnicode_FromFormat(what, n, limit);
    PyObject *detail = why == NULL ? NULL : PyUnicode_FromFormat("span %U: %U", quoted, why);
    Py_DECREF(quoted);
    Py_XDECREF(why);
    if (detail == NULL)
        return NULL;
    PyObject *out = PyObject_CallFunctionObjArgs(rejection_type, reason, detail, NULL);
    Py_DECREF(detail);
    return out;
}

#define TOO_MANY "%zd attributes (max_attributes_per_span is %zd)"

/* ---------------------------------------------------------------- messages */

static int
all_zero(Buf b)
{
    for (const uint8_t *p = b.p; p < b.end; p++)
        if (*p)
            return 0;
    return 1;
}

/* Status: code (open enum: int32) and message. */
static int
status_fields(Buf b, int32_t *code, Buf *message)
{
    int seen = 0;
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0 || (field != 2 && field != 3) || (seen & (1 << field)))
            return -1;
        seen |= 1 << field;
        if (read_value(&b, wt, field == 2 ? WT_LEN : WT_VARINT, &sub, &num) < 0)
            return -1;
        if (field == 2) {
            if (!utf8_valid(sub.p, sub.end - sub.p))
                return -1;
            *message = sub;
        }
        else
            *code = (int32_t)(uint32_t)num;
    }
    return 0;
}

/* Span.Link: checked, never kept. */
static int
check_link(Ctx *c, Buf b)
{
    Buf msg = b;
    int seen = 0;
    static const int wire[7] = {-1, WT_LEN, WT_LEN, WT_LEN, WT_LEN, WT_VARINT, WT_I32};
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0 || field > 6 || (field != 4 && (seen & (1 << field))))
            return -1;
        seen |= 1 << field;
        if (read_value(&b, wt, wire[field], &sub, &num) < 0)
            return -1;
        if (field == 3 && !utf8_valid(sub.p, sub.end - sub.p))
            return -1;
    }
    return check_attributes(c, msg, 4);
}

typedef struct {
    Buf trace_id, span_id, parent, name, status;
    int has_status;
    int32_t kind;
    uint64_t start, end;
    Py_ssize_t n_attributes;
} SpanFields;

/* One pass over a Span: singular fields, attribute count; every field checked but the
   repeated messages (attributes, events, links), which are checked as they are read. */
static int
span_fields(Buf b, SpanFields *f)
{
    static const int wire[17] = {
        -1, WT_LEN, WT_LEN, WT_LEN, WT_LEN, WT_LEN, WT_VARINT, WT_I64, WT_I64,
        WT_LEN, WT_VARINT, WT_LEN, WT_VARINT, WT_LEN, WT_VARINT, WT_LEN, WT_I32,
    };
    uint32_t seen = 0;
    memset(f, 0, sizeof *f);
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0 || field > 16)
            return -1;
        int repeated = field == 9 || field == 11 || field == 13;
        if (!repeated && (seen & (1u << field)))
            return -1;
        seen |= 1u << field;
        if (read_value(&b, wt, wire[field], &sub, &num) < 0)
            return -1;
        switch (field) {
        case 1: f->trace_id = sub; break;
        case 2: f->span_id = sub; break;
        case 3:
            if (!utf8_valid(sub.p, sub.end - sub.p))
                return -1;
            break;
        case 4: f->parent = sub; break;
        case 5: f->name = sub; break;
        case 6: f->kind = (int32_t)(uint32_t)num; break;
        case 7: f->start = num; break;
        case 8: f->end = num; break;
        case 9: f->n_attributes++; break;
        case 15: f->status = sub; f->has_status = 1; break;
        default: break; /* dropped counts, flags; events and links are read later */
        }
    }
    return 0;
}

/* Span.Event: name, time and attribute count, all other fields checked. */
static int
event_fields(Buf b, Buf *name, uint64_t *time, Py_ssize_t *n_attributes)
{
    static const int wire[5] = {-1, WT_I64, WT_LEN, WT_LEN, WT_VARINT};
    int seen = 0;
    *name = (Buf){NULL, NULL};
    *time = 0;
    *n_attributes = 0;
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0 || field > 4 || (field != 3 && (seen & (1 << field))))
            return -1;
        seen |= 1 << field;
        if (read_value(&b, wt, wire[field], &sub, &num) < 0)
            return -1;
        if (field == 1)
            *time = num;
        else if (field == 2)
            *name = sub;
        else if (field == 3)
            (*n_attributes)++;
    }
    return 0;
}

typedef struct {
    PyObject *resource;    /* shared by the spans of one ResourceSpans */
    PyObject *scope_name;  /* ... and of one ScopeSpans */
    PyObject *scope_version;
    PyObject *refused;     /* the resource's Rejection, or NULL */
} Shared;

/* One Span: appended to spans or (its Rejection) to rejected. */
static int
span(Ctx *c, Buf b, const Shared *sh, PyObject *spans, PyObject *rejected)
{
    SpanFields f;
    if (span_fields(b, &f) < 0)
        return -1;
    if (f.name.end - f.name.p > c->value_bytes)
        return -1; /* _name_problem: attribute_too_long */
    PyObject *name = cached_text(value_cache, f.name);
    if (name == NULL)
        return -1;
    PyObject *rejection = NULL, *attrs = NULL, *events = NULL;
    int ok = 0;
    if (sh->refused)
        rejection = Py_NewRef(sh->refused);
    else if (f.trace_id.end - f.trace_id.p != 16 || all_zero(f.trace_id))
        rejection = span_rejection(s_invalid_trace_id, name, "trace id must be 16 non-zero bytes", 0, 0);
    else if (f.span_id.end - f.span_id.p != 8 || all_zero(f.span_id))
        rejection = span_rejection(s_invalid_span_id, name, "span id must be 8 non-zero bytes", 0, 0);
    else if (f.start == 0 || f.end < f.start)
        rejection = span_rejection(s_invalid_time, name, "start must be set and not after end", 0, 0);
    else if (f.n_attributes > c->attributes)
        rejection = span_rejection(s_too_many, name, TOO_MANY, f.n_attributes, c->attributes);
    if (rejection == NULL && PyErr_Occurred())
        goto done;

    attrs = attributes(c, b, 9, f.n_attributes, rejection == NULL, &ok);
    if (!ok)
        goto done;
    if (rejection == NULL && (events = PyList_New(0)) == NULL)
        goto done;
    Buf ev;
    Buf walk = b;
    for (Py_ssize_t i = 0; next_of(&walk, 11, &ev); i++) {
        Buf ev_name;
        uint64_t ev_time = 0;
        Py_ssize_t n;
        if (event_fields(ev, &ev_name, &ev_time, &n) < 0)
            goto fail;
        int keep = rejection == NULL && i < c->events; /* events past the limit are dropped */
        if (keep && n > c->attributes) {
            rejection = span_rejection(s_too_many, name, TOO_MANY, n, c->attributes);
            if (rejection == NULL)
                goto fail;
            keep = 0;
        }
        PyObject *values[N_EVENT_FIELDS] = {NULL, NULL, NULL};
        values[2] = attributes(c, ev, 3, n, keep, &ok);
        if (!ok)
            goto fail;
        if (keep) {
            if ((values[0] = cached_text(value_cache, ev_name)) == NULL ||
                (values[1] = PyLong_FromUnsignedLongLong(ev_time)) == NULL) {
                Py_XDECREF(values[0]);
                Py_XDECREF(values[1]);
                Py_DECREF(values[2]);
                goto fail;
            }
            PyObject *event = new_record(event_type, event_offsets, values, N_EVENT_FIELDS);
            if (event == NULL)
                goto fail;
            int err = PyList_Append(events, event);
            Py_DECREF(event);
            if (err < 0)
                goto fail;
        }
        else if (!utf8_valid(ev_name.p, ev_name.end - ev_name.p))
            goto fail;
    }
    walk = b;
    Buf link;
    while (next_of(&walk, 13, &link))
        if (check_link(c, link) < 0)
            goto fail;

    int32_t status_code = 0;
    Buf message = {NULL, NULL};
    if (f.has_status && status_fields(f.status, &status_code, &message) < 0)
        goto fail;
    if (rejection != NULL) {
        int err = PyList_Append(rejected, rejection);
        Py_CLEAR(rejection);
        ok = err == 0;
        goto done;
    }
    Buf parent = f.parent;
    int has_parent = parent.end - parent.p == 8 && !all_zero(parent);
    PyObject *values[N_SPAN_FIELDS] = {NULL};
    values[3] = name;
    values[7] = attrs;
    values[8] = events;
    name = attrs = events = NULL; /* owned by values now */
    if ((values[0] = hex_text(f.trace_id)) == NULL || (values[1] = hex_text(f.span_id)) == NULL ||
        (values[2] = has_parent ? hex_text(parent) : Py_NewRef(Py_None)) == NULL ||
        (values[4] = PyLong_FromLong(f.kind)) == NULL || (values[5] = PyLong_FromUnsignedLongLong(f.start)) == NULL ||
        (values[6] = PyLong_FromUnsignedLongLong(f.end)) == NULL ||
        (values[9] = PyLong_FromLong(status_code)) == NULL ||
        (values[10] = message.p ? text(message) : Py_NewRef(s_empty)) == NULL) {
        for (int i = 0; i < N_SPAN_FIELDS; i++)
            Py_XDECREF(values[i]);
        return -1;
    }
    values[11] = Py_NewRef(sh->resource);
    values[12] = Py_NewRef(sh->scope_name);
    values[13] = Py_NewRef(sh->scope_version);
    PyObject *record = new_record(span_type, span_offsets, values, N_SPAN_FIELDS);
    if (record == NULL)
        return -1;
    int err = PyList_Append(spans, record);
    Py_DECREF(record);
    return err;

fail:
    ok = 0;
done:
    Py_XDECREF(name);
    Py_XDECREF(rejection);
    Py_XDECREF(attrs);
    Py_XDECREF(events);
    return ok ? 0 : -1;
}

/* ResourceSpans and ScopeSpans share one shape: field 1 a singular message (the resource,
   the scope), field 2 the repeated children, field 3 schema_url. Finds field 1 and checks
   the others; -1 declines. */
static int
envelope(Buf b, Buf *head)
{
    int seen = 0;
    for (Buf walk = b; walk.p < walk.end;) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&walk, &field, &wt) < 0 || field < 1 || field > 3 || (field != 2 && (seen & (1 << field))))
            return -1;
        seen |= 1 << field;
        if (read_value(&walk, wt, WT_LEN, &sub, &num) < 0)
            return -1;
        if (field == 1)
            *head = sub;
        else if (field == 3 && !utf8_valid(sub.p, sub.end - sub.p))
            return -1;
    }
    return 0;
}

/* ScopeSpans: the scope's name and version, then each span. */
static int
scope_spans(Ctx *c, Buf b, Shared *sh, PyObject *spans, PyObject *rejected)
{
    Buf scope = {NULL, NULL};
    if (envelope(b, &scope) < 0)
        return -1;
    Buf name = {NULL, NULL}, version = {NULL, NULL};
    int scope_seen = 0;
    static const int wire[5] = {-1, WT_LEN, WT_LEN, WT_LEN, WT_VARINT};
    for (Buf walk = scope; walk.p < walk.end;) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&walk, &field, &wt) < 0 || field > 4 || (field != 3 && (scope_seen & (1 << field))))
            return -1;
        scope_seen |= 1 << field;
        if (read_value(&walk, wt, wire[field], &sub, &num) < 0)
            return -1;
        if (field == 1)
            name = sub;
        else if (field == 2)
            version = sub;
    }
    if (name.end - name.p > c->value_bytes || version.end - version.p > c->value_bytes)
        return -1; /* _name_problem: attribute_too_long */
    if (scope.p && check_attributes(c, scope, 3) < 0)
        return -1;
    sh->scope_name = name.p ? text(name) : Py_NewRef(s_empty);
    if (sh->scope_name == NULL)
        return -1;
    sh->scope_version = version.p ? text(version) : Py_NewRef(s_empty);
    int err = sh->scope_version == NULL ? -1 : 0;
    Buf sp;
    while (err == 0 && next_of(&b, 2, &sp)) {
        if (++c->spans > c->max_spans)
            err = -1; /* the upb path answers TooLarge */
        else
            err = span(c, sp, sh, spans, rejected);
    }
    Py_CLEAR(sh->scope_name);
    Py_CLEAR(sh->scope_version);
    return err;
}

/* ResourceSpans: the resource's attributes (or its Rejection), then each scope. */
static int
resource_spans(Ctx *c, Buf b, PyObject *spans, PyObject *rejected)
{
    Buf resource = {NULL, NULL};
    if (envelope(b, &resource) < 0)
        return -1;
    Py_ssize_t n = 0;
    int dropped_seen = 0;
    for (Buf walk = resource; walk.p < walk.end;) {
        uint32_t field;
        int wt;
        Buf sub = {NULL, NULL};
        uint64_t num = 0;
        if (read_tag(&walk, &field, &wt) < 0)
            return -1;
        if (field == 1) {
            if (read_value(&walk, wt, WT_LEN, &sub, &num) < 0)
                return -1;
            n++;
        }
        else if (field == 2 && !dropped_seen) {
            if (read_value(&walk, wt, WT_VARINT, &sub, &num) < 0)
                return -1;
            dropped_seen = 1;
        }
        else
            return -1; /* entity_refs, unknown, repeated */
    }
    Shared sh = {NULL, NULL, NULL, NULL};
    int ok;
    if (n > c->attributes) {
        PyObject *detail = PyUnicode_FromFormat("resource: " TOO_MANY, n, c->attributes);
        if (detail == NULL)
            return -1;
        sh.refused = PyObject_CallFunctionObjArgs(rejection_type, s_too_many, detail, NULL);
        Py_DECREF(detail);
        if (sh.refused == NULL || check_attributes(c, resource, 1) < 0 || (sh.resource = PyDict_New()) == NULL) {
            Py_XDECREF(sh.refused);
            return -1;
        }
    }
    else if ((sh.resource = attributes(c, resource, 1, n, 1, &ok)) == NULL)
        return -1;
    int err = 0;
    Buf ss;
    while (err == 0 && next_of(&b, 2, &ss))
        err = scope_spans(c, ss, &sh, spans, rejected);
    Py_DECREF(sh.resource);
    Py_XDECREF(sh.refused);
    return err;
}

static PyObject *
decode_traces(PyObject *self, PyObject *args)
{
    Py_buffer body;
    Ctx c = {0};
    if (!PyArg_ParseTuple(args, "y*nnnnnO", &body, &c.attributes, &c.value_bytes, &c.events, &c.array_items,
                          &c.max_spans, &c.is_content))
        return NULL;
    PyObject *spans = NULL, *rejected = NULL, *out = NULL;
    if (span_type == NULL || c.attributes < 0 || c.value_bytes < 0 || c.events < 0 || c.array_items < 0 ||
        c.max_spans < 0)
        goto done; /* not set up, or limits decode.py would read differently: decline */
    if ((spans = PyList_New(0)) == NULL || (rejected = PyList_New(0)) == NULL)
        goto done;
    Buf b = {(const uint8_t *)body.buf, (const uint8_t *)body.buf + body.len};
    while (b.p < b.end) {
        uint32_t field;
        int wt;
        Buf rs;
        uint64_t num = 0;
        if (read_tag(&b, &field, &wt) < 0 || field != 1 || read_value(&b, wt, WT_LEN, &rs, &num) < 0 ||
            resource_spans(&c, rs, spans, rejected) < 0)
            goto done;
    }
    out = PyTuple_Pack(2, spans, rejected);
done:
    PyBuffer_Release(&body);
    Py_XDECREF(spans);
    Py_XDECREF(rejected);
    if (out == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return out;
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_VARARGS,
     "setup(DecodedSpan, field names, SpanEvent, field names, Rejection): the classes to build."},
    {"decode_traces", decode_traces, METH_VARARGS,
     "decode_traces(body, attributes, value_bytes, events, array_items, max_spans, is_content)"
     " -> (spans, rejected), or None to decline."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_otlp", "OTLP trace export protobuf -> DecodedSpan (see _otlp.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__otlp(void)
{
    s_empty = PyUnicode_InternFromString("");
    s_invalid_trace_id = PyUnicode_InternFromString("invalid_trace_id");
    s_invalid_span_id = PyUnicode_InternFromString("invalid_span_id");
    s_invalid_time = PyUnicode_InternFromString("invalid_time");
    s_too_many = PyUnicode_InternFromString("too_many_attributes");
    if (!s_empty || !s_invalid_trace_id || !s_invalid_span_id || !s_invalid_time || !s_too_many)
        return NULL;
    return PyModule_Create(&module);
}
