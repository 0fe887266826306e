/*
 * faiss_ext.h — the one read NeuralOps needs from FAISS that its official C API does not offer:
 * an IVF-Flat index's inverted list, in place (vector/ only; not a FAISS API).
 *
 * Why: the IVF search's time is the scan of the probed lists (inner products of the query with
 * each stored vector), and Debian's libfaiss 1.7.3 is built for baseline x86-64, so FAISS scans
 * with its scalar fvec_inner_product_ref (44 % of a 1 M-run search, bench/RESULTS.md). Reading
 * the lists in place lets vindex.c scan them with OpenBLAS, whose kernels are chosen for the CPU
 * at run time. Implemented in faiss_c_shim.cpp (C++ against the library); where a real
 * libfaiss_c is linked instead, faiss_ext_none.c answers "not available" and FAISS searches.
 */
#ifndef NOPS_VECTOR_FAISS_EXT_H
#define NOPS_VECTOR_FAISS_EXT_H

#include <faiss/c_api/IndexIVF_c.h>
#include <stddef.h>
#include <stdint.h>

/**
 * List `list_no` of an IVF-Flat index of inner-product metric whose lists are held in memory
 * (FAISS's ArrayInvertedLists): *codes → its n vectors (n × d floats, row-major), *ids → their
 * ids; 0. The pointers stay valid until the index is changed or freed; read-only. −1 when the
 * index is of another kind (then nothing is set).
 */
int nops_faiss_ivf_flat_list(const FaissIndexIVF *index, size_t list_no, const float **codes,
                             const int64_t **ids, size_t *n);

#endif
