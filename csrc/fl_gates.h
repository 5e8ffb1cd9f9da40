/*
 * fl_gates.h: the gate math of one vector of hidden units, forward beside backward.
 *
 * Forward: preactivations (zi, zf, zg, zo) and c_{t-1} in; the activated gates, c_t and
 * h_t = o act(c_t) out. Backward: the kept gates, c_t, c_{t-1}, the gradient reaching h_t and
 * the one reaching c_t from step t+1 in; the preactivations' gradients and dL/dc_{t-1} out.
 * The sequence kernels (fl_seq.h) call these on the registers of the product that made the
 * preactivations, so a step's gate pass costs no trip through memory.
 *
 * The plain cell (no ONNX extras) is the fast path; the extras (peepholes, clip, input_forget)
 * take a second, general function, chosen once per tile, not per element.
 */

/* A cell's configuration as the gate math reads it. */
typedef struct {
    int clip15;          /* the seed's clipped sigmoid */
    int act;             /* enum fl_activation */
    int ext;             /* any extra below */
    int input_forget;
    real clip;           /* > 0: clip every activation's argument */
    const real *p_i, *p_o, *p_f; /* peepholes (H each) or NULL */
    /* Activated values of +-clip: a gradient stops where an argument was clipped. */
    real s_lo, s_hi, a_lo, a_hi;
} cellcfg;

FL_INLINE vreal v_gate(vreal z, const cellcfg *cf)
{
    return cf->clip15 ? v_sigmoid_clip15(z) : v_sigmoid(z);
}

/* The plain cell's three exact sigmoids with one division: with a, b, c = 1 + exp(-|z|)
 * (each in [1, 2]) and r = 1 / (a b c), 1/c = (a b) r, 1/(a b) = c r, 1/a = b (c r),
 * 1/b = a (c r). A few roundings more than three divisions (a few ulp), a third of the
 * divider's work: 5 % of a step at H = 64..128 (measured). Sharing the candidate's tanh
 * division too measured no faster (more live registers beside the product's tile). */
FL_INLINE vreal v_sigmoid_e(vreal z) { return v_expneg(v_negabs(z)); }

/* The three sigmoids from the preactivations and their e = v_sigmoid_e(z): the division they
 * share. Apart from v_sigmoid3 so the gate pass can compute the exponentials in loops of their
 * own (fl_seq.h, gate_pass). */
FL_INLINE void v_sigmoid3_from(vreal zi, vreal zf, vreal zo, vreal ei, vreal ef, vreal eo,
                               vreal *si_out, vreal *sf_out, vreal *so_out)
{
    const vreal a = R(1) + ei, b = R(1) + ef, c = R(1) + eo;
    const vreal ab = a * b;
    const vreal r = R(1) / (ab * c);
    const vreal cr = c * r;
    const vreal si = b * cr, sf = a * cr, so = ab * r;
    *si_out = v_sel(zi < R(0), ei * si, si);
    *sf_out = v_sel(zf < R(0), ef * sf, sf);
    *so_out = v_sel(zo < R(0), eo * so, so);
}

FL_INLINE void v_sigmoid3(vreal *zi, vreal *zf, vreal *zo)
{
    v_sigmoid3_from(*zi, *zf, *zo, v_sigmoid_e(*zi), v_sigmoid_e(*zf), v_sigmoid_e(*zo), zi, zf,
                    zo);
}

FL_INLINE vreal v_act(vreal z, int act)
{
    return act == FL_ACT_TANH ? v_tanh(z) : act == FL_ACT_RELU ? v_relu(z) : z;
}

/* d act / d arg from the activated value a (tanh: 1 - a^2, relu: [a > 0], linear: 1). */
FL_INLINE vreal v_act_grad(vreal a, int act)
{
    if (act == FL_ACT_TANH) return R(1) - a * a;
    if (act == FL_ACT_RELU) return v_sel(a > R(0), v_set1(R(1)), v_zero());
    return v_set1(R(1));
}

FL_INLINE vreal v_clamp(vreal v, real clip)
{
    /* NaN stays NaN (v_minc and v_maxc return x when unordered). */
    return v_minc(clip, v_maxc(-clip, v));
}

/* 1 where an activation's argument was inside the clip range (its gradient passes), 0 where it
 * was clipped: told from the activated value, which then equals the activation of +-clip. */
FL_INLINE vreal v_unclipped(vreal a, real lo, real hi)
{
    return v_sel((a > lo) & (a < hi), v_set1(R(1)), v_zero());
}

