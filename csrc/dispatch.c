/*
 * dispatch.c: which ISA paths this build has and this CPU runs, and the entry points of
 * fastlstm.h, each of which runs the path named in its fl_exec (or isa argument).
 *
 * Nothing here changes after load: the tables are constants, CPU features are read from the CPU
 * on each query (the L1 data cache size once, then kept), and the path a call runs is the one
 * its caller names (the Python layer chooses it once at import: the best the CPU has, or
 * FASTLSTM_ISA).
 */
#include <string.h>

#include "fastlstm.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define FL_X86_CPUID 1
#elif defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

/* The tables engine.c defines, one per compiled path and width (FL_HAVE_* from CMake). */
#define FL_DECLARE(tag)                                                                        \
    extern const fl_kernels_f32 fl_kernels_##tag##_f32;                                        \
    extern const fl_kernels_f64 fl_kernels_##tag##_f64;
FL_DECLARE(generic)
#ifdef FL_HAVE_AVX2
FL_DECLARE(avx2)
#endif
#ifdef FL_HAVE_AVX512
FL_DECLARE(avx512)
#endif
#ifdef FL_HAVE_NEON
FL_DECLARE(neon)
#endif

static const char *const isa_names[FL_NUM_ISAS] = {"generic", "avx2", "avx512", "neon"};

int fl_isa_compiled(int isa)
{
    switch (isa) {
    case FL_ISA_GENERIC: return 1;
#ifdef FL_HAVE_AVX2
    case FL_ISA_AVX2: return 1;
#endif
#ifdef FL_HAVE_AVX512
    case FL_ISA_AVX512: return 1;
#endif
#ifdef FL_HAVE_NEON
    case FL_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

int fl_isa_supported(int isa)
{
    if (!fl_isa_compiled(isa)) return 0;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (isa == FL_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == FL_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("fma");
#endif
    return 1; /* generic everywhere; NEON is part of every aarch64 */
}

int fl_isa_best(void)
{
    static const int order[] = {FL_ISA_AVX512, FL_ISA_AVX2, FL_ISA_NEON};
    for (int k = 0; k < 3; k++)
        if (fl_isa_supported(order[k])) return order[k];
    return FL_ISA_GENERIC;
}

const char *fl_isa_name(int isa) { return isa >= 0 && isa < FL_NUM_ISAS ? isa_names[isa] : "?"; }

int fl_isa_by_name(const char *name)
{
    for (int k = 0; name && k < FL_NUM_ISAS; k++)
        if (strcmp(name, isa_names[k]) == 0) return k;
    return -1;
}

/* The L1 data cache from CPUID: AMD's (and Hygon's) leaf 0x80000005 gives it in KiB; Intel's
 * deterministic cache leaf 4 describes each cache (type 1 = data, level 1). */
static int l1d_query(void)
{
#ifdef FL_X86_CPUID
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    const unsigned max_leaf = a;
    const int amd = (b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u) || /* AuthenticAMD */
                    (b == 0x6f677948u && d == 0x6e65476eu && c == 0x656e6975u);  /* HygonGenuine */
    if (amd) {
        if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000005u &&
            __get_cpuid(0x80000005u, &a, &b, &c, &d))
            return (int)(c >> 24) * 1024;
        return 0;
    }
    if (max_leaf < 4) return 0;
    for (unsigned sub = 0; sub < 16; sub++) {
        __cpuid_count(4, sub, a, b, c, d);
        const unsigned type = a & 31, level = (a >> 5) & 7;
        if (type == 0) break;
        if (type == 1 && level == 1) /* ways x partitions x line bytes x sets */
            return (int)((((b >> 22) & 1023) + 1) * (((b >> 12) & 1023) + 1) *
                         ((b & 4095) + 1) * (c + 1));
    }
    return 0;
#elif defined(_SC_LEVEL1_DCACHE_SIZE)
    const long v = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    return v > 0 && v < (1L << 30) ? (int)v : 0;
#else
    return 0;
#endif
}

int fl_l1d_bytes(void)
{
    /* -1: not read yet. Threads that race here store the same value. */
    static int kept = -1;
#if defined(__GNUC__) || defined(__clang__)
    int v = __atomic_load_n(&kept, __ATOMIC_RELAXED);
    if (v < 0) {
        v = l1d_query();
        __atomic_store_n(&kept, v, __ATOMIC_RELAXED);
    }
    return v;
#else
    if (kept < 0) kept = l1d_query();
    return kept;
#endif
}

int fl_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fl_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#define FL_TABLE_OF(W)                                                                         \
    static const fl_kernels_##W *table_##W(int isa)                                            \
    {                                                                                          \
        if (!fl_isa_supported(isa)) return NULL;                                               \
        switch (isa) {                                                                         \
        case FL_ISA_GENERIC: return &fl_kernels_generic_##W;                                   \
        FL_CASE_AVX2(W) FL_CASE_AVX512(W) FL_CASE_NEON(W)                                      \
        default: return NULL;                                                                  \
        }                                                                                      \
    }
#ifdef FL_HAVE_AVX2
#define FL_CASE_AVX2(W) case FL_ISA_AVX2: return &fl_kernels_avx2_##W;
#else
#define FL_CASE_AVX2(W)
#endif
#ifdef FL_HAVE_AVX512
#define FL_CASE_AVX512(W) case FL_ISA_AVX512: return &fl_kernels_avx512_##W;
#else
#define FL_CASE_AVX512(W)
#endif
#ifdef FL_HAVE_NEON
#define FL_CASE_NEON(W) case FL_ISA_NEON: return &fl_kernels_neon_##W;
#else
#define FL_CASE_NEON(W)
#endif
FL_TABLE_OF(f32)
FL_TABLE_OF(f64)

int fl_isa_vector_bytes(int isa)
{
    const fl_kernels_f32 *t = table_f32(isa);
    return t ? t->vector_bytes : 0;
}

/* The entry points for one width. */
#define real float
#define FL_FN(name) name##_f32
#define FL_TABLE_FN table_f32
#include "dispatch_impl.h"
#undef real
#undef FL_FN
#undef FL_TABLE_FN

#define real double
#define FL_FN(name) name##_f64
#define FL_TABLE_FN table_f64
#include "dispatch_impl.h"
#undef real
#undef FL_FN
#undef FL_TABLE_FN
