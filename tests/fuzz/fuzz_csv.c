/*
 * fuzz_csv.c — libFuzzer target for the `neuralops analyze` input: CSV lines and timestamps.
 * Every line of the input goes through the row parser (as first line and not), and the whole
 * input through the timestamp parser; the checks below are the parser's contract.
 */
#include "parse/parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int64_t ns;
    const char *reason = NULL;
    if (nops_ingest_parse_timestamp(text, size, &ns, &reason) != NOPS_OK && !reason)
        abort(); /* every rejection carries a reason */
    size_t pos = 0;
    bool first = true;
    while (pos <= size) {
        const char *nl = pos < size ? memchr(text + pos, '\n', size - pos) : NULL;
        size_t len = nl ? (size_t)(nl - (text + pos)) : size - pos;
        nops_csv_row row;
        nops_csv_kind kind;
        reason = NULL;
        nops_err e = nops_ingest_csv_line(text + pos, len, first, &row, &kind, &reason);
        if (e == NOPS_OK && kind == NOPS_CSV_ROW) {
            /* the timestamp points inside the line and the value is finite */
            if (row.ts < text + pos || row.ts + row.ts_len > text + pos + len)
                abort();
            if (!(row.value == row.value) || row.value > 3.5e38 || row.value < -3.5e38)
                abort();
            if (!nops_utf8_valid(text + pos, len)) /* rows are text */
                abort();
        } else if (e != NOPS_OK && !reason) {
            abort();
        }
        if (e == NOPS_OK && kind != NOPS_CSV_BLANK)
            first = false;
        if (!nl)
            break;
        pos += len + 1;
    }
    return 0;
}
