/* agentsh_ipy_native: the native fast path's Python face. The matcher
 * itself, which parses the tracee's bytes, is _matcher.c (no Python there). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_matcher.h"

typedef struct {
    PyObject_HEAD
    Table table;
    int loaded;
} FileTable;

static void FileTable_dealloc(FileTable *self)
{
    table_free(&self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int FileTable_init(FileTable *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"program", NULL};
    Py_buffer buf;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:FileTable", kwlist, &buf))
        return -1;
    if (self->loaded || self->table.words) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_TypeError, "FileTable is loaded once");
        return -1;
    }
    int rc = table_load(&self->table, buf.buf, (size_t)buf.len);
    PyBuffer_Release(&buf);
    if (rc == TABLE_NOMEM) {
        PyErr_NoMemory();
        return -1;
    }
    if (rc != TABLE_OK) {
        PyErr_SetString(PyExc_ValueError, "file table: malformed program");
        return -1;
    }
    self->loaded = 1;
    return 0;
}

static PyObject *FileTable_match(FileTable *self, PyObject *args)
{
    unsigned int ops;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "Iy*:match", &ops, &buf))
        return NULL;
    if (!self->loaded) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "file table: not loaded");
        return NULL;
    }
    long found = table_match(&self->table, ops, buf.buf, (size_t)buf.len);
    PyBuffer_Release(&buf);
    if (found == TABLE_NOMEM)
        return PyErr_NoMemory();
    return PyLong_FromLong(found);
}

static PyMethodDef FileTable_methods[] = {
    {"match", (PyCFunction)FileTable_match, METH_VARARGS,
     "match(ops, path) -> index of the first rule whose operation mask meets ops and one of "
     "whose globs matches the normalized path (bytes), or -1."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FileTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "agentsh_ipy_native.FileTable",
    .tp_basicsize = sizeof(FileTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FileTable(program): file rules compiled by agentsh_ipy.policy._table.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FileTable_init,
    .tp_dealloc = (destructor)FileTable_dealloc,
    .tp_methods = FileTable_methods,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "agentsh_ipy_native",
    .m_doc = "The native fast path: the file-rule matcher.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit_agentsh_ipy_native(void)
{
    if (PyType_Ready(&FileTableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (!m)
        return NULL;
    Py_INCREF(&FileTableType);
    if (PyModule_AddObject(m, "FileTable", (PyObject *)&FileTableType) < 0) {
        Py_DECREF(&FileTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
