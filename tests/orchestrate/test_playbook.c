/*
 * test_playbook.c — the signature matrix of the playbook registry with real keys made by the
 * openssl CLI: good, missing, wrong key, tampered manifest, not base64, tampered after approval;
 * malformed manifests refused with reasons; signatures made by `neuralops playbook sign` verify
 * with `openssl dgst -verify` (the cosign sign-blob format), and signatures made by openssl
 * verify in the registry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "orchestrate/orchestrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char g_dir[] = "/tmp/nops-pb-XXXXXX";
static char g_reg[160], g_pub[128], g_key[128], g_pub2[128], g_key2[128];

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static const char *good =
    "{\"id\":\"restart-pod\",\"name\":\"Restart pod\",\"version\":\"1.0.0\","
    "\"description\":\"kubectl rollout restart\",\"safety\":{\"mode\":\"manual\","
    "\"allowed_roles\":[\"org-admin\"]},\"steps\":[{\"name\":\"restart\",\"exec\":[\"/bin/echo\","
    "\"restart\"]}],\"timeout_s\":60}";

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_reg, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void sign(const char *name, const char *key)
{
    char p[256], err[256];
    snprintf(p, sizeof p, "%s/%s", g_reg, name);
    if (nops_playbook_sign(p, key, err, sizeof err) != NOPS_OK)
        fail_msg("sign: %s", err);
}

static int setup(void **state)
{
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_reg, sizeof g_reg, "%s/reg", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    snprintf(g_pub, sizeof g_pub, "%s/pub.pem", g_dir);
    snprintf(g_key2, sizeof g_key2, "%s/key2.pem", g_dir);
    snprintf(g_pub2, sizeof g_pub2, "%s/pub2.pem", g_dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "mkdir %s && openssl ecparam -name prime256v1 -genkey -noout -out %s 2>/dev/null && "
             "openssl ec -in %s -pubout -out %s 2>/dev/null && "
             "openssl ecparam -name prime256v1 -genkey -noout -out %s 2>/dev/null && "
             "openssl ec -in %s -pubout -out %s 2>/dev/null",
             g_reg, g_key, g_key, g_pub, g_key2, g_key2, g_pub2);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *refusal_of(const nops_registry *r, const char *file)
{
    for (size_t i = 0; i < nops_registry_refused(r); i++)
        if (strncmp(nops_registry_refusal(r, i), file, strlen(file)) == 0)
            return nops_registry_refusal(r, i);
    return NULL;
}

static void test_signature_matrix(void **state)
{
    write_file("good.json", good);
    sign("good.json", g_key);
    write_file("unsigned.json", "{\"id\":\"u\",\"name\":\"u\",\"version\":\"1\",\"steps\":"
                                "[{\"name\":\"s\",\"exec\":[\"/bin/true\"]}]}");
    write_file("wrongkey.json", "{\"id\":\"w\",\"name\":\"w\",\"version\":\"1\",\"steps\":"
                                "[{\"name\":\"s\",\"exec\":[\"/bin/true\"]}]}");
    sign("wrongkey.json", g_key2);
    write_file("tampered.json", "{\"id\":\"t\",\"name\":\"t\",\"version\":\"1\",\"steps\":"
                                "[{\"name\":\"s\",\"exec\":[\"/bin/true\"]}]}");
    sign("tampered.json", g_key);
    write_file("tampered.json", "{\"id\":\"t\",\"name\":\"t\",\"version\":\"1\",\"steps\":"
                                "[{\"name\":\"s\",\"exec\":[\"/bin/rm\",\"-rf\",\"/\"]}]}");
    write_file("garbled.json", good);
    write_file("garbled.json.sig", "this is not base64!");
    char err[256];
    nops_registry *r = nops_registry_load(g_reg, g_pub, err, sizeof err);
    if (!r)
        fail_msg("load: %s", err);
    assert_int_equal(nops_registry_count(r), 1);
    const nops_playbook *pb = nops_registry_get(r, "restart-pod");
    assert_non_null(pb);
    assert_false(pb->auto_mode);
    assert_int_equal(pb->timeout_s, 60);
    assert_int_equal(pb->allowed_roles, 1u << 3);
    assert_int_equal(strlen(pb->sha256), 64);
    assert_non_null(strstr(refusal_of(r, "unsigned.json"), "no signature"));
    assert_non_null(strstr(refusal_of(r, "wrongkey.json"), "does not verify"));
    assert_non_null(strstr(refusal_of(r, "tampered.json"), "does not verify"));
    assert_non_null(strstr(refusal_of(r, "garbled.json"), "not base64"));
    /* approved as it is: the recheck passes; changed after approval: refused */
    char why[256];
    char approved[65];
    snprintf(approved, sizeof approved, "%s", pb->sha256);
    assert_int_equal(nops_registry_recheck(r, pb, approved, why, sizeof why), NOPS_OK);
    char changed[1200];
    snprintf(changed, sizeof changed, "%s ", good);
    write_file("good.json", changed); /* one byte more; re-signed by someone with the key */
    sign("good.json", g_key);
    assert_int_equal(nops_registry_recheck(r, pb, approved, why, sizeof why), NOPS_INVAL);
    assert_non_null(strstr(why, "changed since it was approved"));
    write_file("good.json", good); /* the same bytes again, but the signature is of the other */
    assert_int_equal(nops_registry_recheck(r, pb, approved, why, sizeof why), NOPS_INVAL);
    assert_non_null(strstr(why, "does not verify"));
    nops_registry_destroy(r);
    /* either of two configured keys may have signed */
    snprintf(changed, sizeof changed, "%s,%s", g_pub, g_pub2);
    sign("good.json", g_key);
    r = nops_registry_load(g_reg, changed, err, sizeof err);
    assert_int_equal(nops_registry_count(r), 2); /* good and wrongkey */
    nops_registry_destroy(r);
}

