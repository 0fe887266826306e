/*
 * jsonfmt_ref.c — the reference for the JSON metric parser's differential tests
 * (tests/parse/test_jsonfmt_diff.c, tests/fuzz/fuzz_json_diff.c): the message loop as it was
 * before the tokenizer, every document parsed by jansson through the parser's own slow path
 * (parse/jsonfmt_jansson.c, which holds the pre-tokenizer per-document code). What the
 * tokenizer vouches for must give the same points, counts and first rejection as this.
 */
#include "jsonfmt_ref.h"
#include "parse/jsonfmt_int.h"

#include <string.h>

nops_err ref_parse_json(const char *msg, size_t len, int64_t now_ns, nops_point_fn fn, void *ud,
                        nops_parse_stats *st)
{
    memset(st, 0, sizeof *st);
    json_ctx c = {now_ns, fn, ud, st, 0, false};
    const char *p = msg, *end = msg + len;
    while (p < end && !c.stop) {
        p = ws(p, end);
        if (p >= end)
            break;
        p = nops_json_doc_jansson(&c, p, end);
    }
    if (c.objects == 0) {
        st->reason = NOPS_REJECT_EMPTY;
        st->detail = "message holds no JSON object";
        st->rejected = 1;
        return NOPS_PARSE;
    }
    return st->points == 0 && st->rejected ? NOPS_PARSE : NOPS_OK;
}
