// Push, pull, list and the failure paths against REAL registries (docker-registry, CNCF
// distribution 2.8) started by registry_env.sh, which exports their addresses (LB_REG_*).
// Each test uses its own repository.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include "registry/blob_fetcher.h"
#include "registry/puller.h"
#include "registry/pusher.h"
#include "registry/registry_client.h"
#include "registry/trace_artifact.h"
#include "store/hashing.h"
#include "tests/store/store_test_util.h"

namespace lazyblob {
namespace {

using testing::RandomBytes;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Half compressible, half random: both codecs occur.
std::vector<std::byte> MixedBlob(std::size_t n, std::uint64_t seed) {
  auto text = RandomBytes(n / 2, seed, true);
  auto random = RandomBytes(n - n / 2, seed + 100);
  text.insert(text.end(), random.begin(), random.end());
  return text;
}

std::set<ChunkKey> Keys(const BlobMap& map) {
  std::set<ChunkKey> s;
  for (const ChunkExtent& e : map.extents) s.insert(e.key);
  return s;
}

class RegistryLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("LB_REG_PLAIN").empty()) GTEST_SKIP() << "run through tests/registry/registry_env.sh";
    repo_ = "t/" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (char& c : repo_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    src_ = OpenStore(tmp_ / "src");
    v1_ = MixedBlob(3 << 20, 1);
    v2_ = v1_;
    auto fresh = RandomBytes(300000, 9);
    std::copy(fresh.begin(), fresh.end(), v2_.begin() + (1 << 20));
    WriteFile(tmp_ / "v1", v1_);
    WriteFile(tmp_ / "v2", v2_);
    ImportOptions o;
    o.id = "app:v1";  // ':' needs escaping in the tag
    ASSERT_TRUE(src_->ImportBlob(tmp_ / "v1", o).ok());
    o.id = "app:v2";
    ASSERT_TRUE(src_->ImportBlob(tmp_ / "v2", o).ok());
  }

