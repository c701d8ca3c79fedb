/* The seen-trace filter's two hot loops (collector/calls/tracecache.py, SeenTraces), in C.

   Exactly the bits of the Python methods they stand in for: position i of a trace id is
   (h1 + i * h2) % bits, where h is the id's Python hash(), h1 its low 32 bits and h2 its
   high 32 bits with the lowest bit set. The filter's arrays are bytearrays owned by the
   Python object; rotation of generations stays in Python. The GIL is held throughout. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static int
first_probe(PyObject *trace_id, uint64_t *h1, uint64_t *h2)
{
    Py_hash_t h = PyObject_Hash(trace_id);
    if (h == -1 && PyErr_Occurred())
        return -1;
    uint64_t u = (uint64_t)h;
    *h1 = u & 0xFFFFFFFFu;
    *h2 = ((u >> 32) & 0xFFFFFFFFu) | 1u;
    return 0;
}

static int
writable(PyObject *buf, uint64_t bits, Py_buffer *view)
{
    if (PyObject_GetBuffer(buf, view, PyBUF_WRITABLE) < 0)
        return -1;
    if (bits == 0 || (uint64_t)view->len * 8 < bits) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "the filter holds fewer bits than it was asked to use");
        return -1;
    }
    return 0;
}

/* add_all(bits, hashes, current, trace_ids): set each id's positions in current. */
static PyObject *
add_all(PyObject *self, PyObject *args)
{
    unsigned long long bits;
    int hashes;
    PyObject *buf, *ids;
    if (!PyArg_ParseTuple(args, "KiOO", &bits, &hashes, &buf, &ids))
        return NULL;
    PyObject *seq = PySequence_Fast(ids, "trace ids must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_buffer view;
    if (writable(buf, bits, &view) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    uint8_t *bytes = (uint8_t *)view.buf;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int err = 0;
    for (Py_ssize_t k = 0; k < n && !err; k++) {
        uint64_t h1, h2;
        if (first_probe(items[k], &h1, &h2) < 0) {
            err = 1;
            break;
        }
        for (int i = 0; i < hashes; i++) {
            uint64_t pos = (h1 + (uint64_t)i * h2) % bits;
            bytes[pos >> 3] |= (uint8_t)(1u << (pos & 7));
        }
    }
    PyBuffer_Release(&view);
    Py_DECREF(seq);
    if (err)
        return NULL;
    Py_RETURN_NONE;
}

/* maybe_seen(bits, hashes, current, previous, trace_id): whether every position of the id
   is set in one generation or the other. */
static PyObject *
maybe_seen(PyObject *self, PyObject *args)
{
    unsigned long long bits;
    int hashes;
    PyObject *cur_obj, *prev_obj, *trace_id;
    if (!PyArg_ParseTuple(args, "KiOOO", &bits, &hashes, &cur_obj, &prev_obj, &trace_id))
        return NULL;
    uint64_t h1, h2;
    if (first_probe(trace_id, &h1, &h2) < 0)
        return NULL;
    Py_buffer cur, prev;
    if (writable(cur_obj, bits, &cur) < 0)
        return NULL;
    if (writable(prev_obj, bits, &prev) < 0) {
        PyBuffer_Release(&cur);
        return NULL;
    }
    const uint8_t *c = (const uint8_t *)cur.buf, *p = (const uint8_t *)prev.buf;
    int in_current = 1, in_previous = 1;
    for (int i = 0; i < hashes && (in_current || in_previous); i++) {
        uint64_t pos = (h1 + (uint64_t)i * h2) % bits;
        uint8_t mask = (uint8_t)(1u << (pos & 7));
        in_current = in_current && (c[pos >> 3] & mask);
        in_previous = in_previous && (p[pos >> 3] & mask);
    }
    PyBuffer_Release(&cur);
    PyBuffer_Release(&prev);
    return PyBool_FromLong(in_current || in_previous);
}

static PyMethodDef methods[] = {
    {"add_all", add_all, METH_VARARGS, "add_all(bits, hashes, current, trace_ids): set each id's bits."},
    {"maybe_seen", maybe_seen, METH_VARARGS,
     "maybe_seen(bits, hashes, current, previous, trace_id) -> whether every bit is set in either."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bloom", "The seen-trace filter's hot loops (see _bloom.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__bloom(void)
{
    return PyModule_Create(&module);
}
