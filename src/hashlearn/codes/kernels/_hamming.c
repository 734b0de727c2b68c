/* Exact Hamming k-NN and radius scans over packed codes, one variant per CPU class.
 *
 * hashlearn.codes.kernels loads this library with ctypes and calls hl_knn / hl_range on the
 * threads of hashlearn._parallel (ctypes releases the GIL during a call). The arithmetic is
 * written once, in _hamming_scan.h, and compiled here once per instruction set:
 *
 *   variant 2, "avx512": 512-bit vectors and VPOPCNTDQ (8 codes of 8 bytes, or 16 codes of at
 *                        most 4 bytes, per instruction);
 *   variant 1, "avx2":   256-bit vectors, popcount by nibble lookup (vpshufb) and vpsadbw, which
 *                        beats scalar popcnt on AVX2 CPUs without a vector popcount;
 *   variant 0, "scalar": one code at a time with the popcnt instruction.
 *
 * hl_distances writes every distance of a block of queries to a block of codes instead (the
 * evaluation engine needs them all), with the same arithmetic.
 *
 * hl_supported() reports which variants the running CPU can execute (from cpuid, through
 * __builtin_cpu_supports, which also checks that the OS saves the vector registers); a call for a
 * variant the CPU lacks returns HL_UNSUPPORTED without executing any of its instructions.
 *
 * Results are keys ``distance << 40 | rank`` (hashlearn.codes.keys), where rank is the item's
 * rank in id order (rank[position], or the position itself when rank is NULL), so comparing keys
 * compares (distance, id).
 *
 * The library uses no Python API; the module init function below only lets setuptools build it as
 * an extension module and Python import it to find its path.
 */

#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define HL_X86 1
#include <immintrin.h>
#endif

#define RANK_BITS 40
#define EMPTY_KEY INT64_MAX
#define BLOCK_BYTES (256 * 1024) /* database bytes staged per block: an L2 share */
#define HL_UNSUPPORTED (-2)
#define HL_NO_MEMORY (-1)

enum { MODE_KNN = 0, MODE_RANGE = 1, MODE_DISTANCES = 2 };
enum { VARIANT_SCALAR = 0, VARIANT_AVX2 = 1, VARIANT_AVX512 = 2 };

struct scan_state {
    int mode;
    int k;
    int64_t *heaps; /* MODE_KNN: nq max-heaps of k keys, heaps[q * k] the worst */
    int64_t radius; /* MODE_RANGE */
    const int64_t *rank;
    int64_t *out_query, *out_key; /* MODE_RANGE: hits, written while count < capacity */
    int64_t capacity, count;
    uint16_t *distances; /* MODE_DISTANCES: nq rows of `stride` distances, from position `first` */
    int64_t stride;
};

/* ------------------------------------------------------------------ shared scalar parts */

static inline int64_t current_bound(const struct scan_state *st, int q)
{
    if (st->mode == MODE_RANGE) return st->radius;
    return st->heaps[(size_t)q * st->k] >> RANK_BITS;
}

static inline void heap_replace_top(int64_t *heap, int k, int64_t key)
{
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= k) break;
        if (child + 1 < k && heap[child + 1] > heap[child]) child++;
        if (heap[child] <= key) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = key;
}

/* The lanes of ``mask`` passed their query's bound: record them; return the query's new bound. */
static int64_t take_hits(struct scan_state *st, int q, unsigned mask, const void *lanes,
                         int64_t pos, int lane_bytes)
{
    while (mask) {
        int b = __builtin_ctz(mask);
        mask &= mask - 1;
        int64_t d = lane_bytes == 8 ? ((const int64_t *)lanes)[b] : ((const int32_t *)lanes)[b];
        int64_t r = st->rank ? st->rank[pos + b] : pos + b;
        int64_t key = (d << RANK_BITS) | r;
        if (st->mode == MODE_KNN) {
            int64_t *heap = st->heaps + (size_t)q * st->k;
            if (key < heap[0]) heap_replace_top(heap, st->k, key);
        } else {
            if (st->count < st->capacity) {
                st->out_query[st->count] = q;
                st->out_key[st->count] = key;
            }
            st->count++;
        }
    }
    return current_bound(st, q);
}

/* ------------------------------------------------------------------ variants */