  std::unique_ptr<ChunkStore> OpenStore(const std::string& dir) {
    auto s = ChunkStore::Open(testing::WriterOptions(dir));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // A client of `host` ("http://" is added unless `https`), quick to give up.
  std::unique_ptr<RegistryClient> Client(const std::string& host, bool push = true,
                                         std::optional<Credentials> creds = std::nullopt,
                                         bool https = false, const std::string& ca = "") {
    RegistryOptions o;
    auto ref = RegistryRef::Parse((https ? "" : "http://") + host + "/" + repo_);
    EXPECT_TRUE(ref.ok()) << ref.status().ToString();
    o.ref = *ref;
    o.push = push;
    o.credentials = std::move(creds);
    o.http.ca_file = ca;
    o.http.connect_timeout = std::chrono::milliseconds(2000);
    o.http.request_timeout = std::chrono::milliseconds(5000);
    o.http.max_attempts = 3;
    o.http.backoff_initial = std::chrono::milliseconds(20);
    auto c = RegistryClient::Open(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  PushResult Push(RegistryClient& c, std::vector<std::string> ids, std::uint64_t bundle = 1 << 20) {
    PushOptions o;
    o.bundle_target_bytes = bundle;
    auto r = PushBlobs(c, *src_, ids, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PushResult{};
  }

  // Sum of stored payload bytes of `keys` in the source store.
  std::uint64_t StoredBytes(const std::set<ChunkKey>& keys) {
    std::uint64_t n = 0;
    for (const ChunkKey& k : keys) n += src_->ReadStoredChunk(k).value().payload.size();
    return n;
  }

  void ExpectExport(ChunkStore& store, const std::string& id, const std::vector<std::byte>& want) {
    const std::string out = tmp_ / ("out-" + std::to_string(++exports_));
    ASSERT_OK(store.ExportToPath(id, out));
    EXPECT_TRUE(ReadFile(out) == want) << id << " differs";
  }

  void ExpectEmpty(ChunkStore& store) {
    ASSERT_OK_AND_ASSIGN(StoreStats s, store.Stats());
    EXPECT_EQ(s.blobs, 0u);
    EXPECT_EQ(s.chunks, 0u);
    EXPECT_EQ(s.stored_bytes, 0u);
  }

  TempDir tmp_;
  std::string repo_;
  std::unique_ptr<ChunkStore> src_;
  std::vector<std::byte> v1_, v2_;
  int exports_ = 0;
};

TEST_F(RegistryLive, PushThenPullIsByteIdentical) {
  auto c = Client(Env("LB_REG_PLAIN"));
  PushResult pushed = Push(*c, {"app:v1", "app:v2"});
  ASSERT_EQ(pushed.blobs.size(), 2u);
  EXPECT_EQ(pushed.blobs[0].tag, "lb-app_3av1");
  auto dst = OpenStore(tmp_ / "dst");
  for (const char* id : {"app:v1", "app:v2"}) {
    ASSERT_OK_AND_ASSIGN(PullResult r, PullBlob(*c, *dst, id, PullOptions{}));
    EXPECT_FALSE(r.already_present);
    EXPECT_EQ(r.range_ignored, 0u);
  }
  ExpectExport(*dst, "app:v1", v1_);
  ExpectExport(*dst, "app:v2", v2_);
  ASSERT_OK_AND_ASSIGN(VerifyReport v, dst->Verify());
  EXPECT_TRUE(v.clean());
  // Pulling again fetches nothing.
  ASSERT_OK_AND_ASSIGN(PullResult again, PullBlob(*c, *dst, "app:v1", PullOptions{}));
  EXPECT_TRUE(again.already_present);
  EXPECT_EQ(again.requests, 0u);

  ASSERT_OK_AND_ASSIGN(auto listed, ListRemoteBlobs(*c));
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].id, "app:v1");
  EXPECT_EQ(listed[0].size, v1_.size());
  EXPECT_EQ(listed[1].sha256, HexOf(Sha256Of(v2_)));
  EXPECT_EQ(listed[1].manifest_digest, pushed.blobs[1].manifest_digest);
}

TEST_F(RegistryLive, PushOfV2UploadsOnlyTheChunksV1Lacks) {
  auto c = Client(Env("LB_REG_PLAIN"));
  const std::set<ChunkKey> k1 = Keys(*src_->OpenBlob("app:v1").value().map);
  const std::set<ChunkKey> k2 = Keys(*src_->OpenBlob("app:v2").value().map);
  std::set<ChunkKey> only2, shared;
  for (const ChunkKey& k : k2) (k1.count(k) ? shared : only2).insert(k);
  ASSERT_FALSE(only2.empty());
  ASSERT_FALSE(shared.empty());

  PushResult first = Push(*c, {"app:v1"});
  ASSERT_EQ(first.blobs.size(), 1u);
  EXPECT_EQ(first.blobs[0].uploaded_chunks, k1.size());
  EXPECT_EQ(first.blobs[0].uploaded_bytes, StoredBytes(k1));
  EXPECT_EQ(first.blobs[0].skipped_chunks, 0u);

  PushResult second = Push(*c, {"app:v2"});
  ASSERT_EQ(second.blobs.size(), 1u);
  const PushBlobResult& r = second.blobs[0];
  EXPECT_EQ(r.uploaded_chunks, only2.size());
  EXPECT_EQ(r.uploaded_bytes, StoredBytes(only2));
  EXPECT_EQ(r.skipped_chunks, shared.size());
  EXPECT_EQ(r.skipped_bytes, StoredBytes(shared));
  EXPECT_EQ(second.uploaded_bytes, r.uploaded_bytes);

  // Both again: nothing to send.
  PushResult third = Push(*c, {"app:v1", "app:v2"});
  for (const PushBlobResult& b : third.blobs) {
    EXPECT_TRUE(b.already_present);
    EXPECT_EQ(b.uploaded_bytes, 0u);
  }

  // A node holding v1 fetches for v2 exactly the chunks v1 lacks.
  auto dst = OpenStore(tmp_ / "dst");
  ASSERT_OK(PullBlob(*c, *dst, "app:v1", PullOptions{}).status());
  ASSERT_OK_AND_ASSIGN(PullResult p2, PullBlob(*c, *dst, "app:v2", PullOptions{}));
  EXPECT_EQ(p2.fetched_chunks, only2.size());
  ExpectExport(*dst, "app:v2", v2_);
}

TEST_F(RegistryLive, OtherContentUnderAPublishedIdIsRefused) {
  auto c = Client(Env("LB_REG_PLAIN"));
  Push(*c, {"app:v1"});
  TempDir other;
  auto store2 = OpenStore(other / "s");
  WriteFile(other / "f", v2_);
  ImportOptions o;
  o.id = "app:v1";
  ASSERT_OK(store2->ImportBlob(other / "f", o).status());
  EXPECT_EQ(PushBlobs(*c, *store2, {"app:v1"}, PushOptions{}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(PushBlobs(*c, *store2, {"nope"}, PushOptions{}).status().code(), StatusCode::kNotFound);
}

TEST_F(RegistryLive, ServerIgnoringRangeIsHandled) {
  Push(*Client(Env("LB_REG_PLAIN")), {"app:v1"});
  auto via_proxy = Client(Env("LB_PROXY_NORANGE"));
  auto dst = OpenStore(tmp_ / "dst");
  PullOptions o;
  o.coalesce.max_request_bytes = 256 << 10;  // many requests per bundle
  ASSERT_OK_AND_ASSIGN(PullResult r, PullBlob(*via_proxy, *dst, "app:v1", o));
  EXPECT_GT(r.requests, 1u);
  EXPECT_EQ(r.range_ignored, r.requests);
  ExpectExport(*dst, "app:v1", v1_);
}

TEST_F(RegistryLive, AByteFlippedInTransitIsRefusedAndNothingIsStored) {
  Push(*Client(Env("LB_REG_PLAIN")), {"app:v1"});
  auto via_proxy = Client(Env("LB_PROXY_FLIP"));
  auto dst = OpenStore(tmp_ / "dst");
  auto r = PullBlob(*via_proxy, *dst, "app:v1", PullOptions{});
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().message().find("refused"), std::string::npos) << r.status().message();
  ExpectEmpty(*dst);
  // The fetcher alone: the flipped chunk is never handed on.
  BlobFetcher fetcher(via_proxy.get());
  ASSERT_OK_AND_ASSIGN(auto blob, fetcher.Resolve("app:v1"));
  const std::vector<std::size_t> one = {0};
  auto plan = BlobFetcher::Plan(blob->map, one, CoalesceOptions{});
  int handed = 0;
  Status s = fetcher.Fetch(*blob, plan[0], [&](std::size_t, StoredChunk, auto) {
    ++handed;
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_EQ(handed, 0);
}

TEST_F(RegistryLive, MissingBlobsAndMalformedManifestsAreClearErrors) {
  auto c = Client(Env("LB_REG_PLAIN"));
  auto dst = OpenStore(tmp_ / "dst");
  auto unknown = PullBlob(*c, *dst, "never-pushed", PullOptions{});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("never-pushed"), std::string::npos);

  // A manifest under a blob tag that is not a lazyblob artifact.
  const std::string junk =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":")" +
      std::string(kEmptyConfigDigest) + R"(","size":2},"layers":[]})";
  ASSERT_OK(c->PutBlob(std::span(reinterpret_cast<const std::uint8_t*>(kEmptyConfig.data()), 2),
                       kEmptyConfigDigest));
  ASSERT_OK(c->PutManifest(TagForBlobId("junk"), kManifestMediaType, junk).status());
  auto malformed = PullBlob(*c, *dst, "junk", PullOptions{});
  EXPECT_EQ(malformed.status().code(), StatusCode::kMalformed) << malformed.status().ToString();

