/* kernels_f64.c: the float64 kernels, the shared body compiled with real = double. */
#include "fastlstm.h"

#define real double
#define FL_DOUBLE 1
#define FL_FN(name) name##_f64
#include "lstm_impl.h"
#include "seed_impl.h"
