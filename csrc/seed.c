/*
 * seed.c: the seed model of notebook 001 (fastlstm.LSTM) on the sequence kernels, both widths
 * from one body (seed_impl.h).
 *
 * The seed's W_f, W_i, W_c, W_o (H, H+I) act on [h_{t-1}, x_t]; fastlstm.LSTM keeps them as row
 * blocks of one W (G, H+I) in gate order i, f, g, o, so W_hh is columns [0, H) and W_ih columns
 * [H, H+I) of it, both with leading dimension H+I: the sequence kernels take them as they are.
 * Math as the seed: zero initial state, clipped sigmoid, y_t = Wy h_t + by, loss
 * sum_t |y_t - target_t|^2 / 2, every gradient clipped to [-clip, clip], plain SGD.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastlstm.h"

#define real float
#define FL_FN(name) name##_f32
#define FL_REAL_IS_DOUBLE 0
#include "seed_impl.h"
#undef real
#undef FL_FN
#undef FL_REAL_IS_DOUBLE

#define real double
#define FL_FN(name) name##_f64
#define FL_REAL_IS_DOUBLE 1
#include "seed_impl.h"
#undef real
#undef FL_FN
#undef FL_REAL_IS_DOUBLE