static void test_openssl_interop(void **state)
{
    write_file("interop.json", good);
    sign("interop.json", g_key);
    /* our signature verifies with the openssl CLI, as cosign's would */
    sh("base64 -d %s/interop.json.sig > %s/sig.der && openssl dgst -sha256 -verify %s "
       "-signature %s/sig.der %s/interop.json > /dev/null",
       g_reg, g_dir, g_pub, g_dir, g_reg);
    /* and a signature made by openssl (base64, as cosign writes) verifies in the registry */
    sh("openssl dgst -sha256 -sign %s -out %s/o.der %s/interop.json && base64 -w0 %s/o.der > "
       "%s/interop.json.sig",
       g_key, g_dir, g_reg, g_dir, g_reg);
    char err[256];
    char dir2[160];
    snprintf(dir2, sizeof dir2, "%s/only", g_dir);
    sh("mkdir -p %s && cp %s/interop.json %s/interop.json.sig %s/", dir2, g_reg, g_reg, dir2);
    nops_registry *r = nops_registry_load(dir2, g_pub, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(nops_registry_count(r), 1);
    nops_registry_destroy(r);
}

static void test_malformed_manifests(void **state)
{
    char dir[64];
    snprintf(dir, sizeof dir, "%.40s/bad", g_dir);
    sh("mkdir -p %s", dir);
    snprintf(g_reg, sizeof g_reg, "%s", dir);
    const struct { const char *name, *text, *why; } bad[] = {
        {"a.json", "[1,2]", "not a JSON object"},
        {"b.json", "{\"id\":\"Bad Id\",\"name\":\"x\",\"version\":\"1\",\"steps\":[]}", "id"},
        {"c.json", "{\"id\":\"c\",\"name\":\"x\",\"version\":\"1\",\"steps\":[]}", "steps"},
        {"d.json", "{\"id\":\"d\",\"name\":\"x\",\"version\":\"1\",\"steps\":[{\"name\":\"s\"}]}",
         "step 1"},
        {"e.json", "{\"id\":\"e\",\"name\":\"x\",\"version\":\"1\",\"safety\":{\"mode\":\"yolo\"},"
                   "\"steps\":[{\"name\":\"s\",\"exec\":[\"x\"]}]}", "safety.mode"},
        {"f.json", "{\"id\":\"f\",\"name\":\"x\",\"version\":\"1\",\"safety\":{\"allowed_roles\":"
                   "[\"root\"]},\"steps\":[{\"name\":\"s\",\"exec\":[\"x\"]}]}", "allowed_roles"},
        {"g.json", "{\"id\":\"g\",\"name\":\"x\",\"version\":\"1\",\"timeout_s\":0,"
                   "\"steps\":[{\"name\":\"s\",\"exec\":[\"x\"]}]}", "timeout_s"},
        {"h.json", "{\"id\":\"h\",\"version\":\"1\",\"steps\":[{\"name\":\"s\",\"exec\":[\"x\"]}]}",
         "name and version"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bad[i].name, bad[i].text);
        sign(bad[i].name, g_key);
    }
    char err[256];
    nops_registry *r = nops_registry_load(dir, g_pub, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(nops_registry_count(r), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = refusal_of(r, bad[i].name);
        if (!why || !strstr(why, bad[i].why))
            fail_msg("%s: \"%s\" lacks \"%s\"", bad[i].name, why ? why : "(accepted)",
                     bad[i].why);
    }
    nops_registry_destroy(r);
    /* bad keys and directories fail the load */
    assert_null(nops_registry_load(dir, "/nonexistent.pem", err, sizeof err));
    assert_null(nops_registry_load(dir, "", err, sizeof err));
    assert_non_null(strstr(err, "no playbook public keys"));
    assert_null(nops_registry_load("/nonexistent-dir", g_pub, err, sizeof err));
    nops_registry *priv = nops_registry_load(dir, g_key, err, sizeof err); /* not a public key */
    assert_null(priv);
    nops_registry_destroy(priv);
}

/* neuralops playbook keygen's function: a P-256 pair that signs what the registry accepts, the
 * private key 0600, and an existing key never replaced. */
static void test_keygen(void **state)
{
    char key[200], pub[200], err[256], dir[200];
    snprintf(key, sizeof key, "%s/gen.key", g_dir);
    snprintf(pub, sizeof pub, "%s/gen.pub", g_dir);
    assert_int_equal(nops_playbook_keygen(key, pub, err, sizeof err), NOPS_OK);
    struct stat sb;
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    snprintf(dir, sizeof dir, "%s/gen", g_dir);
    sh("mkdir -p %s && cp %s/interop.json %s/", dir, g_reg, dir);
    char file[260];
    snprintf(file, sizeof file, "%s/interop.json", dir);
    assert_int_equal(nops_playbook_sign(file, key, err, sizeof err), NOPS_OK);
    nops_registry *r = nops_registry_load(dir, pub, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(nops_registry_count(r), 1);
    nops_registry_destroy(r);
    /* a second keygen onto the same file is refused and the key stays the one that signed */
    char before[1024] = "", after[1024] = "";
    FILE *f = fopen(key, "r");
    assert_true(fread(before, 1, sizeof before - 1, f) > 0);
    fclose(f);
    assert_int_equal(nops_playbook_keygen(key, pub, err, sizeof err), NOPS_IO);
    assert_non_null(strstr(err, "not replaced"));
    f = fopen(key, "r");
    assert_true(fread(after, 1, sizeof after - 1, f) > 0);
    fclose(f);
    assert_string_equal(before, after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matrix),
        cmocka_unit_test(test_openssl_interop),
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_malformed_manifests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
