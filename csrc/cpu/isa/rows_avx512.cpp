// The CPU row loops for the AVX512 instruction set (setup.py compiles this file with its -m flags).
#define DGL_LTD_ISA AVX512
#define DGL_LTD_ISA_NAME "avx512"
#include "cpu/rows_impl.h"
