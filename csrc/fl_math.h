/*
 * fl_math.h: exp, sigmoid and tanh on vectors for the gate math (`real` = float or double;
 * FL_DOUBLE says which), branch-free: every condition is a lane mask and a select.
 *
 * Why not libm: the gate pass evaluates five transcendental functions per hidden unit and step;
 * scalar libm calls cost more than the products at the seed's sizes and a large share at mid
 * sizes. Accuracy: exp of a non-positive argument by Cody-Waite reduction to |r| <= ln2/2 and a
 * Taylor polynomial (degree 13 in double, by Estrin's scheme; 7 in float, Horner's), within 2
 * ulp of the correctly rounded result. tanh in double: an odd minimax polynomial (fitted with
 * mpmath's chebyfit, max error 3.6e-19 relative) for |x| < 0.55 and (1 - e) / (1 + e),
 * e = exp(-2|x|), beyond. tanh in
 * float: x P(x^2) / Q(x^2) on x clamped to [-9, 9] (tanh(9) is within an ulp of 1 in float),
 * P of degree 6 and Q of degree 3 with Q(0) = 1, fitted for this file by iterated weighted least
 * squares on the relative error (max 8.6e-9 in exact arithmetic over [0, 9]); every coefficient
 * of Q is positive, so Q >= 1 and there is no pole. Simulated in NumPy over every 7th float
 * in [0, 9.5] against float64: at most 4.8 ulp with fused multiply-adds, 5.9 without; through
 * the kernels (tests/test_math.py, every path, [-10, 10]): 4.3 with them, 4.8 on the generic
 * path. No exp and one division: the gate pass ran 1.33x (AVX-512) and 1.52x
 * (AVX2) faster than with the exp form. Arguments below the smallest normal result underflow
 * to 0. NaN propagates. Only exp(-|x|) is ever needed, so there is no overflow to handle.
 */

#if FL_DOUBLE
#define FL_EXPNEG_MIN (-708.3964185322641)       /* exp of it is DBL_MIN */
#define FL_SHIFTER 0x1.8p52
#define FL_MANT_BITS 52
#define FL_EXP_BIAS 1023
#define FL_LN2_HI 0x1.62e42fefa3800p-1
#define FL_LN2_LO 0x1.ef35793c76730p-45
#define FL_LOG2E 1.4426950408889634
#else
#define FL_EXPNEG_MIN (-87.33654f)               /* exp of it is FLT_MIN */
#define FL_SHIFTER 0x1.8p23f
#define FL_MANT_BITS 23
#define FL_EXP_BIAS 127
#define FL_LN2_HI 0x1.62e4p-1f
#define FL_LN2_LO 0x1.7f7d1cp-20f
#define FL_LOG2E 1.44269504f
#endif

/* exp(x) for FL_EXPNEG_MIN <= x <= 0, or NaN (callers that bound their arguments: the seed's
 * clipped sigmoid, float64 tanh); v_expneg below takes any x <= 0. */
FL_INLINE vreal v_expneg_normal(vreal xc)
{
    vreal kd = xc * R(FL_LOG2E) + R(FL_SHIFTER); /* round(x / ln2) in the low bits */
    const vint ki = (vint)kd;
    kd = kd - R(FL_SHIFTER);
    const vreal r = (xc - kd * R(FL_LN2_HI)) - kd * R(FL_LN2_LO);
    vreal p;
#if FL_DOUBLE
    {   /* Estrin's scheme: the degree-13 Taylor polynomial in four levels of independent
         * multiply-adds instead of thirteen in a chain (sum of 1/k! r^k, pairs, then r^2,
         * r^4, r^8); the seed model's forward step, a chain of two of these, 9 % faster */
        const vreal r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
        const vreal a0 = r + 1.0, a1 = r * (1.0 / 6.0) + 0.5;
        const vreal a2 = r * (1.0 / 120.0) + 1.0 / 24.0, a3 = r * (1.0 / 5040.0) + 1.0 / 720.0;
        const vreal a4 = r * (1.0 / 362880.0) + 1.0 / 40320.0;
        const vreal a5 = r * (1.0 / 39916800.0) + 1.0 / 3628800.0;
        const vreal a6 = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
        const vreal b0 = a1 * r2 + a0, b1 = a3 * r2 + a2, b2 = a5 * r2 + a4;
        const vreal c0 = b1 * r4 + b0, c1 = a6 * r4 + b2;
        p = c1 * r8 + c0;
    }
#else
    p = v_set1(1.0f / 5040.0f);               /* 1/7! */
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
#endif
    /* 2^k from k = ki - bits(shifter), k in [-1022, 0] (double) / [-126, 0] (float). */
    const vint k = ki - (vint)v_set1(R(FL_SHIFTER));
    const vreal scale = (vreal)((k + (ireal)FL_EXP_BIAS) << FL_MANT_BITS);
    return p * scale;
}

