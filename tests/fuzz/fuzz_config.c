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

/* a section of arbitrary keys too, as [kafka.librdkafka] is (core/config_map.c) */
static const nops_cfg_map_section map_section = {"detect.extra", "fuzzed", NULL, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nops_detect_params p;
    static nops_cfg_map map;
    nops_cfg *cfg = nops_cfg_new();
    if (!cfg)
        return 0;
    char err[512] = "";
    if (nops_cfg_add(cfg, &nops_detect_cfg_section, &p, err, sizeof err) != NOPS_OK ||
        nops_cfg_add_map(cfg, &map_section, &map, err, sizeof err) != NOPS_OK)
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
    if (map.n > NOPS_CFG_MAP_MAX || map.used > NOPS_CFG_MAP_BYTES)
        abort();
    for (size_t i = 0; i < map.n; i++) /* every key set, found again, with its value */
        if (!*nops_cfg_map_key(&map, i) ||
            nops_cfg_map_get(&map, nops_cfg_map_key(&map, i)) != nops_cfg_map_value(&map, i))
            abort();
    nops_cfg_destroy(cfg);
    return 0;
}
