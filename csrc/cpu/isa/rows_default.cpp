// The CPU row loops for the DEFAULT instruction set (setup.py compiles this file with its -m flags).
#define DGL_LTD_ISA DEFAULT
#define DGL_LTD_ISA_NAME "default"
#include "cpu/rows_impl.h"
