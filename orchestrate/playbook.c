/*
 * playbook.c — the playbook registry of orchestrate.h: manifests checked field by field and
 * verified against detached cosign-format signatures (base64 DER ECDSA P-256 over SHA-256) with
 * OpenSSL's EVP_DigestVerify; signing with an EC key made by `openssl ecparam`.
 */
#include "orchestrate/orch_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (1 << 20)
#define MAX_KEYS 16

struct nops_registry {
    nops_playbook *pb;
    size_t n;
    char **refusals;
    size_t n_ref;
    EVP_PKEY *keys[MAX_KEYS];
    size_t n_keys;
};

/* ---- bytes, hashes, signatures ------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = nops_file_fopen(path, "r");
    if (!f)
        return NULL;
    unsigned char *b = nops_malloc(MAX_FILE + 1);
    size_t n = b ? fread(b, 1, MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!b || n > MAX_FILE) {
        nops_free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* base64 (whitespace ignored) → DER bytes; -1 when not base64. */
static int unbase64(const unsigned char *s, size_t n, unsigned char *out, size_t cap)
{
    char clean[1024];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof clean - 1; i++)
        if (s[i] != '\n' && s[i] != '\r' && s[i] != ' ')
            clean[k++] = (char)s[i];
    if (k == 0 || k % 4 || (k / 4) * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)k);
    if (len < 0)
        return -1;
    return len - (k >= 1 && clean[k - 1] == '=') - (k >= 2 && clean[k - 2] == '=');
}

/* Does `sigpath` hold a valid signature of data by one of the keys? *why otherwise. */
static bool verify_sig(const struct nops_registry *r, const unsigned char *data, size_t n,
                       const char *sigpath, char *why, size_t why_size)
{
    size_t sl = 0;
    unsigned char *sig64 = read_all(sigpath, &sl), der[512];
    if (!sig64) {
        snprintf(why, why_size, "no signature (%s is missing)", sigpath);
        return false;
    }
    int dl = unbase64(sig64, sl, der, sizeof der);
    nops_free(sig64);
    if (dl <= 0) {
        snprintf(why, why_size, "the signature is not base64 (cosign sign-blob format)");
        return false;
    }
    for (size_t k = 0; k < r->n_keys; k++) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        bool ok = c && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, r->keys[k]) == 1 &&
                  EVP_DigestVerify(c, der, (size_t)dl, data, n) == 1;
        EVP_MD_CTX_free(c);
        if (ok)
            return true;
    }
    snprintf(why, why_size, "the signature does not verify with any configured public key "
                            "(wrong key, or the manifest changed after signing)");
    return false;
}

/* ---- manifests ------------------------------------------------------------------------------ */

static bool is_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

/* A Kafka topic name: 1-249 of [A-Za-z0-9._-]. */
static bool is_topic(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 249)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

/* An argument vector: 1-64 strings, the first an absolute path. */
static bool is_argv(json_t *a)
{
    size_t k;
    json_t *arg;
    bool ok = json_is_array(a) && json_array_size(a) > 0 && json_array_size(a) <= 64;
    json_array_foreach(a, k, arg) ok = ok && json_is_string(arg);
    return ok;
}

static bool check_steps(json_t *steps, char *why, size_t why_size)
{
    if (!json_is_array(steps) || !json_array_size(steps) ||
        json_array_size(steps) > NOPS_PLAYBOOK_MAX_STEPS) {
        snprintf(why, why_size, "steps must be an array of 1 to %d steps",
                 NOPS_PLAYBOOK_MAX_STEPS);
        return false;
    }
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st) {
        json_t *ex = json_object_get(st, "exec"), *kf = json_object_get(st, "kafka");
        bool ok = json_is_string(json_object_get(st, "name")) && (!ex != !kf);
        if (ok && ex)
            ok = is_argv(ex);
        if (ok && kf)
            ok = is_topic(json_string_value(json_object_get(kf, "topic"))) &&
                 json_object_get(kf, "payload");
        if (!ok) {
            snprintf(why, why_size, "step %zu needs a name and either exec (an array of 1-64 "
                                    "strings) or kafka {topic (a Kafka topic name), payload}",
                     i + 1);
            return false;
        }
    }
    return true;
}

