/*
 * test_core.c — errors, the allocation layer, logging, and the config system.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/core.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- errors ----------------------------------------------------------------------------- */

/* Comma-separated setting lists: trimmed items, ASCII case ignored, "*" for every word, no
 * prefix matches. */
static void test_list_has(void **state)
{
    (void)state;
    assert_true(nops_list_has("warning,critical", "critical"));
    assert_true(nops_list_has(" info , Warning ", "warning"));
    assert_true(nops_list_has("*", "anything"));
    assert_false(nops_list_has("warning,critical", "crit"));
    assert_false(nops_list_has("warnings", "warning"));
    assert_false(nops_list_has("", "info"));
    assert_false(nops_list_has(",,", "info"));
}

static void test_errors(void **state)
{
    assert_string_equal(nops_strerror(NOPS_OK), "success");
    assert_string_equal(nops_err_name(NOPS_PARSE), "NOPS_PARSE");
    for (int e = 0; e >= NOPS_INTERNAL; e--) {
        assert_non_null(nops_strerror((nops_err)e));
        assert_string_not_equal(nops_strerror((nops_err)e), "unknown error");
        assert_int_equal(strncmp(nops_err_name((nops_err)e), "NOPS_", 5), 0);
    }
    assert_string_equal(nops_strerror((nops_err)-999), "unknown error");
    char buf[8];
    nops_errf(buf, sizeof buf, "%s", "truncated message");
    assert_string_equal(buf, "truncat");
    nops_errf(NULL, 0, "no crash");
}

/* ---- allocation ------------------------------------------------------------------------- */

static void test_alloc_counts(void **state)
{
    size_t base = nops_alloc_bytes_in_use(), live = nops_alloc_live_count();
    char *a = nops_malloc(100);
    void *b = nops_aligned_alloc(64, 1000);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t)b % 64, 0);
    assert_int_equal(nops_alloc_bytes_in_use(), base + 1100);
    assert_int_equal(nops_alloc_live_count(), live + 2);
    a = nops_realloc(a, 300);
    assert_non_null(a);
    assert_int_equal(nops_alloc_bytes_in_use(), base + 1300);
    assert_true(nops_alloc_bytes_peak() >= base + 1300);
    char *s = nops_strdup("hello");
    assert_string_equal(s, "hello");
    char *t = nops_strndup("hello", 3);
    assert_string_equal(t, "hel");
    nops_free(s);
    nops_free(t);
    nops_free(a);
    nops_free(b);
    nops_free(NULL);
    assert_int_equal(nops_alloc_bytes_in_use(), base);
    assert_int_equal(nops_alloc_live_count(), live);
    /* overflowing sizes are refused, not wrapped */
    assert_null(nops_calloc(SIZE_MAX / 2, 4));
    assert_null(nops_malloc(SIZE_MAX));
    assert_null(nops_aligned_alloc(3, 10));
}

/* Aligned blocks are zero and aligned whatever the heap held before, small and large (the large
 * ones are mappings of their own, the small ones come from reused, dirtied chunks). */
static void test_aligned_alloc_zeroed(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 100, 4096, 100000, 1 << 20, 5 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char *dirty[4];
        for (int i = 0; i < 4; i++) { /* leave dirty chunks of about this size behind */
            dirty[i] = malloc(sizes[k] + 64 * (size_t)i);
            assert_non_null(dirty[i]);
            memset(dirty[i], 0xa5, sizes[k] + 64 * (size_t)i);
        }
        for (int i = 0; i < 4; i++)
            free(dirty[i]);
        for (size_t align = 16; align <= 4096; align *= 2) {
            unsigned char *b = nops_aligned_alloc(align, sizes[k]);
            assert_non_null(b);
            assert_int_equal((uintptr_t)b % align, 0);
            for (size_t i = 0; i < sizes[k]; i++)
                if (b[i])
                    fail_msg("byte %zu of a %zu-byte block aligned to %zu is %u", i, sizes[k],
                             align, b[i]);
            memset(b, 0x5a, sizes[k]); /* the whole block is the caller's */
            nops_free(b);
        }
    }
}

/* A grown aligned block keeps its contents and its new bytes are zero, small or large, across
 * the size where blocks start to be mapped; a failed growth leaves the old block as it was. */
