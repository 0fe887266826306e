/* kernel_scalar.c — the detector kernel body compiled for the scalar instruction set (see CMake). */
#define NOPS__KSUFFIX scalar
#include "detect/kernel_body.h"