static unsigned roles_of(json_t *arr, bool *ok)
{
    static const char *names[] = {"", "viewer", "operator", "org-admin"};
    unsigned mask = 0;
    size_t i;
    json_t *x;
    *ok = arr == NULL || json_is_array(arr);
    json_array_foreach(arr, i, x) {
        int r = 0;
        for (int k = 1; k < 4; k++)
            if (json_is_string(x) && strcmp(json_string_value(x), names[k]) == 0)
                r = k;
        *ok = *ok && r;
        mask |= 1u << r;
    }
    return mask;
}

/* Parse and check a manifest's content into pb (manifest reference taken on success). */
static bool parse_manifest(const unsigned char *data, size_t n, nops_playbook *pb, char *why,
                           size_t why_size)
{
    json_error_t je;
    json_t *m = json_loadb((const char *)data, n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(m)) {
        snprintf(why, why_size, "not a JSON object (%s)", m ? "wrong type" : je.text);
        json_decref(m);
        return false;
    }
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *ver = json_string_value(json_object_get(m, "version"));
    const char *desc = json_string_value(json_object_get(m, "description"));
    json_t *safety = json_object_get(m, "safety"), *to = json_object_get(m, "timeout_s");
    const char *mode = json_string_value(json_object_get(safety, "mode"));
    bool roles_ok;
    pb->allowed_roles = roles_of(json_object_get(safety, "allowed_roles"), &roles_ok);
    bool ok = false;
    if (!is_id(id))
        snprintf(why, why_size, "id must be 1-63 of [a-z0-9._-]");
    else if (!name || !ver)
        snprintf(why, why_size, "name and version are required strings");
    else if (mode && strcmp(mode, "manual") != 0 && strcmp(mode, "auto") != 0)
        snprintf(why, why_size, "safety.mode must be manual or auto");
    else if (!roles_ok)
        snprintf(why, why_size, "safety.allowed_roles must list viewer, operator or org-admin");
    else if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
                    json_integer_value(to) > 86400))
        snprintf(why, why_size, "timeout_s must be an integer of 1 to 86400 seconds");
    else if (json_object_get(m, "state_probe") && !is_argv(json_object_get(m, "state_probe")))
        snprintf(why, why_size, "state_probe must be an argument vector (1-64 strings)");
    else if ((ok = check_steps(json_object_get(m, "steps"), why, why_size)) &&
             !(ok = nops_sha256_hex(data, n, pb->sha256)))
        snprintf(why, why_size, "its SHA-256 could not be computed (OpenSSL failed)");
    if (!ok) {
        json_decref(m);
        return false;
    }
    snprintf(pb->id, sizeof pb->id, "%s", id);
    snprintf(pb->name, sizeof pb->name, "%s", name);
    snprintf(pb->version, sizeof pb->version, "%s", ver);
    snprintf(pb->description, sizeof pb->description, "%s", desc ? desc : "");
    pb->auto_mode = mode && strcmp(mode, "auto") == 0;
    pb->timeout_s = to ? (int64_t)json_integer_value(to) : 300;
    pb->manifest = m;
    return true;
}

nops_err nops_playbook_parse(const void *data, size_t n, nops_playbook *pb, char *why,
                             size_t why_size)
{
    memset(pb, 0, sizeof *pb);
    return parse_manifest(data, n, pb, why, why_size) ? NOPS_OK : NOPS_PARSE;
}

void nops_playbook_release(nops_playbook *pb)
{
    json_decref(pb->manifest);
    pb->manifest = NULL;
}

/* ---- the registry ----------------------------------------------------------------------- */

static bool load_keys(nops_registry *r, const char *pubkeys, char *errstr, size_t errstr_size)
{
    char list[2048];
    snprintf(list, sizeof list, "%s", pubkeys ? pubkeys : "");
    for (char *p = strtok(list, ","); p; p = strtok(NULL, ",")) {
        while (*p == ' ')
            p++;
        FILE *f = nops_file_fopen(p, "r");
        EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        if (!k || r->n_keys == MAX_KEYS) {
            nops_errf(errstr, errstr_size, "playbook public key %s: %s", p,
                      !f ? strerror(errno) : k ? "too many keys" : "not a PEM public key");
            EVP_PKEY_free(k);
            return false;
        }
        r->keys[r->n_keys++] = k;
    }
    if (r->n_keys == 0) {
        nops_errf(errstr, errstr_size, "no playbook public keys configured: every playbook "
                                       "would be refused");
        return false;
    }
    return true;
}

