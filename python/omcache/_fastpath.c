/*
 * omcache._fastpath: the single-key hot path (get, get_item, store, incr/decr)
 * and omcache.aio's start and collect in C, calling the engine's entry points through the table it exports
 * (go/bind/fastpath.h) instead of gopy's generated wrappers.
 *
 * What it saves per call (measured with callgrind, see docs/benchmarks.md):
 * parsing seven arguments through PyArg_ParseTupleAndKeywords, two cgo calls
 * from Go back into C to release and retake the GIL, the Python-level work
 * of finding a result buffer, slicing it and building the result, and the
 * getpid() system call of the fork check.
 *
 * Nothing here decides anything the Python layer does not: whatever is not
 * the plain case (a key that is not an exact str or bytes, a value that is
 * not exact bytes, a call in a process other than the one that opened the
 * engine, an error, a value larger than the stack buffer) comes back to
 * python/omcache/client.py, which handles it as before.  The engine reads
 * the key from the exact bytes object's own buffer or the exact str's own
 * (immutable, cached) UTF-8 representation, and the value from an exact
 * bytes object only; the caller holds references to both for the call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fastpath.h"

/* Must match go/bind (status.go, commands.go). tests/test_fastpath.py checks
 * them against omcache._engine. */
#define STATUS_OK 0
#define STATUS_MISS 1
#define GET_HEADER_LEN 13 /* status u8, flags u32, cas u64 */
#define LARGE_HEADER_LEN 21 /* GET header and the value's length (u64) */

/* Results up to this size come back in one call; larger ones take the
 * engine's large-value path (Python calls TakeValueInto). On the C stack:
 * no per-thread state to manage, and nothing outlives the call. */
#define BUF_SIZE 16384

/* The pid of this process, without a system call per request: a private
 * page marked MADV_WIPEONFORK reads zero in a child created by any fork()
 * (os.fork, C-level forks of prefork servers, multiprocessing), and then
 * getpid() re-arms it. Where the kernel lacks MADV_WIPEONFORK (Linux <
 * 4.14) every call asks getpid(). */
static volatile long long *pid_page;

static long long
current_pid(void)
{
    if (pid_page != NULL) {
        long long p = *pid_page;
        if (p != 0) {
            return p;
        }
        p = (long long)getpid();
        *pid_page = p;
        return p;
    }
    return (long long)getpid();
}

static void
init_pid_page(void)
{
#ifdef MADV_WIPEONFORK
    long sz = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return;
    }
    if (madvise(p, (size_t)sz, MADV_WIPEONFORK) != 0) {
        munmap(p, (size_t)sz);
        return;
    }
    pid_page = (volatile long long *)p;
#endif
}

typedef struct {
    PyObject_HEAD
    const struct omcache_fastpath *t;
    long long h;
    long long pid;
} Engine;

/* A key's bytes: an exact bytes object's buffer, or an exact str's UTF-8.
 * Returns 0 when the key is of another type or a str that is not valid
 * UTF-8 (the caller then takes the Python path, which raises what it
 * raises for such keys). */
static int
key_of(PyObject *key, const char **p, Py_ssize_t *n)
{
    if (PyBytes_CheckExact(key)) {
        *p = PyBytes_AS_STRING(key);
        *n = PyBytes_GET_SIZE(key);
        return 1;
    }
    if (PyUnicode_CheckExact(key)) {
        *p = PyUnicode_AsUTF8AndSize(key, n);
        if (*p == NULL) {
            PyErr_Clear();
            return 0;
        }
        return 1;
    }
    return 0;
}

/* A key get_plain/store/delta may send as it is under check: 0 any byte
 * (binary protocol), 1 none the text protocol cannot carry (space, control
 * characters, DEL), 2 printable ASCII only (libmemcached's verify_keys);
 * -1 no check at all (the engine checks keys itself). */
static int
plain_key(const char *k, Py_ssize_t kn, long check)
{
    if (check < 0) {
        return 1;
    }
    if (kn < 1 || kn > 250) {
        return 0;
    }
    if (check != 0) {
        for (Py_ssize_t i = 0; i < kn; i++) {
            unsigned char c = (unsigned char)k[i];
            if (c <= 0x20 || c == 0x7f || (check == 2 && c >= 0x80)) {
                return 0;
            }
        }
    }
    return 1;
}

static inline int
usable(Engine *self)
{
    return self->t != NULL && self->pid == current_pid();
}

/* (n, bytes of the buffer's first min(n, BUF_SIZE) bytes or its large-value
 * header when n <= 0): what the Python layer needs to finish a result that
 * is not a plain hit or miss. */
