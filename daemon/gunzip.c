/* gunzip.c: streaming gzip decoding. We parse member headers and trailers ourselves (so every
 * error can name its byte offset and multi-member files are handled the same way on both
 * engines) and hand only the raw deflate data to ISA-L or zlib. */
#include "gunzip.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <string.h>

enum { H_ID1, H_ID2, H_CM, H_FLG, H_FIXED, H_XLEN, H_EXTRA, H_NAME, H_COMMENT, H_HCRC, H_DONE };
enum { FTEXT = 1, FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16 };

void gz_header_init(struct gz_header *h) {
        memset(h, 0, sizeof(*h));
        h->state = H_ID1;
}

static void next_field(struct gz_header *h) {
        if (h->state < H_XLEN && (h->flags & FEXTRA)) {
                h->state = H_XLEN;
                h->need = 2;
        } else if (h->state < H_NAME && (h->flags & FNAME))
                h->state = H_NAME;
        else if (h->state < H_COMMENT && (h->flags & FCOMMENT))
                h->state = H_COMMENT;
        else if (h->state < H_HCRC && (h->flags & FHCRC)) {
                h->state = H_HCRC;
                h->need = 2;
        } else
                h->state = H_DONE;
}

int gz_header_feed(struct gz_header *h, const uint8_t *p, size_t n, size_t *used) {
        size_t i = 0;
        int r = 0;
        while (i < n && h->state != H_DONE) {
                uint8_t b = p[i];
                if (h->state != H_HCRC)
                        h->crc = (uint32_t)crc32(h->crc, &b, 1);
                i++;
                switch (h->state) {
                case H_ID1:
                        if (b != 0x1f) {
                                h->why = "not gzip data (bad magic)";
                                r = -EBADMSG;
                                goto out;
                        }
                        h->state = H_ID2;
                        break;
                case H_ID2:
                        if (b != 0x8b) {
                                h->why = "not gzip data (bad magic)";
                                r = -EBADMSG;
                                goto out;
                        }
                        h->state = H_CM;
                        break;
                case H_CM:
                        if (b != 8) {
                                h->why = "unknown compression method (not deflate)";
                                r = -EBADMSG;
                                goto out;
                        }
                        h->state = H_FLG;
                        break;
                case H_FLG:
                        if (b & 0xe0) {
                                h->why = "reserved header flag bits set";
                                r = -EBADMSG;
                                goto out;
                        }
                        h->flags = b;
                        h->state = H_FIXED;
                        h->need = 6; /* MTIME(4) XFL OS */
                        break;
                case H_FIXED:
                        if (--h->need == 0)
                                next_field(h);
                        break;
                case H_XLEN:
                        if (h->need == 2) {
                                h->hcrc = b;
                                h->need = 1;
                        } else {
                                h->need = (unsigned)h->hcrc | ((unsigned)b << 8);
                                h->hcrc = 0;
                                h->state = H_EXTRA;
                                if (h->need == 0)
                                        next_field(h);
                        }
                        break;
                case H_EXTRA:
                        if (--h->need == 0)
                                next_field(h);
                        break;
                case H_NAME:
                case H_COMMENT:
                        if (b == 0)
                                next_field(h);
                        break;
                case H_HCRC:
                        if (h->need == 2) {
                                h->hcrc = b;
                                h->need = 1;
                        } else {
                                uint16_t want = (uint16_t)(h->hcrc | (b << 8));
                                if (want != (uint16_t)(h->crc & 0xffff)) {
                                        h->why = "header CRC (FHCRC) mismatch";
                                        r = -EBADMSG;
                                        goto out;
                                }
                                h->state = H_DONE;
                        }
                        break;
                }
        }
        r = h->state == H_DONE ? 1 : 0;
out:
        h->len += i;
        *used = i;
        return r;
}

enum { G_HEADER, G_DATA, G_TRAILER, G_BETWEEN };

static int engine_reset(struct gunzip *g) {
        if (g->engine == GUNZIP_ISAL) {
                /* raw deflate: we parse the header and check the trailer ourselves (the CRC of a
                 * member a parallel decode split is put together from its pieces) */
                isal_inflate_init(&g->isal);
                g->isal.crc_flag = ISAL_DEFLATE;
                return 0;
        }
        if (!g->z_init) {
                if (inflateInit2(&g->z, -15) != Z_OK)
                        return -ENOMEM;
                g->z_init = true;
                return 0;
        }
        return inflateReset(&g->z) == Z_OK ? 0 : -EIO;
}

int gunzip_init(struct gunzip *g, enum gunzip_engine engine) {
        memset(g, 0, sizeof(*g));
        g->engine = engine;
        g->state = G_HEADER;
        gz_header_init(&g->hdr);
        return engine_reset(g);
}

