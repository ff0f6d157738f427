/*
 * disk_stats.c — the disk tier's counters for /v1/cache and /metrics (see
 * disk_stats.h).
 */
#include "server/disk_stats.h"

#include "kv/kv_disk.h"

void disk_stats_json(strbuf *out, struct kv_disk *d) {
    if (!d) return;
    kv_disk_stats s = kv_disk_get_stats(d);
    strbuf_printf(out, ",\"disk\":{\"files\":%lld,\"bytes\":%lld,\"budget_bytes\":%lld,\"queued_pages\":%lld,"
                       "\"written_pages\":%lld,\"write_errors\":%lld,\"dropped_pages\":%lld,\"evicted_files\":%lld,"
                       "\"removed_bad_files\":%lld,\"restored_pages\":%lld,\"restores\":%lld,\"restore_skipped\":%lld,"
                       "\"read_s_per_page\":%.6f}",
                  (long long)s.files, (long long)s.bytes, (long long)s.budget_bytes, (long long)s.queued_pages,
                  (long long)s.written_pages, (long long)s.write_errors, (long long)s.dropped_pages,
                  (long long)s.evicted_files, (long long)s.removed_bad_files, (long long)s.restored_pages,
                  (long long)s.restores, (long long)s.restore_skipped, s.read_s_per_page);
}

static void metric(strbuf *out, const char *name, const char *type, const char *help, long long v) {
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

void disk_stats_metrics(strbuf *out, struct kv_disk *d) {
    if (!d) return;
    kv_disk_stats s = kv_disk_get_stats(d);
    metric(out, "larder_disk_cache_bytes", "gauge", "Bytes of KV page files in --cache-dir.", (long long)s.bytes);
    metric(out, "larder_disk_cache_budget_bytes", "gauge", "--cache-disk-bytes.", (long long)s.budget_bytes);
    metric(out, "larder_disk_cache_files", "gauge", "KV page files in --cache-dir.", (long long)s.files);
    metric(out, "larder_disk_cache_written_pages_total", "counter", "KV pages written to disk.", (long long)s.written_pages);
    metric(out, "larder_disk_cache_write_errors_total", "counter", "Failed page writes (ENOSPC, EIO); serving went on from memory.",
           (long long)s.write_errors);
    metric(out, "larder_disk_cache_restored_pages_total", "counter", "KV pages read back from disk into the cache.",
           (long long)s.restored_pages);
    metric(out, "larder_disk_cache_removed_bad_files_total", "counter",
           "Truncated, corrupt or foreign page files removed (never served).", (long long)s.removed_bad_files);
    metric(out, "larder_disk_cache_evicted_files_total", "counter", "Page files removed for the disk budget.",
           (long long)s.evicted_files);
}
