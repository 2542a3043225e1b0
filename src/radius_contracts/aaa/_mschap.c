/*
 * radius_contracts.aaa._mschap: the server side of an MS-CHAPv2 check in C.
 *
 * Optional: aaa/authenticate.py uses it when it was built, and the pure Python code of
 * aaa/mschap.py otherwise (or with RADIUS_CONTRACTS_PURE_PYTHON=1); both give the same answers,
 * which tests/unit/aaa/test_mschap_speedups.py checks on the RFC 2759 §9 and RFC 3079 §3.5
 * sample data and on random inputs.
 *
 *   md4(data) -> 16 bytes                                   RFC 1320
 *   sha1(data) -> 20 bytes                                  FIPS 180-4 §6.1
 *   des_encrypt(key7, block) -> 8 bytes                     FIPS 46-3, key spread as RFC 2759 §8.6
 *   nt_password_hash(password) -> 16 bytes                  RFC 2759 §8.3
 *   check(password, user_name, authenticator_challenge, ms_chap2_response)
 *       -> (authenticator_response, send_key, recv_key) | None
 *
 * check() does in one call what the server does per request: NtPasswordHash, ChallengeHash
 * (§8.2), ChallengeResponse (§8.5) compared in constant time with the NT-Response, and on a
 * match the Authenticator Response (§8.7) and the 128-bit MPPE keys (RFC 3079 §3.4). All of
 * it costs a few microseconds, so nothing derived from a password needs to be kept between
 * requests: the first login of a user after a restart costs what every other one does.
 *
 * MD4, SHA-1 and DES are written here from their specifications (RFC 1320 §3, FIPS 180-4,
 * FIPS 46-3): MS-CHAPv2 cannot choose other algorithms, and OpenSSL 3 disables MD4 and single
 * DES by default, so libcrypto is not a dependable place to find them. The DES tables are the
 * standard's; the faster tables used per round are derived from them when the module loads.
 * The S-box lookups are indexed by key-dependent bits, as in every table-driven DES.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rotl32(uint32_t x, unsigned n) { return (x << n) | (x >> ((32 - n) & 31)); }

/* Overwrite secrets before a stack frame is given back. The barrier keeps the compiler from
 * dropping a memset of memory that is never read again. */
static void wipe(void *buffer, size_t size)
{
#if defined(__GNUC__) || defined(__clang__)
    memset(buffer, 0, size);
    __asm__ __volatile__("" : : "r"(buffer) : "memory");
#else
    volatile uint8_t *p = buffer;
    while (size--) *p++ = 0;
#endif
}

/* -- MD4 (RFC 1320) -------------------------------------------------------------------------- */

typedef struct {
    uint32_t state[5]; /* MD4 uses four words, SHA-1 five */
    uint64_t length;   /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes in block */
} hash_ctx;

typedef void (*compress_fn)(uint32_t *state, const uint8_t block[64]);

static inline uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* RFC 1320 §3.4: three rounds of sixteen operations. */
static void md4_compress(uint32_t *state, const uint8_t block[64])
{
    static const uint8_t order2[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    static const uint8_t order3[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
    static const uint8_t shift1[4] = {3, 7, 11, 19};
    static const uint8_t shift2[4] = {3, 5, 9, 13};
    static const uint8_t shift3[4] = {3, 9, 11, 15};
    uint32_t x[16];
    for (int i = 0; i < 16; i++) x[i] = load_le32(block + 4 * i);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], t;
    /* Each step updates a with b, c, d and rotates the roles: (a, b, c, d) <- (d, a, b, c). */
    for (int i = 0; i < 16; i++) { /* Round 1: F(X,Y,Z) = XY v not(X) Z */
        t = rotl32(a + ((b & c) | (~b & d)) + x[i], shift1[i & 3]);
        a = d; d = c; c = b; b = t;
    }
    for (int i = 0; i < 16; i++) { /* Round 2: G(X,Y,Z) = XY v XZ v YZ, + 5A827999 */
        t = rotl32(a + ((b & c) | (b & d) | (c & d)) + x[order2[i]] + 0x5a827999u, shift2[i & 3]);
        a = d; d = c; c = b; b = t;
    }
    for (int i = 0; i < 16; i++) { /* Round 3: H(X,Y,Z) = X xor Y xor Z, + 6ED9EBA1 */
        t = rotl32(a + (b ^ c ^ d) + x[order3[i]] + 0x6ed9eba1u, shift3[i & 3]);
        a = d; d = c; c = b; b = t;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    wipe(x, sizeof x);
}

/* -- SHA-1 (FIPS 180-4 §6.1) ----------------------------------------------------------------- */

static void sha1_compress(uint32_t *state, const uint8_t block[64])
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++) w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 80; t++) w[t] = rotl32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], temp;
    /* One loop per function and constant (§4.1.1, §4.2.1): no branch inside the rounds. */
