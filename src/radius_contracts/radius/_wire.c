/*
 * radius_contracts.radius._wire: the per-packet wire work of Access- and Accounting-Requests
 * in C.
 *
 * Optional: radius/codec.py and radius/protocol.py use it when it was built, and their pure
 * Python code otherwise (or with RADIUS_CONTRACTS_PURE_PYTHON=1); both give the same answers,
 * which tests/unit/radius/test_wire.py checks on random and crafted packets. Nothing here
 * decides anything: it parses, verifies, decrypts and frames, exactly as codec.py does.
 *
 *   md5(data) -> 16 bytes                                   RFC 1321
 *   hmac_md5(key, *parts) -> 16 bytes                       RFC 2104
 *   decrypt_password(value, secret, authenticator)          RFC 2865 §5.2
 *   salt_encrypt(plain, secret, authenticator, salt)        RFC 2868 §3.5, RFC 2548 §2.4.2
 *   parse_access(data, secret) -> tuple | None              RFC 2865 §3, §5; RFC 3579 §3.2
 *   parse_accounting(data, secret) -> tuple | None          RFC 2866 §3, §5; RFC 2869 §5
 *   reply(code, identifier, request_authenticator, attributes, secret, proxy_states[,
 *         message_authenticator])
 *
 * parse_access returns None for anything it does not handle (a malformed packet, a
 * User-Password of odd length): the caller then takes the Python path, which knows every
 * detail (and every reason to drop a packet).
 *
 * MD5 is written here from the algorithm as RFC 1321 §3 specifies it (four rounds of
 * sixteen steps, T[i] = floor(2^32 * |sin(i)|)); RADIUS cannot choose another hash.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

/* -- MD5 (RFC 1321) -------------------------------------------------------------------------- */

typedef struct {
    uint32_t state[4];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes in block */
} md5_ctx;

static const uint32_t md5_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391,
};
/* Left rotations per step, four per round (RFC 1321 §3.4). */
static const uint8_t md5_r[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static inline uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static void md5_compress(uint32_t state[4], const uint8_t block[64])
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++) { /* the message words are little-endian */
        m[i] = (uint32_t)block[4 * i] | ((uint32_t)block[4 * i + 1] << 8) |
               ((uint32_t)block[4 * i + 2] << 16) | ((uint32_t)block[4 * i + 3] << 24);
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d); /* F */
            g = i;
        } else if (i < 32) {
            f = (b & d) | (c & ~d); /* G */
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d; /* H */
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d); /* I */
            g = (7 * i) % 16;
        }
        uint32_t next = d;
        d = c;
        c = b;
        b = b + rotl(a + f + md5_t[i] + m[g], md5_r[i]);
        a = next;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
}

static void md5_init(md5_ctx *ctx)
{
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->length = 0;
    ctx->used = 0;
}

static void md5_update(md5_ctx *ctx, const uint8_t *data, size_t size)
{
    ctx->length += size;
    if (ctx->used) {
        size_t take = 64 - ctx->used;
        if (take > size) take = size;
        memcpy(ctx->block + ctx->used, data, take);
        ctx->used += take;
        data += take;
        size -= take;
        if (ctx->used < 64) return;
        md5_compress(ctx->state, ctx->block);
        ctx->used = 0;
    }
    while (size >= 64) {
        md5_compress(ctx->state, data);
        data += 64;
        size -= 64;
    }
    if (size) {
        memcpy(ctx->block, data, size);
        ctx->used = size;
    }
}

static void md5_final(md5_ctx *ctx, uint8_t out[16])
{
    /* RFC 1321 §3.1-3.2: a 1 bit, zeros to 56 mod 64, then the bit length, little-endian. */
    uint64_t bits = ctx->length * 8;
    uint8_t pad[72];
    size_t padding = (ctx->used < 56) ? (56 - ctx->used) : (120 - ctx->used);
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++) pad[padding + i] = (uint8_t)(bits >> (8 * i));
    md5_update(ctx, pad, padding + 8);
    for (int i = 0; i < 4; i++) {
        out[4 * i] = (uint8_t)ctx->state[i];
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 3] = (uint8_t)(ctx->state[i] >> 24);
    }
}

/* -- HMAC-MD5 (RFC 2104) --------------------------------------------------------------------- */

typedef struct {
    md5_ctx inner, outer;
} hmac_ctx;

static void hmac_init(hmac_ctx *ctx, const uint8_t *key, size_t size)
{
    uint8_t block[64], hashed[16];
    if (size > 64) { /* a key longer than the block is hashed first */
        md5_ctx k;
        md5_init(&k);
        md5_update(&k, key, size);
        md5_final(&k, hashed);
        key = hashed;
        size = 16;
    }
    memset(block, 0, 64);
    memcpy(block, key, size);
    for (int i = 0; i < 64; i++) block[i] ^= 0x36;
    md5_init(&ctx->inner);
    md5_update(&ctx->inner, block, 64);
    for (int i = 0; i < 64; i++) block[i] ^= 0x36 ^ 0x5c;
    md5_init(&ctx->outer);
    md5_update(&ctx->outer, block, 64);
}

