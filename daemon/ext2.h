/* ext2.h: what every user of libext2fs in the daemon shares: its error texts registered once,
 * and one lock — libext2fs is not documented as thread-safe, so the scratch formatter and the
 * contents scan never run it at the same time (both are short: lazy inode tables, capped reads). */
#pragma once

void hv_ext2_lock(void);
void hv_ext2_unlock(void);