#define SHA1_STEP(f, k)                                        \
    temp = rotl32(a, 5) + (f) + e + (k) + w[t];                \
    e = d;                                                     \
    d = c;                                                     \
    c = rotl32(b, 30);                                         \
    b = a;                                                     \
    a = temp
    int t = 0;
    for (; t < 20; t++) { SHA1_STEP((b & c) ^ (~b & d), 0x5a827999u); }        /* Ch */
    for (; t < 40; t++) { SHA1_STEP(b ^ c ^ d, 0x6ed9eba1u); }                 /* Parity */
    for (; t < 60; t++) { SHA1_STEP((b & c) ^ (b & d) ^ (c & d), 0x8f1bbcdcu); } /* Maj */
    for (; t < 80; t++) { SHA1_STEP(b ^ c ^ d, 0xca62c1d6u); }                 /* Parity */
#undef SHA1_STEP
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    wipe(w, sizeof w);
}

/* -- the Merkle-Damgard frame both share ----------------------------------------------------- */

static void md4_init(hash_ctx *ctx)
{
    ctx->state[0] = 0x67452301u; /* RFC 1320 §3.3 */
    ctx->state[1] = 0xefcdab89u;
    ctx->state[2] = 0x98badcfeu;
    ctx->state[3] = 0x10325476u;
    ctx->state[4] = 0;
    ctx->length = 0;
    ctx->used = 0;
}

static void sha1_init(hash_ctx *ctx)
{
    ctx->state[0] = 0x67452301u; /* FIPS 180-4 §5.3.1 */
    ctx->state[1] = 0xefcdab89u;
    ctx->state[2] = 0x98badcfeu;
    ctx->state[3] = 0x10325476u;
    ctx->state[4] = 0xc3d2e1f0u;
    ctx->length = 0;
    ctx->used = 0;
}

static void hash_update(hash_ctx *ctx, compress_fn compress, const uint8_t *data, size_t size)
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
        compress(ctx->state, ctx->block);
        ctx->used = 0;
    }
    while (size >= 64) {
        compress(ctx->state, data);
        data += 64;
        size -= 64;
    }
    memcpy(ctx->block, data, size);
    ctx->used = size;
}

/* Pad with 0x80, zeros and the bit length in 8 octets (little-endian for MD4, RFC 1320 §3.2;
 * big-endian for SHA-1, FIPS 180-4 §5.1.1), then write ``words`` state words. */
static void hash_final(hash_ctx *ctx, compress_fn compress, int big_endian, int words,
                       uint8_t *out)
{
    uint64_t bits = ctx->length * 8;
    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > 56) {
        memset(ctx->block + ctx->used, 0, 64 - ctx->used);
        compress(ctx->state, ctx->block);
        ctx->used = 0;
    }
    memset(ctx->block + ctx->used, 0, 56 - ctx->used);
    for (int i = 0; i < 8; i++) {
        ctx->block[big_endian ? 63 - i : 56 + i] = (uint8_t)(bits >> (8 * i));
    }
    compress(ctx->state, ctx->block);
    for (int i = 0; i < words; i++) {
        uint32_t v = ctx->state[i];
        for (int j = 0; j < 4; j++) {
            out[4 * i + j] = (uint8_t)(big_endian ? v >> (24 - 8 * j) : v >> (8 * j));
        }
    }
    wipe(ctx, sizeof *ctx);
}

static void md4(const uint8_t *data, size_t size, uint8_t out[16])
{
    hash_ctx ctx;
    md4_init(&ctx);
    hash_update(&ctx, md4_compress, data, size);
    hash_final(&ctx, md4_compress, 0, 4, out);
}

