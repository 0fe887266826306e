/*
 * fuzz_config.c — libFuzzer target for the config file parser, with the real [detect] table.
 * Whatever the input, loading either succeeds or fails with a message, and a successful load
 * leaves values inside their declared bounds.
 */
#include "core/core.h"
#include "detect/detect.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nops_detect_params p;
    nops_cfg *cfg = nops_cfg_new();
    if (!cfg)
        return 0;
    char err[512] = "";
    if (nops_cfg_add(cfg, &nops_detect_cfg_section, &p, err, sizeof err) != NOPS_OK)
        abort();
    nops_err e = nops_cfg_load_buffer(cfg, (const char *)data, size, "fuzz.ini", err, sizeof err);
    if (e != NOPS_OK && err[0] == '\0')
        abort();
    if (e == NOPS_OK) {
        if (p.window < 4 || p.window > NOPS_DETECT_MAX_WINDOW || !(p.alpha > 0) ||
            p.alpha > 1 || p.method < 0 || p.method > NOPS_METHOD_ALL || p.variant < 0 || p.variant > 3)
            abort();
        (void)nops_cfg_finalize(cfg, err, sizeof err);
    }
    nops_cfg_destroy(cfg);
    return 0;
}