static void refuse(nops_registry *r, const char *file, const char *why)
{
    char **nr = nops_realloc(r->refusals, (r->n_ref + 1) * sizeof *nr);
    if (!nr)
        return;
    r->refusals = nr;
    size_t len = strlen(file) + strlen(why) + 3;
    if ((r->refusals[r->n_ref] = nops_malloc(len))) {
        snprintf(r->refusals[r->n_ref], len, "%s: %s", file, why);
        NOPS_WARN("playbooks", "refused %s", r->refusals[r->n_ref]);
        r->n_ref++;
    }
}

static void load_one(nops_registry *r, const char *dir, const char *name)
{
    char path[1024], sig[1100], why[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(sig, sizeof sig, "%s.sig", path);
    size_t n = 0;
    unsigned char *data = read_all(path, &n);
    nops_playbook pb = {0};
    if (!data) {
        refuse(r, name, "unreadable or over 1 MiB");
        return;
    }
    bool ok = verify_sig(r, data, n, sig, why, sizeof why) &&
              parse_manifest(data, n, &pb, why, sizeof why);
    nops_free(data);
    if (ok && nops_registry_get(r, pb.id)) {
        snprintf(why, sizeof why, "id %s is already taken by another manifest", pb.id);
        json_decref(pb.manifest);
        ok = false;
    }
    nops_playbook *grown = ok ? nops_realloc(r->pb, (r->n + 1) * sizeof *grown) : NULL;
    if (!ok || !grown) {
        refuse(r, name, ok ? "out of memory" : why);
        if (ok)
            json_decref(pb.manifest);
        return;
    }
    snprintf(pb.path, sizeof pb.path, "%.511s", path);
    r->pb = grown;
    r->pb[r->n++] = pb;
}

nops_registry *nops_registry_load(const char *dir, const char *pubkeys, char *errstr,
                                  size_t errstr_size)
{
    nops_registry *r = nops_calloc(1, sizeof *r);
    if (!r || !load_keys(r, pubkeys, errstr, errstr_size)) {
        nops_registry_destroy(r);
        return NULL;
    }
    DIR *d = opendir(dir);
    if (!d) {
        nops_errf(errstr, errstr_size, "playbook registry %s: %s", dir, strerror(errno));
        nops_registry_destroy(r);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            load_one(r, dir, e->d_name);
    }
    closedir(d);
    return r;
}

void nops_registry_destroy(nops_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->pb[i].manifest);
    for (size_t i = 0; i < r->n_ref; i++)
        nops_free(r->refusals[i]);
    for (size_t i = 0; i < r->n_keys; i++)
        EVP_PKEY_free(r->keys[i]);
    nops_free(r->refusals);
    nops_free(r->pb);
    nops_free(r);
}

size_t nops_registry_count(const nops_registry *r)
{
    return r->n;
}

const nops_playbook *nops_registry_at(const nops_registry *r, size_t i)
{
    return i < r->n ? &r->pb[i] : NULL;
}

const nops_playbook *nops_registry_get(const nops_registry *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->pb[i].id, id) == 0)
            return &r->pb[i];
    return NULL;
}

size_t nops_registry_refused(const nops_registry *r)
{
    return r->n_ref;
}

const char *nops_registry_refusal(const nops_registry *r, size_t i)
{
    return i < r->n_ref ? r->refusals[i] : "";
}

nops_err nops_registry_recheck(const nops_registry *r, const nops_playbook *pb,
                               const char *sha256, char *why, size_t why_size)
{
    size_t n = 0;
    char sig[1100], now[65];
    unsigned char *data = read_all(pb->path, &n);
    if (!data) {
        snprintf(why, why_size, "%s is gone or unreadable", pb->path);
        return NOPS_INVAL;
    }
    snprintf(sig, sizeof sig, "%s.sig", pb->path);
    bool ok = nops_sha256_hex(data, n, now) && strcmp(now, sha256) == 0; /* fails closed */
    if (!ok)
        snprintf(why, why_size, "the manifest changed since it was approved (sha256 %.12s…, "
                 "approved %.12s…)", now, sha256);
    else
        ok = verify_sig(r, data, n, sig, why, why_size);
    nops_free(data);
    return ok ? NOPS_OK : NOPS_INVAL;
}

