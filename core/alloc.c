/*
 * alloc.c — the one allocation layer.
 *
 * Every block carries a 16-byte header in front of the caller's pointer holding the requested
 * size and the distance back to the start of the underlying malloc block (non-zero only for
 * aligned blocks). That lets nops_free() release both kinds and lets the layer count the bytes
 * it holds without a global table. Counters are relaxed atomics: they are statistics, not
 * synchronisation. Failure injection is a countdown shared by all threads.
 */
#include "core/core.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct nops__alloc_hdr {
    size_t size;   /* bytes the caller asked for */
    uint32_t back; /* bytes from the malloc block start to the caller's pointer */
    uint32_t magic;
} nops__alloc_hdr;

#define NOPS__ALLOC_MAGIC 0x6e6f7073u /* "nops" */
#define NOPS__MAPPED_MAGIC 0x4e4f504du /* "NOPM": a large aligned block, mapped */
#define NOPS__MAP_MIN (1u << 20)      /* aligned blocks this large are mapped */
#define NOPS__HDR sizeof(nops__alloc_hdr)

_Static_assert(sizeof(nops__alloc_hdr) == 16, "header keeps 16-byte alignment");

static atomic_size_t g_in_use;
static atomic_size_t g_peak;
static atomic_size_t g_live;
static atomic_long g_fail_countdown = -1;
static atomic_bool g_fail_sticky;

static bool should_fail(void)
{
    long c = atomic_load_explicit(&g_fail_countdown, memory_order_relaxed);
    if (c < 0)
        return false;
    if (c == 0) {
        if (!atomic_load_explicit(&g_fail_sticky, memory_order_relaxed))
            atomic_store(&g_fail_countdown, -1);
        return true;
    }
    /* Another thread may race us here; injection is for single-threaded tests. */
    atomic_fetch_sub_explicit(&g_fail_countdown, 1, memory_order_relaxed);
    return false;
}

static void account_add(size_t size)
{
    size_t now = atomic_fetch_add_explicit(&g_in_use, size, memory_order_relaxed) + size;
    atomic_fetch_add_explicit(&g_live, 1, memory_order_relaxed);
    size_t peak = atomic_load_explicit(&g_peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&g_peak, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

static void account_sub(size_t size)
{
    atomic_fetch_sub_explicit(&g_in_use, size, memory_order_relaxed);
    atomic_fetch_sub_explicit(&g_live, 1, memory_order_relaxed);
}

static void *finish(char *block, uint32_t back, size_t size)
{
    nops__alloc_hdr *h = (nops__alloc_hdr *)(block + back - NOPS__HDR);
    h->size = size;
    h->back = back;
    h->magic = NOPS__ALLOC_MAGIC;
    account_add(size);
    return block + back;
}

static nops__alloc_hdr *header_of(void *ptr)
{
    nops__alloc_hdr *h = (nops__alloc_hdr *)((char *)ptr - NOPS__HDR);
    if (h->magic != NOPS__ALLOC_MAGIC && h->magic != NOPS__MAPPED_MAGIC)
        abort(); /* freeing memory that did not come from this layer: a bug, fail loudly */
    return h;
}

void *nops_malloc(size_t size)
{
    if (should_fail() || size > SIZE_MAX - NOPS__HDR)
        return NULL;
    char *block = malloc(size + NOPS__HDR);
    return block ? finish(block, NOPS__HDR, size) : NULL;
}

void *nops_calloc(size_t n, size_t size)
{
    if (size && n > (SIZE_MAX - NOPS__HDR) / size)
        return NULL;
    if (should_fail())
        return NULL;
    char *block = calloc(1, n * size + NOPS__HDR);
    return block ? finish(block, NOPS__HDR, n * size) : NULL;
}

void *nops_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return nops_malloc(size);
    nops__alloc_hdr *h = header_of(ptr);
    if (h->back != NOPS__HDR || h->magic != NOPS__ALLOC_MAGIC)
        abort(); /* aligned blocks grow with nops_aligned_grow */
    if (should_fail() || size > SIZE_MAX - NOPS__HDR)
        return NULL;
    size_t old = h->size;
    char *block = realloc((char *)h, size + NOPS__HDR);
    if (!block)
        return NULL;
    account_sub(old);
    return finish(block, NOPS__HDR, size);
}

static size_t page_round(size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) & ~(page - 1);
}