/* SHA-1 of up to four pieces, concatenated (NULL pieces end the list). */
static void sha1(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size,
                 const uint8_t *c, size_t c_size, const uint8_t *d, size_t d_size, uint8_t out[20])
{
    hash_ctx ctx;
    sha1_init(&ctx);
    hash_update(&ctx, sha1_compress, a, a_size);
    if (b) hash_update(&ctx, sha1_compress, b, b_size);
    if (c) hash_update(&ctx, sha1_compress, c, c_size);
    if (d) hash_update(&ctx, sha1_compress, d, d_size);
    hash_final(&ctx, sha1_compress, 1, 5, out);
}

/* -- DES (FIPS 46-3) ------------------------------------------------------------------------- */

/* The standard's tables, bits numbered 1..64 from the most significant bit of the block. */
static const uint8_t des_ip[64] = {
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9,  1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
};
static const uint8_t des_p[32] = {
    16, 7, 20, 21, 29, 12, 28, 17, 1,  15, 23, 26, 5,  18, 31, 10,
    2,  8, 24, 14, 32, 27, 3,  9,  19, 13, 30, 6,  22, 11, 4,  25,
};
static const uint8_t des_pc1[56] = {
    57, 49, 41, 33, 25, 17, 9,  1,  58, 50, 42, 34, 26, 18, 10, 2,  59, 51, 43,
    35, 27, 19, 11, 3,  60, 52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7,  62, 54,
    46, 38, 30, 22, 14, 6,  61, 53, 45, 37, 29, 21, 13, 5,  28, 20, 12, 4,
};
static const uint8_t des_pc2[48] = {
    14, 17, 11, 24, 1,  5,  3,  28, 15, 6,  21, 10, 23, 19, 12, 4,
    26, 8,  16, 7,  27, 20, 13, 2,  41, 52, 31, 37, 47, 55, 30, 40,
    51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
};
static const uint8_t des_shifts[16] = {1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1};
/* S1..S8, each four rows of sixteen: row from the outer bits, column from the inner four. */
static const uint8_t des_s[8][64] = {
    {14, 4,  13, 1,  2,  15, 11, 8,  3,  10, 6,  12, 5,  9,  0,  7,
     0,  15, 7,  4,  14, 2,  13, 1,  10, 6,  12, 11, 9,  5,  3,  8,
     4,  1,  14, 8,  13, 6,  2,  11, 15, 12, 9,  7,  3,  10, 5,  0,
     15, 12, 8,  2,  4,  9,  1,  7,  5,  11, 3,  14, 10, 0,  6,  13},
    {15, 1,  8,  14, 6,  11, 3,  4,  9,  7,  2,  13, 12, 0,  5,  10,
     3,  13, 4,  7,  15, 2,  8,  14, 12, 0,  1,  10, 6,  9,  11, 5,
     0,  14, 7,  11, 10, 4,  13, 1,  5,  8,  12, 6,  9,  3,  2,  15,
     13, 8,  10, 1,  3,  15, 4,  2,  11, 6,  7,  12, 0,  5,  14, 9},
    {10, 0,  9,  14, 6,  3,  15, 5,  1,  13, 12, 7,  11, 4,  2,  8,
     13, 7,  0,  9,  3,  4,  6,  10, 2,  8,  5,  14, 12, 11, 15, 1,
     13, 6,  4,  9,  8,  15, 3,  0,  11, 1,  2,  12, 5,  10, 14, 7,
     1,  10, 13, 0,  6,  9,  8,  7,  4,  15, 14, 3,  11, 5,  2,  12},
    {7,  13, 14, 3,  0,  6,  9,  10, 1,  2,  8,  5,  11, 12, 4,  15,
     13, 8,  11, 5,  6,  15, 0,  3,  4,  7,  2,  12, 1,  10, 14, 9,
     10, 6,  9,  0,  12, 11, 7,  13, 15, 1,  3,  14, 5,  2,  8,  4,
     3,  15, 0,  6,  10, 1,  13, 8,  9,  4,  5,  11, 12, 7,  2,  14},
    {2,  12, 4,  1,  7,  10, 11, 6,  8,  5,  3,  15, 13, 0,  14, 9,
     14, 11, 2,  12, 4,  7,  13, 1,  5,  0,  15, 10, 3,  9,  8,  6,
     4,  2,  1,  11, 10, 13, 7,  8,  15, 9,  12, 5,  6,  3,  0,  14,
     11, 8,  12, 7,  1,  14, 2,  13, 6,  15, 0,  9,  10, 4,  5,  3},
    {12, 1,  10, 15, 9,  2,  6,  8,  0,  13, 3,  4,  14, 7,  5,  11,
     10, 15, 4,  2,  7,  12, 9,  5,  6,  1,  13, 14, 0,  11, 3,  8,
     9,  14, 15, 5,  2,  8,  12, 3,  7,  0,  4,  10, 1,  13, 11, 6,
     4,  3,  2,  12, 9,  5,  15, 10, 11, 14, 1,  7,  6,  0,  8,  13},
    {4,  11, 2,  14, 15, 0,  8,  13, 3,  12, 9,  7,  5,  10, 6,  1,
     13, 0,  11, 7,  4,  9,  1,  10, 14, 3,  5,  12, 2,  15, 8,  6,
     1,  4,  11, 13, 12, 3,  7,  14, 10, 15, 6,  8,  0,  5,  9,  2,
     6,  11, 13, 8,  1,  4,  10, 7,  9,  5,  0,  15, 14, 2,  3,  12},
    {13, 2,  8,  4,  6,  15, 11, 1,  10, 9,  3,  14, 5,  0,  12, 7,
     1,  15, 13, 8,  10, 3,  7,  4,  12, 5,  6,  11, 0,  14, 9,  2,
     7,  11, 4,  1,  9,  12, 14, 2,  0,  6,  10, 13, 15, 3,  5,  8,
     2,  1,  14, 7,  4,  10, 8,  13, 15, 12, 9,  0,  3,  5,  6,  11},
};