static void test_aligned_grow(void **state)
{
    (void)state;
    static const size_t sizes[] = {100, 60000, 700000, 3 << 20, 9 << 20};
    const size_t base = nops_alloc_bytes_in_use();
    unsigned char *b = nops_aligned_grow(NULL, 64, sizes[0]);
    assert_non_null(b);
    memset(b, 0x11, sizes[0]);
    for (size_t k = 1; k < sizeof sizes / sizeof sizes[0]; k++) {
        nops_alloc_fail_after(0, false); /* the next allocation fails: nothing changes */
        assert_null(nops_aligned_grow(b, 64, sizes[k]));
        for (size_t i = 0; i < sizes[k - 1]; i++)
            if (b[i] != (unsigned char)(0x11 * k))
                fail_msg("byte %zu changed by a failed growth", i);
        b = nops_aligned_grow(b, 64, sizes[k]);
        assert_non_null(b);
        assert_int_equal((uintptr_t)b % 64, 0);
        assert_int_equal(nops_alloc_bytes_in_use(), base + sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            if (b[i] != (i < sizes[k - 1] ? (unsigned char)(0x11 * k) : 0))
                fail_msg("growth %zu → %zu: byte %zu is %u", sizes[k - 1], sizes[k], i, b[i]);
        memset(b, (int)(0x11 * (k + 1)), sizes[k]);
    }
    assert_true(nops_aligned_grow(b, 64, 10) == b); /* not smaller: the same block */
    nops_free(b);
    assert_int_equal(nops_alloc_bytes_in_use(), base);
}

/* The VmFlags line of the mapping holding `addr` (/proc/self/smaps), or "" when not found; " hg"
 * (advised for huge pages) is faked when the kernel has no transparent huge pages to advise. */
static void vma_flags(const void *addr, char *out, size_t cap)
{
    out[0] = '\0';
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
        snprintf(out, cap, " hg (no transparent huge pages in this kernel)");
        return;
    }
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* Blocks of 2 MiB or more start at a huge-page boundary and are advised for transparent huge
 * pages (VmFlags "hg"), also after a growth that cannot stay in place and moves the pages. */
static void test_aligned_large_blocks_huge_pages(void **state)
{
    (void)state;
    const size_t huge = (size_t)2 << 20, align = 64;
    unsigned char *b = nops_aligned_alloc(align, 3 * huge);
    assert_non_null(b);
    assert_int_equal((uintptr_t)(b - align) % huge, 0);
    char flags[512];
    vma_flags(b, flags, sizeof flags);
    if (!strstr(flags, " hg"))
        fail_msg("not advised for huge pages: VmFlags%s", flags);
    memset(b, 0x5a, 3 * huge);
    /* a page mapped right after the block: it cannot grow in place */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *end = b - align + ((3 * huge + align + page - 1) & ~(page - 1)); /* its end */
    void *blocker = mmap(end, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                         -1, 0);
    if (blocker == MAP_FAILED) /* EEXIST: a mapping there blocks the growth already */
        assert_int_equal(errno, EEXIST);
    else
        assert_true(blocker == end);
    unsigned char *g = nops_aligned_grow(b, align, 5 * huge);
    assert_non_null(g);
    assert_true(g != b); /* moved */
    assert_int_equal((uintptr_t)(g - align) % huge, 0);
    vma_flags(g, flags, sizeof flags);
    if (!strstr(flags, " hg"))
        fail_msg("moved block not advised for huge pages: VmFlags%s", flags);
    for (size_t i = 0; i < 5 * huge; i++)
        if (g[i] != (i < 3 * huge ? 0x5a : 0))
            fail_msg("byte %zu is %u after the move", i, g[i]);
    if (blocker != MAP_FAILED)
        munmap(blocker, page);
    nops_free(g);
}

/* The process-wide malloc settings: refused when the environment has its own; applied, blocks
 * up to 32 MiB come from the heap (no mapping of their own) and larger ones are mapped. */
#if !defined(__SANITIZE_ADDRESS__)
/* malloc arenas in use now: malloc_info() writes one <heap nr=...> per arena */
static int malloc_arenas(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(malloc_info(0, f), 0);
    fclose(f);
    int n = 0;
    for (const char *s = text; (s = strstr(s, "<heap nr=")); s++)
        n++;
    free(text);
    return n;
}

typedef struct arena_probe {
    pthread_barrier_t *all_in;
    void *block;
} arena_probe;

/* a thread that allocates while all the others are alive and holding their blocks */
static void *arena_probe_main(void *arg)
{
    arena_probe *a = arg;
    a->block = malloc(1 << 20);
    memset(a->block, 1, 1 << 20);
    pthread_barrier_wait(a->all_in);
    pthread_barrier_wait(a->all_in); /* the arenas are counted in between */
    free(a->block);
    return NULL;
}

/* threads that allocate at once stay within the arena limit */
static void check_arena_limit(void)
{
    const int before = malloc_arenas(), limit = nops_alloc_arena_limit();
    enum { N = 6 };
    pthread_t t[N];
    arena_probe a[N];
    pthread_barrier_t all_in;
    const int n = limit + 3 < N ? limit + 3 : N;
    pthread_barrier_init(&all_in, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        a[i].all_in = &all_in;
        assert_int_equal(pthread_create(&t[i], NULL, arena_probe_main, &a[i]), 0);
    }
    pthread_barrier_wait(&all_in);
    const int during = malloc_arenas();
    pthread_barrier_wait(&all_in);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&all_in);
    /* glibc's default would give each new thread an arena of its own */
    assert_true(during <= (before > limit ? before : limit));
}
#endif

