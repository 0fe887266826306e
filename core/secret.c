/*
 * secret.c — the engine's secret: 32 random bytes in a key file outside the data dir.
 *
 * Everything the engine must later trust after reading it back from disk or the database
 * (approvals, the audit chain's keyed hashes, remembered heads) is bound to this key with
 * HMAC-SHA256. Someone who can write the data dir or the database but cannot read the key file
 * cannot forge such a MAC. Each use derives its own subkey, HMAC(master, purpose), so a MAC made
 * for one purpose never verifies for another.
 *
 * The file holds 64 hex digits and a newline. It is created (O_EXCL, mode 0600) when missing and
 * creation is allowed; an existing file is never replaced. A file readable by group or others,
 * or one that is not a regular file, is refused.
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define KEY_BYTES 32

struct nops_secret {
    unsigned char key[KEY_BYTES]; /* the master key */
    char path[PATH_MAX];          /* where it was read from */
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void nops_hex(const void *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    const unsigned char *p = b;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

bool nops_sha256_hex(const void *b, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    out[0] = '\0';
    if (EVP_Digest(b, n, md, &ml, EVP_sha256(), NULL) != 1 || ml != 32)
        return false;
    nops_hex(md, 32, out);
    return true;
}

/* Make the directories of `path` (mode 0700) that do not exist yet. */
static bool make_parents(const char *path, char *errstr, size_t errstr_size)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return true;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            goto fail;
        *p = '/';
    }
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return true;
fail:
    nops_errf(errstr, errstr_size, "cannot create directory %s for the engine key: %s", dir,
              strerror(errno));
    return false;
}

static bool create_key(const char *path, char *errstr, size_t errstr_size)
{
    unsigned char k[KEY_BYTES];
    char hex[2 * KEY_BYTES + 2];
    if (RAND_bytes(k, sizeof k) != 1) {
        nops_errf(errstr, errstr_size, "no random bytes for a new engine key");
        return false;
    }
    nops_hex(k, sizeof k, hex);
    OPENSSL_cleanse(k, sizeof k);
    strcat(hex, "\n");
    if (!make_parents(path, errstr, errstr_size))
        return false;
    /* written whole to a temp file, then linked into place: link(2) fails if a key exists
     * already, and a reader never sees a half-written key */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.new.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        nops_errf(errstr, errstr_size, "cannot create the engine key %s: %s", tmp,
                  strerror(errno));
        OPENSSL_cleanse(hex, sizeof hex);
        return false;
    }
    size_t len = strlen(hex);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    OPENSSL_cleanse(hex, sizeof hex);
    if (ok && link(tmp, path) != 0 && errno != EEXIST) { /* EEXIST: another process won */
        saved = errno;
        ok = false;
    }
    unlink(tmp);
    if (!ok)
        nops_errf(errstr, errstr_size, "cannot write the engine key %s: %s", path,
                  strerror(saved));
    return ok;
}

static bool read_key(nops_secret *s, const char *path, char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        nops_errf(errstr, errstr_size, "cannot open the engine key %s: %s", path,
                  strerror(errno));
        return false;
    }
    struct stat st;
    char buf[2 * KEY_BYTES + 8];
    ssize_t n = -1;
    bool ok = false;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        nops_errf(errstr, errstr_size, "the engine key %s is not a regular file", path);
    else if (st.st_mode & 0077)
        nops_errf(errstr, errstr_size,
                  "the engine key %s is readable by others (mode %03o): chmod 600 it",
                  path, (unsigned)(st.st_mode & 0777));
    else if ((n = read(fd, buf, sizeof buf - 1)) < 2 * KEY_BYTES)
        nops_errf(errstr, errstr_size, "the engine key %s is short or unreadable (want 64 hex "
                  "digits)", path);
    else {
        ok = true;
        for (int i = 0; i < KEY_BYTES && ok; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            s->key[i] = (unsigned char)(hi << 4 | lo);
        }
        for (ssize_t i = 2 * KEY_BYTES; ok && i < n; i++)
            ok = buf[i] == '\n' || buf[i] == '\r' || buf[i] == ' ';
        if (!ok)
            nops_errf(errstr, errstr_size, "the engine key %s is not 64 hex digits", path);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return ok;
}

