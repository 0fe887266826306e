/*
 * fuzz_redact.c — libFuzzer target for the redactor: any bytes in, output within
 * NOPS_REDACT_CAP and NUL-terminated, and redacting the output again changes nothing (the
 * placeholders are never matched themselves, and nothing a pass leaves behind is PII).
 */
#include "vector/vector.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nops_redactor *r;
    if (!r && !(r = nops_redactor_new("fuzz", NULL, 0)))
        abort();
    size_t cap = NOPS_REDACT_CAP(size);
    char *out = malloc(cap), *again = malloc(NOPS_REDACT_CAP(cap));
    size_t n = nops_redact(r, (const char *)data, size, out, cap, NULL);
    if (n >= cap || out[n] != '\0')
        abort();
    size_t m = nops_redact(r, out, n, again, NOPS_REDACT_CAP(cap), NULL);
    if (m != n || memcmp(out, again, n) != 0)
        abort();
    free(out);
    free(again);
    return 0;
}