static void test_alloc_tune_process(void **state)
{
    (void)state;
    const char *was = getenv("GLIBC_TUNABLES");
    char *saved = was ? strdup(was) : NULL;
    setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1", 1);
    assert_false(nops_alloc_tune_process());
    setenv("MALLOC_ARENA_MAX", "4", 1);
    unsetenv("GLIBC_TUNABLES");
    assert_false(nops_alloc_tune_process()); /* the operator's arena limit wins too */
    unsetenv("MALLOC_ARENA_MAX");
    if (saved && strstr(saved, "glibc.malloc.")) { /* the environment's own settings stay */
        setenv("GLIBC_TUNABLES", saved, 1);
        free(saved);
        assert_false(nops_alloc_tune_process());
        return;
    }
    if (saved)
        setenv("GLIBC_TUNABLES", saved, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    free(saved);
#if defined(__SANITIZE_ADDRESS__)
    assert_false(nops_alloc_tune_process()); /* the sanitizer's malloc takes no mallopt */
#else
    assert_true(nops_alloc_tune_process());
    const struct mallinfo2 m0 = mallinfo2();
    char *a = malloc((size_t)8 << 20);
    assert_non_null(a);
    a[0] = 1;
    const struct mallinfo2 m1 = mallinfo2();
    assert_int_equal(m1.hblks, m0.hblks); /* 8 MiB: from the heap */
    char *b = malloc((size_t)40 << 20);
    assert_non_null(b);
    b[0] = 1;
    assert_int_equal(mallinfo2().hblks, m1.hblks + 1); /* 40 MiB: a mapping of its own */
    free(b);
    free(a);
    check_arena_limit();
#endif
}

static void test_alloc_fail_injection(void **state)
{
    nops_alloc_fail_after(2, false);
    void *a = nops_malloc(1), *b = nops_malloc(1);
    void *c = nops_malloc(1); /* the third fails */
    void *d = nops_malloc(1); /* not sticky: works again */
    assert_non_null(a);
    assert_non_null(b);
    assert_null(c);
    assert_non_null(d);
    nops_alloc_fail_after(0, true);
    assert_null(nops_malloc(1));
    assert_null(nops_calloc(1, 1));
    assert_null(nops_aligned_alloc(64, 64));
    char *old = d;
    assert_null(nops_realloc(old, 100)); /* on failure the old block stays valid */
    nops_alloc_fail_after(-1, false);
    nops_free(a);
    nops_free(b);
    nops_free(old);
}

static void test_buf_reserve(void **state)
{
    nops_buf b = {0};
    assert_int_equal(nops_buf_reserve(&b, 10), NOPS_OK);
    assert_true(b.cap >= 10);
    memcpy(b.b, "0123456789", 10);
    b.len = 10;
    assert_int_equal(nops_buf_reserve(&b, 200000), NOPS_OK); /* grows, keeps the bytes */
    assert_true(b.cap >= 200010);
    assert_memory_equal(b.b, "0123456789", 10);
    size_t cap = b.cap;
    nops_alloc_fail_after(0, false);
    assert_int_equal(nops_buf_reserve(&b, cap), NOPS_NOMEM); /* all or nothing */
    nops_alloc_fail_after(-1, false);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(b.b, "0123456789", 10);
    nops_free(b.b);
}

/* ---- logging ---------------------------------------------------------------------------- */

typedef struct captured {
    char lines[8][1200];
    int n;
} captured;

static void sink(void *ud, nops_log_level level, const char *line)
{
    captured *c = ud;
    if (c->n < 8)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

static void test_log_levels_and_json(void **state)
{
    captured c = {0};
    nops_log_set_sink(sink, &c);
    nops_log_configure(NOPS_LOG_WARN, NOPS_LOG_TEXT);
    NOPS_INFO("test", "hidden %d", 1);
    NOPS_WARN("test", "shown %d", 2);
    assert_int_equal(c.n, 1);
    assert_non_null(strstr(c.lines[0], "warn  test: shown 2"));
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);
    NOPS_ERROR("api", "quote \" backslash \\ newline \n tab \t");
    assert_int_equal(c.n, 2);
    assert_non_null(strstr(c.lines[1], "\"level\":\"error\",\"module\":\"api\""));
    assert_non_null(strstr(c.lines[1], "quote \\\" backslash \\\\ newline \\n tab \\u0009"));
    nops_log_level lv;
    assert_int_equal(nops_log_level_parse("ERROR", &lv), NOPS_OK);
    assert_int_equal(lv, NOPS_LOG_ERROR);
    assert_int_equal(nops_log_level_parse("loud", &lv), NOPS_INVAL);
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
}

/* No byte of `line` ends a line or is a control character. */
static void assert_one_line(const char *line)
{
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            fail_msg("control byte 0x%02x in \"%s\"", *p, line);
    assert_null(strstr(line, "\xE2\x80\xA8")); /* U+2028 */
    assert_null(strstr(line, "\xC2\x85"));     /* U+0085 */
}

/* Whatever a message holds (a forged log line, a multi-line database error, terminal escapes,
 * bytes that are not UTF-8), it is one line in both formats. */
static void test_log_one_line_per_entry(void **state)
{
    (void)state;
    const char *forged = "user alice\n2026-01-01T00:00:00.000Z info  http: POST /x 200\r\n"
                         "ERROR:  relation \"x\" does not exist\nLINE 1: SELECT\n\t^ \x1b[31m"
                         "red\x7f \xff\xfe half \xE2\x80\xA8 sep \xC2\x85 nel";
    captured c = {0};
    nops_log_set_sink(sink, &c);
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_TEXT);
    NOPS_WARN("pg", "%s", forged);
    nops_log_kafka(NULL, 4, "FAIL", "broker down\nforged line");
    NOPS_INFO("mod\nule", "x");
    assert_int_equal(c.n, 3);
    for (int i = 0; i < 3; i++)
        assert_one_line(c.lines[i]);
    assert_non_null(strstr(c.lines[0], "warn  pg: user alice\\n2026-01-01T00:00:00.000Z info  "
                                       "http: POST /x 200\\r\\nERROR:  relation \"x\" does not "
                                       "exist\\nLINE 1: SELECT\\n\\t^ \\x1b[31mred\\x7f"));
    assert_non_null(strstr(c.lines[0], "\\u2028 sep \\u0085 nel"));
    assert_non_null(strstr(c.lines[1], "warn  kafka: FAIL: broker down\\nforged line"));
    assert_non_null(strstr(c.lines[2], "mod\\nule: x"));
    c.n = 0;
    nops_log_configure(NOPS_LOG_DEBUG, NOPS_LOG_JSON);
    NOPS_WARN("pg", "%s", forged);
    nops_log_kafka(NULL, 7, "BROKER", "line\none");
    assert_int_equal(c.n, 2);
    for (int i = 0; i < 2; i++) {
        assert_one_line(c.lines[i]);
        assert_true(nops_utf8_valid(c.lines[i], strlen(c.lines[i]))); /* stays valid JSON */
    }
    assert_non_null(strstr(c.lines[0], "user alice\\n2026-01-01T00:00:00.000Z info  http: POST "
                                       "/x 200\\u000d\\nERROR:  relation \\\"x\\\" does not "
                                       "exist\\nLINE 1: SELECT\\n\\u0009^ \\u001b[31mred\\u007f "
                                       "\xEF\xBF\xBD\xEF\xBF\xBD half \\u2028 sep \\u0085 nel"));
    assert_non_null(strstr(c.lines[1], "\"level\":\"debug\",\"module\":\"kafka\",\"msg\":"
                                       "\"BROKER: line\\none\""));
    nops_log_set_sink(NULL, NULL);
    nops_log_configure(NOPS_LOG_INFO, NOPS_LOG_TEXT);
}