/* scalar: one 64-bit lane; popcnt where the CPU has it */
#ifdef HL_X86
#pragma GCC push_options
#pragma GCC target("popcnt")
#endif
#define SUFFIX scalar
#define LANE_T uint64_t
#define LANES 1
#define V_T int64_t
#define ACC_T int64_t
#define LANE_DIST_T int64_t
#define LANE_DIST_BYTES 8
#define ACC_CHUNK (1 << 20)
#define V_LOAD(p) ((int64_t) * (p))
#define V_SET1(x) ((int64_t)(x))
#define ACC_ZERO() ((int64_t)0)
#define ACC_ADD(acc, v, q) ((acc) + __builtin_popcountll((uint64_t)(v) ^ (uint64_t)(q)))
#define V_ZERO() ((int64_t)0)
#define V_ADD(a, b) ((a) + (b))
#define V_FINISH(acc) (acc)
#define V_LE_MASK(a, b) ((unsigned)((a) <= (b)))
#define V_STORE(p, a) ((p)[0] = (a))
#include "_hamming_scan.h"
#include "_hamming_undef.h"
#ifdef HL_X86
#pragma GCC pop_options
#endif

/* Row-major scan of codes of any width for a group of g <= 4 queries, one code at a time: the
 * scalar variant's path for a few queries, and every variant's path for the codes a vector scan
 * leaves at the end. */
#ifdef HL_X86
#pragma GCC push_options
#pragma GCC target("popcnt")
#endif
static void scan_rows(const uint8_t *db, int64_t first, int64_t last, int code_size,
                      const uint8_t *const *qb, int g, struct scan_state *st, int q0)
{
    int64_t bound[4];
    for (int j = 0; j < g; j++) bound[j] = current_bound(st, q0 + j);
    for (int64_t i = first; i < last; i++) {
        const uint8_t *code = db + (size_t)i * code_size;
        for (int j = 0; j < g; j++) {
            int64_t d = 0;
            int c = 0;
            for (; c + 8 <= code_size; c += 8) {
                uint64_t a, b;
                memcpy(&a, code + c, 8);
                memcpy(&b, qb[j] + c, 8);
                d += __builtin_popcountll(a ^ b);
            }
            for (; c < code_size; c++) d += __builtin_popcount((unsigned)(code[c] ^ qb[j][c]));
            if (d <= bound[j]) bound[j] = take_hits(st, q0 + j, 1u, &d, i, 8);
        }
    }
}
#ifdef HL_X86
#pragma GCC pop_options
#endif

#ifdef HL_X86
/* AVX2: byte popcounts by nibble lookup, summed over up to 31 words, then per lane. */
#pragma GCC push_options
#pragma GCC target("avx2,popcnt")
static inline __m256i nibble_popcount(__m256i v)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, low);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}
static inline unsigned mask64_le(__m256i a, __m256i b)
{
    return (~(unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(a, b)))) & 0xfu;
}
static inline unsigned mask32_le(__m256i a, __m256i b)
{
    return (~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)))) & 0xffu;
}
static inline __m256i group_sum64_avx2(__m256i x, int nw)
{
    if (nw >= 2) x = _mm256_add_epi64(x, _mm256_shuffle_epi32(x, 0x4E)); /* swap words in 128 */
    if (nw >= 4) x = _mm256_add_epi64(x, _mm256_permute4x64_epi64(x, 0x4E)); /* swap 128 halves */
    return x;
}
static inline __m256i sum_bytes32(__m256i c)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(c, _mm256_set1_epi8(1)), _mm256_set1_epi16(1));
}
#define SUFFIX avx2_64
#define LANE_T uint64_t
#define LANES 4
#define V_T __m256i
#define ACC_T __m256i
#define LANE_DIST_T int64_t
#define LANE_DIST_BYTES 8
#define ACC_CHUNK 31
#define V_LOAD(p) _mm256_load_si256((const __m256i *)(p))
#define V_SET1(x) _mm256_set1_epi64x((long long)(x))
#define ACC_ZERO() _mm256_setzero_si256()
#define ACC_ADD(acc, v, q) _mm256_add_epi8((acc), nibble_popcount(_mm256_xor_si256((v), (q))))
#define V_ZERO() _mm256_setzero_si256()
#define V_ADD(a, b) _mm256_add_epi64((a), (b))
#define V_FINISH(acc) _mm256_sad_epu8((acc), _mm256_setzero_si256())
#define V_LE_MASK(a, b) mask64_le((a), (b))
#define V_STORE(p, a) _mm256_storeu_si256((__m256i *)(p), (a))
#define V_LOADU(p) _mm256_loadu_si256((const __m256i *)(p))
#define V_GROUP_SUM(x, nw) group_sum64_avx2((x), (nw))
#include "_hamming_scan.h"
#undef V_GROUP_SUM
#undef SUFFIX
#undef LANE_T
#undef LANES
#undef LANE_DIST_T
#undef LANE_DIST_BYTES
#undef ACC_CHUNK
#undef V_LOAD
#undef V_SET1
#undef V_ADD
#undef V_FINISH
#undef V_LE_MASK
#define SUFFIX avx2_32
#define LANE_T uint32_t
#define LANES 8
#define LANE_DIST_T int32_t
#define LANE_DIST_BYTES 4
#define ACC_CHUNK 1
#define V_LOAD(p) _mm256_load_si256((const __m256i *)(p))
#define V_SET1(x) _mm256_set1_epi32((int)(x))
#define V_ADD(a, b) _mm256_add_epi32((a), (b))
#define V_FINISH(acc) sum_bytes32(acc)
#define V_LE_MASK(a, b) mask32_le((a), (b))
#define V_GROUP_SUM(x, nw) (x)
#include "_hamming_scan.h"
#include "_hamming_undef.h"
#pragma GCC pop_options

