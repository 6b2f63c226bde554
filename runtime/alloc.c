/*
 * alloc: jemalloc arenas or plain malloc, chosen at build time.
 */
#include "alloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FLEET_PLAIN_MALLOC

int fl_arena_create(unsigned *arena)
{
    *arena = FL_ARENA_DEFAULT;
    return 0;
}

void fl_arena_destroy(unsigned arena)
{
    (void)arena;
}

void *fl_alloc(unsigned arena, size_t size)
{
    (void)arena;
    return size == 0 ? NULL : malloc(size);
}

void *fl_calloc(unsigned arena, size_t n, size_t size)
{
    (void)arena;
    if (n == 0 || size == 0)
        return NULL;
    return calloc(n, size);
}

void *fl_alloc_aligned(unsigned arena, size_t align, size_t size)
{
    (void)arena;
    void *p = NULL;
    if (size == 0 || posix_memalign(&p, align, size) != 0)
        return NULL;
    memset(p, 0, size);
    return p;
}

void *fl_realloc(unsigned arena, void *p, size_t size)
{
    (void)arena;
    return size == 0 ? NULL : realloc(p, size);
}

void fl_free(unsigned arena, void *p)
{
    (void)arena;
    free(p);
}

#else /* jemalloc */

#include <jemalloc/jemalloc.h>

static int flags_of(unsigned arena)
{
    if (arena == FL_ARENA_DEFAULT)
        return 0;
    return MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE;
}

int fl_arena_create(unsigned *arena)
{
    unsigned id;
    size_t len = sizeof(id);
    if (mallctl("arenas.create", &id, &len, NULL, 0) != 0)
        return -ENOMEM;
    *arena = id;
    return 0;
}

void fl_arena_destroy(unsigned arena)
{
    if (arena == FL_ARENA_DEFAULT)
        return;
    char name[64];
    snprintf(name, sizeof(name), "arena.%u.destroy", arena);
    (void)mallctl(name, NULL, NULL, NULL, 0);
}

void *fl_alloc(unsigned arena, size_t size)
{
    return size == 0 ? NULL : mallocx(size, flags_of(arena));
}

void *fl_calloc(unsigned arena, size_t n, size_t size)
{
    if (n == 0 || size == 0 || n > SIZE_MAX / size)
        return NULL;
    return mallocx(n * size, flags_of(arena) | MALLOCX_ZERO);
}

void *fl_alloc_aligned(unsigned arena, size_t align, size_t size)
{
    if (size == 0)
        return NULL;
    return mallocx(size, flags_of(arena) | MALLOCX_ZERO | MALLOCX_ALIGN(align));
}

void *fl_realloc(unsigned arena, void *p, size_t size)
{
    if (size == 0)
        return NULL;
    if (p == NULL)
        return mallocx(size, flags_of(arena));
    return rallocx(p, size, flags_of(arena));
}

void fl_free(unsigned arena, void *p)
{
    if (p != NULL)
        dallocx(p, arena == FL_ARENA_DEFAULT ? 0 : MALLOCX_TCACHE_NONE);
}

#endif