/* ---- config ----------------------------------------------------------------------------- */

typedef struct demo_cfg {
    int64_t workers;
    double ratio;
    bool enabled;
    char name[16];
    int mode;
    char token[32];
} demo_cfg;

static const nops_cfg_entry demo_entries[] = {
    {"workers", NOPS_CFG_INT, offsetof(demo_cfg, workers), 1, 64, "4", NULL, "workers", 0,
     "Worker threads."},
    {"ratio", NOPS_CFG_DOUBLE, offsetof(demo_cfg, ratio), 0, 1, "0.5", NULL, NULL, 0, "A ratio."},
    {"enabled", NOPS_CFG_BOOL, offsetof(demo_cfg, enabled), 0, 0, "true", NULL, NULL, 0,
     "On or off."},
    {"name", NOPS_CFG_STRING, offsetof(demo_cfg, name), 0, 16, "alpha", NULL, NULL, 0, "A name."},
    {"mode", NOPS_CFG_ENUM, offsetof(demo_cfg, mode), 0, 0, "fast", "fast|safe|off", "mode", 0,
     "A mode."},
    {"token", NOPS_CFG_STRING, offsetof(demo_cfg, token), 0, 32, "", NULL, NULL, NOPS_CFG_SECRET,
     "A secret."},
};