/* AVX-512 with VPOPCNTDQ: 8 (or 16) lanes per popcount instruction. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vpopcntdq,popcnt")
static inline __m512i group_sum64_512(__m512i x, int nw)
{
    if (nw >= 2) x = _mm512_add_epi64(x, _mm512_shuffle_epi32(x, (_MM_PERM_ENUM)0x4E));
    if (nw >= 4) x = _mm512_add_epi64(x, _mm512_permutex_epi64(x, 0x4E));
    if (nw >= 8) x = _mm512_add_epi64(x, _mm512_shuffle_i64x2(x, x, 0x4E));
    return x;
}
#define SUFFIX avx512_64
#define LANE_T uint64_t
#define LANES 8
#define V_T __m512i
#define ACC_T __m512i
#define LANE_DIST_T int64_t
#define LANE_DIST_BYTES 8
#define ACC_CHUNK (1 << 20)
#define V_LOAD(p) _mm512_load_si512((const void *)(p))
#define V_SET1(x) _mm512_set1_epi64((long long)(x))
#define ACC_ZERO() _mm512_setzero_si512()
#define ACC_ADD(acc, v, q) _mm512_add_epi64((acc), _mm512_popcnt_epi64(_mm512_xor_si512((v), (q))))
#define V_ZERO() _mm512_setzero_si512()
#define V_ADD(a, b) _mm512_add_epi64((a), (b))
#define V_FINISH(acc) (acc)
#define V_LE_MASK(a, b) ((unsigned)_mm512_cmple_epi64_mask((a), (b)))
#define V_STORE(p, a) _mm512_storeu_si512((void *)(p), (a))
#define V_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define V_GROUP_SUM(x, nw) group_sum64_512((x), (nw))
#include "_hamming_scan.h"
#undef V_GROUP_SUM
#undef SUFFIX
#undef LANE_T
#undef LANES
#undef LANE_DIST_T
#undef LANE_DIST_BYTES
#undef V_SET1
#undef ACC_ADD
#undef V_ADD
#undef V_LE_MASK
#define SUFFIX avx512_32
#define LANE_T uint32_t
#define LANES 16
#define LANE_DIST_T int32_t
#define LANE_DIST_BYTES 4
#define V_SET1(x) _mm512_set1_epi32((int)(x))
#define ACC_ADD(acc, v, q) _mm512_add_epi32((acc), _mm512_popcnt_epi32(_mm512_xor_si512((v), (q))))
#define V_ADD(a, b) _mm512_add_epi32((a), (b))
#define V_LE_MASK(a, b) ((unsigned)_mm512_cmple_epi32_mask((a), (b)))
#define V_GROUP_SUM(x, nw) (x)
#include "_hamming_scan.h"
#include "_hamming_undef.h"
#pragma GCC pop_options
#endif /* HL_X86 */