/* A bit permutation as one table per input octet: out = OR of table[i][octet i of the input].
 * Input and output are right-aligned in a uint64_t, bits numbered from the most significant. */
typedef struct {
    int octets;
    uint64_t table[8][256];
} permutation;

static permutation perm_ip, perm_fp, perm_pc1, perm_pc2;
/* The S-box of each group followed by P, as one lookup by the group's six input bits. */
static uint32_t des_sp[8][64];

/* ``map[o] = i`` (1-based): output bit o of ``out_bits`` is input bit i of ``in_bits``. */
static void build_permutation(permutation *perm, const uint8_t *map, int in_bits, int out_bits)
{
    perm->octets = in_bits / 8;
    memset(perm->table, 0, sizeof perm->table);
    for (int o = 0; o < out_bits; o++) {
        int i = map[o] - 1;      /* input bit, 0 = most significant */
        int octet = i / 8;       /* which input octet holds it */
        int bit = 7 - i % 8;     /* its place in that octet */
        uint64_t out = (uint64_t)1 << (out_bits - 1 - o);
        for (int v = 0; v < 256; v++) {
            if (v >> bit & 1) perm->table[octet][v] |= out;
        }
    }
}

static inline uint64_t permute(const permutation *perm, uint64_t in)
{
    uint64_t out = 0;
    for (int k = 0; k < perm->octets; k++) {
        out |= perm->table[k][(in >> (8 * (perm->octets - 1 - k))) & 0xff];
    }
    return out;
}

static void des_build_tables(void)
{
    uint8_t fp[64];
    for (int o = 0; o < 64; o++) fp[des_ip[o] - 1] = (uint8_t)(o + 1); /* FP is IP's inverse */
    build_permutation(&perm_ip, des_ip, 64, 64);
    build_permutation(&perm_fp, fp, 64, 64);
    build_permutation(&perm_pc1, des_pc1, 64, 56);
    build_permutation(&perm_pc2, des_pc2, 56, 48);
    for (int group = 0; group < 8; group++) {
        for (int v = 0; v < 64; v++) {
            int row = ((v >> 4) & 2) | (v & 1);
            int column = (v >> 1) & 15;
            /* The S-box output is bits 4*group+1 .. 4*group+4 of the 32 going into P. */
            uint32_t s = (uint32_t)des_s[group][16 * row + column] << (28 - 4 * group);
            uint32_t p = 0;
            for (int o = 0; o < 32; o++) {
                if (s >> (32 - des_p[o]) & 1) p |= (uint32_t)1 << (31 - o);
            }
            des_sp[group][v] = p;
        }
    }
}