static cellcfg cellcfg_make(const fl_cell *cell, const real *peephole, int H)
{
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.clip15 = cell->sigmoid == FL_SIGMOID_CLIP15;
    cf.act = cell->activation;
    cf.input_forget = cell->input_forget != 0;
    cf.clip = (real)cell->clip;
    if (peephole) {
        cf.p_i = peephole;
        cf.p_o = peephole + H;
        cf.p_f = peephole + 2 * H;
    }
    cf.ext = cf.input_forget || cf.clip > 0 || peephole != NULL;
    if (cf.clip > 0) {
        real t[FL_VL];
        v_store(t, v_sigmoid(v_set1(-cf.clip)));
        cf.s_lo = t[0];
        v_store(t, v_sigmoid(v_set1(cf.clip)));
        cf.s_hi = t[0];
        /* relu: act' and the mask together are [0 < g < clip], which a_lo = relu(-clip) = 0
         * gives */
        v_store(t, v_act(v_set1(-cf.clip), cf.act));
        cf.a_lo = t[0];
        v_store(t, v_act(v_set1(cf.clip), cf.act));
        cf.a_hi = t[0];
    } else {
        cf.s_lo = -1;
        cf.s_hi = 2;
        cf.a_lo = -INFINITY;
        cf.a_hi = INFINITY;
    }
    return cf;
}

/* Forward of the VL units at offset u: z* hold the preactivations and become the activated
 * gates; *c is c_{t-1} in and c_t out; returns h_t. */
/* The plain cell's state update from its activated gates: *c is c_{t-1} in and c_t out;
 * returns h_t. */
FL_INLINE vreal cell_plain_update(vreal i, vreal f, vreal g, vreal o, vreal *c)
{
    *c = f * *c + i * g;
    return o * v_tanh(*c);
}

/* The plain cell (exact sigmoid, tanh, no extras) without a branch; cell_forward's plain case
 * is this, and the gate pass's loops (fl_seq.h) take the same steps, so all give the same
 * bits. */
FL_INLINE vreal cell_plain(vreal *zi, vreal *zf, vreal *zg, vreal *zo, vreal *c)
{
    v_sigmoid3(zi, zf, zo);
    *zg = v_tanh(*zg);
    return cell_plain_update(*zi, *zf, *zg, *zo, c);
}

/* Whether a cell is the plain one (cell_plain). */
FL_INLINE int cell_is_plain(const cellcfg *cf)
{
    return !cf->ext && !cf->clip15 && cf->act == FL_ACT_TANH;
}

/* From the activated gates: *c is c_{t-1} in and c_t = f c_{t-1} + i g out, *ac = act(c_t);
 * returns h_t = o act(c_t). */
FL_INLINE vreal cell_update(vreal i, vreal f, vreal g, vreal o, vreal *c, vreal *ac, int act)
{
    const vreal cn = f * *c + i * g;
    *c = cn;
    *ac = v_act(cn, act);
    return o * *ac;
}

FL_INLINE vreal cell_forward(vreal *zi, vreal *zf, vreal *zg, vreal *zo, vreal *c,
                             const cellcfg *cf, int u, int n)
{
    if (cell_is_plain(cf)) return cell_plain(zi, zf, zg, zo, c);
    if (!cf->ext) {
        vreal i = *zi, f = *zf, o = *zo;
        if (cf->clip15) {
            i = v_sigmoid_clip15(i);
            f = v_sigmoid_clip15(f);
            o = v_sigmoid_clip15(o);
        } else {
            v_sigmoid3(&i, &f, &o);
        }
        const vreal g = v_act(*zg, cf->act);
        *zi = i; *zf = f; *zg = g; *zo = o;
        vreal ac;
        return cell_update(i, f, g, o, c, &ac, cf->act);
    }
    const vreal cp = *c;
    vreal a_i = *zi, a_f = *zf, a_o = *zo;
    if (cf->p_i) {
        a_i += v_load_upto(cf->p_i + u, n) * cp;
        a_f += v_load_upto(cf->p_f + u, n) * cp;
    }
    if (cf->clip > 0) {
        a_i = v_clamp(a_i, cf->clip);
        a_f = v_clamp(a_f, cf->clip);
    }
    const vreal i = v_sigmoid(a_i);
    const vreal f = cf->input_forget ? (vreal)(R(1) - i) : v_sigmoid(a_f);
    const vreal g = v_act(cf->clip > 0 ? v_clamp(*zg, cf->clip) : *zg, cf->act);
    const vreal cn = f * cp + i * g;
    if (cf->p_i) a_o += v_load_upto(cf->p_o + u, n) * cn;
    if (cf->clip > 0) a_o = v_clamp(a_o, cf->clip);
    const vreal o = v_sigmoid(a_o);
    *zi = i; *zf = f; *zg = g; *zo = o; *c = cn;
    return o * v_act(cn, cf->act);
}