static void hmac_final(hmac_ctx *ctx, uint8_t out[16])
{
    uint8_t inner[16];
    md5_final(&ctx->inner, inner);
    md5_update(&ctx->outer, inner, 16);
    md5_final(&ctx->outer, out);
}

/* -- RADIUS ---------------------------------------------------------------------------------- */

enum {
    USER_NAME = 1,
    USER_PASSWORD = 2,
    CHAP_PASSWORD = 3,
    NAS_IP_ADDRESS = 4,
    NAS_PORT = 5,
    FRAMED_IP_ADDRESS = 8,
    VENDOR_SPECIFIC = 26,
    CALLED_STATION_ID = 30,
    CALLING_STATION_ID = 31,
    NAS_IDENTIFIER = 32,
    PROXY_STATE = 33,
    ACCT_STATUS_TYPE = 40,
    ACCT_DELAY_TIME = 41,
    ACCT_INPUT_OCTETS = 42,
    ACCT_OUTPUT_OCTETS = 43,
    ACCT_SESSION_ID = 44,
    ACCT_SESSION_TIME = 46,
    ACCT_INPUT_PACKETS = 47,
    ACCT_OUTPUT_PACKETS = 48,
    ACCT_TERMINATE_CAUSE = 49,
    ACCT_INPUT_GIGAWORDS = 52,
    ACCT_OUTPUT_GIGAWORDS = 53,
    EVENT_TIMESTAMP = 55,
    CHAP_CHALLENGE = 60,
    EAP_MESSAGE = 79,
    MESSAGE_AUTHENTICATOR = 80,
    NAS_PORT_ID = 87,
    NAS_IPV6_ADDRESS = 95,
    FRAMED_IPV6_PREFIX = 97,
    DELEGATED_IPV6_PREFIX = 123,
    FRAMED_IPV6_ADDRESS = 168,
    ACCESS_REQUEST = 1,
    ACCOUNTING_REQUEST = 4,
    HEADER = 20,
    MAX_PACKET = 4096,
};

static const uint8_t zero16[16];

static int buffer_of(PyObject *object, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(object, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes-like", what);
        return -1;
    }
    return 0;
}

static PyObject *wire_md5(PyObject *self, PyObject *arg)
{
    Py_buffer data;
    uint8_t out[16];
    md5_ctx ctx;
    if (buffer_of(arg, &data, "data") < 0) return NULL;
    md5_init(&ctx);
    md5_update(&ctx, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    md5_final(&ctx, out);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *wire_hmac_md5(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "hmac_md5(key, *parts)");
        return NULL;
    }
    Py_buffer key;
    hmac_ctx ctx;
    uint8_t out[16];
    if (buffer_of(args[0], &key, "key") < 0) return NULL;
    hmac_init(&ctx, key.buf, (size_t)key.len);
    PyBuffer_Release(&key);
    for (Py_ssize_t i = 1; i < nargs; i++) {
        Py_buffer part;
        if (buffer_of(args[i], &part, "part") < 0) return NULL;
        md5_update(&ctx.inner, part.buf, (size_t)part.len);
        PyBuffer_Release(&part);
    }
    hmac_final(&ctx, out);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

/* RFC 2865 §5.2, reversed; the result without its trailing NULs, or 0 when the length is not
 * 16..128 in steps of 16. ``out`` holds at least ``size`` bytes. */
static int decrypt(const uint8_t *value, size_t size, const uint8_t *secret, size_t secret_size,
                   const uint8_t *authenticator, uint8_t *out, size_t *out_size)
{
    if (size < 16 || size > 128 || size % 16) return 0;
    md5_ctx base, ctx;
    uint8_t key[16];
    md5_init(&base);
    md5_update(&base, secret, secret_size);
    for (size_t start = 0; start < size; start += 16) {
        ctx = base; /* MD5(secret + previous ciphertext block, or the authenticator) */
        md5_update(&ctx, start ? value + start - 16 : authenticator, 16);
        md5_final(&ctx, key);
        for (int i = 0; i < 16; i++) out[start + i] = value[start + i] ^ key[i];
    }
    while (size && out[size - 1] == 0) size--;
    *out_size = size;
    return 1;
}

static PyObject *wire_decrypt_password(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decrypt_password(value, secret, authenticator)");
        return NULL;
    }
    Py_buffer value, secret, authenticator;
    uint8_t out[128];
    size_t size = 0;
    if (buffer_of(args[0], &value, "value") < 0) return NULL;
    if (buffer_of(args[1], &secret, "secret") < 0) {
        PyBuffer_Release(&value);
        return NULL;
    }
    if (buffer_of(args[2], &authenticator, "authenticator") < 0) {
        PyBuffer_Release(&value);
        PyBuffer_Release(&secret);
        return NULL;
    }
    int ok = authenticator.len == 16 &&
             decrypt(value.buf, (size_t)value.len, secret.buf, (size_t)secret.len,
                     authenticator.buf, out, &size);
    PyBuffer_Release(&value);
    PyBuffer_Release(&secret);
    PyBuffer_Release(&authenticator);
    if (!ok) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)size);
}