  // A published blob whose bundle was deleted from the registry: 404 on the Range GET.
  PushResult pushed = Push(*c, {"app:v1"});
  BlobFetcher fetcher(c.get());
  ASSERT_OK_AND_ASSIGN(auto blob, fetcher.Resolve("app:v1"));
  const std::string digest = blob->map.bundles.back().digest;
  HttpClientOptions ho;
  auto http = HttpClient::Create(ho).value();
  HttpRequest del;
  del.method = "DELETE";
  del.url = "http://" + Env("LB_REG_PLAIN") + "/v2/" + repo_ + "/blobs/" + digest;
  ASSERT_OK_AND_ASSIGN(HttpResponse deleted, http->Send(del));
  ASSERT_EQ(deleted.status, 202);
  auto gone = PullBlob(*c, *dst, "app:v1", PullOptions{});
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("404"), std::string::npos);
  ExpectEmpty(*dst);
}

TEST_F(RegistryLive, BasicAuthFromTheAuthFileAndWrongCredentials) {
  const std::string host = Env("LB_REG_AUTH");
  ASSERT_OK_AND_ASSIGN(auto good, LoadDockerCredentials(Env("LB_REG_AUTH_FILE"), host));
  ASSERT_OK_AND_ASSIGN(auto bad, LoadDockerCredentials(Env("LB_REG_BADAUTH_FILE"), host));
  ASSERT_TRUE(good && bad);
  auto c = Client(host, true, good);
  Push(*c, {"app:v1"});
  auto dst = OpenStore(tmp_ / "dst");
  ASSERT_OK(PullBlob(*c, *dst, "app:v1", PullOptions{}).status());
  ExpectExport(*dst, "app:v1", v1_);

  for (auto creds : {bad, std::optional<Credentials>()}) {
    auto denied = Client(host, false, creds);
    auto dst2 = OpenStore(tmp_ / ("dst-denied" + std::to_string(creds.has_value())));
    auto r = PullBlob(*denied, *dst2, "app:v1", PullOptions{});
    EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
    EXPECT_EQ(r.status().message().find(bad->password), std::string::npos);
    EXPECT_EQ(r.status().message().find(good->password), std::string::npos);
    ExpectEmpty(*dst2);
  }
}