typedef struct {
    uint8_t k[16][8]; /* per round, the 48-bit subkey as eight 6-bit groups */
} des_schedule;

/* RFC 2759 §8.6 spreads 7 key octets over 8, one parity bit each; DES ignores the parity bits
 * (PC-1 drops bits 8, 16, ..., 64), so the 56 bits go straight into C0 and D0. */
static void des_key_schedule(const uint8_t key7[7], des_schedule *schedule)
{
    /* Key bit n (1..56) goes to DES key bit n + (n - 1) / 7: the 8-octet key of §8.6, the
     * parity bits left zero. */
    uint64_t bits = 0, spread = 0;
    for (int i = 0; i < 7; i++) bits = bits << 8 | key7[i];
    for (int octet = 0; octet < 8; octet++) {
        spread |= ((bits >> (49 - 7 * octet)) & 0x7f) << (57 - 8 * octet);
    }
    uint64_t cd = permute(&perm_pc1, spread);
    uint32_t c = (uint32_t)(cd >> 28) & 0x0fffffff, d = (uint32_t)cd & 0x0fffffff;
    for (int round = 0; round < 16; round++) {
        unsigned n = des_shifts[round];
        c = ((c << n) | (c >> (28 - n))) & 0x0fffffff;
        d = ((d << n) | (d >> (28 - n))) & 0x0fffffff;
        uint64_t k = permute(&perm_pc2, (uint64_t)c << 28 | d);
        for (int group = 0; group < 8; group++) {
            schedule->k[round][group] = (uint8_t)((k >> (42 - 6 * group)) & 0x3f);
        }
    }
}

static void des_encrypt_block(const des_schedule *schedule, const uint8_t in[8], uint8_t out[8])
{
    uint64_t block = 0;
    for (int i = 0; i < 8; i++) block = block << 8 | in[i];
    block = permute(&perm_ip, block);
    uint32_t l = (uint32_t)(block >> 32), r = (uint32_t)block;
    for (int round = 0; round < 16; round++) {
        /* f(R, K): E takes six bits per group, starting one bit before each group of four
         * (E's first group is bits 32, 1, .. 5): rotate that run to the top, read six bits. */
        uint32_t f = 0;
        for (int group = 0; group < 8; group++) {
            unsigned start = (unsigned)(4 * group + 31) % 32;
            uint32_t six = (rotl32(r, start) >> 26) ^ schedule->k[round][group];
            f |= des_sp[group][six];
        }
        uint32_t next = l ^ f;
        l = r;
        r = next;
    }
    /* The last round's halves are not swapped: the preoutput block is R16 L16. */
    block = permute(&perm_fp, (uint64_t)r << 32 | l);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(block >> (56 - 8 * i));
}

/* -- MS-CHAPv2 (RFC 2759 §8, RFC 3079 §3.4) -------------------------------------------------- */

static const uint8_t magic_signing[] = "Magic server to client signing constant";  /* 39 */
static const uint8_t magic_pad[] = "Pad to make it do more than one iteration";       /* 41 */
static const uint8_t magic_master[] = "This is the MPPE Master Key";                  /* 27 */
static const uint8_t magic_client_send[] =
    "On the client side, this is the send key; on the server side, it is the receive key.";
static const uint8_t magic_client_receive[] =
    "On the client side, this is the receive key; on the server side, it is the send key.";
#define MAGIC_LEN(m) (sizeof(m) - 1) /* without the C string's NUL */

/* §8.5 ChallengeResponse: DES of the challenge under the three 7-octet thirds of the hash,
 * zero-padded to 21 octets. */
static void challenge_response(const uint8_t challenge[8], const uint8_t password_hash[16],
                               uint8_t response[24])
{
    uint8_t z[21] = {0};
    des_schedule schedule;
    memcpy(z, password_hash, 16);
    for (int third = 0; third < 3; third++) {
        des_key_schedule(z + 7 * third, &schedule);
        des_encrypt_block(&schedule, challenge, response + 8 * third);
    }
    wipe(z, sizeof z);
    wipe(&schedule, sizeof schedule);
}