/* RFC 2868 §3.5 / RFC 2548 §2.4.2 (MS-MPPE keys): the salt, then P = length octet + plain +
 * zero padding to 16, c(1) = p(1) xor MD5(S + R + salt), c(i) = p(i) xor MD5(S + c(i-1)).
 * Same checks and result as hiding.salt_encrypt. */
static PyObject *wire_salt_encrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "salt_encrypt(plain, secret, authenticator, salt)");
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        if (!PyBytes_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "salt_encrypt takes bytes");
            return NULL;
        }
    }
    const uint8_t *plain = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t plain_size = PyBytes_GET_SIZE(args[0]);
    const uint8_t *secret = (const uint8_t *)PyBytes_AS_STRING(args[1]);
    size_t secret_size = (size_t)PyBytes_GET_SIZE(args[1]);
    const uint8_t *salt = (const uint8_t *)PyBytes_AS_STRING(args[3]);
    if (PyBytes_GET_SIZE(args[3]) != 2 || !(salt[0] & 0x80)) {
        PyErr_SetString(PyExc_ValueError,
                        "the salt is two octets with the high bit set (RFC 2868 §3.5)");
        return NULL;
    }
    if (PyBytes_GET_SIZE(args[2]) != 16) {
        PyErr_SetString(PyExc_ValueError, "a Request Authenticator is 16 octets");
        return NULL;
    }
    if (plain_size > 239) {
        PyErr_Format(PyExc_ValueError, "%zd octets, at most 239 fit when salt-encrypted",
                     plain_size);
        return NULL;
    }
    size_t padded = ((size_t)plain_size + 1 + 15) / 16 * 16;
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(2 + padded));
    if (!result) return NULL;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    out[0] = salt[0];
    out[1] = salt[1];
    uint8_t *cipher = out + 2;
    cipher[0] = (uint8_t)plain_size;
    memcpy(cipher + 1, plain, (size_t)plain_size);
    memset(cipher + 1 + plain_size, 0, padded - 1 - (size_t)plain_size);
    md5_ctx base, ctx;
    uint8_t key[16];
    md5_init(&base);
    md5_update(&base, secret, secret_size);
    ctx = base;
    md5_update(&ctx, (const uint8_t *)PyBytes_AS_STRING(args[2]), 16);
    md5_update(&ctx, salt, 2);
    for (size_t start = 0; start < padded; start += 16) {
        if (start) {
            ctx = base;
            md5_update(&ctx, cipher + start - 16, 16);
        }
        md5_final(&ctx, key);
        for (int i = 0; i < 16; i++) cipher[start + i] ^= key[i];
    }
    return result;
}

/* The first value of each attribute the Access-Request path reads, by position. */
typedef struct {
    const uint8_t *value;
    size_t size;
} field;

enum {
    F_USER_NAME,
    F_USER_PASSWORD,
    F_CHAP_PASSWORD,
    F_CHAP_CHALLENGE,
    F_CALLING,
    F_CALLED,
    F_NAS_PORT,
    F_NAS_PORT_ID,
    F_MS_CHAP_CHALLENGE, /* Microsoft Vendor-Specific sub-attributes (RFC 2548 §2.3.2) */
    F_MS_CHAP2_RESPONSE,
    F_COUNT,
};

enum { VENDOR_MICROSOFT = 311, MS_CHAP_CHALLENGE = 11, MS_CHAP2_RESPONSE = 25 };

/* codec.Packet.vendor: a Vendor-Specific value counts only in the RFC 2865 §5.26 format (a
 * 4-octet Vendor-Id, then sub-attributes of type and length filling it exactly); the first
 * MS-CHAP-Challenge and MS-CHAP2-Response found in such Microsoft values are kept. */
static void take_microsoft(const uint8_t *value, size_t size, field *fields)
{
    if (size < 6) return;
    uint32_t vendor = ((uint32_t)value[0] << 24) | ((uint32_t)value[1] << 16) |
                      ((uint32_t)value[2] << 8) | value[3];
    if (vendor != VENDOR_MICROSOFT) return;
    for (size_t pos = 4; pos < size;) { /* the whole value must split, or none of it counts */
        if (pos + 1 == size) return;
        size_t end = pos + value[pos + 1];
        if (end < pos + 2 || end > size) return;
        pos = end;
    }
    for (size_t pos = 4; pos < size; pos += value[pos + 1]) {
        int slot = value[pos] == MS_CHAP_CHALLENGE   ? F_MS_CHAP_CHALLENGE
                   : value[pos] == MS_CHAP2_RESPONSE ? F_MS_CHAP2_RESPONSE
                                                     : -1;
        if (slot >= 0 && !fields[slot].value) {
            fields[slot].value = value + pos + 2;
            fields[slot].size = (size_t)value[pos + 1] - 2;
        }
    }
}