nops_err nops_playbook_sign(const char *file, const char *key_pem, char *errstr,
                            size_t errstr_size)
{
    FILE *kf = nops_file_fopen(key_pem, "r");
    EVP_PKEY *k = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    if (kf)
        fclose(kf);
    size_t n = 0;
    unsigned char *data = k ? read_all(file, &n) : NULL, der[512], b64[800];
    size_t dl = sizeof der;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = data && c && EVP_PKEY_base_id(k) == EVP_PKEY_EC &&
              EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1 &&
              EVP_DigestSign(c, der, &dl, data, n) == 1;
    EVP_MD_CTX_free(c);
    nops_free(data);
    EVP_PKEY_free(k);
    if (!ok) {
        nops_errf(errstr, errstr_size, "cannot sign %s with %s (an EC P-256 private key in PEM, "
                  "e.g. from openssl ecparam -name prime256v1 -genkey -noout)", file, key_pem);
        return NOPS_INVAL;
    }
    int bl = EVP_EncodeBlock(b64, der, (int)dl);
    char sig[1100];
    snprintf(sig, sizeof sig, "%s.sig", file);
    FILE *f = nops_file_fopen(sig, "w");
    ok = f && fwrite(b64, 1, (size_t)bl, f) == (size_t)bl;
    ok = f && fclose(f) == 0 && ok;
    if (!ok) {
        nops_errf(errstr, errstr_size, "cannot write %s", sig);
        return NOPS_IO;
    }
    return NOPS_OK;
}

nops_err nops_playbook_keygen(const char *key_pem, const char *pub_pem, char *errstr,
                              size_t errstr_size)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k) {
        nops_errf(errstr, errstr_size, "cannot generate an EC P-256 key");
        return NOPS_IO;
    }
    /* Neither key is ever replaced: an existing file is an error, and nothing is written then.
     * A public key overwritten by a new pair's would make every manifest signed with the old
     * private key fail verification (or let the new key's holder sign for the old one). */
    struct stat st;
    const char *exists = lstat(key_pem, &st) == 0 ? key_pem : lstat(pub_pem, &st) == 0 ? pub_pem
                                                                                         : NULL;
    if (exists) {
        nops_errf(errstr, errstr_size, "%s exists (not replaced: a key pair is written only "
                  "where neither file exists; move it away or choose other names)", exists);
        EVP_PKEY_free(k);
        return NOPS_IO;
    }
    /* the private key is created 0600 (O_EXCL, so a file made meanwhile is not replaced) */
    int fd = open(key_pem, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    FILE *kf = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = kf && PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL) == 1;
    ok = kf ? fclose(kf) == 0 && ok : false;
    if (!kf && fd >= 0)
        close(fd);
    if (!ok) {
        nops_errf(errstr, errstr_size, "cannot write the private key %s: %s", key_pem,
                  errno == EEXIST ? "it exists (not replaced)" : strerror(errno));
        if (fd >= 0)
            unlink(key_pem); /* ours, and incomplete */
        EVP_PKEY_free(k);
        return NOPS_IO;
    }
    int pfd = nops_file_open(pub_pem, O_WRONLY | O_CREAT | O_EXCL); /* 0640 */
    FILE *pf = pfd >= 0 ? fdopen(pfd, "w") : NULL;
    ok = pf && PEM_write_PUBKEY(pf, k) == 1;
    ok = pf ? fclose(pf) == 0 && ok : false;
    const int saved = errno;
    if (!pf && pfd >= 0)
        close(pfd);
    EVP_PKEY_free(k);
    if (!ok) {
        nops_errf(errstr, errstr_size, "cannot write the public key %s: %s", pub_pem,
                  saved == EEXIST ? "it exists (not replaced)" : strerror(saved));
        if (pfd >= 0)
            unlink(pub_pem);
        unlink(key_pem); /* a pair or nothing */
        return NOPS_IO;
    }
    return NOPS_OK;
}