/* ------------------------------------------------------------------ driver */

int hl_supported(void)
{
    int mask = 0;
#ifdef HL_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("popcnt")) mask |= 1 << VARIANT_SCALAR;
    if (__builtin_cpu_supports("avx2")) mask |= 1 << VARIANT_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq"))
        mask |= 1 << VARIANT_AVX512;
#else
    mask |= 1 << VARIANT_SCALAR;
#endif
    return mask;
}

/* Copy codes [first, first + cnt) into a word-planar block of `stride` codes, zero-padded. */
static void stage(const uint8_t *db, int64_t first, int cnt, int code_size, int lane_bytes, int nw,
                  int stride, void *planar)
{
    size_t row = (size_t)nw * lane_bytes;
    uint8_t tmp[512 + 8];
    for (int i = 0; i < stride; i++) {
        memset(tmp, 0, row);
        if (i < cnt) memcpy(tmp, db + (size_t)(first + i) * code_size, code_size);
        for (int w = 0; w < nw; w++) {
            if (lane_bytes == 8)
                memcpy((uint64_t *)planar + (size_t)w * stride + i, tmp + 8 * w, 8);
            else
                memcpy((uint32_t *)planar + (size_t)w * stride + i, tmp + 4 * w, 4);
        }
    }
}

#define DIRECT_MAX_QUERIES 8 /* up to this many queries, codes are read where they lie */

/* A few queries: no staging copy, which would cost more than the scan itself. */
static void run_direct(int variant, const uint8_t *db, int64_t first, int64_t last, int code_size,
                       const uint8_t *queries, int nq, struct scan_state *st)
{
    int lane_bytes = code_size == 4 ? 4 : 8;
    int nw = code_size / lane_bytes;
    int lanes = variant == VARIANT_AVX512 ? 64 / lane_bytes : 32 / lane_bytes;
    int vector = variant != VARIANT_SCALAR && code_size % lane_bytes == 0 && nw <= lanes &&
                 (nw == 1 || nw == 2 || nw == 4 || nw == 8);
    for (int q0 = 0; q0 < nq; q0 += 4) {
        int g = nq - q0 < 4 ? nq - q0 : 4;
        const uint8_t *qb[4];
        for (int j = 0; j < 4; j++) qb[j] = queries + (size_t)(q0 + (j < g ? j : 0)) * code_size;
        int64_t done = first;
#ifdef HL_X86
        if (vector) {
            uint64_t words[4][8];
            const void *qw[4];
            for (int j = 0; j < 4; j++) {
                memcpy(words[j], qb[j], code_size);
                qw[j] = words[j];
            }
            if (variant == VARIANT_AVX512)
                done = lane_bytes == 4
                           ? direct_avx512_32((const uint32_t *)db, first, last, nw,
                                              (const uint32_t *const *)qw, g, st, q0)
                           : direct_avx512_64((const uint64_t *)db, first, last, nw,
                                              (const uint64_t *const *)qw, g, st, q0);
            else
                done = lane_bytes == 4
                           ? direct_avx2_32((const uint32_t *)db, first, last, nw,
                                            (const uint32_t *const *)qw, g, st, q0)
                           : direct_avx2_64((const uint64_t *)db, first, last, nw,
                                            (const uint64_t *const *)qw, g, st, q0);
        }
#else
        (void)vector;
#endif
        scan_rows(db, done, last, code_size, qb, g, st, q0);
    }
}