#define NOPS__HUGE ((size_t)2 << 20) /* a transparent huge page on x86-64 and arm64 (4K base) */

/*
 * Anonymous read-write pages at a NOPS__HUGE boundary with room for `len` bytes: either a new
 * range (old == NULL), or the pages of [old, old + old_len) moved there, contents and all, by
 * page-table moves (mremap with MREMAP_FIXED: no copy). A range is reserved with NOPS__HUGE
 * spare bytes and its ends are given back. MAP_FAILED when the kernel refuses; `old` then stays
 * mapped.
 */
static void *map_huge_aligned(char *old, size_t old_len, size_t len)
{
    const size_t span = len + NOPS__HUGE;
    char *r = mmap(NULL, span, old ? PROT_NONE : PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (old ? MAP_NORESERVE : 0), -1, 0);
    if (r == MAP_FAILED)
        return MAP_FAILED;
    char *a = (char *)(((uintptr_t)r + NOPS__HUGE - 1) & ~(uintptr_t)(NOPS__HUGE - 1));
    if (old && mremap(old, old_len, len, MREMAP_MAYMOVE | MREMAP_FIXED, a) == MAP_FAILED) {
        munmap(r, span);
        return MAP_FAILED;
    }
    if (a > r)
        munmap(r, (size_t)(a - r));
    munmap(a + len, (size_t)(r + span - (a + len))); /* never empty: a < r + NOPS__HUGE */
    return a;
}

/*
 * Pages for a mapped block: `len` bytes, a new range (old == NULL) or [old, old + old_len)
 * grown. A range of NOPS__HUGE or more starts at a huge-page boundary and asks for transparent
 * huge pages (MADV_HUGEPAGE; the kernel may decline): a detector of 100k series holds ~70 MB,
 * and a 4 KiB page's first touch cost ~16 µs on the VM the benchmarks ran on, so faulting it
 * in 4 KiB pages was most of a new series' cost (bench/RESULTS.md). A grown range stays
 * where it is when the pages after it are free; moved, it keeps the boundary, so the huge pages
 * it holds move whole instead of being split.
 */
static char *map_pages(char *old, size_t old_len, size_t len)
{
    const bool huge = len >= NOPS__HUGE;
    void *m = MAP_FAILED;
    if (old && (!huge || ((uintptr_t)old & (NOPS__HUGE - 1)) == 0))
        m = mremap(old, old_len, len, 0); /* in place */
    if (m == MAP_FAILED && huge)
        m = map_huge_aligned(old, old_len, len);
    if (m == MAP_FAILED) /* anywhere: small pages work as well */
        m = old ? mremap(old, old_len, len, MREMAP_MAYMOVE)
                : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (huge)
        (void)madvise(m, len, MADV_HUGEPAGE); /* advice only: small pages work as well */
#endif
    return m;
}

/*
 * Large aligned blocks (≥ NOPS__MAP_MIN) are anonymous mappings: zero without being written, and
 * nops_aligned_grow extends them with mremap, which keeps the pages already there (no copy, no
 * fault again) and adds zero pages that are faulted in only when first used. The detector's
 * state doubles this way as series arrive; taken from malloc, each doubling zeroed and copied
 * the whole block (12 % of a worker's CPU in the end-to-end benchmark). Mapped blocks hold
 * numbers, not pointers: a leak checker does not look inside them.
 */