/* Backward of the VL units at offset u. In: the activated gates (gi..go), c_t, c_{t-1}, d_h
 * (everything reaching h_t) and *dc (what reaches c_t from step t+1). Out: the preactivations'
 * gradients in *di.. *d_o, *dc = dL/dc_{t-1}. Derivatives from the kept outputs: sigmoid
 * s (1 - s), tanh 1 - a^2, relu [a > 0]. The peepholes' own gradients are summed after the loop
 * (fl_seq.h) from the preactivation gradients. cell_backward_ac takes ac = act(c_t) as well
 * (kept from forward by fl_seed_small.h); cell_backward computes it. */
FL_INLINE void cell_backward_ac(vreal gi, vreal gf, vreal gg, vreal go, vreal c, vreal ac,
                                vreal cp, vreal d_h, vreal *dc, vreal *di, vreal *df, vreal *dg,
                                vreal *d_o, const cellcfg *cf, int u, int n)
{
    if (!cf->ext) {
        vreal d_c;
        if (cf->act == FL_ACT_RELU) {
            /* relu: no gradient where c <= 0 or g <= 0 (a select, so 0 * NaN stays 0) */
            d_c = *dc + v_sel(c > R(0), d_h * go, v_zero());
            *dg = v_sel(gg > R(0), d_c * gi, v_zero());
        } else {
            d_c = *dc + d_h * go * v_act_grad(ac, cf->act);
            *dg = d_c * gi * v_act_grad(gg, cf->act);
        }
        *d_o = d_h * ac * go * (R(1) - go);
        *di = d_c * gg * gi * (R(1) - gi);
        *df = d_c * cp * gf * (R(1) - gf);
        *dc = d_c * gf;
        return;
    }
    const vreal dzo = d_h * ac * go * (R(1) - go) * v_unclipped(go, cf->s_lo, cf->s_hi);
    vreal d_c = *dc + d_h * go * v_act_grad(ac, cf->act);
    if (cf->p_i) d_c += dzo * v_load_upto(cf->p_o + u, n);
    vreal dgg = d_c * gi * v_act_grad(gg, cf->act);
    if (cf->clip > 0) dgg *= v_unclipped(gg, cf->a_lo, cf->a_hi);
    vreal d_i = d_c * gg, d_f = d_c * cp;
    if (cf->input_forget) { /* f = 1 - i */
        d_i -= d_f;
        d_f = v_zero();
    }
    const vreal dzi = d_i * gi * (R(1) - gi) * v_unclipped(gi, cf->s_lo, cf->s_hi);
    vreal dzf = v_zero();
    if (!cf->input_forget) dzf = d_f * gf * (R(1) - gf) * v_unclipped(gf, cf->s_lo, cf->s_hi);
    vreal dcn = d_c * gf;
    if (cf->p_i) dcn += dzi * v_load_upto(cf->p_i + u, n) + dzf * v_load_upto(cf->p_f + u, n);
    *di = dzi; *df = dzf; *dg = dgg; *d_o = dzo; *dc = dcn;
}

FL_INLINE void cell_backward(vreal gi, vreal gf, vreal gg, vreal go, vreal c, vreal cp,
                             vreal d_h, vreal *dc, vreal *di, vreal *df, vreal *dg, vreal *d_o,
                             const cellcfg *cf, int u, int n)
{
    cell_backward_ac(gi, gf, gg, go, c, v_act(c, cf->act), cp, d_h, dc, di, df, dg, d_o, cf, u,
                     n);
}

/* The unfused gate pass over B rows of preactivations (B, G) (fl_cell_step's): activated gates
 * in place, c_out and hidden (B, H) out; c_prev NULL means zeros. Exact sigmoid, tanh. */
static void gate_forward_rows(real *hidden, real *c_out, real *gates, const real *c_prev, int B,
                              int H)
{
    cellcfg cf;
    memset(&cf, 0, sizeof cf);
    cf.act = FL_ACT_TANH;
    for (int r = 0; r < B; r++) {
        real *g = gates + (long long)r * 4 * H;
        for (int u = 0; u < H; u += FL_VL) {
            const int n = H - u < FL_VL ? H - u : FL_VL;
            vreal zi = v_load_upto(g + u, n), zf = v_load_upto(g + H + u, n);
            vreal zg = v_load_upto(g + 2 * H + u, n), zo = v_load_upto(g + 3 * H + u, n);
            vreal c = c_prev ? v_load_upto(c_prev + (long long)r * H + u, n) : v_zero();
            const vreal h = cell_forward(&zi, &zf, &zg, &zo, &c, &cf, u, n);
            v_store_upto(g + u, zi, n);
            v_store_upto(g + H + u, zf, n);
            v_store_upto(g + 2 * H + u, zg, n);
            v_store_upto(g + 3 * H + u, zo, n);
            v_store_upto(c_out + (long long)r * H + u, c, n);
            v_store_upto(hidden + (long long)r * H + u, h, n);
        }
    }
}
