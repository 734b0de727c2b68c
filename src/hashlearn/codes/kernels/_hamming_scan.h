/* The exact Hamming scan, written once and compiled once per instruction set.
 *
 * _hamming.c includes this file several times, each time with a vector type and its operations
 * defined as macros and a "#pragma GCC target" in force, so the compiler generates one variant of
 * the same arithmetic per CPU class (AVX-512 VPOPCNTDQ, AVX2, scalar popcnt). The macros a variant
 * defines:
 *
 *   SUFFIX            name suffix of the generated functions (scan_<SUFFIX>)
 *   LANE_T            unsigned type of one lane (uint64_t, or uint32_t for codes of <= 4 bytes)
 *   LANES             codes per vector
 *   V_T, ACC_T        vector type of distances, accumulator type of popcounts
 *   V_LOAD(p)         LANES consecutive lanes from p (aligned)
 *   V_SET1(x)         x in every lane
 *   ACC_ZERO()        empty accumulator
 *   ACC_ADD(acc, v, q)  acc + popcount(v ^ q), per lane
 *   ACC_CHUNK         words an accumulator takes before it must be finished (overflow bound)
 *   V_ZERO(), V_ADD(a, b), V_FINISH(acc)  lane distances from an accumulator, and their sum
 *   V_LE_MASK(a, b)   bit l set where lane l of a <= lane l of b (signed)
 *   V_STORE(p, a)     lanes of a to int64/int32 memory
 *
 * The database block is word-planar: word w of code i at planar[w * nb + i], so one vector load
 * takes word w of LANES consecutive codes. Four queries are served per pass over the block: each
 * load is compared with the four queries' words, and the only per-code work is xor, popcount,
 * add and one compare per query with its bound (its current k-th best distance, or the radius).
 * The rare lane that passes goes to the shared, scalar hit handling of _hamming.c. The same
 * arithmetic (four_<SUFFIX>) also writes every distance of a block out (distances_<SUFFIX>), for
 * the evaluation engine, which needs them all.
 */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)

/* Distances of LANES consecutive codes of the block, from position i, to four queries. */
static inline __attribute__((always_inline)) void CAT(four, SUFFIX)(
    const LANE_T *planar, int nw, int nb, int i, const LANE_T *const *qw, V_T *d0, V_T *d1,
    V_T *d2, V_T *d3)
{
    V_T e0 = V_ZERO(), e1 = V_ZERO(), e2 = V_ZERO(), e3 = V_ZERO();
    for (int w0 = 0; w0 < nw; w0 += ACC_CHUNK) {
        int w1 = w0 + ACC_CHUNK < nw ? w0 + ACC_CHUNK : nw;
        ACC_T a0 = ACC_ZERO(), a1 = ACC_ZERO(), a2 = ACC_ZERO(), a3 = ACC_ZERO();
        for (int w = w0; w < w1; w++) {
            V_T v = V_LOAD(planar + (size_t)w * nb + i);
            a0 = ACC_ADD(a0, v, V_SET1(qw[0][w]));
            a1 = ACC_ADD(a1, v, V_SET1(qw[1][w]));
            a2 = ACC_ADD(a2, v, V_SET1(qw[2][w]));
            a3 = ACC_ADD(a3, v, V_SET1(qw[3][w]));
        }
        e0 = V_ADD(e0, V_FINISH(a0));
        e1 = V_ADD(e1, V_FINISH(a1));
        e2 = V_ADD(e2, V_FINISH(a2));
        e3 = V_ADD(e3, V_FINISH(a3));
    }
    *d0 = e0;
    *d1 = e1;
    *d2 = e2;
    *d3 = e3;
}

static inline __attribute__((always_inline)) void CAT(group, SUFFIX)(
    const LANE_T *planar, int nw, int nb, int cnt, const LANE_T *const *qw, int g,
    struct scan_state *st, int64_t pos0, int q0)
{
    int64_t bound[4];
    for (int j = 0; j < 4; j++) bound[j] = j < g ? current_bound(st, q0 + j) : -1;
    V_T b0 = V_SET1(bound[0]), b1 = V_SET1(bound[1]), b2 = V_SET1(bound[2]), b3 = V_SET1(bound[3]);
    for (int i = 0; i < nb; i += LANES) {
        V_T d0, d1, d2, d3;
        CAT(four, SUFFIX)(planar, nw, nb, i, qw, &d0, &d1, &d2, &d3);
        unsigned m0 = V_LE_MASK(d0, b0), m1 = V_LE_MASK(d1, b1);
        unsigned m2 = V_LE_MASK(d2, b2), m3 = V_LE_MASK(d3, b3);
        if (__builtin_expect((m0 | m1 | m2 | m3) != 0, 0)) {
            unsigned valid = cnt - i >= LANES ? ~0u : cnt <= i ? 0u : (1u << (cnt - i)) - 1u;
            unsigned masks[4] = {m0 & valid, m1 & valid, m2 & valid, m3 & valid};
            V_T dists[4] = {d0, d1, d2, d3};
            for (int j = 0; j < g; j++) {
                if (!masks[j]) continue;
                LANE_DIST_T lane[LANES];
                V_STORE(lane, dists[j]);
                int64_t nb_ = take_hits(st, q0 + j, masks[j], lane, pos0 + i, LANE_DIST_BYTES);
                if (nb_ != bound[j]) {
                    bound[j] = nb_;
                    V_T nbv = V_SET1(nb_);
                    if (j == 0) b0 = nbv; else if (j == 1) b1 = nbv; else if (j == 2) b2 = nbv; else b3 = nbv;
                }
            }
        }
    }
}

