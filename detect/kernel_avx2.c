/* kernel_avx2.c — the detector kernel body compiled for the avx2 instruction set (see CMake). */
#define NOPS__KSUFFIX avx2
#include "detect/kernel_body.h"