static int64_t run_scan(int variant, const uint8_t *db, int64_t first, int64_t last, int code_size,
                        const uint8_t *queries, int nq, struct scan_state *st)
{
    if (!(hl_supported() & (1 << variant))) return HL_UNSUPPORTED;
    if (nq <= DIRECT_MAX_QUERIES && st->mode != MODE_DISTANCES) {
        run_direct(variant, db, first, last, code_size, queries, nq, st);
        return 0;
    }
    int lane_bytes = (code_size <= 4 && variant != VARIANT_SCALAR) ? 4 : 8;
    int nw = (code_size + lane_bytes - 1) / lane_bytes;
    int nb = (int)(BLOCK_BYTES / ((size_t)nw * lane_bytes));
    nb = nb < 64 ? 64 : nb - nb % 16;
    void *planar = aligned_alloc(64, (size_t)nb * nw * lane_bytes);
    void *qbuf = aligned_alloc(64, ((size_t)nq * nw * lane_bytes + 63) / 64 * 64);
    if (!planar || !qbuf) {
        free(planar);
        free(qbuf);
        return HL_NO_MEMORY;
    }
    memset(qbuf, 0, (size_t)nq * nw * lane_bytes);
    for (int q = 0; q < nq; q++)
        memcpy((uint8_t *)qbuf + (size_t)q * nw * lane_bytes, queries + (size_t)q * code_size,
               code_size);
    for (int64_t b0 = first; b0 < last; b0 += nb) {
        int cnt = (int)(last - b0 < nb ? last - b0 : nb);
        int stride = (cnt + 15) / 16 * 16;
        stage(db, b0, cnt, code_size, lane_bytes, nw, stride, planar);
        for (int q0 = 0; q0 < nq; q0 += 4) {
            int g = nq - q0 < 4 ? nq - q0 : 4;
            const void *qw[4];
            for (int j = 0; j < 4; j++)
                qw[j] = (uint8_t *)qbuf + (size_t)(q0 + (j < g ? j : 0)) * nw * lane_bytes;
            if (st->mode == MODE_DISTANCES) {
                uint16_t *out = st->distances + (size_t)q0 * st->stride + (b0 - first);
                switch (variant) {
#ifdef HL_X86
                case VARIANT_AVX512:
                    if (lane_bytes == 4)
                        distances_avx512_32(planar, nw, stride, cnt, (const uint32_t *const *)qw, g, out, st->stride);
                    else
                        distances_avx512_64(planar, nw, stride, cnt, (const uint64_t *const *)qw, g, out, st->stride);
                    break;
                case VARIANT_AVX2:
                    if (lane_bytes == 4)
                        distances_avx2_32(planar, nw, stride, cnt, (const uint32_t *const *)qw, g, out, st->stride);
                    else
                        distances_avx2_64(planar, nw, stride, cnt, (const uint64_t *const *)qw, g, out, st->stride);
                    break;
#endif
                default:
                    distances_scalar(planar, nw, stride, cnt, (const uint64_t *const *)qw, g, out, st->stride);
                }
                continue;
            }
            switch (variant) {
#ifdef HL_X86
            case VARIANT_AVX512:
                if (lane_bytes == 4)
                    scan_avx512_32(planar, nw, stride, cnt, (const uint32_t *const *)qw, g, st, b0, q0);
                else
                    scan_avx512_64(planar, nw, stride, cnt, (const uint64_t *const *)qw, g, st, b0, q0);
                break;
            case VARIANT_AVX2:
                if (lane_bytes == 4)
                    scan_avx2_32(planar, nw, stride, cnt, (const uint32_t *const *)qw, g, st, b0, q0);
                else
                    scan_avx2_64(planar, nw, stride, cnt, (const uint64_t *const *)qw, g, st, b0, q0);
                break;
#endif
            default:
                scan_scalar(planar, nw, stride, cnt, (const uint64_t *const *)qw, g, st, b0, q0);
            }
        }
    }
    free(planar);
    free(qbuf);
    return 0;
}

/* k nearest items of each query among positions [first, last) of db (n x code_size bytes).
 * heaps: nq x k keys, max-heaps kept across calls (fill with EMPTY_KEY first). */
int64_t hl_knn(int variant, const uint8_t *db, int64_t first, int64_t last, int code_size,
               const int64_t *rank, const uint8_t *queries, int nq, int k, int64_t *heaps)
{
    struct scan_state st = {MODE_KNN, k, heaps, 0, rank, NULL, NULL, 0, 0, NULL, 0};
    return run_scan(variant, db, first, last, code_size, queries, nq, &st);
}

/* Every item within radius of each query among positions [first, last), in one pass: the first
 * `capacity` hits go to out_query / out_key (unsorted); returns the number of hits (more than
 * capacity: call again with room for all), or a negative error. */
int64_t hl_range(int variant, const uint8_t *db, int64_t first, int64_t last, int code_size,
                 const int64_t *rank, const uint8_t *queries, int nq, int64_t radius,
                 int64_t *out_query, int64_t *out_key, int64_t capacity)
{
    struct scan_state st = {MODE_RANGE, 0, NULL, radius, rank, out_query, out_key, capacity, 0,
                            NULL, 0};
    int64_t status = run_scan(variant, db, first, last, code_size, queries, nq, &st);
    return status < 0 ? status : st.count;
}

