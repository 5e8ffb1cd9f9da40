/* kernels_f64.c: the float64 kernels, the shared body compiled with real = double. */
#include "fastlstm.h"

#define real double
#define FL_FN(name) name##_f64
#define FL_EXP exp
#define FL_TANH tanh
#include "lstm_impl.h"
#include "seed_impl.h"