static nops_err demo_finalize(void *base, char *errstr, size_t errstr_size)
{
    demo_cfg *c = base;
    if (!c->enabled && c->mode == 0) {
        nops_errf(errstr, errstr_size, "demo.mode=fast needs demo.enabled=true");
        return NOPS_CONFIG;
    }
    return NOPS_OK;
}

static const nops_cfg_section demo_section = {
    "demo", "A section for tests.", demo_entries, sizeof demo_entries / sizeof demo_entries[0],
    demo_finalize,
};

static nops_cfg *make_cfg(demo_cfg *c)
{
    nops_cfg *cfg = nops_cfg_new();
    assert_non_null(cfg);
    assert_int_equal(nops_cfg_add(cfg, &demo_section, c, NULL, 0), NOPS_OK);
    return cfg;
}

static void test_config_defaults_and_file(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    assert_int_equal(c.workers, 4);
    assert_float_equal(c.ratio, 0.5, 0);
    assert_true(c.enabled);
    assert_string_equal(c.name, "alpha");
    assert_int_equal(c.mode, 0);
    const char *text = "# comment\n\n[demo]\r\nworkers = 8\n  ratio=0.25  \n"
                       "enabled = off\nname = \"beta\"\nmode = SAFE\n; another comment\n";
    char err[256];
    assert_int_equal(nops_cfg_load_buffer(cfg, text, strlen(text), "t.ini", err, sizeof err),
                     NOPS_OK);
    assert_int_equal(c.workers, 8);
    assert_float_equal(c.ratio, 0.25, 0);
    assert_false(c.enabled);
    assert_string_equal(c.name, "beta");
    assert_int_equal(c.mode, 1);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_OK);
    nops_cfg_destroy(cfg);
}

static void expect_error(const char *text, nops_err code, const char *needle)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[256] = "";
    assert_int_equal(nops_cfg_load_buffer(cfg, text, strlen(text), "bad.ini", err, sizeof err),
                     code);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    nops_cfg_destroy(cfg);
}

static void test_config_errors_name_the_line(void **state)
{
    expect_error("[demo]\nworkers = many\n", NOPS_PARSE, "bad.ini:2");
    expect_error("[demo]\nworkers = 0\n", NOPS_RANGE, "outside");
    expect_error("[demo]\nworkers = 99999999999999999999\n", NOPS_PARSE, "integer");
    expect_error("[demo]\nratio = nan\n", NOPS_PARSE, "finite");
    expect_error("[demo]\nratio = 1.5\n", NOPS_RANGE, "ratio");
    expect_error("[demo]\nenabled = maybe\n", NOPS_PARSE, "true or false");
    expect_error("[demo]\nname = 0123456789abcdefXYZ\n", NOPS_RANGE, "at most 15");
    expect_error("[demo]\nmode = turbo\n", NOPS_PARSE, "fast|safe|off");
    expect_error("[demo]\ncolour = red\n", NOPS_NOTFOUND, "unknown key \"colour\"");
    expect_error("[nope]\n", NOPS_NOTFOUND, "unknown section [nope]");
    expect_error("workers = 2\n", NOPS_PARSE, "outside any [section]");
    expect_error("[demo\n", NOPS_PARSE, "expected [section]");
    expect_error("[demo]\njust words\n", NOPS_PARSE, "bad.ini:2: expected key = value");
    {
        demo_cfg c;
        nops_cfg *cfg = make_cfg(&c);
        char err[128] = "";
        static const char nul[] = "[demo]\nworkers = 2\0 9\n";
        assert_int_equal(nops_cfg_load_buffer(cfg, nul, sizeof nul - 1, "n.ini", err, sizeof err),
                         NOPS_PARSE);
        assert_non_null(strstr(err, "n.ini:2: NUL"));
        nops_cfg_destroy(cfg);
    }
    char big[5000];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\0';
    expect_error(big, NOPS_PARSE, "longer than");
}

