/*
 * fuzz_redact.c — libFuzzer target for the redactor: any bytes in, output within
 * NOPS_REDACT_CAP and NUL-terminated, and a second pass over the output never undoes the first:
 * every placeholder of the first output is still there after the second (placeholders are
 * never matched themselves). A second pass may find more in pathological input — fragments
 * such as "fe80::" left beside a placeholder — which is the safe direction.
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
    if (m >= NOPS_REDACT_CAP(cap) || again[m] != '\0')
        abort();
    for (int c = 0; c < NOPS_REDACT_N; c++) { /* placeholders survive the second pass */
        const char *ph = nops_redact_placeholder((nops_redact_class)c);
        size_t before = 0, after = 0;
        for (const char *p = out; (p = strstr(p, ph)); p++)
            before++;
        for (const char *p = again; (p = strstr(p, ph)); p++)
            after++;
        if (after < before)
            abort();
    }
    free(out);
    free(again);
    return 0;
}
