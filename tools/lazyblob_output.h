// How lazyblob CLI results are shown: JSON documents for scripts (exact integers, stable
// keys) and the Prometheus text exposition of the store gauges for node_exporter's
// textfile collector. Human-readable tables live with the verbs.
//
// Thread-safety: pure functions.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_OUTPUT_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_OUTPUT_H_

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "store/chunk_store.h"

namespace lazyblob::cli {

nlohmann::json ToJson(const ImportResult& r);
nlohmann::json ToJson(const BlobInfo& b);
nlohmann::json ToJson(const StoreStats& s);
nlohmann::json ToJson(const VerifyReport& r);
nlohmann::json ToJson(const GcResult& g);
nlohmann::json ToJson(const RebuildReport& r);
// {"error": {"code": "NotFound", "message": "..."}}
nlohmann::json ErrorJson(const Status& status);

// Prometheus text format 0.0.4: for each gauge a "# HELP", a "# TYPE ... gauge" and one
// sample line. Metric names: lazyblob_store_{blobs,chunks,logical_bytes,unique_bytes,
// stored_bytes,packs,pack_file_bytes,dedup_ratio,compression_ratio}.
std::string PrometheusText(const StoreStats& s);

// Lower-case hex of a byte array.
std::string Hex(const std::uint8_t* data, std::size_t size);

// Prints `doc` indented on stdout followed by a newline.
void PrintJson(const nlohmann::json& doc);

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_OUTPUT_H_
