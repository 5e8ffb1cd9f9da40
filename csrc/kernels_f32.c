/* kernels_f32.c: the float32 kernels, the shared body compiled with real = float. */
#include "fastlstm.h"

#define real float
#define FL_DOUBLE 0
#define FL_FN(name) name##_f32
#include "lstm_impl.h"
#include "seed_impl.h"
