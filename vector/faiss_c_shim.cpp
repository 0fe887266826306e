/*
 * faiss_c_shim.cpp — the few functions of FAISS's official C API that NeuralOps uses, implemented
 * against the C++ library.
 *
 * Why: Debian's libfaiss-dev 1.7.3 installs the C API headers (faiss/c_api/) but its
 * libfaiss.a carries no faiss_* C symbols. All engine code stays on the official C API; this unit
 * supplies the declared functions, exactly as the headers declare them (the headers are included
 * so the compiler checks every signature). Every C++ exception is caught here and turned into a
 * non-zero return, with its message kept per thread for faiss_get_last_error(); none crosses into
 * C. Where a real libfaiss_c exists, CMake links it instead and this file is not built.
 */
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <exception>
#include <string>

extern "C" {
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "vector/faiss_ext.h"
}

namespace {
thread_local std::string last_error;

template <typename F> int guarded(F f)
{
    try {
        f();
        return 0;
    } catch (const std::exception &e) {
        last_error = e.what();
    } catch (...) {
        last_error = "unknown C++ exception in FAISS";
    }
    return -1;
}

faiss::Index *cxx(FaissIndex *i)
{
    return reinterpret_cast<faiss::Index *>(i);
}

const faiss::Index *cxx(const FaissIndex *i)
{
    return reinterpret_cast<const faiss::Index *>(i);
}
} // namespace

extern "C" {

const char *faiss_get_last_error()
{
    return last_error.empty() ? nullptr : last_error.c_str();
}

int faiss_index_factory(FaissIndex **p_index, int d, const char *description,
                        FaissMetricType metric)
{
    return guarded([&] {
        *p_index = reinterpret_cast<FaissIndex *>(
            faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric)));
    });
}

void faiss_Index_free(FaissIndex *obj)
{
    delete cxx(obj);
}

int faiss_Index_d(const FaissIndex *index)
{
    return cxx(index)->d;
}

int faiss_Index_is_trained(const FaissIndex *index)
{
    return cxx(index)->is_trained;
}

idx_t faiss_Index_ntotal(const FaissIndex *index)
{
    return cxx(index)->ntotal;
}

FaissMetricType faiss_Index_metric_type(const FaissIndex *index)
{
    return static_cast<FaissMetricType>(cxx(index)->metric_type);
}

int faiss_Index_train(FaissIndex *index, idx_t n, const float *x)
{
    return guarded([&] { cxx(index)->train(n, x); });
}

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x)
{
    return guarded([&] { cxx(index)->add(n, x); });
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k,
                       float *distances, idx_t *labels)
{
    return guarded([&] { cxx(index)->search(n, x, k, distances, labels); });
}

int faiss_Index_reconstruct_n(const FaissIndex *index, idx_t i0, idx_t ni, float *recons)
{
    return guarded([&] { cxx(index)->reconstruct_n(i0, ni, recons); });
}

FaissIndexFlat *faiss_IndexFlat_cast(FaissIndex *index)
{
    return reinterpret_cast<FaissIndexFlat *>(dynamic_cast<faiss::IndexFlat *>(cxx(index)));
}

FaissIndexIVF *faiss_IndexIVF_cast(FaissIndex *index)
{
    return reinterpret_cast<FaissIndexIVF *>(dynamic_cast<faiss::IndexIVF *>(cxx(index)));
}

size_t faiss_IndexIVF_nprobe(const FaissIndexIVF *index)
{
    return reinterpret_cast<const faiss::IndexIVF *>(index)->nprobe;
}

void faiss_IndexIVF_set_nprobe(FaissIndexIVF *index, size_t nprobe)
{
    reinterpret_cast<faiss::IndexIVF *>(index)->nprobe = nprobe;
}

size_t faiss_IndexIVF_nlist(const FaissIndexIVF *index)
{
    return reinterpret_cast<const faiss::IndexIVF *>(index)->nlist;
}

FaissIndex *faiss_IndexIVF_quantizer(const FaissIndexIVF *index)
{
    return reinterpret_cast<FaissIndex *>(
        reinterpret_cast<const faiss::IndexIVF *>(index)->quantizer);
}

size_t faiss_IndexIVF_get_list_size(const FaissIndexIVF *index, size_t list_no)
{
    return reinterpret_cast<const faiss::IndexIVF *>(index)->get_list_size(list_no);
}

int faiss_ParameterSpace_new(FaissParameterSpace **space)
{
    return guarded([&] {
        *space = reinterpret_cast<FaissParameterSpace *>(new faiss::ParameterSpace());
    });
}

void faiss_ParameterSpace_free(FaissParameterSpace *space)
{
    delete reinterpret_cast<faiss::ParameterSpace *>(space);
}

int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace *space,
                                             FaissIndex *index, const char *name, double value)
{
    return guarded([&] {
        reinterpret_cast<const faiss::ParameterSpace *>(space)->set_index_parameter(
            cxx(index), name, value);
    });
}

int faiss_write_index_fname(const FaissIndex *idx, const char *fname)
{
    return guarded([&] { faiss::write_index(cxx(idx), fname); });
}

int faiss_read_index_fname(const char *fname, int io_flags, FaissIndex **p_out)
{
    return guarded([&] {
        *p_out = reinterpret_cast<FaissIndex *>(faiss::read_index(fname, io_flags));
    });
}

int faiss_write_index(const FaissIndex *idx, FILE *f)
{
    return guarded([&] { faiss::write_index(cxx(idx), f); });
}

int faiss_read_index(FILE *f, int io_flags, FaissIndex **p_out)
{
    return guarded([&] {
        *p_out = reinterpret_cast<FaissIndex *>(faiss::read_index(f, io_flags));
    });
}

/* faiss_ext.h: only IVF-Flat, inner product, lists in memory — anything else is −1, and the
 * caller searches through FAISS. */
int nops_faiss_ivf_flat_list(const FaissIndexIVF *index, size_t list_no, const float **codes,
                             const int64_t **ids, size_t *n)
{
    const auto *ivf = dynamic_cast<const faiss::IndexIVFFlat *>(
        reinterpret_cast<const faiss::IndexIVF *>(index));
    if (!ivf || ivf->metric_type != faiss::METRIC_INNER_PRODUCT || list_no >= ivf->nlist ||
        ivf->code_size != ivf->d * sizeof(float))
        return -1;
    const auto *al = dynamic_cast<const faiss::ArrayInvertedLists *>(ivf->invlists);
    if (!al)
        return -1;
    *codes = reinterpret_cast<const float *>(al->codes[list_no].data());
    *ids = al->ids[list_no].data();
    *n = al->ids[list_no].size();
    return 0;
}

} // extern "C"