/* Every distance of g <= 4 queries to the cnt codes of the block, as uint16: query j's distance
 * to code i goes to out[j * stride + i] (the evaluation engine's distance blocks). */
static inline __attribute__((always_inline)) void CAT(dist_group, SUFFIX)(
    const LANE_T *planar, int nw, int nb, int cnt, const LANE_T *const *qw, int g, uint16_t *out,
    int64_t stride)
{
    for (int i = 0; i < cnt; i += LANES) {
        V_T d[4];
        CAT(four, SUFFIX)(planar, nw, nb, i, qw, &d[0], &d[1], &d[2], &d[3]);
        int take = cnt - i < LANES ? cnt - i : LANES;
        for (int j = 0; j < g; j++) {
            LANE_DIST_T lane[LANES];
            V_STORE(lane, d[j]);
            uint16_t *row = out + (size_t)j * stride + i;
            for (int l = 0; l < take; l++) row[l] = (uint16_t)lane[l];
        }
    }
}

static void CAT(distances, SUFFIX)(const LANE_T *planar, int nw, int nb, int cnt,
                                   const LANE_T *const *qw, int g, uint16_t *out, int64_t stride)
{
    switch (nw) {
    case 1: CAT(dist_group, SUFFIX)(planar, 1, nb, cnt, qw, g, out, stride); break;
    case 2: CAT(dist_group, SUFFIX)(planar, 2, nb, cnt, qw, g, out, stride); break;
    case 4: CAT(dist_group, SUFFIX)(planar, 4, nb, cnt, qw, g, out, stride); break;
    default: CAT(dist_group, SUFFIX)(planar, nw, nb, cnt, qw, g, out, stride); break;
    }
}

/* Specialised for the common word counts, so that the query words stay in registers. */
static void CAT(scan, SUFFIX)(const LANE_T *planar, int nw, int nb, int cnt,
                              const LANE_T *const *qw, int g, struct scan_state *st, int64_t pos0,
                              int q0)
{
    switch (nw) {
    case 1: CAT(group, SUFFIX)(planar, 1, nb, cnt, qw, g, st, pos0, q0); break;
    case 2: CAT(group, SUFFIX)(planar, 2, nb, cnt, qw, g, st, pos0, q0); break;
    case 4: CAT(group, SUFFIX)(planar, 4, nb, cnt, qw, g, st, pos0, q0); break;
    default: CAT(group, SUFFIX)(planar, nw, nb, cnt, qw, g, st, pos0, q0); break;
    }
}

#ifdef V_LOADU
/* Row-major ("direct") scan for a few queries: codes of exactly nw lanes (nw = 1, 2, 4 or 8 with
 * nw <= LANES) are read where they lie, LANES / nw codes per vector, with no staging copy: a
 * vector holds whole codes, the query's words repeat across it, and after the popcount the lanes
 * of each code are summed (V_GROUP_SUM). The codes past the last whole vector go to the caller. */
static inline __attribute__((always_inline)) int64_t CAT(direct_g, SUFFIX)(
    const LANE_T *db, int64_t first, int64_t last, int nw, const LANE_T *const *qw, const int g,
    struct scan_state *st, int q0)
{
    const int per = LANES / nw;
    unsigned lead = 0; /* the first lane of every code */
    for (int l = 0; l < LANES; l += nw) lead |= 1u << l;
    int64_t bound[4];
    V_T qv[4], b[4];
    for (int j = 0; j < g; j++) {
        LANE_T pattern[LANES];
        for (int l = 0; l < LANES; l++) pattern[l] = qw[j][l % nw];
        qv[j] = V_LOADU(pattern);
        bound[j] = current_bound(st, q0 + j);
        b[j] = V_SET1(bound[j]);
    }
    int64_t i = first;
    for (; i + per <= last; i += per) {
        V_T v = V_LOADU(db + (size_t)i * nw);
        unsigned m[4], any = 0;
        V_T d[4];
        for (int j = 0; j < g; j++) {
            d[j] = V_GROUP_SUM(V_FINISH(ACC_ADD(ACC_ZERO(), v, qv[j])), nw);
            m[j] = V_LE_MASK(d[j], b[j]) & lead;
            any |= m[j];
        }
        if (__builtin_expect(any != 0, 0)) {
            for (int j = 0; j < g; j++) {
                if (!m[j]) continue;
                LANE_DIST_T lane[LANES], per_code[LANES];
                V_STORE(lane, d[j]);
                unsigned mask = 0;
                for (int c = 0; c < per; c++) {
                    per_code[c] = lane[c * nw];
                    if (m[j] & (1u << (c * nw))) mask |= 1u << c;
                }
                int64_t nb_ = take_hits(st, q0 + j, mask, per_code, i, LANE_DIST_BYTES);
                if (nb_ != bound[j]) {
                    bound[j] = nb_;
                    b[j] = V_SET1(nb_);
                }
            }
        }
    }
    return i;
}

static int64_t CAT(direct, SUFFIX)(const LANE_T *db, int64_t first, int64_t last, int nw,
                                   const LANE_T *const *qw, int g, struct scan_state *st, int q0)
{
    switch (g) {
    case 1: return CAT(direct_g, SUFFIX)(db, first, last, nw, qw, 1, st, q0);
    case 2: return CAT(direct_g, SUFFIX)(db, first, last, nw, qw, 2, st, q0);
    case 3: return CAT(direct_g, SUFFIX)(db, first, last, nw, qw, 3, st, q0);
    default: return CAT(direct_g, SUFFIX)(db, first, last, nw, qw, 4, st, q0);
    }
}
#endif

#undef CAT
#undef CAT2
