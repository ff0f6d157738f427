/*
 * disk_stats.h — the disk tier's counters (kv/kv_disk.h) as the server shows
 * them: a "disk" member of GET /v1/cache and larder_disk_* lines of
 * GET /metrics. Nothing is written when the server has no disk tier.
 */
#ifndef LARDER_SERVER_DISK_STATS_H
#define LARDER_SERVER_DISK_STATS_H

#include "base/strbuf.h"

struct kv_disk;

/* Appends ,"disk":{...} (nothing when d is NULL). */
void disk_stats_json(strbuf *out, struct kv_disk *d);

/* Appends the Prometheus lines (nothing when d is NULL). */
void disk_stats_metrics(strbuf *out, struct kv_disk *d);

#endif
