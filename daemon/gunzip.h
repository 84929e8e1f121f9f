/* gunzip.h: streaming RFC 1952 gzip decoder (multi-member), ISA-L fast path, zlib fallback. */
#pragma once
#include <isa-l/igzip_lib.h>
#include <zlib.h>

#include "util.h"

/* The member header parser: pure, byte-driven, fuzzed on its own. */
struct gz_header {
        unsigned state;
        uint8_t flags;
        unsigned need;     /* bytes left in a fixed-size field */
        uint32_t crc;      /* crc32 over the header so far, for FHCRC */
        uint16_t hcrc;
        uint64_t len;      /* header bytes consumed */
        const char *why;   /* set on error */
};
void gz_header_init(struct gz_header *h);
/* Consumes up to n bytes; *used says how many. Returns 1 when the header is complete,
 * 0 when more input is needed, -EBADMSG when it is not a valid gzip header (h->why). */
int gz_header_feed(struct gz_header *h, const uint8_t *p, size_t n, size_t *used);

enum gunzip_engine { GUNZIP_ISAL, GUNZIP_ZLIB };


/* A member that began before this decoder did (gunzip_init_block) is checked by the caller,
 * who knows the output before it: its trailer and this decoder's share of its output. */
struct gz_partial_end {
        bool ended;
        uint32_t trailer_crc, trailer_isize;
        uint32_t crc;  /* crc32 of this decoder's share */
        uint64_t len;
};

struct gunzip {
        enum gunzip_engine engine;
        unsigned state;
        struct gz_header hdr;
        struct inflate_state isal;
        z_stream z;
        bool z_init;
        uint8_t trailer[8];
        unsigned trailer_n;
        uint32_t crc;          /* crc32 of this member's output (zlib path) */
        uint64_t member_out;   /* output bytes of this member */
        uint64_t member_start; /* input offset of this member's header */
        uint64_t in_off;       /* input bytes consumed in total */
        uint64_t out_total;
        unsigned members;
        bool partial;          /* the current member began before this decoder */
        bool lookback;         /* the error was a back-reference before the decoder's start */
        struct gz_partial_end first;
};

int gunzip_init(struct gunzip *g, enum gunzip_engine engine);
/* A decoder that starts inside a member at a byte-aligned block boundary, with no window
 * (ISA-L only): a back-reference before its start fails with g->lookback set. in_off is the
 * input offset of its first byte, for messages. */
int gunzip_init_block(struct gunzip *g, uint64_t in_off);
/* A decoder that starts inside a member at a block boundary at any bit, bit_off (counted from
 * the start of the input), with the 32 KiB (or fewer, at a member's start) of output before it as
 * its window (ISA-L only); *byte is the byte holding bit_off when it is not byte-aligned — the
 * input then goes on after that byte. */
int gunzip_init_bits(struct gunzip *g, uint64_t bit_off, const uint8_t *byte, const uint8_t *dict, size_t dict_len);
/* Where a decoder stands between two calls — the places a chunk of a parallel decode may start:
 * between members (or before the first: a gzip header comes next), */
bool gunzip_between_members(const struct gunzip *g);
/* or at a block boundary inside a member: its bit offset (all the input used up), else UINT64_MAX. */
uint64_t gunzip_block_bit(const struct gunzip *g);
void gunzip_done(struct gunzip *g);
/* Decodes from in[0..in_len) into out[0..out_len). in_used and out_used say how much was
 * consumed and produced; call again until the input is used up. Errors are BadCompression
 * naming the byte offset. */
int gunzip_step(struct gunzip *g, const uint8_t *in, size_t in_len, size_t *in_used,
                uint8_t *out, size_t out_len, size_t *out_used, struct hv_error *e);
/* The input has ended: fails unless it ended exactly after a complete member. */
int gunzip_finish(struct gunzip *g, struct hv_error *e);