static int slot_of(uint8_t kind)
{
    switch (kind) {
    case USER_NAME: return F_USER_NAME;
    case USER_PASSWORD: return F_USER_PASSWORD;
    case CHAP_PASSWORD: return F_CHAP_PASSWORD;
    case CHAP_CHALLENGE: return F_CHAP_CHALLENGE;
    case CALLING_STATION_ID: return F_CALLING;
    case CALLED_STATION_ID: return F_CALLED;
    case NAS_PORT: return F_NAS_PORT;
    case NAS_PORT_ID: return F_NAS_PORT_ID;
    default: return -1;
    }
}

static PyObject *bytes_or_none(const field *f)
{
    if (!f->value) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)f->value, (Py_ssize_t)f->size);
}

/* The Length of a datagram that is a ``code`` request of 20..4096 octets whose Length field
 * lies within what arrived (RFC 2865 §3: the rest is padding); 0 for anything else. */
static size_t request_length(const uint8_t *data, size_t size, uint8_t code)
{
    if (size < HEADER || size > MAX_PACKET || data[0] != code) return 0;
    size_t length = ((size_t)data[2] << 8) | data[3];
    return length < HEADER || length > size ? 0 : length;
}

/* Every Proxy-State of a parsed packet (``count`` of them), in order, as a tuple of bytes: to
 * be echoed unmodified (RFC 2865 §5.33). The attributes were checked by the caller's walk. */
static PyObject *proxy_states(const uint8_t *data, int count)
{
    PyObject *states = PyTuple_New(count);
    if (!states) return NULL;
    for (int i = 0, at = HEADER; i < count; at += data[at + 1]) {
        if (data[at] != PROXY_STATE) continue;
        PyObject *state = PyBytes_FromStringAndSize((const char *)data + at + 2, data[at + 1] - 2);
        if (!state) {
            Py_DECREF(states);
            return NULL;
        }
        PyTuple_SET_ITEM(states, i++, state);
    }
    return states;
}

static PyObject *text_or_none(const field *f)
{
    /* RADIUS text should be UTF-8 (RFC 2865 §5); anything else stays visible, as codec does */
    if (!f->value) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8((const char *)f->value, (Py_ssize_t)f->size, "replace");
}

/*
 * parse_access(data, secret) -> None, or a tuple of
 *   (identifier, authenticator, message_authenticator, user_name, password, chap_password,
 *    chap_challenge, calling_station_id, called_station_id, nas_port, nas_port_id, eap,
 *    proxy_states, proxy_state_size, ms_chap_challenge, ms_chap2_response)
 * message_authenticator: 0 none, 1 valid, -1 wrong. password: the decrypted User-Password
 * (NULs removed) or None. chap_challenge: CHAP-Challenge, else the Request Authenticator when
 * there is a CHAP-Password (RFC 2865 §5.3). Text fields as str, NAS-Port as int.
 * proxy_states: every Proxy-State value in order; proxy_state_size: the octets their echo
 * adds to a reply. ms_chap_challenge, ms_chap2_response: the Microsoft sub-attributes
 * (RFC 2548 §2.3.2) or None.
 */