/* RFC 3079 §3.4 GetAsymmetricStartKey for 16 octets; SHSpad1 is 40 zeros, SHSpad2 40 x F2. */
static void start_key(const uint8_t master[16], const uint8_t *magic, size_t magic_size,
                      uint8_t out[16])
{
    static const uint8_t pad1[40] = {0};
    uint8_t pad2[40], digest[20];
    memset(pad2, 0xf2, sizeof pad2);
    sha1(master, 16, pad1, sizeof pad1, magic, magic_size, pad2, sizeof pad2, digest);
    memcpy(out, digest, 16);
    wipe(digest, sizeof digest);
}

static int bytes_arg(PyObject *object, const char *what, Py_ssize_t size, const uint8_t **data,
                     Py_ssize_t *data_size)
{
    if (!PyBytes_Check(object)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes", what);
        return -1;
    }
    if (size >= 0 && PyBytes_GET_SIZE(object) != size) {
        PyErr_Format(PyExc_ValueError, "%s must be %zd octets", what, size);
        return -1;
    }
    *data = (const uint8_t *)PyBytes_AS_STRING(object);
    if (data_size) *data_size = PyBytes_GET_SIZE(object);
    return 0;
}

/* §8.3 NtPasswordHash: MD4 of the password in UTF-16LE. ``surrogatepass`` as in mschap.py: a
 * lone surrogate is hashed as the code unit Windows would hash. */
static int nt_hash_of(PyObject *password, uint8_t out[16])
{
    if (!PyUnicode_Check(password)) {
        PyErr_SetString(PyExc_TypeError, "password must be str");
        return -1;
    }
    PyObject *encoded = PyUnicode_AsEncodedString(password, "utf-16-le", "surrogatepass");
    if (!encoded) return -1;
    md4((const uint8_t *)PyBytes_AS_STRING(encoded), (size_t)PyBytes_GET_SIZE(encoded), out);
    /* The encoded password is garbage now; clear it before the allocator reuses it. */
    wipe(PyBytes_AS_STRING(encoded), (size_t)PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return 0;
}

static PyObject *mschap_check(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "check(password, user_name, authenticator_challenge, ms_chap2_response)");
        return NULL;
    }
    const uint8_t *name, *auth_challenge, *response;
    Py_ssize_t name_size;
    if (bytes_arg(args[1], "user_name", -1, &name, &name_size) < 0 ||
        bytes_arg(args[2], "authenticator_challenge", 16, &auth_challenge, NULL) < 0 ||
        bytes_arg(args[3], "ms_chap2_response", 50, &response, NULL) < 0) {
        return NULL;
    }
    uint8_t password_hash[16];
    if (nt_hash_of(args[0], password_hash) < 0) return NULL;
    /* MS-CHAP2-Response (RFC 2548 §2.3.2): Ident, Flags, Peer-Challenge, Reserved, Response */
    const uint8_t *peer_challenge = response + 2, *nt_response = response + 26;
    /* §8.2: only the user name "excluding any prepended domain name", as mschap.py strips it
     * (up to the first backslash). */
    const uint8_t *slash = memchr(name, '\\', (size_t)name_size);
    if (slash) {
        name_size -= slash + 1 - name;
        name = slash + 1;
    }
    uint8_t digest[20], expected[24];
    sha1(peer_challenge, 16, auth_challenge, 16, name, (size_t)name_size, NULL, 0, digest);
    uint8_t challenge[8];
    memcpy(challenge, digest, 8);
    challenge_response(challenge, password_hash, expected);
    uint8_t differ = 0; /* constant time: every octet is looked at */
    for (int i = 0; i < 24; i++) differ |= expected[i] ^ nt_response[i];
    wipe(expected, sizeof expected);
    if (differ) {
        wipe(password_hash, sizeof password_hash);
        Py_RETURN_NONE;
    }
    uint8_t hash_hash[16], master[20], send_key[16], recv_key[16];
    md4(password_hash, 16, hash_hash); /* §8.4 HashNtPasswordHash */
    wipe(password_hash, sizeof password_hash);
    /* §8.7 GenerateAuthenticatorResponse */
    sha1(hash_hash, 16, nt_response, 24, magic_signing, MAGIC_LEN(magic_signing), NULL, 0, digest);
    sha1(digest, 20, challenge, 8, magic_pad, MAGIC_LEN(magic_pad), NULL, 0, digest);
    char text[42];
    static const char hex[] = "0123456789ABCDEF";
    text[0] = 'S';
    text[1] = '=';
    for (int i = 0; i < 20; i++) {
        text[2 + 2 * i] = hex[digest[i] >> 4];
        text[3 + 2 * i] = hex[digest[i] & 15];
    }
    /* RFC 3079 §3.4 GetMasterKey, then the server's keys: Send-Key with Magic3 ("on the server
     * side, it is the send key"), Recv-Key with Magic2 (see mschap.mppe_keys_128). */
    sha1(hash_hash, 16, nt_response, 24, magic_master, MAGIC_LEN(magic_master), NULL, 0, master);
    start_key(master, magic_client_receive, MAGIC_LEN(magic_client_receive), send_key);
    start_key(master, magic_client_send, MAGIC_LEN(magic_client_send), recv_key);
    wipe(hash_hash, sizeof hash_hash);
    wipe(master, sizeof master);
    PyObject *result = Py_BuildValue("(y#y#y#)", text, (Py_ssize_t)42, send_key, (Py_ssize_t)16,
                                     recv_key, (Py_ssize_t)16);
    wipe(send_key, sizeof send_key);
    wipe(recv_key, sizeof recv_key);
    return result;
}

