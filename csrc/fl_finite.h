/* fl_finite.h: the finiteness check of the training loops (seed_impl.h, model_impl.h), for one
 * width: included inside their per-width bodies (no include guard, like fastlstm_api.h). */

/* 1 when no value is NaN or inf: v * 0 is 0 for finite v and NaN otherwise, and a sum of
 * zeros is 0 in any order, so eight independent sums (16-byte vectors of the baseline) may
 * take the values in any order: the check runs at the machine's throughput. */
static int FL_FN(all_finite)(const real *v, long long n)
{
    typedef real v16 __attribute__((vector_size(16)));
    const int L = (int)(16 / sizeof(real));
    v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    long long k = 0;
    for (; k + 4 * L <= n; k += 4 * L) {
        v16 x0, x1, x2, x3;
        memcpy(&x0, v + k, 16);
        memcpy(&x1, v + k + L, 16);
        memcpy(&x2, v + k + 2 * L, 16);
        memcpy(&x3, v + k + 3 * L, 16);
        a0 += x0 * 0;
        a1 += x1 * 0;
        a2 += x2 * 0;
        a3 += x3 * 0;
    }
    real acc = 0;
    for (; k < n; k++) acc += v[k] * 0;
    const v16 a = (a0 + a1) + (a2 + a3);
    for (int j = 0; j < L; j++) acc += a[j];
    return acc == 0;
}
