/*
 * radius_contracts.radius._udp: many datagrams per system call on an IPv4 UDP socket.
 *
 * Optional, like _wire: radius/udp.py uses it when it was built (and not
 * RADIUS_CONTRACTS_PURE_PYTHON=1), and reads and sends one datagram per call otherwise.
 *
 *   recv_many(fd, limit) -> [(data, (host, port)), ...]   recvmmsg(2), at most limit
 *   send_many(fd, messages, start) -> count               sendmmsg(2) of messages[start:]
 *
 * Why: under load a listener's wake-up finds dozens of requests queued. Reading them one
 * recvfrom() at a time, and answering each with its own sendto(), made the system calls and
 * their Python wrappers about a quarter of an Access-Request's cost (perf, December 2026).
 * recv_many returns what one recvmmsg() found; the transport collects the replies its
 * protocol sends meanwhile and hands them to one sendmmsg().
 *
 * Both calls keep the GIL: the socket is non-blocking (MSG_DONTWAIT), so neither waits, and
 * letting go of the GIL between two datagrams would only let another thread (the SQLite
 * writer) take it for up to the switch interval while the event loop waits.
 *
 * Addresses are what socket.recvfrom gives for AF_INET ("a.b.c.d", port) and what it takes
 * back; a host that is not a dotted quad is refused with ValueError (the transport then sends
 * that one datagram with socket.sendto, which resolves names).
 */

#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_BATCH 64
/* The largest UDP payload over IPv4 is 65,507 octets: every datagram arrives whole, so an
 * oversized request is seen (and dropped by the listener) as one, as with recvfrom(65535). */
#define MAX_DATAGRAM 65536

/* Filled by recvmmsg; the GIL serialises every use. Pages that are never written (all but the
 * first of each buffer, for RADIUS-sized datagrams) never become resident. */
static uint8_t receive_buffers[MAX_BATCH][MAX_DATAGRAM];

/* Host strings of recent peers, by IPv4 address: a listener hears a handful of NAS, and
 * formatting the address again for every datagram was a visible part of recvfrom's cost.
 * Bounded: cleared when it passes HOSTS_MAX entries (spoofed sources cannot grow it). */
#define HOSTS_MAX 4096
static PyObject *hosts; /* dict: int (address, network order) -> str */

static PyObject *host_of(const struct in_addr *address)
{
    PyObject *key = PyLong_FromUnsignedLong(address->s_addr);
    if (key == NULL) return NULL;
    PyObject *host = PyDict_GetItemWithError(hosts, key); /* borrowed */
    if (host != NULL) {
        Py_DECREF(key);
        Py_INCREF(host);
        return host;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, address, text, sizeof text) == NULL) {
        Py_DECREF(key);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    host = PyUnicode_FromString(text);
    if (host == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    if (PyDict_GET_SIZE(hosts) >= HOSTS_MAX) PyDict_Clear(hosts);
    int failed = PyDict_SetItem(hosts, key, host);
    Py_DECREF(key);
    if (failed) {
        Py_DECREF(host);
        return NULL;
    }
    return host;
}

/* An int argument (PyLong_AsInt is Python 3.13's). */
static int int_arg(PyObject *value, int *out)
{
    long number = PyLong_AsLong(value);
    if (number == -1 && PyErr_Occurred()) return -1;
    if (number < INT_MIN || number > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "argument out of range");
        return -1;
    }
    *out = (int)number;
    return 0;
}

static PyObject *udp_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, limit;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "recv_many(fd, limit)");
        return NULL;
    }
    if (int_arg(args[0], &fd) < 0 || int_arg(args[1], &limit) < 0) return NULL;
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "limit must be positive");
        return NULL;
    }
    if (limit > MAX_BATCH) limit = MAX_BATCH;

    struct mmsghdr messages[MAX_BATCH];
    struct iovec vectors[MAX_BATCH];
    struct sockaddr_in peers[MAX_BATCH];
    memset(messages, 0, sizeof(messages[0]) * (size_t)limit);
    for (int i = 0; i < limit; i++) {
        vectors[i].iov_base = receive_buffers[i];
        vectors[i].iov_len = MAX_DATAGRAM;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &peers[i];
        messages[i].msg_hdr.msg_namelen = sizeof peers[i];
    }
    int count = recvmmsg(fd, messages, (unsigned)limit, MSG_DONTWAIT, NULL);
    if (count < 0) return PyErr_SetFromErrno(PyExc_OSError); /* EAGAIN: BlockingIOError */

    PyObject *result = PyList_New(count);
    if (result == NULL) return NULL;
    for (int i = 0; i < count; i++) {
        if (peers[i].sin_family != AF_INET ||
            messages[i].msg_hdr.msg_namelen < (socklen_t)sizeof peers[i]) {
            Py_DECREF(result);
            PyErr_SetString(PyExc_OSError, "recv_many: not an IPv4 peer");
            return NULL;
        }
        PyObject *host = host_of(&peers[i].sin_addr);
        if (host == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyObject *item = Py_BuildValue(
            "(y#(Ni))", (const char *)receive_buffers[i], (Py_ssize_t)messages[i].msg_len, host,
            (int)ntohs(peers[i].sin_port));
        if (item == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, item);
    }
    return result;
}