static PyObject *wire_parse_access(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse_access(data, secret)");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) Py_RETURN_NONE;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    size_t size = (size_t)PyBytes_GET_SIZE(args[0]);
    const uint8_t *secret = (const uint8_t *)PyBytes_AS_STRING(args[1]);
    size_t secret_size = (size_t)PyBytes_GET_SIZE(args[1]);
    size_t length = request_length(data, size, ACCESS_REQUEST);
    if (!length) Py_RETURN_NONE;

    field fields[F_COUNT];
    memset(fields, 0, sizeof fields);
    long ma_offset = -1;
    int eap = 0, proxied = 0;
    size_t proxy_size = 0; /* what the Proxy-State echo adds to the reply */
    size_t pos = HEADER;
    while (pos < length) {
        if (pos + 2 > length) Py_RETURN_NONE;
        uint8_t kind = data[pos];
        size_t end = pos + data[pos + 1];
        if (end > length || end < pos + 2) Py_RETURN_NONE;
        size_t vsize = end - pos - 2;
        /* What codec.decode refuses (zero-length values, a second or short
         * Message-Authenticator) goes to the Python path, which drops or handles it. */
        if (vsize == 0 || kind == 0) Py_RETURN_NONE;
        if (kind == VENDOR_SPECIFIC) {
            take_microsoft(data + pos + 2, vsize, fields); /* others: nothing reads them */
        } else if (kind == MESSAGE_AUTHENTICATOR) {
            if (vsize != 16 || ma_offset >= 0) Py_RETURN_NONE;
            ma_offset = (long)pos + 2;
        } else if (kind == EAP_MESSAGE) {
            eap = 1;
        } else if (kind == PROXY_STATE) {
            proxied++;
            proxy_size += vsize + 2;
        } else {
            int slot = slot_of(kind);
            if (slot >= 0 && !fields[slot].value) {
                fields[slot].value = data + pos + 2;
                fields[slot].size = vsize;
            }
        }
        pos = end;
    }

    const uint8_t *authenticator = data + 4;
    int ma = 0;
    if (ma_offset >= 0) {
        /* RFC 3579 §3.2: HMAC-MD5 over the packet with the Message-Authenticator zeroed */
        hmac_ctx ctx;
        uint8_t expected[16];
        hmac_init(&ctx, secret, secret_size);
        md5_update(&ctx.inner, data, (size_t)ma_offset);
        md5_update(&ctx.inner, zero16, 16);
        md5_update(&ctx.inner, data + ma_offset + 16, length - (size_t)ma_offset - 16);
        hmac_final(&ctx, expected);
        uint8_t diff = 0; /* constant time */
        for (int i = 0; i < 16; i++) diff |= expected[i] ^ data[ma_offset + i];
        ma = diff ? -1 : 1;
    }

    uint8_t plain[128];
    size_t plain_size = 0;
    const field *password = &fields[F_USER_PASSWORD];
    if (password->value && ma >= 0 &&
        !decrypt(password->value, password->size, secret, secret_size, authenticator, plain,
                 &plain_size))
        Py_RETURN_NONE; /* a User-Password that cannot be one: the Python path drops it */

    field challenge = fields[F_CHAP_CHALLENGE];
    if (fields[F_CHAP_PASSWORD].value && !challenge.value) {
        challenge.value = authenticator;
        challenge.size = 16;
    }
    PyObject *nas_port;
    const field *port = &fields[F_NAS_PORT];
    if (port->value && port->size == 4)
        nas_port = PyLong_FromUnsignedLong(((unsigned long)port->value[0] << 24) |
                                           ((unsigned long)port->value[1] << 16) |
                                           ((unsigned long)port->value[2] << 8) |
                                           (unsigned long)port->value[3]);
    else
        nas_port = Py_NewRef(Py_None);
    if (!nas_port) return NULL;
    PyObject *password_value;
    if (password->value && ma >= 0)
        password_value = PyBytes_FromStringAndSize((const char *)plain, (Py_ssize_t)plain_size);
    else
        password_value = Py_NewRef(Py_None);
    PyObject *states = proxy_states(data, proxied);
    if (!states) {
        Py_DECREF(nas_port);
        Py_XDECREF(password_value);
        return NULL;
    }
    /* "N" steals the references made here */
    return Py_BuildValue(
        "(iy#iNNNNNNNNNNnNN)", data[1], (const char *)authenticator, (Py_ssize_t)16, ma,
        text_or_none(&fields[F_USER_NAME]), password_value,
        bytes_or_none(&fields[F_CHAP_PASSWORD]), bytes_or_none(&challenge),
        text_or_none(&fields[F_CALLING]), text_or_none(&fields[F_CALLED]), nas_port,
        text_or_none(&fields[F_NAS_PORT_ID]), PyBool_FromLong(eap), states,
        (Py_ssize_t)proxy_size, bytes_or_none(&fields[F_MS_CHAP_CHALLENGE]),
        bytes_or_none(&fields[F_MS_CHAP2_RESPONSE]));
}

/* -- Accounting-Request ---------------------------------------------------------------------- */

/* The first value of each attribute the accounting path reads, by position. */
enum {
    A_STATUS,
    A_SESSION_ID,
    A_USER_NAME,
    A_DELAY,
    A_EVENT_TIMESTAMP,
    A_SESSION_TIME,
    A_INPUT_OCTETS,
    A_INPUT_GIGAWORDS,
    A_OUTPUT_OCTETS,
    A_OUTPUT_GIGAWORDS,
    A_INPUT_PACKETS,
    A_OUTPUT_PACKETS,
    A_FRAMED_IP,
    A_FRAMED_IPV6_PREFIX,
    A_FRAMED_IPV6_ADDRESS,
    A_DELEGATED_IPV6_PREFIX,
    A_CALLING,
    A_CALLED,
    A_NAS_PORT,
    A_NAS_PORT_ID,
    A_NAS_IP,
    A_NAS_IPV6,
    A_NAS_IDENTIFIER,
    A_TERMINATE_CAUSE,
    A_COUNT,
};