int gunzip_init_block(struct gunzip *g, uint64_t in_off) {
        int r = gunzip_init(g, GUNZIP_ISAL);
        g->state = G_DATA;
        g->partial = true;
        g->in_off = g->member_start = in_off;
        return r;
}

int gunzip_init_bits(struct gunzip *g, uint64_t bit_off, const uint8_t *byte, const uint8_t *dict, size_t dict_len) {
        int r = gunzip_init_block(g, bit_off / 8);
        if (r < 0)
                return r;
        if (dict_len && isal_inflate_set_dict(&g->isal, (uint8_t *)dict, (uint32_t)dict_len) != ISAL_DECOMP_OK)
                return -EINVAL;
        if (bit_off % 8) {
                unsigned k = (unsigned)(bit_off % 8);
                g->isal.read_in = (uint64_t)(*byte >> k);
                g->isal.read_in_length = (int32_t)(8 - k);
                g->in_off++;
        }
        return 0;
}

uint64_t gunzip_block_bit(const struct gunzip *g) {
        /* ISA-L goes on to the next block's header as far as the input lets it: the bits it holds
         * and the header bytes it saved are not used yet */
        const struct inflate_state *s = &g->isal;
        if (g->engine != GUNZIP_ISAL || g->state != G_DATA ||
            (s->block_state != ISAL_BLOCK_NEW_HDR && s->block_state != ISAL_BLOCK_HDR) ||
            s->tmp_out_valid != s->tmp_out_processed || s->avail_in != 0)
                return UINT64_MAX;
        return g->in_off * 8 - (uint64_t)s->read_in_length - 8 * (uint64_t)s->tmp_in_size;
}

bool gunzip_between_members(const struct gunzip *g) {
        return g->state == G_BETWEEN || (g->state == G_HEADER && g->hdr.len == 0);
}

void gunzip_done(struct gunzip *g) {
        if (g->z_init)
                inflateEnd(&g->z);
        g->z_init = false;
}

static int bad(struct gunzip *g, struct hv_error *e, uint64_t off, const char *what) {
        return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "gzip member %u (starting at byte %llu): %s at byte offset %llu",
                       g->members + 1, (unsigned long long)g->member_start, what, (unsigned long long)off);
}

/* Runs the engine on deflate data. Returns 1 at the end of the member's deflate stream (the
 * trailer follows; g->trailer holds the bytes of it the engine read ahead). */
static int inflate_data(struct gunzip *g, const uint8_t *in, size_t in_len, size_t *in_used,
                        uint8_t *out, size_t out_len, size_t *out_used, struct hv_error *e) {
        if (g->engine == GUNZIP_ISAL) {
                g->isal.next_in = (uint8_t *)in;
                g->isal.avail_in = (uint32_t)in_len;
                g->isal.next_out = out;
                g->isal.avail_out = (uint32_t)out_len;
                int r = isal_inflate(&g->isal);
                *in_used = in_len - g->isal.avail_in;
                *out_used = out_len - g->isal.avail_out;
                g->crc = crc32_gzip_refl(g->crc, out, *out_used);
                g->member_out += *out_used;
                if (r == ISAL_INVALID_LOOKBACK && g->partial)
                        g->lookback = true;
                if (r < 0)
                        return bad(g, e, g->in_off + *in_used, "corrupt deflate data");
                if (g->isal.block_state != ISAL_BLOCK_FINISH)
                        return 0;
                /* ISA-L reads ahead: the whole bytes left in its bit buffer (after the final
                 * block's padding) are the first bytes of the trailer */
                unsigned pad = (unsigned)g->isal.read_in_length % 8, n = (unsigned)g->isal.read_in_length / 8;
                uint64_t bits = g->isal.read_in >> pad;
                g->trailer_n = 0;
                for (unsigned i = 0; i < n && i < 8; i++)
                        g->trailer[g->trailer_n++] = (uint8_t)(bits >> (8 * i));
                g->isal.read_in_length = 0;
                return 1;
        }
        g->z.next_in = (Bytef *)in;
        g->z.avail_in = (uInt)in_len;
        g->z.next_out = out;
        g->z.avail_out = (uInt)out_len;
        int r = inflate(&g->z, Z_NO_FLUSH);
        *in_used = in_len - g->z.avail_in;
        *out_used = out_len - g->z.avail_out;
        g->crc = (uint32_t)crc32(g->crc, out, (uInt)*out_used);
        g->member_out += *out_used;
        if (r == Z_STREAM_END) {
                g->trailer_n = 0;
                return 1;
        }
        if (r == Z_OK || r == Z_BUF_ERROR)
                return 0;
        if (r == Z_MEM_ERROR)
                return hv_fail(e, HV_E_ERRNO, ENOMEM, "out of memory inflating");
        return bad(g, e, g->in_off + *in_used, g->z.msg ? g->z.msg : "corrupt deflate data");
}