/* Every distance of nq queries to the codes at positions [first, last) of db: the distance of
 * query q to code first + i goes to out[q * (last - first) + i], as uint16 (codes of at most
 * 65535 bits). The evaluation engine histograms and ranks them; returns 0 or a negative error. */
int64_t hl_distances(int variant, const uint8_t *db, int64_t first, int64_t last, int code_size,
                     const uint8_t *queries, int nq, uint16_t *out)
{
    struct scan_state st = {MODE_DISTANCES, 0, NULL, 0, NULL, NULL, NULL, 0, 0, out, last - first};
    return run_scan(variant, db, first, last, code_size, queries, nq, &st);
}

/* ------------------------------------------------------------------ the machine's limit */

/* xor + popcount + add over 12 independent register chains, no memory: the most 64-bit words a
 * variant can count per second on one core (benchmarks/search.py reports scans against it).
 * Returns a checksum so that the work is not optimised away; `words` gets the words counted. */
#ifdef HL_X86
__attribute__((target("avx512f,avx512vpopcntdq"))) static int64_t peak_avx512(int64_t rounds,
                                                                               int64_t *words)
{
    __m512i acc[12], y = _mm512_set1_epi64(0x5555555555555555LL);
    for (int c = 0; c < 12; c++) acc[c] = _mm512_set1_epi64(c);
    for (int64_t r = 0; r < rounds; r++)
        for (int c = 0; c < 12; c++)
            acc[c] = _mm512_add_epi64(acc[c], _mm512_popcnt_epi64(_mm512_xor_si512(acc[c], y)));
    int64_t total = 0;
    for (int c = 0; c < 12; c++) total += _mm512_reduce_add_epi64(acc[c]);
    *words = rounds * 12 * 8;
    return total;
}
__attribute__((target("avx2"))) static int64_t peak_avx2(int64_t rounds, int64_t *words)
{
    __m256i acc[12], y = _mm256_set1_epi64x(0x5555555555555555LL);
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (int c = 0; c < 12; c++) acc[c] = _mm256_set1_epi64x(c);
    for (int64_t r = 0; r < rounds; r++)
        for (int c = 0; c < 12; c++) {
            __m256i v = _mm256_xor_si256(acc[c], y);
            __m256i n = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, low)),
                                        _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
            acc[c] = _mm256_add_epi64(acc[c], _mm256_sad_epu8(n, _mm256_setzero_si256()));
        }
    int64_t total = 0, lanes[4];
    for (int c = 0; c < 12; c++) {
        _mm256_storeu_si256((__m256i *)lanes, acc[c]);
        total += lanes[0] + lanes[1] + lanes[2] + lanes[3];
    }
    *words = rounds * 12 * 4;
    return total;
}
__attribute__((target("popcnt")))
#endif
static int64_t peak_scalar(int64_t rounds, int64_t *words)
{
    uint64_t acc[12], y = 0x5555555555555555ULL;
    for (int c = 0; c < 12; c++) acc[c] = (uint64_t)c;
    for (int64_t r = 0; r < rounds; r++)
        for (int c = 0; c < 12; c++) acc[c] += (uint64_t)__builtin_popcountll(acc[c] ^ y);
    int64_t total = 0;
    for (int c = 0; c < 12; c++) total += (int64_t)acc[c];
    *words = rounds * 12;
    return total;
}

int64_t hl_peak(int variant, int64_t rounds, int64_t *words)
{
    if (!(hl_supported() & (1 << variant))) return HL_UNSUPPORTED;
#ifdef HL_X86
    if (variant == VARIANT_AVX512) return peak_avx512(rounds, words);
    if (variant == VARIANT_AVX2) return peak_avx2(rounds, words);
#endif
    return peak_scalar(rounds, words);
}

static struct PyModuleDef hamming_module = {PyModuleDef_HEAD_INIT, "_hamming",
                                            "Compiled Hamming scans (called through ctypes).", -1,
                                            NULL};

PyMODINIT_FUNC PyInit__hamming(void) { return PyModule_Create(&hamming_module); }