static void test_config_env_and_flags_precedence(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[256];
    const char *text = "[demo]\nworkers = 8\nmode = safe\n";
    assert_int_equal(nops_cfg_load_buffer(cfg, text, strlen(text), "f", err, sizeof err),
                     NOPS_OK);
    setenv("NEURALOPS_DEMO_WORKERS", "16", 1);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_OK);
    assert_int_equal(c.workers, 16); /* env beats file */
    assert_int_equal(c.mode, 1);     /* untouched by env */
    bool takes;
    const char *target = nops_cfg_flag_target(cfg, "workers", &takes);
    assert_non_null(target);
    assert_string_equal(target, "demo.workers");
    assert_int_equal(nops_cfg_set(cfg, target, "32", "--workers", err, sizeof err), NOPS_OK);
    assert_int_equal(c.workers, 32); /* flag beats env */
    assert_non_null(nops_cfg_flag_target(cfg, "demo.ratio", NULL));
    assert_null(nops_cfg_flag_target(cfg, "nonsense", NULL));
    assert_int_equal(nops_cfg_set(cfg, "demo.workers", "0", "--workers", err, sizeof err),
                     NOPS_RANGE);
    assert_non_null(strstr(err, "--workers"));
    setenv("NEURALOPS_DEMO_RATIO", "lots", 1);
    assert_int_equal(nops_cfg_apply_env(cfg, err, sizeof err), NOPS_PARSE);
    assert_non_null(strstr(err, "NEURALOPS_DEMO_RATIO"));
    unsetenv("NEURALOPS_DEMO_RATIO");
    unsetenv("NEURALOPS_DEMO_WORKERS");
    /* cross-field check */
    assert_int_equal(nops_cfg_set(cfg, "demo.enabled", "no", "x", err, sizeof err), NOPS_OK);
    assert_int_equal(nops_cfg_set(cfg, "demo.mode", "fast", "x", err, sizeof err), NOPS_OK);
    assert_int_equal(nops_cfg_finalize(cfg, err, sizeof err), NOPS_CONFIG);
    assert_non_null(strstr(err, "needs demo.enabled"));
    nops_cfg_destroy(cfg);
}