/* exp(x) for x <= 0 (callers pass -|y|); 0 below the smallest normal result. */
FL_INLINE vreal v_expneg(vreal x)
{
    const vint under = x < R(FL_EXPNEG_MIN); /* NaN: false, stays NaN */
    const vreal xc = v_maxc(R(FL_EXPNEG_MIN), x);
    return v_sel(under, v_zero(), v_expneg_normal(xc));
}

/* Exact sigmoid without overflow: e = exp(-|x|); x >= 0 -> 1/(1+e), x < 0 -> e/(1+e). */
FL_INLINE vreal v_sigmoid(vreal x)
{
    const vreal e = v_expneg(v_negabs(x));
    const vreal s = R(1) / (R(1) + e);
    return v_sel(x < R(0), e * s, s);
}

/* The seed class's sigmoid, 1 / (1 + exp(-clip(x, -15, 15))); NaN passes through the clip as
 * in np.clip. exp(-y) for y in [-15, 15] is computed as 1/exp(-15..0) on the positive side. */
FL_INLINE vreal v_clip15(vreal x)
{
    return v_maxc(R(-15), v_minc(R(15), x));
}

FL_INLINE vreal v_sigmoid_clip15(vreal x)
{
    const vreal y = v_clip15(x);
    const vreal e = v_expneg_normal(v_negabs(y)); /* -15 <= -|y| <= 0 */
    /* 1 / (1 + exp(-y)): y >= 0 -> 1 / (1 + e); y < 0 -> 1 / (1 + 1/e) = e / (e + 1), as
     * e * (1 / (1 + e)): one division for both sides, as v_sigmoid */
    const vreal s = R(1) / (R(1) + e);
    return v_sel(y < R(0), e * s, s);
}

#if !FL_DOUBLE
/* tanh's numerator and denominator (tanh x = num / den), and the result from their quotient. */
FL_INLINE void v_tanh_parts(vreal x, vreal *num, vreal *den)
{
    /* NaN stays NaN (v_minc and v_maxc return x when unordered). */
    const vreal xc = v_minc(R(9), v_maxc(R(-9), x));
    const vreal u = xc * xc;
    vreal p = v_set1(-0x1.851e4ap-44f);
    p = p * u + 0x1.d5abbcp-35f;
    p = p * u - 0x1.5dc226p-26f;
    p = p * u + 0x1.776b6ep-17f;
    p = p * u + 0x1.974750p-9f;
    p = p * u + 0x1.0c05acp-3f;
    p = p * u + 1.0f;
    vreal q = v_set1(0x1.0b7c9ap-12f);
    q = q * u + 0x1.918c36p-6f;
    q = q * u + 0x1.db5828p-2f;
    q = q * u + 1.0f;
    *num = xc * p;
    *den = q;
}

FL_INLINE vreal v_tanh_finish(vreal t)
{
    /* Rounding can take |t| a hair past 1 near the clamp (1.0000001 at 9); tanh never does. */
    return v_minc(R(1), v_maxc(R(-1), t));
}

