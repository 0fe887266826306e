/* kernel_avx512.c — the detector kernel body compiled for the avx512 instruction set (see CMake). */
#define NOPS__KSUFFIX avx512
#include "detect/kernel_body.h"
