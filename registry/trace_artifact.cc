#include "registry/trace_artifact.h"

#include <nlohmann/json.hpp>
#include <span>
#include <vector>

#include "registry/remote_format.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

constexpr std::uint64_t kMaxRecordBytes = 64u << 20;
constexpr const char* kAnnBlobId = "io.lazyblob.blob.id";

nlohmann::json Descriptor(std::string_view media_type, std::string_view digest,
                          std::uint64_t size) {
  return {{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

// The record layer's digest in a trace manifest of `blob_id`.
Result<std::string> RecordDigest(std::string_view text, std::string_view blob_id) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Malformed("trace manifest is not JSON");
  if (!j.contains("artifactType") || j["artifactType"] != kTraceArtifactType) {
    return Malformed("trace manifest: not a lazyblob access record");
  }
  if (!j.contains("annotations") || !j["annotations"].is_object() ||
      !j["annotations"].contains(kAnnBlobId) || j["annotations"][kAnnBlobId] != blob_id) {
    return Malformed("trace manifest: made for another blob");
  }
  if (!j.contains("layers") || !j["layers"].is_array() || j["layers"].size() != 1 ||
      !j["layers"][0].is_object() || !j["layers"][0].contains("digest") ||
      !j["layers"][0]["digest"].is_string()) {
    return Malformed("trace manifest: not exactly one record layer");
  }
  std::string digest = j["layers"][0]["digest"].get<std::string>();
  if (!IsSha256Digest(digest)) return Malformed("trace manifest: bad layer digest");
  return digest;
}

}  // namespace

std::string TraceTagFor(std::string_view blob_id) {
  const auto digest = Sha256Of(std::as_bytes(std::span(blob_id.data(), blob_id.size())));
  return "lbt-" + HexOf(digest);
}

Result<AccessTrace> FetchTrace(RegistryClient& client, std::string_view blob_id) {
  LB_ASSIGN_OR_RETURN(FetchedManifest manifest, client.GetManifest(TraceTagFor(blob_id)));
  LB_ASSIGN_OR_RETURN(std::string digest, RecordDigest(manifest.bytes, blob_id));
  LB_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, client.GetBlob(digest, kMaxRecordBytes));
  Result<AccessTrace> trace = AccessTrace::Decode(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!trace.ok())
    return Corruption("access record of '" + std::string(blob_id) +
                      "' in the registry: " + trace.status().message());
  return trace;
}

Result<PublishedTrace> PublishTrace(RegistryClient& client, std::string_view blob_id,
                                    std::string_view subject_digest, const AccessTrace& record) {
  PublishedTrace out;
  out.tag = TraceTagFor(blob_id);
  LB_ASSIGN_OR_RETURN(FetchedManifest subject, client.GetManifest(subject_digest));
  AccessTrace merged = record;
  Result<AccessTrace> existing = FetchTrace(client, blob_id);
  if (existing.ok()) {
    merged = AccessTrace::Merge(*existing, record);
    out.merged = true;
  } else if (existing.status().code() != StatusCode::kNotFound) {
    // A damaged or foreign record under our tag is replaced, not merged.
    out.merged = false;
  }
  const std::string encoded = merged.Encode();
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(encoded.data()),
                                            encoded.size());
  const std::string digest = DigestOf(bytes);
  LB_ASSIGN_OR_RETURN(bool present, client.HasBlob(digest));
  if (!present) LB_RETURN_IF_ERROR(client.PutBlob(bytes, digest));
  const nlohmann::json doc = {
      {"schemaVersion", 2},
      {"mediaType", kManifestMediaType},
      {"artifactType", kTraceArtifactType},
      {"config", Descriptor(kEmptyConfigMediaType, kEmptyConfigDigest, kEmptyConfig.size())},
      {"layers", nlohmann::json::array({Descriptor(kTraceArtifactType, digest, encoded.size())})},
      {"subject", Descriptor(kManifestMediaType, subject.digest, subject.bytes.size())},
      {"annotations",
       {{kAnnBlobId, std::string(blob_id)},
        {"io.lazyblob.trace.chunks", std::to_string(merged.blocks.size())}}}};
  LB_ASSIGN_OR_RETURN(out.manifest_digest,
                      client.PutManifest(out.tag, kManifestMediaType, doc.dump()));
  out.chunks = merged.blocks.size();
  return out;
}

}  // namespace lazyblob
