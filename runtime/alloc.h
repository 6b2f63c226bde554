/*
 * alloc: the one allocation shim of the library.
 *
 * Normal builds allocate with jemalloc; each TaskManager gets its own arena
 * (arenas.create) so its allocations do not share pages or locks with other
 * pools. Blocks of those arenas bypass jemalloc's thread caches — a cached
 * block would outlive its arena's destruction in some thread's cache — so
 * every call names the arena, on free too. Blocks of the default arena use
 * the thread caches (the fast path). Sanitizer builds
 * (FLEET_PLAIN_MALLOC) use the system malloc so that AddressSanitizer sees
 * every block; arenas are then only numbers.
 *
 * It does not track blocks or sizes. Every function is thread-safe.
 */
#ifndef FLEET_ALLOC_H
#define FLEET_ALLOC_H

#include <stddef.h>

/* The arena of blocks that belong to no TaskManager. */
#define FL_ARENA_DEFAULT (~0u)

/* Creates an arena; *arena is FL_ARENA_DEFAULT in plain-malloc builds.
 * Returns 0 or -ENOMEM. */
int fl_arena_create(unsigned *arena);
/* Destroys an arena made by fl_arena_create, with every block still in it.
 * FL_ARENA_DEFAULT is a no-op. */
void fl_arena_destroy(unsigned arena);

/* NULL when out of memory or size is 0. */
void *fl_alloc(unsigned arena, size_t size);
/* Zeroed; NULL on overflow or out of memory. */
void *fl_calloc(unsigned arena, size_t n, size_t size);
/* Zeroed, aligned to `align` (a power of two); NULL when out of memory. */
void *fl_alloc_aligned(unsigned arena, size_t align, size_t size);
/* Resizes a block of `arena` (NULL p: allocates) keeping its contents up to
 * the smaller size; NULL (and p unchanged) when out of memory or size is
 * 0. */
void *fl_realloc(unsigned arena, void *p, size_t size);
/* A block from this shim, with the arena it was allocated in; NULL is a
 * no-op. */
void fl_free(unsigned arena, void *p);

#endif /* FLEET_ALLOC_H */