static void test_config_docs_and_dump(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[128];
    assert_int_equal(nops_cfg_set(cfg, "demo.token", "s3cr3t", "x", err, sizeof err), NOPS_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nops_cfg_print_markdown(cfg, f);
    nops_cfg_print_values(cfg, f);
    nops_cfg_print_flags(cfg, f);
    fclose(f);
    for (size_t i = 0; i < demo_section.n_entries; i++)
        assert_non_null(strstr(buf, demo_entries[i].key));
    assert_non_null(strstr(buf, "`NEURALOPS_DEMO_WORKERS`"));
    assert_non_null(strstr(buf, "workers = 4"));
    assert_non_null(strstr(buf, "token = ********"));
    assert_null(strstr(buf, "s3cr3t"));
    assert_non_null(strstr(buf, "--workers"));
    free(buf);
    nops_cfg_destroy(cfg);
}

static void test_config_file_io(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[256];
    assert_int_equal(nops_cfg_load_file(cfg, "/nonexistent/neuralops.ini", err, sizeof err),
                     NOPS_IO);
    assert_non_null(strstr(err, "/nonexistent/neuralops.ini"));
    char path[] = "/tmp/nops-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("[demo]\nworkers = 3\n", f);
    fclose(f);
    assert_int_equal(nops_cfg_load_file(cfg, path, err, sizeof err), NOPS_OK);
    assert_int_equal(c.workers, 3);
    unlink(path);
    nops_cfg_destroy(cfg);
}

/* ---- unknown NEURALOPS_* variables (a typo must not leave a default in force) ------------ */

typedef struct env_lines {
    char lines[16][1200]; /* warnings logged */
    int n;                /* how many */
} env_lines;

static void env_sink(void *ud, nops_log_level level, const char *line)
{
    env_lines *c = ud;
    (void)level;
    if (c->n < 16)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

/* The warning line that names `var`, or NULL. */
static const char *env_warning(const env_lines *c, const char *var)
{
    for (int i = 0; i < c->n; i++) {
        const char *p = strstr(c->lines[i], var);
        if (p && (p[strlen(var)] == ' ' || p[strlen(var)] == ':'))
            return c->lines[i];
    }
    return NULL;
}

static void test_config_unknown_env_warned(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    env_lines got = {0};
    nops_log_set_sink(env_sink, &got);
    const size_t before = nops_cfg_warn_unknown_env(cfg); /* whatever the runner's env holds */
    got.n = 0;
    setenv("NEURALOPS_DEMO_WORKRS", "s3cr3t-value", 1);   /* a typo */
    setenv("neuralops_demo_ratio", "0.2", 1);              /* wrong case: getenv misses it */
    setenv("NEURALOPS_NOTHING_LIKE_IT_AT_ALL", "1", 1);    /* no setting is close */
    setenv("NEURALOPS_TEST_SOMETHING", "1", 1);            /* the test harness's */
    setenv("NEURALOPS_DRY_RUN", "1", 1);                   /* what a playbook step is given */
    setenv("NEURALOPS_SERVICE", "checkout", 1);
    setenv("NEURALOPS_DEMO_WORKERS", "5", 1);              /* a setting */
    assert_int_equal(nops_cfg_warn_unknown_env(cfg), before + 3);
    const char *typo = env_warning(&got, "NEURALOPS_DEMO_WORKRS");
    assert_non_null(typo);
    assert_non_null(strstr(typo, "warn"));
    assert_non_null(strstr(typo, "did you mean NEURALOPS_DEMO_WORKERS?"));
    assert_null(strstr(typo, "s3cr3t")); /* never the value */
    const char *lower = env_warning(&got, "neuralops_demo_ratio");
    assert_non_null(lower);
    assert_non_null(strstr(lower, "did you mean NEURALOPS_DEMO_RATIO?"));
    const char *far = env_warning(&got, "NEURALOPS_NOTHING_LIKE_IT_AT_ALL");
    assert_non_null(far);
    assert_non_null(strstr(far, "the closest is NEURALOPS_DEMO_"));
    assert_null(env_warning(&got, "NEURALOPS_TEST_SOMETHING"));
    assert_null(env_warning(&got, "NEURALOPS_DRY_RUN"));
    assert_null(env_warning(&got, "NEURALOPS_SERVICE"));
    assert_null(env_warning(&got, "NEURALOPS_DEMO_WORKERS"));
    const char *unset[] = {"NEURALOPS_DEMO_WORKRS", "neuralops_demo_ratio",
                           "NEURALOPS_NOTHING_LIKE_IT_AT_ALL", "NEURALOPS_TEST_SOMETHING",
                           "NEURALOPS_DRY_RUN", "NEURALOPS_SERVICE", "NEURALOPS_DEMO_WORKERS"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    got.n = 0;
    assert_int_equal(nops_cfg_warn_unknown_env(cfg), before);
    nops_log_set_sink(NULL, NULL);
    nops_cfg_destroy(cfg);
}

static void test_config_default_text(void **state)
{
    demo_cfg c;
    nops_cfg *cfg = make_cfg(&c);
    char err[128];
    assert_int_equal(nops_cfg_set(cfg, "demo.name", "beta", "x", err, sizeof err), NOPS_OK);
    assert_string_equal(nops_cfg_default(cfg, "demo.name"), "alpha"); /* the table's, not now */
    assert_string_equal(nops_cfg_default(cfg, "demo.workers"), "4");
    assert_null(nops_cfg_default(cfg, "demo.nothing"));
    assert_null(nops_cfg_default(cfg, "nosection"));
    nops_cfg_destroy(cfg);
}

/* Hex and SHA-256 against known values. */
static void test_hex_and_sha256(void **state)
{
    (void)state;
    char hex[65];
    nops_hex("\x00\x7f\xff", 3, hex);
    assert_string_equal(hex, "007fff");
    nops_hex("", 0, hex);
    assert_string_equal(hex, "");
    assert_true(nops_sha256_hex("abc", 3, hex));
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* One line per 10 s: the events in between are counted and handed to the next line. */
static void test_ratelimit(void **state)
{
    (void)state;
    nops_ratelimit rl = {0};
    uint64_t missed = 99;
    const int64_t t0 = 5 * NOPS_RATELIMIT_NS;
    assert_true(nops_ratelimit_due(&rl, t0, &missed));
    assert_int_equal(missed, 0);
    assert_false(nops_ratelimit_due(&rl, t0 + 1, &missed));
    assert_false(nops_ratelimit_due(&rl, t0 + NOPS_RATELIMIT_NS - 1, &missed));
    assert_true(nops_ratelimit_due(&rl, t0 + NOPS_RATELIMIT_NS, &missed));
    assert_int_equal(missed, 2);
    /* a clock that starts at 0 still limits */
    nops_ratelimit z = {0};
    assert_true(nops_ratelimit_due(&z, 0, &missed));
    assert_false(nops_ratelimit_due(&z, 1, &missed));
}

/* A canonical key decodes back into the labels it was built from, escapes undone. */
static void test_series_key_round_trip(void **state)
{
    (void)state;
    nops_label in[] = {{"region", 6, "eu", 2}, {"path", 4, "a\"b\\c\nd", 7}, {"az", 2, "b", 1}};
    char key[NOPS_KEY_MAX];
    size_t len;
    assert_int_equal(nops_series_key("m", 1, in, 3, key, sizeof key, &len), NOPS_OK);
    assert_string_equal(key, "m{az=\"b\",path=\"a\\\"b\\\\c\\nd\",region=\"eu\"}");
    nops_signal sig;
    assert_int_equal(nops_signal_set_series(&sig, key), NOPS_OK);
    assert_string_equal(sig.series, key);
    assert_int_equal(sig.metric_len, 1);
    assert_int_equal(sig.labels.n, 3);
    for (uint32_t i = 0; i < 3; i++) { /* sorted by key, as in the key */
        nops_label l = nops_labels_at(&sig.labels, i);
        assert_int_equal(l.key_len, in[i].key_len);
        assert_memory_equal(l.key, in[i].key, l.key_len);
        assert_int_equal(l.value_len, in[i].value_len);
        assert_memory_equal(l.value, in[i].value, l.value_len);
        assert_true(nops_labels_has(&sig.labels, &in[i]));
    }
    nops_label other = {"az", 2, "c", 1};
    assert_false(nops_labels_has(&sig.labels, &other));
    size_t nl;
    assert_int_equal(nops_series_key_labels("up", &nl, NULL), NOPS_OK);
    assert_int_equal(nl, 2);
    /* a key that cannot be split keeps its identity: the whole text as the name, no labels */
    assert_int_equal(nops_signal_set_series(&sig, "m{a=\"b\""), NOPS_PARSE);
    assert_int_equal(sig.labels.n, 0);
    assert_string_equal(sig.series, "m{a=\"b\"");
    assert_int_equal(sig.metric_len, strlen("m{a=\"b\""));
    const char *unsplit = "cpu_v{a=b=\"1\",host=\"web-1\"}"; /* what `cpu,a\=b=1,...` gave */
    assert_int_equal(nops_signal_set_series(&sig, unsplit), NOPS_PARSE);
    assert_string_equal(sig.series, unsplit);
    assert_int_equal(sig.metric_len, strlen(unsplit));
    assert_int_equal(sig.labels.n, 0);
    /* names and label keys that a key could not be split back into are refused */
    nops_label eq[] = {{"a=b", 3, "1", 1}, {"host", 4, "web-1", 5}};
    assert_int_equal(nops_series_key("cpu_v", 5, eq, 2, key, sizeof key, &len), NOPS_INVAL);
    nops_label dc[] = {{"dc", 2, "1", 1}};
    assert_int_equal(nops_series_key("cpu{x_v", 7, dc, 1, key, sizeof key, &len), NOPS_INVAL);
    assert_int_equal(nops_series_key("cpu}x", 5, NULL, 0, key, sizeof key, &len), NOPS_INVAL);
    assert_int_equal(nops_series_key("cpu\"x", 5, NULL, 0, key, sizeof key, &len), NOPS_INVAL);
    const char *bad_keys[] = {"a\"b", "a,b", "a{b", "a}b", "a\nb", ""};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        nops_label l = {bad_keys[i], strlen(bad_keys[i]), "v", 1};
        assert_false(nops_label_key_ok(l.key, l.key_len));
        assert_int_equal(nops_series_key("m", 1, &l, 1, key, sizeof key, &len), NOPS_INVAL);
    }
    assert_true(nops_label_key_ok("host.name-1/x", 13));
    assert_true(nops_series_name_ok("cpu.usage-1/x:y", 15));
    assert_false(nops_series_name_ok("cpu{x", 5));
    assert_int_equal(nops_series_key_labels("{a=\"b\"}", &nl, NULL), NOPS_PARSE);
    assert_int_equal(nops_series_key_labels("m{a=b}", &nl, NULL), NOPS_PARSE);
}

/* A label set refuses a pair past its bounds and stays as it was. */
static void test_labels_bounds(void **state)
{
    (void)state;
    nops_labels ls = {0};
    for (int i = 0; i < NOPS_LABELS_MAX; i++)
        assert_int_equal(nops_labels_add(&ls, "k", 1, "v", 1), NOPS_OK);
    assert_int_equal(nops_labels_add(&ls, "k", 1, "v", 1), NOPS_FULL);
    assert_int_equal(ls.n, NOPS_LABELS_MAX);
    nops_labels big = {0};
    char v[NOPS_KEY_MAX];
    memset(v, 'x', sizeof v);
    assert_int_equal(nops_labels_add(&big, "k", 1, v, sizeof v), NOPS_FULL);
    assert_int_equal(big.n, 0);
    assert_int_equal(nops_labels_add(&big, "k", 1, v, sizeof v - 1), NOPS_OK);
    assert_int_equal(big.used, sizeof v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_has),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_hex_and_sha256),
        cmocka_unit_test(test_series_key_round_trip),
        cmocka_unit_test(test_labels_bounds),
        cmocka_unit_test(test_alloc_counts),
        cmocka_unit_test(test_aligned_alloc_zeroed),
        cmocka_unit_test(test_aligned_grow),
        cmocka_unit_test(test_aligned_large_blocks_huge_pages),
        cmocka_unit_test(test_alloc_tune_process),
        cmocka_unit_test(test_alloc_fail_injection),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_log_levels_and_json),
        cmocka_unit_test(test_log_one_line_per_entry),
        cmocka_unit_test(test_config_defaults_and_file),
        cmocka_unit_test(test_config_errors_name_the_line),
        cmocka_unit_test(test_config_env_and_flags_precedence),
        cmocka_unit_test(test_config_docs_and_dump),
        cmocka_unit_test(test_config_file_io),
        cmocka_unit_test(test_config_unknown_env_warned),
        cmocka_unit_test(test_config_default_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
