/* deflate_spec.h: decoding a piece of one deflate stream without what came before it — the
 * speculative half of parallel decoding for a gzip member that has no flush points (plain
 * `gzip -6`). A chunk starts at a dynamic-Huffman block header found by trial (ds_find_block);
 * it is decoded before the 32 KiB of output ahead of it (the window) are known: a back-reference
 * into that window gives a marker (DS_MARKER + the byte's place in the window) rather than a
 * byte, resolved once the chunk before has been decoded. Once the last 32 KiB of a chunk's output
 * hold no marker, the rest of it depends on nothing unknown: the caller hands over to the fast
 * decoder there (DS_CLEAN). Pure: memory in, memory out; strict (only complete Huffman codes), so
 * what it accepts the sequential decoder accepts too — a refusal only means "decode in order". */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_WIN 32768u
#define DS_MARKER 256u /* symbols >= this are markers: DS_MARKER + w, w the place in the window */

enum ds_status {
        DS_MORE = 0,   /* the output buffer is full: call again with another */
        DS_CLEAN = 1,  /* at a block boundary with DS_WIN clean bytes behind: ds_window_known, ds_bit */
        DS_END = 2,    /* at the end bit, at a block boundary */
        DS_YIELD = 3,  /* at a block boundary after the yield flag was set (the window is known) */
        DS_EDATA = -1, /* not a valid deflate stream from here (or a code this decoder refuses) */
        DS_EINPUT = -2, /* the input ended inside a block, or the end bit was passed */
        DS_EFINAL = -3, /* the last block of the stream comes before the output was clean */
};

/* Whether a block that is not the last one starts at bit `bit` of p[0..n): its header (for
 * dynamic Huffman codes: counts in range, all three codes complete, end-of-block coded), its
 * symbols up to its end-of-block (or its stored bytes), and the next block's header must all check
 * out. Pure. */
bool ds_block_at(const uint8_t *p, size_t n, uint64_t bit);
/* The first bit offset in [from, to) where a block starts that ds_block_at accepts and that is
 * either a dynamic-Huffman block or the one right after a stored block (byte-aligned: where
 * incompressible data was stored), or UINT64_MAX. */
uint64_t ds_find_block(const uint8_t *p, size_t n, uint64_t from, uint64_t to);

struct ds;
struct ds *ds_new(void);
void ds_free(struct ds *d);
/* Starts decoding p[0..n) at bit `bit` (a block header) up to bit `end` at most; once *yield
 * (may be NULL) is set, ds_run stops at the next block boundary with DS_YIELD. */
void ds_start(struct ds *d, const uint8_t *p, size_t n, uint64_t bit, uint64_t end, const atomic_bool *yield);
/* Decodes on into out[0..cap) (cap >= 258 symbols); *made says how many symbols came. */
int ds_run(struct ds *d, uint16_t *out, size_t cap, size_t *made);
/* Where the decoder stands (a bit offset into p). */
uint64_t ds_bit(const struct ds *d);
/* After DS_YIELD, with the window now known (as for ds_resolve): the last bytes of output, the
 * window's and the chunk's, into win[0..*len) (*len = DS_WIN or fewer at a stream's start).
 * -1 when a marker reaches before the stream's start. After DS_CLEAN nothing of the window is
 * needed: known NULL and avail 0 give the last DS_WIN bytes of the chunk's output. */
int ds_window_known(const struct ds *d, const uint8_t *known, uint64_t avail, uint8_t *win, size_t *len);
/* Symbols put out since ds_start. */
uint64_t ds_total(const struct ds *d);

/* Replaces the markers in sym[0..n) by the window's bytes into out[0..n) (out may be sym's own
 * memory: byte j is written after symbol j was read). win[w] is the byte DS_WIN - w places before
 * the chunk's start; only the last `avail` of them are of the same stream: a marker deeper than
 * that fails (-1; the output up to it is in out, *done says how far). 0 when all were resolved. */
int ds_resolve(const uint16_t *sym, size_t n, const uint8_t *win, uint64_t avail, uint8_t *out, size_t *done);