/* -- the primitives, for the tests that hold them to their Python twins ---------------------- */

static PyObject *mschap_md4(PyObject *self, PyObject *arg)
{
    const uint8_t *data;
    Py_ssize_t size;
    uint8_t out[16];
    if (bytes_arg(arg, "data", -1, &data, &size) < 0) return NULL;
    md4(data, (size_t)size, out);
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyObject *mschap_sha1(PyObject *self, PyObject *arg)
{
    const uint8_t *data;
    Py_ssize_t size;
    uint8_t out[20];
    if (bytes_arg(arg, "data", -1, &data, &size) < 0) return NULL;
    sha1(data, (size_t)size, NULL, 0, NULL, 0, NULL, 0, out);
    return PyBytes_FromStringAndSize((const char *)out, 20);
}

static PyObject *mschap_des_encrypt(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "des_encrypt(key7, block)");
        return NULL;
    }
    const uint8_t *key7, *block;
    if (bytes_arg(args[0], "key7", 7, &key7, NULL) < 0 ||
        bytes_arg(args[1], "block", 8, &block, NULL) < 0) {
        return NULL;
    }
    des_schedule schedule;
    uint8_t out[8];
    des_key_schedule(key7, &schedule);
    des_encrypt_block(&schedule, block, out);
    wipe(&schedule, sizeof schedule);
    return PyBytes_FromStringAndSize((const char *)out, 8);
}

static PyObject *mschap_nt_password_hash(PyObject *self, PyObject *arg)
{
    uint8_t out[16];
    if (nt_hash_of(arg, out) < 0) return NULL;
    return PyBytes_FromStringAndSize((const char *)out, 16);
}

static PyMethodDef mschap_methods[] = {
    {"check", (PyCFunction)(void (*)(void))mschap_check, METH_FASTCALL,
     "The server side of MS-CHAPv2: (authenticator_response, send_key, recv_key), or None."},
    {"md4", mschap_md4, METH_O, "MD4 of data (RFC 1320)."},
    {"sha1", mschap_sha1, METH_O, "SHA-1 of data (FIPS 180-4)."},
    {"des_encrypt", (PyCFunction)(void (*)(void))mschap_des_encrypt, METH_FASTCALL,
     "DES of one 8-octet block under a 7-octet key spread as RFC 2759 §8.6 says."},
    {"nt_password_hash", mschap_nt_password_hash, METH_O,
     "RFC 2759 §8.3 NtPasswordHash: MD4 of the password in UTF-16LE."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef mschap_module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_mschap",
    .m_doc = "MS-CHAPv2 server check in C (optional; see radius_contracts/aaa/_mschap.c).",
    .m_size = -1,
    .m_methods = mschap_methods,
};

PyMODINIT_FUNC PyInit__mschap(void)
{
    des_build_tables();
    return PyModule_Create(&mschap_module);
}