TEST_F(RegistryLive, BearerTokenFlow) {
  const std::string host = Env("LB_PROXY_BEARER");
  ASSERT_OK_AND_ASSIGN(auto creds, LoadDockerCredentials(Env("LB_REG_AUTH_FILE"), host));
  ASSERT_TRUE(creds);
  auto c = Client(host, true, creds);
  Push(*c, {"app:v1"});
  auto dst = OpenStore(tmp_ / "dst");
  ASSERT_OK(PullBlob(*c, *dst, "app:v1", PullOptions{}).status());
  ExpectExport(*dst, "app:v1", v1_);
  auto anonymous = Client(host, false);
  EXPECT_EQ(ListRemoteBlobs(*anonymous).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(RegistryLive, TlsIsVerifiedAgainstTheGivenCa) {
  const std::string host = Env("LB_REG_TLS");
  auto c = Client(host, true, std::nullopt, /*https=*/true, Env("LB_REG_CA"));
  Push(*c, {"app:v1"});
  auto dst = OpenStore(tmp_ / "dst");
  ASSERT_OK(PullBlob(*c, *dst, "app:v1", PullOptions{}).status());
  ExpectExport(*dst, "app:v1", v1_);
  auto untrusted = Client(host, false, std::nullopt, /*https=*/true);
  auto r = ListRemoteBlobs(*untrusted);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("--ca-file"), std::string::npos);
}

TEST_F(RegistryLive, RegistryDownIsABoundedIoError) {
  for (const char* env : {"LB_REG_DOWN", "LB_PROXY_HANG"}) {
    RegistryOptions o;
    o.ref = RegistryRef::Parse("http://" + Env(env) + "/" + repo_).value();
    o.http.connect_timeout = std::chrono::milliseconds(500);
    o.http.request_timeout = std::chrono::milliseconds(500);
    o.http.max_attempts = 3;
    o.http.backoff_initial = std::chrono::milliseconds(10);
    auto c = RegistryClient::Open(o).value();
    auto dst = OpenStore(tmp_ / (std::string("dst-") + env));
    auto r = PullBlob(*c, *dst, "app:v1", PullOptions{});
    EXPECT_EQ(r.status().code(), StatusCode::kIoError) << env << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find("3 attempts"), std::string::npos) << r.status().message();
    EXPECT_EQ(c->stats().requests, 3u) << env;
    ExpectEmpty(*dst);
  }
}

