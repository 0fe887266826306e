/*
 * fuzz_manifest.c — libFuzzer target for the playbook manifest parser (the registry reads every
 * file in its directory): any bytes either parse into a playbook whose fields hold the
 * documented limits (id charset and length, 1-32 steps each with a name and exactly one of exec
 * or kafka, timeout 1-86400 s, absolute state probe or none), or are refused with a sentence.
 */
#include "orchestrate/orchestrate.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const nops_playbook *pb)
{
    size_t n = strlen(pb->id);
    if (n == 0 || n > 63 || strspn(pb->id, "abcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        abort();
    if (pb->timeout_s < 1 || pb->timeout_s > 86400 || strlen(pb->sha256) != 64)
        abort();
    json_t *steps = json_object_get(pb->manifest, "steps"), *st;
    size_t i;
    if (json_array_size(steps) < 1 || json_array_size(steps) > NOPS_PLAYBOOK_MAX_STEPS)
        abort();
    json_array_foreach(steps, i, st) {
        json_t *ex = json_object_get(st, "exec"), *kf = json_object_get(st, "kafka");
        if (!json_is_string(json_object_get(st, "name")) || !ex == !kf)
            abort();
        if (ex && (!json_array_size(ex) || !json_is_string(json_array_get(ex, 0))))
            abort();
        if (kf && !json_is_string(json_object_get(kf, "topic")))
            abort();
    }
    if (pb->allowed_roles & 1u) /* bit 0 is "no role": never set by a valid list */
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nops_playbook pb;
    char why[256] = "";
    if (nops_playbook_parse(data, size, &pb, why, sizeof why) == NOPS_OK) {
        check(&pb);
        nops_playbook_release(&pb);
    } else if (!why[0]) {
        abort();
    }
    return 0;
}