/* ("a.b.c.d", port) into peer; -1 with ValueError (or TypeError) set when it is not one. */
static int peer_of(PyObject *address, struct sockaddr_in *peer)
{
    if (!PyTuple_Check(address) || PyTuple_GET_SIZE(address) != 2) {
        PyErr_SetString(PyExc_ValueError, "send_many: address is not (host, port)");
        return -1;
    }
    const char *host = PyUnicode_Check(PyTuple_GET_ITEM(address, 0))
                           ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(address, 0))
                           : NULL;
    if (host == NULL) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "send_many: host is not a string");
        return -1;
    }
    long port = PyLong_AsLong(PyTuple_GET_ITEM(address, 1));
    if (port == -1 && PyErr_Occurred()) return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "send_many: port out of range");
        return -1;
    }
    memset(peer, 0, sizeof *peer);
    peer->sin_family = AF_INET;
    peer->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &peer->sin_addr) != 1) {
        PyErr_SetString(PyExc_ValueError, "send_many: host is not an IPv4 address");
        return -1;
    }
    return 0;
}

static PyObject *udp_send_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "send_many(fd, messages: list, start)");
        return NULL;
    }
    int fd;
    if (int_arg(args[0], &fd) < 0) return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[2]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    PyObject *list = args[1];
    Py_ssize_t size = PyList_GET_SIZE(list);
    if (start < 0 || start >= size) {
        PyErr_SetString(PyExc_ValueError, "send_many: start out of range");
        return NULL;
    }
    Py_ssize_t count = size - start;
    if (count > MAX_BATCH) count = MAX_BATCH;

    struct mmsghdr messages[MAX_BATCH];
    struct iovec vectors[MAX_BATCH];
    struct sockaddr_in peers[MAX_BATCH];
    memset(messages, 0, sizeof(messages[0]) * (size_t)count);
    /* Up to the first message that cannot be sent this way: the caller sends that one alone. */
    Py_ssize_t ready = 0;
    for (; ready < count; ready++) {
        PyObject *message = PyList_GET_ITEM(list, start + ready);
        if (!PyTuple_Check(message) || PyTuple_GET_SIZE(message) != 2 ||
            !PyBytes_Check(PyTuple_GET_ITEM(message, 0))) {
            PyErr_SetString(PyExc_TypeError, "send_many: messages are (bytes, address)");
            return NULL;
        }
        if (peer_of(PyTuple_GET_ITEM(message, 1), &peers[ready]) < 0) break;
        PyObject *data = PyTuple_GET_ITEM(message, 0);
        vectors[ready].iov_base = PyBytes_AS_STRING(data);
        vectors[ready].iov_len = (size_t)PyBytes_GET_SIZE(data);
        messages[ready].msg_hdr.msg_iov = &vectors[ready];
        messages[ready].msg_hdr.msg_iovlen = 1;
        messages[ready].msg_hdr.msg_name = &peers[ready];
        messages[ready].msg_hdr.msg_namelen = sizeof peers[ready];
    }
    if (ready == 0) return NULL; /* the first one's ValueError */
    PyErr_Clear();               /* a later one's waits for the next call */
    /* The bytes stay alive: the list holds them, and nothing else runs while the GIL is kept. */
    int sent = sendmmsg(fd, messages, (unsigned)ready, MSG_DONTWAIT);
    if (sent < 0) return PyErr_SetFromErrno(PyExc_OSError); /* the first message's error */
    return PyLong_FromLong(sent);
}

static PyMethodDef udp_methods[] = {
    {"recv_many", (PyCFunction)(void (*)(void))udp_recv_many, METH_FASTCALL,
     "The datagrams one recvmmsg() finds, at most limit, as [(data, (host, port))]; "
     "BlockingIOError when there are none."},
    {"send_many", (PyCFunction)(void (*)(void))udp_send_many, METH_FASTCALL,
     "sendmmsg() of messages[start:] (at most 64): how many went out; OSError for the first's "
     "error, ValueError when its address is not an IPv4 (host, port)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef udp_module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_udp",
    .m_doc = "Batched UDP reads and sends in C (optional; see radius_contracts/radius/_udp.c).",
    .m_size = -1,
    .m_methods = udp_methods,
};

PyMODINIT_FUNC PyInit__udp(void)
{
    hosts = PyDict_New();
    if (hosts == NULL) return NULL;
    return PyModule_Create(&udp_module);
}