nops_secret *nops_secret_load(const char *path, bool create, char *errstr, size_t errstr_size)
{
    if (!path || !path[0]) {
        nops_errf(errstr, errstr_size, "no engine key file configured (security.key_file)");
        return NULL;
    }
    if (create && access(path, F_OK) != 0 && !create_key(path, errstr, errstr_size))
        return NULL;
    nops_secret *s = nops_calloc(1, sizeof *s);
    if (!s) {
        nops_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!read_key(s, path, errstr, errstr_size)) {
        nops_secret_destroy(s);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    return s;
}

nops_secret *nops_secret_from_bytes(const void *key, size_t len)
{
    nops_secret *s = nops_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    /* a key of any length becomes 32 bytes through SHA-256, like a long HMAC key would */
    unsigned int outl = 0;
    EVP_Digest(key, len, s->key, &outl, EVP_sha256(), NULL);
    snprintf(s->path, sizeof s->path, "(in memory)");
    return s;
}

void nops_secret_destroy(nops_secret *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s->key, sizeof s->key);
    nops_free(s);
}

void nops_secret_mac(const nops_secret *s, const char *purpose, const void *data, size_t len,
                     unsigned char out[NOPS_MAC_LEN])
{
    unsigned char sub[EVP_MAX_MD_SIZE];
    unsigned int sl = 0, ol = 0;
    HMAC(EVP_sha256(), s->key, KEY_BYTES, (const unsigned char *)purpose, strlen(purpose), sub,
         &sl);
    HMAC(EVP_sha256(), sub, (int)sl, (const unsigned char *)data, len, out, &ol);
    OPENSSL_cleanse(sub, sizeof sub);
}

void nops_secret_mac_hex(const nops_secret *s, const char *purpose, const void *data, size_t len,
                         char out[2 * NOPS_MAC_LEN + 1])
{
    unsigned char mac[NOPS_MAC_LEN];
    nops_secret_mac(s, purpose, data, len, mac);
    nops_hex(mac, sizeof mac, out);
}

bool nops_secret_verify_hex(const nops_secret *s, const char *purpose, const void *data,
                            size_t len, const char *hex)
{
    if (!s || !hex || strlen(hex) != 2 * NOPS_MAC_LEN)
        return false;
    char want[2 * NOPS_MAC_LEN + 1];
    nops_secret_mac_hex(s, purpose, data, len, want);
    return CRYPTO_memcmp(want, hex, 2 * NOPS_MAC_LEN) == 0;
}

bool nops_secret_outside(const nops_secret *s, const char *dir, char *errstr,
                         size_t errstr_size)
{
    char kp[PATH_MAX], dp[PATH_MAX];
    if (!s || !dir || !dir[0] || !realpath(s->path, kp) || !realpath(dir, dp))
        return true; /* nothing to compare (in-memory key, or no directory yet) */
    size_t dl = strlen(dp);
    if (strncmp(kp, dp, dl) == 0 && (kp[dl] == '/' || dl == 1)) {
        nops_errf(errstr, errstr_size,
                  "the engine key %s is inside %s: whoever can write that directory could "
                  "replace it; keep it elsewhere (security.key_file)", kp, dp);
        return false;
    }
    return true;
}

#define OFF(f) offsetof(nops_security_params, f)
static const nops_cfg_entry security_entries[] = {
    {"key_file", NOPS_CFG_STRING, OFF(key_file), 0,
     sizeof(((nops_security_params *)0)->key_file), "", NULL, "key-file", 0,
     "The engine's secret (64 hex digits, mode 0600), created at the first start when missing. "
     "Approvals, the audit chain and the state snapshots are keyed with it, so it must live "
     "outside storage.data_dir "
     "and out of reach of whoever can write that directory or the database; its directory also "
     "holds audit-heads/ (the audit chain's remembered heads), which the engine must be able to "
     "write. Empty = "
     "$XDG_CONFIG_HOME/neuralops/engine.key (else ~/.config/neuralops/engine.key); a service "
     "should set it, e.g. /etc/neuralops/engine.key."},
};
#undef OFF

const nops_cfg_section nops_security_cfg_section = {
    "security",
    "The engine's own secret (docs/security.md says what it protects).",
    security_entries, sizeof security_entries / sizeof security_entries[0], NULL};

void nops_security_key_path(const nops_security_params *p, char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (p && p->key_file[0])
        snprintf(out, cap, "%s", p->key_file);
    else if (xdg && xdg[0] == '/')
        snprintf(out, cap, "%s/neuralops/engine.key", xdg);
    else
        snprintf(out, cap, "%s/.config/neuralops/engine.key", home && home[0] ? home : "/etc");
}