static int accounting_slot_of(uint8_t kind)
{
    switch (kind) {
    case ACCT_STATUS_TYPE: return A_STATUS;
    case ACCT_SESSION_ID: return A_SESSION_ID;
    case USER_NAME: return A_USER_NAME;
    case ACCT_DELAY_TIME: return A_DELAY;
    case EVENT_TIMESTAMP: return A_EVENT_TIMESTAMP;
    case ACCT_SESSION_TIME: return A_SESSION_TIME;
    case ACCT_INPUT_OCTETS: return A_INPUT_OCTETS;
    case ACCT_INPUT_GIGAWORDS: return A_INPUT_GIGAWORDS;
    case ACCT_OUTPUT_OCTETS: return A_OUTPUT_OCTETS;
    case ACCT_OUTPUT_GIGAWORDS: return A_OUTPUT_GIGAWORDS;
    case ACCT_INPUT_PACKETS: return A_INPUT_PACKETS;
    case ACCT_OUTPUT_PACKETS: return A_OUTPUT_PACKETS;
    case FRAMED_IP_ADDRESS: return A_FRAMED_IP;
    case FRAMED_IPV6_PREFIX: return A_FRAMED_IPV6_PREFIX;
    case FRAMED_IPV6_ADDRESS: return A_FRAMED_IPV6_ADDRESS;
    case DELEGATED_IPV6_PREFIX: return A_DELEGATED_IPV6_PREFIX;
    case CALLING_STATION_ID: return A_CALLING;
    case CALLED_STATION_ID: return A_CALLED;
    case NAS_PORT: return A_NAS_PORT;
    case NAS_PORT_ID: return A_NAS_PORT_ID;
    case NAS_IP_ADDRESS: return A_NAS_IP;
    case NAS_IPV6_ADDRESS: return A_NAS_IPV6;
    case NAS_IDENTIFIER: return A_NAS_IDENTIFIER;
    case ACCT_TERMINATE_CAUSE: return A_TERMINATE_CAUSE;
    default: return -1;
    }
}

/* A 4-octet integer attribute (RFC 2865 §5 "integer"); 0 when absent or of another size. */
static int integer_of(const field *f, uint32_t *out)
{
    if (!f->value || f->size != 4) return 0;
    *out = ((uint32_t)f->value[0] << 24) | ((uint32_t)f->value[1] << 16) |
           ((uint32_t)f->value[2] << 8) | (uint32_t)f->value[3];
    return 1;
}

static PyObject *integer_or_none(const field *f)
{
    uint32_t value;
    if (!integer_of(f, &value)) Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(value);
}

/* RFC 2869 §5.1-5.2: Gigawords count how often the 32-bit octet counter wrapped. */
static PyObject *counter64_or_none(const field *low, const field *high)
{
    uint32_t octets = 0, gigawords = 0;
    int has_octets = integer_of(low, &octets), has_gigawords = integer_of(high, &gigawords);
    if (!has_octets && !has_gigawords) Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(((unsigned long long)gigawords << 32) | octets);
}

/* An address attribute as text: 4 octets IPv4, 16 IPv6 (as socket.inet_ntop writes them). */
static PyObject *address_or_none(const field *f)
{
    char text[INET6_ADDRSTRLEN];
    if (!f->value || (f->size != 4 && f->size != 16)) Py_RETURN_NONE;
    if (!inet_ntop(f->size == 4 ? AF_INET : AF_INET6, f->value, text, sizeof text))
        Py_RETURN_NONE;
    return PyUnicode_FromString(text);
}

/*
 * parse_accounting(data, secret) -> None, or a tuple of
 *   (identifier, authenticator, status_type, session_id, user_name, delay, event_timestamp,
 *    session_time, input_octets, output_octets, input_packets, output_packets, framed_ip,
 *    framed_ipv6_prefix, framed_ipv6_address, delegated_ipv6_prefix, calling_station_id,
 *    called_station_id, nas_port, nas_port_id, nas_ip_address, nas_identifier,
 *    terminate_cause, proxy_states)
 * for a well-formed Accounting-Request whose Request Authenticator (RFC 2866 §3) and, when
 * present, Message-Authenticator (RFC 3579 §3.2 with sixteen zero octets for the
 * Authenticator, RFC 5080 §2.2) are right. The fields are radius.fields.accounting_request's:
 * the first value of each; integers of 4 octets, else None; octet counters with their
 * Gigawords; addresses as text; the IPv6 prefixes raw (the caller parses those rare ones);
 * NAS-IP-Address, else NAS-IPv6-Address. None for anything else (a wrong authenticator, no
 * Acct-Status-Type, a session status without Acct-Session-Id, what decode would refuse): the
 * Python path then takes the packet and drops or counts it for its reason.
 */
