/*
 * faiss_ext_none.c — faiss_ext.h where a real libfaiss_c is linked (no shim): lists are not
 * read in place, and vindex.c leaves every search to FAISS.
 */
#include "vector/faiss_ext.h"

int nops_faiss_ivf_flat_list(const FaissIndexIVF *index, size_t list_no, const float **codes,
                             const int64_t **ids, size_t *n)
{
    (void)index;
    (void)list_no;
    (void)codes;
    (void)ids;
    (void)n;
    return -1;
}
