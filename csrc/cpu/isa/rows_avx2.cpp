// The CPU row loops for the AVX2 instruction set (setup.py compiles this file with its -m flags).
#define DGL_LTD_ISA AVX2
#define DGL_LTD_ISA_NAME "avx2"
#include "cpu/rows_impl.h"