int gunzip_step(struct gunzip *g, const uint8_t *in, size_t in_len, size_t *in_used,
                uint8_t *out, size_t out_len, size_t *out_used, struct hv_error *e) {
        size_t ip = 0, op = 0;
        int r = 0;
        /* Engines take 32-bit lengths. */
        if (in_len > (1u << 30))
                in_len = 1u << 30;
        if (out_len > (1u << 30))
                out_len = 1u << 30;
        /* In G_DATA the engine is called even without input: it may still hold output; a
         * trailer the engine read ahead whole is checked without more input too. */
        while (op < out_len && (ip < in_len || g->state == G_DATA || (g->state == G_TRAILER && g->trailer_n == 8))) {
                size_t iu = 0, ou = 0;
                switch (g->state) {
                case G_BETWEEN:
                        /* Another member must start here; anything else is trailing garbage. */
                        if (in[ip] != 0x1f) {
                                r = hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG,
                                            "trailing garbage after gzip member %u at byte offset %llu",
                                            g->members, (unsigned long long)(g->in_off));
                                goto out;
                        }
                        g->state = G_HEADER;
                        g->member_start = g->in_off;
                        gz_header_init(&g->hdr);
                        r = engine_reset(g);
                        if (r < 0)
                                goto out;
                        continue;
                case G_HEADER:
                        r = gz_header_feed(&g->hdr, in + ip, in_len - ip, &iu);
                        if (r < 0) {
                                r = bad(g, e, g->in_off + iu - 1, g->hdr.why);
                                goto out;
                        }
                        if (r == 1) {
                                g->state = G_DATA;
                                g->crc = 0;
                                g->member_out = 0;
                        }
                        r = 0;
                        break;
                case G_DATA:
                        r = inflate_data(g, in + ip, in_len - ip, &iu, out + op, out_len - op, &ou, e);
                        if (r < 0)
                                goto out;
                        if (r == 1)
                                g->state = G_TRAILER;
                        r = 0;
                        break;
                case G_TRAILER:
                        while (g->trailer_n < 8 && ip + iu < in_len)
                                g->trailer[g->trailer_n++] = in[ip + iu++];
                        if (g->trailer_n == 8) {
                                const uint8_t *t = g->trailer;
                                uint32_t crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
                                uint32_t isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 | (uint32_t)t[7] << 24;
                                char what[128];
                                if (g->partial) { /* the caller checks it */
                                        g->first = (struct gz_partial_end){ .ended = true, .trailer_crc = crc, .trailer_isize = isize,
                                                                            .crc = g->crc, .len = g->member_out };
                                        g->partial = false;
                                } else if (crc != g->crc) {
                                        snprintf(what, sizeof(what), "CRC32 mismatch (trailer says %08x, data gives %08x)", crc, g->crc);
                                        r = bad(g, e, g->in_off + iu - 8, what);
                                        goto out;
                                } else if (isize != (uint32_t)g->member_out) {
                                        snprintf(what, sizeof(what), "length mismatch (trailer says %u mod 2^32, data gives %llu)",
                                                 isize, (unsigned long long)g->member_out);
                                        r = bad(g, e, g->in_off + iu - 4, what);
                                        goto out;
                                }
                                g->members++;
                                g->state = G_BETWEEN;
                        }
                        break;
                }
                ip += iu;
                op += ou;
                g->in_off += iu;
                g->out_total += ou;
                if (iu == 0 && ou == 0 && g->state == G_DATA)
                        break; /* engine needs more output room or more input */
        }
        /* Output room may be exhausted while ISA-L still holds buffered output or input remains;
         * the caller calls again. A member that ends exactly at the end of out is fine too. */
out:
        *in_used = ip;
        *out_used = op;
        return r;
}

int gunzip_finish(struct gunzip *g, struct hv_error *e) {
        if (g->state == G_BETWEEN)
                return 0;
        if (g->members == 0 && g->state == G_HEADER && g->hdr.len == 0)
                return hv_fail(e, HV_E_BAD_COMPRESSION, EBADMSG, "empty input: no gzip data at all");
        return bad(g, e, g->in_off, g->state == G_HEADER ? "unexpected end of input (truncated header)" :
                                    g->state == G_DATA ? "unexpected end of input (truncated deflate data or trailer)" :
                                                         "unexpected end of input (truncated trailer)");
}
