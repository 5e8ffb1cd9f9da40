/*
 * engine.c: every kernel of one ISA path and one float width. CMake compiles this file once per
 * (path, width) with FL_ISA (enum fl_isa), FL_DOUBLE (0 or 1), FL_VBYTES (the vector width in
 * bytes) and that path's instruction-set flags, and dispatch.c picks one of the tables at run
 * time. No native-CPU tuning flag and no fast-math flag: each path's flags name its instruction
 * set only, and IEEE semantics hold (the generic path also turns off fused multiply-add contraction, so it is
 * the plain-rounding reference).
 */
#include <math.h>
#include <string.h>

#include "fastlstm.h"

#if FL_DOUBLE
#define real double
#define FL_FN(name) name##_f64
#else
#define real float
#define FL_FN(name) name##_f32
#endif

#include "fl_simd.h"
#include "fl_math.h"
#include "fl_gemm.h"
#include "fl_gates.h"
#include "fl_seq.h"
#include "fl_seed_small.h"

#define FL_CAT3_(a, b, c) a##b##c
#define FL_CAT3(a, b, c) FL_CAT3_(a, b, c)
#if FL_ISA == 0
#define FL_ISA_TAG generic
#elif FL_ISA == 1
#define FL_ISA_TAG avx2
#elif FL_ISA == 2
#define FL_ISA_TAG avx512
#else
#define FL_ISA_TAG neon
#endif
#if FL_DOUBLE
#define FL_TABLE FL_CAT3(fl_kernels_, FL_ISA_TAG, _f64)
#else
#define FL_TABLE FL_CAT3(fl_kernels_, FL_ISA_TAG, _f32)
#endif

const FL_FN(fl_kernels) FL_TABLE = {
    FL_VBYTES,
    k_packed_size,
    k_pack_weights,
    k_seq_forward,
    k_bwd_scratch_size,
    k_seq_backward,
    k_gemm_scratch_size,
    k_gemm_blocking,
    k_gemm,
    gate_forward_rows,
    k_seed_small_size,
    k_seed_small_weights,
    k_seed_small_forward,
    k_seed_small_backward,
    k_seed_small_apply,
};