static PyObject *wire_parse_accounting(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse_accounting(data, secret)");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) Py_RETURN_NONE;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    size_t size = (size_t)PyBytes_GET_SIZE(args[0]);
    const uint8_t *secret = (const uint8_t *)PyBytes_AS_STRING(args[1]);
    size_t secret_size = (size_t)PyBytes_GET_SIZE(args[1]);
    size_t length = request_length(data, size, ACCOUNTING_REQUEST);
    if (!length) Py_RETURN_NONE;

    field fields[A_COUNT];
    memset(fields, 0, sizeof fields);
    long ma_offset = -1;
    int proxied = 0;
    size_t pos = HEADER;
    while (pos < length) {
        if (pos + 2 > length) Py_RETURN_NONE;
        uint8_t kind = data[pos];
        size_t end = pos + data[pos + 1];
        if (end > length || end < pos + 2) Py_RETURN_NONE;
        size_t vsize = end - pos - 2;
        if (vsize == 0 || kind == 0) Py_RETURN_NONE;
        if (kind == MESSAGE_AUTHENTICATOR) {
            if (vsize != 16 || ma_offset >= 0) Py_RETURN_NONE;
            ma_offset = (long)pos + 2;
        } else if (kind == PROXY_STATE) {
            proxied++;
        } else {
            int slot = accounting_slot_of(kind);
            if (slot >= 0 && !fields[slot].value) {
                fields[slot].value = data + pos + 2;
                fields[slot].size = vsize;
            }
        }
        pos = end;
    }

    /* RFC 2866 §3: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret) */
    uint8_t expected[16], diff = 0;
    md5_ctx md5;
    md5_init(&md5);
    md5_update(&md5, data, 4);
    md5_update(&md5, zero16, 16);
    md5_update(&md5, data + HEADER, length - HEADER);
    md5_update(&md5, secret, secret_size);
    md5_final(&md5, expected);
    for (int i = 0; i < 16; i++) diff |= expected[i] ^ data[4 + i]; /* constant time */
    if (diff) Py_RETURN_NONE;
    if (ma_offset >= 0) {
        hmac_ctx ctx;
        hmac_init(&ctx, secret, secret_size);
        md5_update(&ctx.inner, data, 4);
        md5_update(&ctx.inner, zero16, 16);
        md5_update(&ctx.inner, data + HEADER, (size_t)ma_offset - HEADER);
        md5_update(&ctx.inner, zero16, 16);
        md5_update(&ctx.inner, data + ma_offset + 16, length - (size_t)ma_offset - 16);
        hmac_final(&ctx, expected);
        for (int i = 0; i < 16; i++) diff |= expected[i] ^ data[ma_offset + i];
        if (diff) Py_RETURN_NONE;
    }

    uint32_t status, delay = 0;
    if (!integer_of(&fields[A_STATUS], &status)) Py_RETURN_NONE;
    /* RFC 2866 §5.5: Acct-Session-Id in every request; the session statuses cannot do
     * without it (Start, Stop, Interim-Update) */
    if (!fields[A_SESSION_ID].value && status >= 1 && status <= 3) Py_RETURN_NONE;
    integer_of(&fields[A_DELAY], &delay);
    const field *nas_ip = fields[A_NAS_IP].value ? &fields[A_NAS_IP] : &fields[A_NAS_IPV6];

    PyObject *states = proxy_states(data, proxied);
    if (!states) return NULL;
    /* "N" steals the references made here (and releases them all if one is NULL) */
    return Py_BuildValue(
        "(iy#INNkNNNNNNNNNNNNNNNNNN)", data[1], (const char *)data + 4, (Py_ssize_t)16,
        (unsigned int)status, text_or_none(&fields[A_SESSION_ID]),
        text_or_none(&fields[A_USER_NAME]), (unsigned long)delay,
        integer_or_none(&fields[A_EVENT_TIMESTAMP]), integer_or_none(&fields[A_SESSION_TIME]),
        counter64_or_none(&fields[A_INPUT_OCTETS], &fields[A_INPUT_GIGAWORDS]),
        counter64_or_none(&fields[A_OUTPUT_OCTETS], &fields[A_OUTPUT_GIGAWORDS]),
        integer_or_none(&fields[A_INPUT_PACKETS]), integer_or_none(&fields[A_OUTPUT_PACKETS]),
        address_or_none(&fields[A_FRAMED_IP]), bytes_or_none(&fields[A_FRAMED_IPV6_PREFIX]),
        address_or_none(&fields[A_FRAMED_IPV6_ADDRESS]),
        bytes_or_none(&fields[A_DELEGATED_IPV6_PREFIX]), text_or_none(&fields[A_CALLING]),
        text_or_none(&fields[A_CALLED]), integer_or_none(&fields[A_NAS_PORT]),
        text_or_none(&fields[A_NAS_PORT_ID]), address_or_none(nas_ip),
        text_or_none(&fields[A_NAS_IDENTIFIER]), integer_or_none(&fields[A_TERMINATE_CAUSE]),
        states);
}

/*
 * reply(code, identifier, request_authenticator, attributes, secret, proxy_states,
 *       message_authenticator=True) -> bytes
 * Message-Authenticator first (RFC 3579 §3.2, BlastRADIUS; left out when
 * message_authenticator is false, as for an Accounting-Response), then ``attributes`` (complete
 * attributes), then each Proxy-State echoed unmodified in order (RFC 2865 §5.33); the Response
 * Authenticator last (RFC 2865 §3). ValueError past 4096 octets.
 */