TEST_F(RegistryLive, FiveHundredsAreRetriedWithBackoff) {
  Push(*Client(Env("LB_REG_PLAIN")), {"app:v1"});
  auto flaky = Client(Env("LB_PROXY_FLAKY"), false);  // every other answer is a 503
  auto dst = OpenStore(tmp_ / "dst");
  ASSERT_OK_AND_ASSIGN(PullResult r, PullBlob(*flaky, *dst, "app:v1", PullOptions{}));
  EXPECT_GT(flaky->stats().retries, 0u);
  ExpectExport(*dst, "app:v1", v1_);
  // Without retries the first 503 is the answer: a one-line IoError naming it.
  RegistryOptions o;
  o.ref = RegistryRef::Parse("http://" + Env("LB_PROXY_FLAKY") + "/" + repo_).value();
  o.http.max_attempts = 1;
  auto once = RegistryClient::Open(o).value();
  const std::string digest(kEmptyConfigDigest);
  const Status first = once->HasBlob(digest).status();  // one request each
  const Status second = once->HasBlob(digest).status();
  // The proxy alternates: exactly one of two calls hits the 503.
  EXPECT_NE(first.ok(), second.ok()) << first.ToString() << " / " << second.ToString();
  const Status& failed = first.ok() ? second : first;
  EXPECT_EQ(failed.code(), StatusCode::kIoError);
  EXPECT_NE(failed.message().find("HTTP 503"), std::string::npos) << failed.message();
}

TEST_F(RegistryLive, ManyThreadsShareOneClientAndFetcher) {
  auto c = Client(Env("LB_REG_PLAIN"), false);
  Push(*Client(Env("LB_REG_PLAIN")), {"app:v1", "app:v2"}, 256 << 10);
  BlobFetcher fetcher(c.get());
  std::atomic<int> verified{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto blob = fetcher.Resolve(t % 2 ? "app:v1" : "app:v2");
      if (!blob.ok()) {
        ++failures;
        return;
      }
      std::vector<std::size_t> all((*blob)->map.chunks.size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
      for (const RangeRequest& r : BlobFetcher::Plan((*blob)->map, all, CoalesceOptions{})) {
        Status s = fetcher.Fetch(**blob, r, [&](std::size_t, StoredChunk, auto raw) {
          ++verified;
          return raw.empty() ? Internal("empty") : Status::Ok();
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  const std::size_t u1 = Keys(*src_->OpenBlob("app:v1").value().map).size();
  const std::size_t u2 = Keys(*src_->OpenBlob("app:v2").value().map).size();
  EXPECT_EQ(verified.load(), static_cast<int>(3 * u1 + 3 * u2));
}

// Issue 16: a blob's access record goes up as an artifact next to its manifest, and a
// second record is merged into the first, not written over it.
TEST_F(RegistryLive, AccessRecordsArePublishedNextToTheBlobAndMerged) {
  auto c = Client(Env("LB_REG_PLAIN"));
  PushResult pushed = Push(*c, {"app:v1"});
  ASSERT_EQ(pushed.blobs.size(), 1u);
  const std::string subject = pushed.blobs[0].manifest_digest;
  EXPECT_EQ(FetchTrace(*c, "app:v1").status().code(), StatusCode::kNotFound);
  AccessTrace a;
  a.blob_size = v1_.size();
  a.blocks = {10, 0, 5};
  ASSERT_OK_AND_ASSIGN(PublishedTrace first, PublishTrace(*c, "app:v1", subject, a));
  EXPECT_FALSE(first.merged);
  EXPECT_EQ(first.tag, TraceTagFor("app:v1"));
  EXPECT_EQ(first.chunks, 3u);
  AccessTrace b = a;
  b.blocks = {10, 7};
  ASSERT_OK_AND_ASSIGN(PublishedTrace second, PublishTrace(*c, "app:v1", subject, b));
  EXPECT_TRUE(second.merged);
  ASSERT_OK_AND_ASSIGN(AccessTrace back, FetchTrace(*c, "app:v1"));
  EXPECT_EQ(back.blocks, (std::vector<std::uint64_t>{10, 7, 0, 5}));
  EXPECT_EQ(back.blocks, AccessTrace::Merge(a, b).blocks);
  // The record refers to its blob's manifest, and is no blob itself for listings.
  ASSERT_OK_AND_ASSIGN(FetchedManifest m, c->GetManifest(first.tag));
  EXPECT_NE(m.bytes.find("\"subject\""), std::string::npos);
  EXPECT_NE(m.bytes.find(subject), std::string::npos);
  ASSERT_OK_AND_ASSIGN(auto listed, ListRemoteBlobs(*c));
  EXPECT_EQ(listed.size(), 1u);
  // Another blob's record is not this one's.
  EXPECT_EQ(FetchTrace(*c, "app:v2").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace lazyblob