FL_INLINE vreal v_tanh(vreal x)
{
    vreal num, den;
    v_tanh_parts(x, &num, &den);
    return v_tanh_finish(num / den);
}
#else
/* |x| >= 0.55: (1 - e) / (1 + e) with e = exp(-2|x|) <= 0.333, no cancellation. From |x| = 20
 * on that is exactly 1 (e <= 4.3e-18 < half an ulp of 1), so the argument stops at -40 and exp
 * needs no underflow guard (NaN passes through v_minc). This is exp's argument. */
FL_INLINE vreal v_tanh_exparg(vreal ax) { return R(-2) * v_minc(R(20), ax); }

/* tanh from big = (1 - e) / (1 + e) (right for |x| >= 0.55) and, below 0.55, x * P(x^2). */
FL_INLINE vreal v_tanh_finish(vreal x, vreal ax, vreal big)
{
    /* |x| < 0.55: x * P(x^2), minimax. */
    const vreal u = x * x;
    vreal p;
    p = v_set1(0.00000601757585087818372158);
    p = p * u - 0.00003012677445940982640067;
    p = p * u + 0.00009149387098420200198297;
    p = p * u - 0.0002369718950727862306976;
    p = p * u + 0.0005894360841645430680303;
    p = p * u - 0.00145572181161269174619;
    p = p * u + 0.003592113263696813630014;
    p = p * u - 0.008863234224713069842964;
    p = p * u + 0.02186948846188592635446;
    p = p * u - 0.05396825396573233166787;
    p = p * u + 0.1333333333332887550186;
    p = p * u - 0.3333333333333330231115;
    p = p * u + 0.9999999999999999996416;
    const vreal small = x * p;
    const vreal far = v_sel(x != x, x, v_copysign(big, x)); /* NaN stays NaN */
    return v_sel(ax < R(0.55), small, far);
}

FL_INLINE vreal v_tanh(vreal x)
{
    const vreal ax = v_abs(x);
    const vreal e = v_expneg_normal(v_tanh_exparg(ax));
    return v_tanh_finish(x, ax, (R(1) - e) / (R(1) + e));
}
#endif

/* The seed's two gate activations on one vector holding gates of both kinds (the packed last
 * units of fl_seed_small.h): v_tanh where tmask is set, v_sigmoid_clip15 elsewhere, each lane
 * the same bits as that function gives it, for about the cost of one tanh (one exp and one
 * division for both kinds, as both are quotients with the same denominator 1 + e in double;
 * in float one exp for the sigmoid, tanh's rational function, and one division). */
FL_INLINE vreal v_sigmoid_clip15_or_tanh(vreal x, vint tmask)
{
    const vreal y = v_clip15(x);
#if FL_DOUBLE
    const vreal ax = v_abs(x);
    const vreal e = v_expneg_normal(v_sel(tmask, v_tanh_exparg(ax), v_negabs(y)));
    const vreal q = v_sel(tmask, R(1) - e, v_set1(R(1))) / (R(1) + e);
    return v_sel(tmask, v_tanh_finish(x, ax, q), v_sel(y < R(0), e * q, q));
#else
    const vreal e = v_expneg_normal(v_negabs(y));
    vreal num, den;
    v_tanh_parts(x, &num, &den);
    const vreal q = v_sel(tmask, num, v_set1(R(1))) / v_sel(tmask, den, R(1) + e);
    return v_sel(tmask, v_tanh_finish(q), v_sel(y < R(0), e * q, q));
#endif
}

/* relu with NaN kept (0 > x is false for NaN), as np.maximum(x, 0) does. */
FL_INLINE vreal v_relu(vreal x) { return v_maxc(R(0), x); }

#undef FL_EXPNEG_MIN
#undef FL_SHIFTER
#undef FL_MANT_BITS
#undef FL_EXP_BIAS
#undef FL_LN2_HI
#undef FL_LN2_LO
#undef FL_LOG2E