static PyObject *wire_reply(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "reply(code, identifier, request_authenticator, attributes, secret, "
                        "proxy_states, message_authenticator=True)");
        return NULL;
    }
    int signed_reply = 1;
    if (nargs == 7 && (signed_reply = PyObject_IsTrue(args[6])) < 0) return NULL;
    Py_ssize_t ma_size = signed_reply ? 18 : 0;
    long code = PyLong_AsLong(args[0]);
    long identifier = PyLong_AsLong(args[1]);
    if ((code == -1 || identifier == -1) && PyErr_Occurred()) return NULL;
    if (code < 0 || code > 255 || identifier < 0 || identifier > 255) {
        PyErr_SetString(PyExc_ValueError, "code and identifier are octets");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[2]) || PyBytes_GET_SIZE(args[2]) != 16) {
        PyErr_SetString(PyExc_ValueError, "a Request Authenticator is 16 octets");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[3]) || !PyBytes_CheckExact(args[4]) ||
        !PyTuple_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "attributes and secret are bytes, proxy_states a tuple");
        return NULL;
    }
    const uint8_t *request_authenticator = (const uint8_t *)PyBytes_AS_STRING(args[2]);
    Py_ssize_t attributes_size = PyBytes_GET_SIZE(args[3]);
    Py_ssize_t states = PyTuple_GET_SIZE(args[5]);
    Py_ssize_t length = HEADER + ma_size + attributes_size;
    for (Py_ssize_t i = 0; i < states; i++) {
        PyObject *state = PyTuple_GET_ITEM(args[5], i);
        if (!PyBytes_CheckExact(state) || PyBytes_GET_SIZE(state) < 1 ||
            PyBytes_GET_SIZE(state) > 253) {
            PyErr_SetString(PyExc_ValueError, "a Proxy-State is 1..253 octets");
            return NULL;
        }
        length += 2 + PyBytes_GET_SIZE(state);
    }
    if (length > MAX_PACKET) {
        PyErr_Format(PyExc_ValueError, "the reply would be %zd octets, at most 4096", length);
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, length);
    if (!result) return NULL;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(result);
    out[0] = (uint8_t)code;
    out[1] = (uint8_t)identifier;
    out[2] = (uint8_t)(length >> 8);
    out[3] = (uint8_t)length;
    memcpy(out + 4, request_authenticator, 16);
    if (signed_reply) {
        out[20] = MESSAGE_AUTHENTICATOR;
        out[21] = 18;
        memset(out + 22, 0, 16);
    }
    memcpy(out + HEADER + ma_size, PyBytes_AS_STRING(args[3]), (size_t)attributes_size);
    uint8_t *cursor = out + HEADER + ma_size + attributes_size;
    for (Py_ssize_t i = 0; i < states; i++) {
        PyObject *state = PyTuple_GET_ITEM(args[5], i);
        Py_ssize_t state_size = PyBytes_GET_SIZE(state);
        cursor[0] = PROXY_STATE;
        cursor[1] = (uint8_t)(state_size + 2);
        memcpy(cursor + 2, PyBytes_AS_STRING(state), (size_t)state_size);
        cursor += 2 + state_size;
    }
    const uint8_t *secret = (const uint8_t *)PyBytes_AS_STRING(args[4]);
    size_t secret_size = (size_t)PyBytes_GET_SIZE(args[4]);
    /* RFC 3579 §3.2: over the reply with the Request Authenticator in its Authenticator
     * field and the Message-Authenticator zeroed, which is how ``out`` stands now. */
    if (signed_reply) {
        hmac_ctx hmac;
        hmac_init(&hmac, secret, secret_size);
        md5_update(&hmac.inner, out, (size_t)length);
        hmac_final(&hmac, out + 22);
    }
    /* RFC 2865 §3: MD5(Code + Identifier + Length + Request Authenticator + Attributes +
     * Secret), with the finished Message-Authenticator among the attributes. */
    md5_ctx md5;
    md5_init(&md5);
    md5_update(&md5, out, (size_t)length);
    md5_update(&md5, secret, secret_size);
    md5_final(&md5, out + 4);
    return result;
}

static PyMethodDef wire_methods[] = {
    {"md5", wire_md5, METH_O, "MD5 of data (RFC 1321)."},
    {"hmac_md5", (PyCFunction)(void (*)(void))wire_hmac_md5, METH_FASTCALL,
     "HMAC-MD5 (RFC 2104) of the parts, concatenated, under key."},
    {"decrypt_password", (PyCFunction)(void (*)(void))wire_decrypt_password, METH_FASTCALL,
     "Reverse RFC 2865 §5.2 hiding; None for a length that cannot be one."},
    {"salt_encrypt", (PyCFunction)(void (*)(void))wire_salt_encrypt, METH_FASTCALL,
     "RFC 2868 §3.5 salted encryption: salt + ciphertext, as hiding.salt_encrypt."},
    {"parse_access", (PyCFunction)(void (*)(void))wire_parse_access, METH_FASTCALL,
     "The fields of a well-formed Access-Request, or None (see the module)."},
    {"parse_accounting", (PyCFunction)(void (*)(void))wire_parse_accounting, METH_FASTCALL,
     "The fields of a well-formed, authentic Accounting-Request, or None (see the module)."},
    {"reply", (PyCFunction)(void (*)(void))wire_reply, METH_FASTCALL,
     "A reply with Message-Authenticator, attributes, Proxy-States and Response Authenticator."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wire_module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_wire",
    .m_doc = "Per-packet RADIUS wire work in C (optional; see radius_contracts/radius/_wire.c).",
    .m_size = -1,
    .m_methods = wire_methods,
};

PyMODINIT_FUNC PyInit__wire(void) { return PyModule_Create(&wire_module); }