void *nops_aligned_alloc(size_t align, size_t size)
{
    if (align < 16 || align > 4096 || (align & (align - 1)) || size > SIZE_MAX / 2 - align)
        return NULL;
    if (should_fail())
        return NULL;
    if (size + align >= NOPS__MAP_MIN) {
        char *map = map_pages(NULL, 0, page_round(size + align));
        if (!map)
            return NULL;
        void *p = finish(map, (uint32_t)align, size); /* pages are 4096-aligned, ≥ align */
        ((nops__alloc_hdr *)((char *)p - NOPS__HDR))->magic = NOPS__MAPPED_MAGIC;
        return p;
    }
    void *block = NULL;
    if (posix_memalign(&block, align, size + align) != 0)
        return NULL;
    memset(block, 0, size + align);
    return finish(block, (uint32_t)align, size);
}

void *nops_aligned_grow(void *ptr, size_t align, size_t size)
{
    if (!ptr)
        return nops_aligned_alloc(align, size);
    nops__alloc_hdr *h = header_of(ptr);
    const size_t old = h->size, back = h->back;
    if (size <= old)
        return ptr;
    if (h->magic != NOPS__MAPPED_MAGIC || size > SIZE_MAX / 2 - back) {
        char *n = nops_aligned_alloc(align, size); /* small so far: a new block */
        if (n) {
            memcpy(n, ptr, old);
            nops_free(ptr);
        }
        return n;
    }
    if (should_fail())
        return NULL;
    char *map = map_pages((char *)ptr - back, page_round(old + back), page_round(size + back));
    if (!map)
        return NULL; /* the old mapping stays as it was */
    account_sub(old);
    void *p = finish(map, (uint32_t)back, size);
    ((nops__alloc_hdr *)((char *)p - NOPS__HDR))->magic = NOPS__MAPPED_MAGIC;
    return p;
}

char *nops_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = nops_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *nops_strdup(const char *s)
{
    return nops_strndup(s, SIZE_MAX);
}

void nops_free(void *ptr)
{
    if (!ptr)
        return;
    nops__alloc_hdr *h = header_of(ptr);
    account_sub(h->size);
    const bool mapped = h->magic == NOPS__MAPPED_MAGIC;
    const size_t size = h->size, back = h->back;
    h->magic = 0;
    if (mapped)
        munmap((char *)ptr - back, page_round(size + back));
    else
        free((char *)ptr - back);
}

int nops_alloc_arena_limit(void)
{
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus >= 8 ? (int)(cpus / 4) : 1;
}

bool nops_alloc_tune_process(void)
{
    const char *t = getenv("GLIBC_TUNABLES");
    if ((t && strstr(t, "glibc.malloc.")) || getenv("MALLOC_MMAP_THRESHOLD_") ||
        getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_ARENA_MAX"))
        return false;
    /* fixed values also stop glibc's own adjustment of the two (which starts at 128 KiB) */
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1 &&
           mallopt(M_ARENA_MAX, nops_alloc_arena_limit()) == 1;
}

size_t nops_alloc_bytes_in_use(void)
{
    return atomic_load(&g_in_use);
}

size_t nops_alloc_bytes_peak(void)
{
    return atomic_load(&g_peak);
}

size_t nops_alloc_live_count(void)
{
    return atomic_load(&g_live);
}

void nops_alloc_fail_after(long n, bool sticky)
{
    atomic_store(&g_fail_sticky, sticky);
    atomic_store(&g_fail_countdown, n < 0 ? -1 : n);
}

nops_err nops_buf_reserve(nops_buf *buf, size_t extra)
{
    if (buf->len + extra <= buf->cap)
        return NOPS_OK;
    size_t ncap = buf->cap ? buf->cap * 2 : 65536;
    while (ncap < buf->len + extra)
        ncap *= 2;
    char *nb = nops_realloc(buf->b, ncap);
    if (!nb)
        return NOPS_NOMEM;
    buf->b = nb;
    buf->cap = ncap;
    return NOPS_OK;
}
