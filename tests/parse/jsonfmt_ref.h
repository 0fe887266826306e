/* jsonfmt_ref.h — the pre-tokenizer jansson JSON metric parser, for the differential test. */
#ifndef NOPS_TEST_JSONFMT_REF_H
#define NOPS_TEST_JSONFMT_REF_H
#include "parse/parse.h"
nops_err ref_parse_json(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn, void *ud,
                        nops_parse_stats *st);
#endif
