// How lazyblob CLI results are shown to scripts: JSON documents (exact integers, stable
// keys, and a "version" key in every document). Human-readable tables live with the verbs;
// `stat --prometheus` uses metrics/store_gauges.h, the daemon's own writer.
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

// Lower-case hex of a byte array.
std::string Hex(const std::uint8_t* data, std::size_t size);

// Prints `doc` indented on stdout followed by a newline; an object gets a "version" key
// (tools/tool_version.h) unless it has one.
void PrintJson(const nlohmann::json& doc);

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_OUTPUT_H_
