/* Ends a variant of _hamming.c: undefines every macro a variant defines for _hamming_scan.h. */

#undef V_GROUP_SUM
#undef V_LOADU
#undef SUFFIX
#undef LANE_T
#undef LANES
#undef V_T
#undef ACC_T
#undef LANE_DIST_T
#undef LANE_DIST_BYTES
#undef ACC_CHUNK
#undef V_LOAD
#undef V_SET1
#undef ACC_ZERO
#undef ACC_ADD
#undef V_ZERO
#undef V_ADD
#undef V_FINISH
#undef V_LE_MASK
#undef V_STORE
