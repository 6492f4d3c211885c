// kiln store gc: removes what nothing needs any more. Kept: every blob an
// image in the store's index refers to (manifests, configs, layers, build
// records, signatures and attestations, which are tagged too), and the layer
// cache's entries used in the last `keep_days` days, newest first up to the
// cache's size cap (least recently used go first), with their blobs. Removed:
// other blobs, stale cache entries, .debs and indexes not used for
// `keep_days`, base trees of images no longer in the store, temp files of
// writes interrupted more than a day ago, wherever they are in the store, and
// the scratch folders (kiln/tmp/*) of builds killed more than a day ago.
// Runs under the store's exclusive lock, so it waits for builds and pulls in
// progress (and fsck).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace kiln {

struct GcOptions {
  int keep_days = 14;
  uint64_t max_cache_bytes = 10'000'000'000;  // cached layer blobs
  bool dry_run = false;  // report what would go, remove nothing
  int64_t now = 0;       // Unix seconds; 0: the clock
};

struct GcReport {
  size_t images = 0;  // index entries kept as roots
  size_t blobs_kept = 0, blobs_removed = 0;
  uint64_t bytes_kept = 0, bytes_removed = 0;
  size_t cache_entries_kept = 0, cache_entries_removed = 0;
  uint64_t cache_bytes = 0;  // blobs only the cache keeps, after gc
  size_t files_removed = 0;  // .debs, indexes, base trees, temp files
  uint64_t file_bytes_removed = 0;
};

GcReport CollectGarbage(const Store& store, const GcOptions& options);

}  // namespace kiln
