/*
 * test_alloc.c — the allocation layer (core/alloc.c): accounting, aligned blocks and their
 * growth in place, huge pages, the process's malloc settings, failure injection, buffers.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_counts),
        cmocka_unit_test(test_aligned_alloc_zeroed),
        cmocka_unit_test(test_aligned_grow),
        cmocka_unit_test(test_aligned_large_blocks_huge_pages),
        cmocka_unit_test(test_alloc_tune_process),
        cmocka_unit_test(test_alloc_fail_injection),
        cmocka_unit_test(test_buf_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