static PyObject *
slow_result(long long n, const unsigned char *buf)
{
    Py_ssize_t len = n > 0 ? (Py_ssize_t)n : LARGE_HEADER_LEN;
    if (len > BUF_SIZE) {
        len = BUF_SIZE;
    }
    return Py_BuildValue("(Ly#)", n, (const char *)buf, len);
}

static inline uint32_t
le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t
le64(const unsigned char *b)
{
    return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

static long long
do_get(Engine *self, const char *k, Py_ssize_t kn, unsigned char *buf, int gat, long long exptime)
{
    long long n;
    /* A status no result has: a result the engine keeps for TakeResult
     * (n <= 0) leaves the buffer unwritten, and must not read as a value. */
    memset(buf, 0xFF, LARGE_HEADER_LEN);
    Py_BEGIN_ALLOW_THREADS
    n = self->t->get(self->h, (long long)(intptr_t)k, (long long)kn, (long long)(intptr_t)buf, BUF_SIZE, gat, exptime);
    Py_END_ALLOW_THREADS
    return n;
}

PyDoc_STRVAR(get_doc,
"get(key) -> bytes | None | (n, head) | NotImplemented\n\n"
"The value of key (bytes), None on a miss, (n, head) for the Python layer to\n"
"finish (an error or a large value), NotImplemented when the fast path does\n"
"not apply (the key's type, or another process than the engine's).");

static PyObject *
Engine_get(Engine *self, PyObject *key)
{
    const char *k;
    Py_ssize_t kn;
    unsigned char buf[BUF_SIZE];
    if (!usable(self) || !key_of(key, &k, &kn)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long n = do_get(self, k, kn, buf, 0, 0);
    if (n > 0) {
        if (buf[0] == STATUS_OK && n >= GET_HEADER_LEN) {
            return PyBytes_FromStringAndSize((const char *)buf + GET_HEADER_LEN, (Py_ssize_t)(n - GET_HEADER_LEN));
        }
        if (buf[0] == STATUS_MISS) {
            Py_RETURN_NONE;
        }
    }
    return slow_result(n, buf);
}

PyDoc_STRVAR(get_plain_doc,
"get_plain(key, check) -> bytes | (value, flags, cas) | None | (n, head) | NotImplemented\n\n"
"get for a drop-in that decodes by flags: the value itself when its flags\n"
"are 0, else the item as get_item gives it. Before any I/O, a key that is\n"
"not an exact str or bytes of 1 to 250 bytes, or that check refuses, gives\n"
"NotImplemented: check 0 takes any byte (binary protocol), 1 refuses what\n"
"the text protocol cannot carry (space, control characters, DEL), 2 takes\n"
"only printable ASCII (libmemcached's verify_keys).");

static PyObject *
Engine_get_plain(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    unsigned char buf[BUF_SIZE];
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "get_plain(key, check)");
        return NULL;
    }
    long check = PyLong_AsLong(args[1]);
    if (check == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (check < 0) {
        check = 0;
    }
    if (!usable(self) || !key_of(args[0], &k, &kn) || !plain_key(k, kn, check)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long n = do_get(self, k, kn, buf, 0, 0);
    if (n > 0) {
        if (buf[0] == STATUS_OK && n >= GET_HEADER_LEN) {
            PyObject *v = PyBytes_FromStringAndSize((const char *)buf + GET_HEADER_LEN, (Py_ssize_t)(n - GET_HEADER_LEN));
            uint32_t flags = le32(buf + 1);
            if (v == NULL || flags == 0) {
                return v;
            }
            return Py_BuildValue("(NkK)", v, (unsigned long)flags, (unsigned long long)le64(buf + 5));
        }
        if (buf[0] == STATUS_MISS) {
            Py_RETURN_NONE;
        }
    }
    return slow_result(n, buf);
}

PyDoc_STRVAR(get_item_doc,
"get_item(key, gat, exptime) -> (value, flags, cas) | None | (n, head) | NotImplemented\n\n"
"get with the item's flags and CAS; with gat true a get-and-touch setting\n"
"the expiration to exptime.");

static PyObject *
Engine_get_item(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    unsigned char buf[BUF_SIZE];
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "get_item(key, gat, exptime)");
        return NULL;
    }
    int gat = PyObject_IsTrue(args[1]);
    if (gat < 0) {
        return NULL;
    }
    long long exptime = PyLong_AsLongLong(args[2]);
    if (exptime == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!usable(self) || !key_of(args[0], &k, &kn)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long n = do_get(self, k, kn, buf, gat, exptime);
    if (n > 0) {
        if (buf[0] == STATUS_OK && n >= GET_HEADER_LEN) {
            PyObject *v = PyBytes_FromStringAndSize((const char *)buf + GET_HEADER_LEN, (Py_ssize_t)(n - GET_HEADER_LEN));
            if (v == NULL) {
                return NULL;
            }
            return Py_BuildValue("(NkK)", v, (unsigned long)le32(buf + 1), (unsigned long long)le64(buf + 5));
        }
        if (buf[0] == STATUS_MISS) {
            Py_RETURN_NONE;
        }
    }
    return slow_result(n, buf);
}

PyDoc_STRVAR(store_doc,
"store(op, key, value, flags, exptime, cas[, check]) -> int | NotImplemented\n\n"
"bind.Store's result code; NotImplemented when the fast path does not apply\n"
"(the key's or value's type, a key check refuses (see get_plain), or\n"
"another process than the engine's). flags and exptime must already be\n"
"checked to be u32, cas u64.");

static PyObject *
Engine_store(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "store(op, key, value, flags, exptime, cas[, check])");
        return NULL;
    }
    long check = nargs == 7 ? PyLong_AsLong(args[6]) : -1;
    if (check == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long long op = PyLong_AsLongLong(args[0]);
    long long flags = PyLong_AsLongLong(args[3]);
    long long exptime = PyLong_AsLongLong(args[4]);
    unsigned long long cas = PyLong_AsUnsignedLongLong(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *value = args[2];
    if (!usable(self) || !PyBytes_CheckExact(value) || !key_of(args[1], &k, &kn) || !plain_key(k, kn, check)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long r;
    Py_BEGIN_ALLOW_THREADS
    r = self->t->store(self->h, op, (long long)(intptr_t)k, (long long)kn,
                       (long long)(intptr_t)PyBytes_AS_STRING(value), (long long)PyBytes_GET_SIZE(value),
                       flags, exptime, (long long)cas);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(r);
}

PyDoc_STRVAR(delta_doc,
"delta(decr, key, delta, initial, create, exptime[, check]) -> int | None | (n, head) | NotImplemented\n\n"
"incr (or decr with decr true): the new value, None on a miss, (n, head) for\n"
"the Python layer to finish (an error), NotImplemented when the fast path\n"
"does not apply (as for store). delta and initial must already be checked to be u64,\n"
"exptime u32.");

static PyObject *
Engine_delta(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    unsigned char buf[BUF_SIZE];
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "delta(decr, key, delta, initial, create, exptime[, check])");
        return NULL;
    }
    long check = nargs == 7 ? PyLong_AsLong(args[6]) : -1;
    if (check == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int decr = PyObject_IsTrue(args[0]);
    int create = PyObject_IsTrue(args[4]);
    if (decr < 0 || create < 0) {
        return NULL;
    }
    unsigned long long delta = PyLong_AsUnsignedLongLong(args[2]);
    unsigned long long initial = PyLong_AsUnsignedLongLong(args[3]);
    long long exptime = PyLong_AsLongLong(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!usable(self) || !key_of(args[1], &k, &kn) || !plain_key(k, kn, check)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long n;
    memset(buf, 0xFF, LARGE_HEADER_LEN);
    Py_BEGIN_ALLOW_THREADS
    n = self->t->delta(self->h, (long long)(intptr_t)k, (long long)kn, decr, (long long)delta, (long long)initial,
                       create, exptime, (long long)(intptr_t)buf, BUF_SIZE);
    Py_END_ALLOW_THREADS
    if (n == 9 && buf[0] == STATUS_OK) {
        return PyLong_FromUnsignedLongLong((unsigned long long)le64(buf + 1));
    }
    if (n == 1 && buf[0] == STATUS_MISS) {
        Py_RETURN_NONE;
    }
    return slow_result(n, buf);
}

PyDoc_STRVAR(async_start_doc,
"async_start(q, op, a, b, c, i1, i2, i3, i4) -> int | NotImplemented\n\n"
"bind.AsyncStart on completion queue q for this engine client: its result\n"
"(an int), or NotImplemented when the fast path does not apply (a, b or c\n"
"not exact bytes, or another process than the engine's).");

static PyObject *
Engine_async_start(Engine *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long v[9];
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "async_start(q, op, a, b, c, i1, i2, i3, i4)");
        return NULL;
    }
    for (int i = 0; i < 9; i++) {
        if (i >= 2 && i <= 4) {
            continue;
        }
        v[i] = PyLong_AsLongLong(args[i]);
        if (v[i] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *a = args[2], *b = args[3], *c = args[4];
    if (!usable(self) || !PyBytes_CheckExact(a) || !PyBytes_CheckExact(b) || !PyBytes_CheckExact(c)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long r;
    Py_BEGIN_ALLOW_THREADS
    r = self->t->async_start(v[0], self->h, v[1],
                             (long long)(intptr_t)PyBytes_AS_STRING(a), (long long)PyBytes_GET_SIZE(a),
                             (long long)(intptr_t)PyBytes_AS_STRING(b), (long long)PyBytes_GET_SIZE(b),
                             (long long)(intptr_t)PyBytes_AS_STRING(c), (long long)PyBytes_GET_SIZE(c),
                             v[5], v[6], v[7], v[8]);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(r);
}

PyDoc_STRVAR(async_collect_doc,
"async_collect(q) -> bytes | int | NotImplemented\n\n"
"bind.AsyncCollect for completion queue q: the packed results (bytes), or\n"
"a negative int -token when they do not fit the stack buffer (TakeResult\n"
"returns them), or NotImplemented in another process than the engine's.");

static PyObject *
Engine_async_collect(Engine *self, PyObject *arg)
{
    unsigned char buf[BUF_SIZE];
    long long q = PyLong_AsLongLong(arg);
    if (q == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!usable(self)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long n;
    Py_BEGIN_ALLOW_THREADS
    n = self->t->async_collect(q, (long long)(intptr_t)buf, BUF_SIZE);
    Py_END_ALLOW_THREADS
    if (n < 0) {
        return PyLong_FromLongLong(n);
    }
    return PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)n);
}

static int
Engine_init(Engine *self, PyObject *args, PyObject *kwds)
{
    long long table, h, pid;
    static char *kwlist[] = {"table", "handle", "pid", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLL:Engine", kwlist, &table, &h, &pid)) {
        return -1;
    }
    const struct omcache_fastpath *t = (const struct omcache_fastpath *)(intptr_t)table;
    if (t == NULL || t->version != OMCACHE_FASTPATH_VERSION) {
        PyErr_Format(PyExc_ValueError, "omcache engine fast-path table of version %lld, expected %d",
                     t == NULL ? -1LL : t->version, OMCACHE_FASTPATH_VERSION);
        return -1;
    }
    self->t = t;
    self->h = h;
    self->pid = pid;
    return 0;
}

static PyMethodDef Engine_methods[] = {
    {"get", (PyCFunction)Engine_get, METH_O, get_doc},
    {"get_item", (PyCFunction)(void (*)(void))Engine_get_item, METH_FASTCALL, get_item_doc},
    {"get_plain", (PyCFunction)(void (*)(void))Engine_get_plain, METH_FASTCALL, get_plain_doc},
    {"store", (PyCFunction)(void (*)(void))Engine_store, METH_FASTCALL, store_doc},
    {"delta", (PyCFunction)(void (*)(void))Engine_delta, METH_FASTCALL, delta_doc},
    {"async_start", (PyCFunction)(void (*)(void))Engine_async_start, METH_FASTCALL, async_start_doc},
    {"async_collect", (PyCFunction)Engine_async_collect, METH_O, async_collect_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "omcache._fastpath.Engine",
    .tp_doc = PyDoc_STR("Engine(table, handle, pid): one engine client's hot path, valid in process pid only."),
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_methods = Engine_methods,
};

static PyObject *
fp_getpid(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyLong_FromLongLong(current_pid());
}

static PyObject *
fp_wipeonfork(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    return PyBool_FromLong(pid_page != NULL);
}

static PyMethodDef module_methods[] = {
    {"getpid", fp_getpid, METH_NOARGS,
     PyDoc_STR("getpid() -> int: os.getpid() without a system call per call (see wipe_on_fork).")},
    {"wipe_on_fork", fp_wipeonfork, METH_NOARGS,
     PyDoc_STR("wipe_on_fork() -> bool: whether getpid() notices a fork through a MADV_WIPEONFORK page.")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "omcache._fastpath",
    .m_doc = PyDoc_STR("omcache's single-key hot path in C, over the engine's C table (internal)."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&EngineType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&EngineType);
    if (PyModule_AddObject(m, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(&EngineType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "VERSION", OMCACHE_FASTPATH_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "BUF_SIZE", BUF_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "STATUS_OK", STATUS_OK) < 0 ||
        PyModule_AddIntConstant(m, "STATUS_MISS", STATUS_MISS) < 0 ||
        PyModule_AddIntConstant(m, "GET_HEADER_LEN", GET_HEADER_LEN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (pid_page == NULL) {
        init_pid_page();
    }
    return m;
}
