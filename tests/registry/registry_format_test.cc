// The registry format's pure parts: tag escaping, references, the chunk map and manifest
// codecs, auth parsing and the Range plan. No registry needed.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "registry/blob_fetcher.h"
#include "registry/registry_auth.h"
#include "registry/registry_ref.h"
#include "registry/remote_format.h"
#include "store/hashing.h"
#include "tests/store/store_test_util.h"

namespace lazyblob {
namespace {

const std::regex kTagRule("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$");

TEST(RegistryTag, PlainIdsStayReadableAndOthersAreEscaped) {
  EXPECT_EQ(TagForBlobId("app-v1.2"), "lb-app-v1.2");
  EXPECT_EQ(TagForBlobId("a_b"), "lb-a_5fb");
  EXPECT_EQ(TagForBlobId("img:1@x+y~"), "lb-img_3a1_40x_2by_7e");
  EXPECT_EQ(TagForBlobId("\xc3\xa9t\xc3\xa9"), "lb-_c3_a9t_c3_a9");
  for (const char* id : {"app-v1.2", "a_b", "img:1@x+y~", "\xc3\xa9t\xc3\xa9", "-", "."}) {
    ASSERT_OK_AND_ASSIGN(std::string back, BlobIdForTag(TagForBlobId(id)));
    EXPECT_EQ(back, id);
    EXPECT_TRUE(std::regex_match(TagForBlobId(id), kTagRule)) << TagForBlobId(id);
    EXPECT_TRUE(IsBlobTag(TagForBlobId(id)));
  }
}

TEST(RegistryTag, LongIdsAreHashedAndEveryTagIsValidAndDistinct) {
  const std::string long_id(200, 'x');
  const std::string tag = TagForBlobId(long_id);
  EXPECT_EQ(tag, "lbh-" + HexOf(Sha256Of(std::as_bytes(std::span(long_id)))));
  EXPECT_TRUE(IsBlobTag(tag));
  EXPECT_EQ(BlobIdForTag(tag).status().code(), StatusCode::kNotFound);
  // Random valid ids: every tag obeys the tag grammar, decodes back, and none collide.
  std::mt19937_64 rng(7);
  std::map<std::string, std::string> tags;  // tag -> id
  for (int i = 0; i < 3000; ++i) {
    std::string id(1 + rng() % 140, 'a');
    for (char& c : id) {
      do c = static_cast<char>(rng() % 256);
      while (!ChunkStore::ValidateBlobId(std::string(1, c)).ok());
    }
    const std::string t = TagForBlobId(id);
    ASSERT_TRUE(std::regex_match(t, kTagRule)) << t;
    auto [it, inserted] = tags.emplace(t, id);
    ASSERT_TRUE(inserted || it->second == id) << "collision on " << t;
    if (t.starts_with("lb-")) {
      ASSERT_OK_AND_ASSIGN(std::string back, BlobIdForTag(t));
      ASSERT_EQ(back, id);
    }
  }
}

TEST(RegistryTag, ForeignAndBadTagsAreRejected) {
  for (const char* t : {"latest", "lb-", "lb-a_zz", "lb-a_4", "lb-_61", "v1"}) {
    EXPECT_FALSE(BlobIdForTag(t).ok()) << t;
  }
  EXPECT_FALSE(IsBlobTag("latest"));
  EXPECT_FALSE(IsBlobTag("lbh-abc"));
}

TEST(RegistryRef, ParsesHostPortRepositoryAndScheme) {
  ASSERT_OK_AND_ASSIGN(RegistryRef a, RegistryRef::Parse("reg.example.com/team/app"));
  EXPECT_FALSE(a.plain_http);
  EXPECT_EQ(a.host, "reg.example.com");
  EXPECT_EQ(a.repository, "team/app");
  EXPECT_EQ(a.BaseUrl(), "https://reg.example.com");
  ASSERT_OK_AND_ASSIGN(RegistryRef b, RegistryRef::Parse("http://127.0.0.1:5000/lazy"));
  EXPECT_TRUE(b.plain_http);
  EXPECT_EQ(b.BaseUrl(), "http://127.0.0.1:5000");
  EXPECT_EQ(b.ToString(), "http://127.0.0.1:5000/lazy");
  ASSERT_OK_AND_ASSIGN(RegistryRef c, RegistryRef::Parse("https://h:443/a/b-c"));
  EXPECT_FALSE(c.plain_http);
  for (const char* bad : {"host", "host/", "/repo", "host/Repo", "user:pw@host/repo", "host/a//b",
                          "ftp://host/repo", "host/a b"}) {
    EXPECT_EQ(RegistryRef::Parse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

RemoteBlobMap SampleMap() {
  RemoteBlobMap m;
  m.info.id = "app-v1";
  m.info.size = 8192 + 100;
  m.info.created_unix_s = 1700000000;
  m.info.chunker.kind = ChunkerKind::kFixed;
  m.info.chunker.min_bytes = m.info.chunker.avg_bytes = m.info.chunker.max_bytes = 8192;
  m.info.sha256.fill(0xab);
  m.bundles = {{"sha256:" + std::string(64, '1'), 5000}, {"sha256:" + std::string(64, 'f'), 9}};
  RemoteChunk c1;
  c1.key.bytes.fill(0x11);
  c1.sha256.fill(0x22);
  c1.codec = Codec::kZstd;
  c1.raw_len = 8192;
  c1.stored_len = 900;
  c1.bundle = 0;
  c1.offset = 4000;
  RemoteChunk c2 = c1;
  c2.codec = Codec::kRaw;
  c2.raw_len = c2.stored_len = 100;
  c2.bundle = 0;
  c2.offset = 0;
  m.chunks = {c1, c2};
  return m;
}

TEST(RegistryChunkMap, EncodingIsPinnedByteForByte) {
  const std::vector<std::uint8_t> v = EncodeChunkMap(SampleMap());
  ASSERT_EQ(v.size(),
            kChunkMapHeaderBytes + 6 + 2 * kChunkMapBundleBytes + 2 * kChunkMapEntryBytes);
  const std::vector<std::uint8_t> head(v.begin(), v.begin() + 16);
  EXPECT_EQ(head, (std::vector<std::uint8_t>{'L', 'B', 'R', 'M', 1, 0, 0, 0, 0x64, 0x20, 0, 0, 0, 0,
                                             0, 0}));
  EXPECT_EQ(v[48], 2);  // chunker kind fixed
  EXPECT_EQ(v[72], 2);  // chunk count
  EXPECT_EQ(v[76], 2);  // bundle count
  EXPECT_EQ(v[80], 6);  // id length
  EXPECT_EQ(std::string(v.begin() + 84, v.begin() + 90), "app-v1");
  EXPECT_EQ(v[90], 0x11);  // first bundle digest byte
  const std::size_t e0 = 84 + 6 + 2 * kChunkMapBundleBytes;
  EXPECT_EQ(v[e0 + 1], 0x20);   // raw_len 8192 LE
  EXPECT_EQ(v[e0 + 4], 0x84);   // stored_len 900 = 0x384 LE
  EXPECT_EQ(v[e0 + 56], 1);     // codec zstd
  EXPECT_EQ(v[e0 + 64], 0xa0);  // offset 4000 = 0xfa0 LE
  ASSERT_OK_AND_ASSIGN(RemoteBlobMap back, DecodeChunkMap(v));
  EXPECT_EQ(EncodeChunkMap(back), v);
  EXPECT_EQ(back.info.id, "app-v1");
  EXPECT_EQ(back.bundles[1].digest, "sha256:" + std::string(64, 'f'));
  EXPECT_EQ(back.chunks[0].offset, 4000u);
  EXPECT_EQ(back.Extents()[1].blob_offset, 8192u);
  const auto blob_map = back.ToBlobMap();
  EXPECT_EQ(blob_map->size, back.info.size);
  EXPECT_EQ(blob_map->Covering(8000, 500), std::make_pair(std::size_t{0}, std::size_t{2}));
}

TEST(RegistryChunkMap, EveryTruncationAndInconsistencyIsMalformed) {
  const std::vector<std::uint8_t> v = EncodeChunkMap(SampleMap());
  for (std::size_t n = 0; n < v.size(); ++n) {
    EXPECT_EQ(DecodeChunkMap(std::span(v.data(), n)).status().code(), StatusCode::kMalformed) << n;
  }
  auto bad = [](auto mutate) {
    RemoteBlobMap m = SampleMap();
    mutate(m);
    return DecodeChunkMap(EncodeChunkMap(m)).status().code();
  };
  EXPECT_EQ(bad([](RemoteBlobMap& m) { m.chunks[0].offset = 4200; }), StatusCode::kMalformed);
  EXPECT_EQ(bad([](RemoteBlobMap& m) { m.chunks[1].bundle = 2; }), StatusCode::kMalformed);
  EXPECT_EQ(bad([](RemoteBlobMap& m) { m.info.size += 1; }), StatusCode::kMalformed);
  EXPECT_EQ(bad([](RemoteBlobMap& m) { m.chunks[0].raw_len = 8000; }), StatusCode::kMalformed);
  EXPECT_EQ(bad([](RemoteBlobMap& m) { m.chunks[1].stored_len = 99; }), StatusCode::kMalformed);
  EXPECT_EQ(bad([](RemoteBlobMap& m) { m.info.id = "a/b"; }), StatusCode::kMalformed);
  std::vector<std::uint8_t> codec = v;
  codec[84 + 6 + 2 * kChunkMapBundleBytes + 56] = 7;
  EXPECT_EQ(DecodeChunkMap(codec).status().code(), StatusCode::kMalformed);
  for (std::size_t reserved :
       {std::size_t{61}, std::size_t{82}, 84 + 6 + 2 * kChunkMapBundleBytes + 57}) {
    std::vector<std::uint8_t> r = v;
    r[reserved] = 1;
    EXPECT_EQ(DecodeChunkMap(r).status().code(), StatusCode::kMalformed) << reserved;
  }
  std::vector<std::uint8_t> version = v;
  version[4] = 2;
  EXPECT_EQ(DecodeChunkMap(version).status().code(), StatusCode::kMalformed);
}

TEST(RegistryManifest, RoundTripsAndRejectsForeignOrBrokenManifests) {
  const RemoteBlobMap m = SampleMap();
  const RemoteBundle map_desc{"sha256:" + std::string(64, '2'), 250};
  const std::string json = EncodeArtifactManifest(m, map_desc);
  ASSERT_OK_AND_ASSIGN(ArtifactManifest a, DecodeArtifactManifest(json));
  EXPECT_EQ(a.blob_id, "app-v1");
  EXPECT_EQ(a.blob_size, m.info.size);
  EXPECT_EQ(a.chunk_count, 2u);
  EXPECT_EQ(a.chunk_map.digest, map_desc.digest);
  ASSERT_EQ(a.bundles.size(), 2u);
  EXPECT_EQ(a.bundles[1].size, 9u);
  EXPECT_EQ(a.created, "2023-11-14T22:13:20Z");
  const nlohmann::json j = nlohmann::json::parse(json);
  EXPECT_EQ(j["mediaType"], kManifestMediaType);
  EXPECT_EQ(j["config"]["digest"], kEmptyConfigDigest);
  EXPECT_EQ(DigestOf(std::span(reinterpret_cast<const std::uint8_t*>(kEmptyConfig.data()),
                               kEmptyConfig.size())),
            kEmptyConfigDigest);

  for (const std::string& broken :
       {std::string("not json"), std::string("[]"), std::string(R"({"schemaVersion":2})"),
        std::string(R"({"schemaVersion":2,"artifactType":"application/vnd.other"})"),
        std::string(R"({"schemaVersion":2,"artifactType":"application/vnd.lazyblob.blob.v1",)"
                    R"("layers":[{"mediaType":"x","digest":"sha256:1","size":1}]})")}) {
    EXPECT_EQ(DecodeArtifactManifest(broken).status().code(), StatusCode::kMalformed) << broken;
  }
  nlohmann::json no_id = j;
  no_id["annotations"].erase("io.lazyblob.blob.id");
  EXPECT_EQ(DecodeArtifactManifest(no_id.dump()).status().code(), StatusCode::kMalformed);
}

TEST(RegistryAuth, ParsesChallengesAndDockerConfigFiles) {
  ASSERT_OK_AND_ASSIGN(
      AuthChallenge b,
      ParseAuthChallenge(R"(Bearer realm="https://auth.io/token",)"
                         R"(service="registry.io",scope="repository:a/b:pull,push")"));
  EXPECT_EQ(b.scheme, "bearer");
  EXPECT_EQ(b.params["realm"], "https://auth.io/token");
  EXPECT_EQ(b.params["scope"], "repository:a/b:pull,push");
  ASSERT_OK_AND_ASSIGN(AuthChallenge basic, ParseAuthChallenge(R"(Basic realm="Registry Realm")"));
  EXPECT_EQ(basic.scheme, "basic");
  EXPECT_FALSE(ParseAuthChallenge("").ok());
  EXPECT_FALSE(ParseAuthChallenge(R"(Bearer realm="unterminated)").ok());

  EXPECT_EQ(Base64Encode("user:pa:ss"), "dXNlcjpwYTpzcw==");
  ASSERT_OK_AND_ASSIGN(std::string dec, Base64Decode("dXNlcjpwYTpzcw=="));
  EXPECT_EQ(dec, "user:pa:ss");

  testing::TempDir tmp;
  std::ofstream(tmp / "config.json") << R"({"auths": {
      "https://reg.io:5000/v1/": {"auth": "dXNlcjpwYTpzcw=="},
      "other.io": {"username": "u2", "password": "p2"},
      "helper.io": {}}})";
  ASSERT_OK_AND_ASSIGN(auto c, LoadDockerCredentials(tmp / "config.json", "reg.io:5000"));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pa:ss");
  ASSERT_OK_AND_ASSIGN(auto c2, LoadDockerCredentials(tmp / "config.json", "other.io"));
  EXPECT_EQ(c2->password, "p2");
  ASSERT_OK_AND_ASSIGN(auto none, LoadDockerCredentials(tmp / "config.json", "helper.io"));
  EXPECT_FALSE(none.has_value());
  EXPECT_EQ(LoadDockerCredentials(tmp / "missing.json", "x").status().code(),
            StatusCode::kNotFound);
  std::ofstream(tmp / "bad.json") << "{\"auths\": {\"x\": {\"auth\": \"!!!\"}}} secret-ish";
  auto bad = LoadDockerCredentials(tmp / "bad.json", "x");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("secret"), std::string::npos);
}

TEST(RegistryFetchPlan, CoalescesNeighboursWithinGapAndSizeLimits) {
  RemoteBlobMap m;
  m.bundles = {{"sha256:" + std::string(64, 'a'), 1 << 20},
               {"sha256:" + std::string(64, 'b'), 100}};
  auto chunk = [](std::uint8_t tag, std::uint32_t bundle, std::uint64_t off, std::uint32_t len) {
    RemoteChunk c;
    c.key.bytes.fill(tag);
    c.bundle = bundle;
    c.offset = off;
    c.stored_len = c.raw_len = len;
    return c;
  };
  // bundle 0: [0,100) [100,200) gap 50 [250,300) gap 1000 [1300,1400); bundle 1: [0,100)
  m.chunks = {chunk(1, 0, 0, 100),    chunk(2, 0, 100, 100), chunk(3, 0, 250, 50),
              chunk(4, 0, 1300, 100), chunk(5, 1, 0, 100),   chunk(1, 0, 0, 100)};
  const std::vector<std::size_t> all = {5, 4, 3, 2, 1, 0};
  auto plan = BlobFetcher::Plan(m, all, CoalesceOptions{1 << 20, 64});
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].offset, 0u);
  EXPECT_EQ(plan[0].length, 300u);
  EXPECT_EQ(plan[0].chunks.size(), 3u);  // the repeated key (index 5) is fetched once
  EXPECT_EQ(plan[1].offset, 1300u);
  EXPECT_EQ(plan[2].bundle, 1u);
  // A 250-byte cap splits the first run.
  plan = BlobFetcher::Plan(m, all, CoalesceOptions{250, 64});
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].length, 200u);
  // No gap allowed: the 50-byte hole splits it.
  plan = BlobFetcher::Plan(m, all, CoalesceOptions{1 << 20, 0});
  EXPECT_EQ(plan.size(), 4u);
}

}  // namespace
}  // namespace lazyblob
